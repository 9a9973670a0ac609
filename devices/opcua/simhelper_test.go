package opcua

import (
	"context"
	"fmt"
	"time"

	"github.com/rs/zerolog"

	fieldbussim "sortgw/fieldbus-sim"
)

// simOpts picks the emulated sorter a test needs.
type simOpts struct {
	security  string        // "" = None only; else that mode with Basic256Sha256
	certDir   string        // where the sim writes its generated certificate
	travel    time.Duration // commissioning travel time (sim default 200ms)
	immediate bool          // the PLC takes commands as they are written
}

type testSim struct {
	*fieldbussim.Sim
	endpoint string
	restart  func()
}

// launchSim runs an emulated sorter with its OPC UA front on a free
// loopback port; stop ends it and waits for Run.
func launchSim(o simOpts) (*testSim, func(), error) {
	sim, err := fieldbussim.New(fieldbussim.Config{
		ImmediateScan: o.immediate,
		OPCUA:         fieldbussim.OPCUAConfig{Addr: "127.0.0.1:0", Security: o.security, CertDir: o.certDir},
		Conveyor:      fieldbussim.ConveyorConfig{Rate: 0, CommissioningTravel: o.travel},
	}, zerolog.Nop())
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sim.Run(ctx) }()
	select {
	case <-sim.Ready():
	case err := <-done:
		cancel()
		return nil, nil, fmt.Errorf("sim ended before ready: %w", err)
	}
	stop := func() {
		cancel()
		<-done
	}
	return &testSim{Sim: sim, endpoint: sim.OPCUAEndpoint(), restart: sim.RestartOPCUA}, stop, nil
}
