package modbus_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"sortgw/devices"
	"sortgw/devices/modbus"
	fieldbussim "sortgw/fieldbus-sim"
)

// A gateway runs the link, drains its events on their own goroutine, and
// sends commands that must be written within the decision budget. Here the
// PLC is the emulated sorter on a loopback port; on a site, Addr is the
// PLC's "host:port" and the logger carries the PLC's name.
func Example() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sim, err := fieldbussim.New(fieldbussim.Config{
		Modbus:   fieldbussim.ModbusConfig{Addr: "127.0.0.1:0"},
		Conveyor: fieldbussim.ConveyorConfig{CommissioningTravel: 20 * time.Millisecond},
	}, zerolog.Nop())
	if err != nil {
		fmt.Println(err)
		return
	}
	simDone := make(chan error, 1)
	go func() { simDone <- sim.Run(ctx) }()
	<-sim.Ready()

	link, err := modbus.New(modbus.Config{Name: "sorter1", Addr: sim.ModbusAddr()}, zerolog.Nop())
	if err != nil {
		fmt.Println(err)
		return
	}
	linkDone := make(chan error, 1)
	go func() { linkDone <- link.Run(ctx) }()

	link.SetHostState(devices.HostReady)
	err = link.Send(ctx, devices.Command{TID: 4711, Chute: 17, Deadline: time.Now().Add(5 * time.Second)})
	if errors.Is(err, devices.ErrQueueFull) {
		fmt.Println("queue full: record the item as host late") // the item recirculates
	}
	// The gateway journals every event: written, taken, confirmed (or
	// late, lost, missed).
	for ev := range link.Events() {
		fmt.Printf("%s tid %d seq %d chute %d result %d\n", ev.Kind, ev.TID, ev.Seq, ev.Chute, ev.Result)
		if ev.Kind != devices.EventWritten && ev.Kind != devices.EventTaken {
			break
		}
	}
	cancel()
	<-linkDone
	<-simDone
	// Output:
	// written tid 4711 seq 1 chute 17 result 0
	// taken tid 4711 seq 1 chute 17 result 0
	// confirmed tid 4711 seq 1 chute 17 result 1
}
