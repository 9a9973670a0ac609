package modbus_test

import (
	"context"
	"errors"
	"os"
	"time"

	"github.com/rs/zerolog"

	"sortgw/devices"
	"sortgw/devices/modbus"
)

// A gateway runs the link, drains its events on their own goroutine, and
// sends commands that must be written within the decision budget.
func Example() {
	log := zerolog.New(os.Stderr).With().Timestamp().Logger()
	link, err := modbus.New(modbus.Config{Name: "sorter1", Addr: "10.0.0.10:502"}, log)
	if err != nil {
		log.Fatal().Err(err).Msg("config")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = link.Run(ctx) }()
	go func() {
		for {
			select {
			case ev := <-link.Events():
				_ = ev // journal it: written, taken, confirmed, late, lost, missed
			case <-ctx.Done():
				return
			}
		}
	}()
	link.SetHostState(devices.HostReady)
	err = link.Send(ctx, devices.Command{TID: 4711, Chute: 17, Deadline: time.Now().Add(500 * time.Millisecond)})
	if errors.Is(err, devices.ErrQueueFull) {
		_ = err // the item recirculates: record it as host late
	}
}
