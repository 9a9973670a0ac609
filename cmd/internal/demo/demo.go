// Package demo is `sortgw demo`: an emulated sorter, the gateway and its
// status page in one process, for a first look and for training. It
// returns errors; printing is the caller's (cmd/sortgw).
package demo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/rs/zerolog"

	fieldbussim "sortgw/fieldbus-sim"
	"sortgw/gateway"
)

// Config is what the demo runs; a zero field takes the default beside it.
type Config struct {
	HTTP     string  // status page address (default 127.0.0.1:8080; tests use 127.0.0.1:0)
	Protocol string  // "modbus" (default) or "opcua"
	Rate     float64 // items inducted per second (default 20)
	Chutes   int     // default 256
	Scanners int     // default 2
	Seed     int64
	// Token is the bearer token for actions on the status page (default:
	// a random one; Demo.Token tells it).
	Token   string
	Dir     string // journal directory; "" = a temporary one
	Version string // shown on the status page, "-demo" appended (default "dev")
	// Sim tweaks for tests (zero = demo defaults).
	PLCCycle          time.Duration
	ContainerCapacity int           // default 25 at 20 items/s, in proportion to Rate above it
	EmptyAfter        time.Duration // default 15s
	NoReadRate        float64       // default 0.02
	MultiReadRate     float64       // default 0.01
	ConfirmTimeout    time.Duration
	// DaySpeed is how much faster than the wall clock the demo's day runs
	// for the routes' departures (default 120: a day in 12 minutes).
	DaySpeed float64
	// ParcelsPerContainer is the routes' container capacity (default 30).
	ParcelsPerContainer int
	// NoNATS leaves the embedded NATS server and the upstream publisher
	// out (by default the demo publishes its journal to one, on a
	// loopback port the OS picks; Demo.Tail says how to watch it).
	NoNATS bool
	// TruthLimit bounds the emulator's per-item ground truth (default
	// 12,000 records, about 5 MB; see fieldbussim.Config.TruthLimit).
	TruthLimit int
	// Check holds the journal against the sim's ground truth when Run
	// ends, and every bounded structure against its bound (Demo.Check).
	Check bool
}

// Validate fills in the defaults and checks the config.
func (c *Config) Validate() error {
	if c.Protocol == "" {
		c.Protocol = "modbus"
	}
	if c.Protocol != "modbus" && c.Protocol != "opcua" {
		return fmt.Errorf("demo: protocol %q: want modbus or opcua", c.Protocol)
	}
	if c.Rate < 0 {
		return fmt.Errorf("demo: rate %v: want a positive number", c.Rate)
	}
	setDefault(&c.HTTP, "127.0.0.1:8080")
	setDefault(&c.Rate, 20)
	setDefault(&c.Chutes, 256)
	setDefault(&c.Scanners, 2)
	setDefault(&c.Version, "dev")
	// 25 items at the default 20 items/s, more in proportion above it: at
	// 200 items/s 25-item containers, each blocked 15 s to swap, left
	// chutes full a third of the time and the belt filled with
	// recirculating items (the emulator's memory grew with them). A run
	// at ten times the rate is then the same sorter, ten times faster.
	setDefault(&c.ContainerCapacity, max(25, int(25*c.Rate/20)))
	setDefault(&c.EmptyAfter, 15*time.Second)
	setDefault(&c.NoReadRate, 0.02)
	setDefault(&c.MultiReadRate, 0.01)
	setDefault(&c.DaySpeed, 120)
	setDefault(&c.ParcelsPerContainer, 30)
	setDefault(&c.TruthLimit, demoTruthLimit)
	if c.DaySpeed < 0 || c.ParcelsPerContainer < 0 {
		return fmt.Errorf("demo: day speed %v and parcels per container %d: want positive numbers", c.DaySpeed, c.ParcelsPerContainer)
	}
	if c.Token == "" {
		b := make([]byte, 12)
		if _, err := rand.Read(b); err != nil {
			return fmt.Errorf("demo: token: %w", err)
		}
		c.Token = hex.EncodeToString(b)
	}
	return nil
}

func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// Demo is a demonstration: the emulated sorter, the gateway and its
// journal in one process.
type Demo struct {
	cfg     Config
	sim     *fieldbussim.Sim
	planCSV []byte // written to the plan file in the state directory
	log     zerolog.Logger
	line    *gateway.Line // set once Run has wired the gateway
	day     *dayClock
	// planFile is the plan file the reload button reads, set by Run
	// before the ready callback.
	planFile string
	tail     string // the `sortgw tail` command, once upstream runs
	check    *Check // set by Run with Config.Check
}

// New builds (but does not start) the emulated sorter; Run binds it.
func New(cfg Config, log zerolog.Logger) (*Demo, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	scfg := fieldbussim.Config{
		Chutes:     cfg.Chutes,
		PLCCycle:   cfg.PLCCycle,
		Seed:       cfg.Seed,
		Scanners:   fieldbussim.ScannerConfig{Count: cfg.Scanners},
		TruthLimit: cfg.TruthLimit,
		Labels:     fieldbussim.LabelConfig{NoReadRate: cfg.NoReadRate, MultiReadRate: cfg.MultiReadRate, ConflictRate: 0.5},
		// A brisk belt with close chutes: a newcomer sees outcomes within
		// seconds, not after a 30 s trip to the far end.
		Conveyor: fieldbussim.ConveyorConfig{Rate: cfg.Rate, BeltSpeed: demoBeltSpeed, ChutePitch: demoChutePitch,
			ContainerCapacity: cfg.ContainerCapacity, EmptyAfter: cfg.EmptyAfter},
	}
	if cfg.Protocol == "modbus" {
		scfg.Modbus.Addr = "127.0.0.1:0"
	} else {
		scfg.OPCUA.Addr = "127.0.0.1:0"
	}
	planCSV, dests, err := demoPlan(cfg.Chutes, cfg.Seed, cfg.ParcelsPerContainer)
	if err != nil {
		return nil, err
	}
	scfg.Labels.Destinations = dests
	sim, err := fieldbussim.New(scfg, log.With().Str("part", "sim").Logger().Level(zerolog.WarnLevel))
	if err != nil {
		return nil, err
	}
	return &Demo{cfg: cfg, sim: sim, planCSV: planCSV, log: log, day: newDayClock(cfg.DaySpeed)}, nil
}

// Config is the demo's configuration with its defaults filled in (the
// token among them).
func (d *Demo) Config() Config { return d.cfg }

// PlanFile is the plan file in the demo's state directory: edit it (raise
// plan_version) and press Reload plan. Valid once Run called ready.
func (d *Demo) PlanFile() string { return d.planFile }

// Run runs the sim, then wires and runs the gateway against it, until ctx
// is done. ready is called with the status page's URL once it listens.
func (d *Demo) Run(ctx context.Context, ready func(url string)) error {
	simCtx, stopSim := context.WithCancel(context.WithoutCancel(ctx))
	defer stopSim()
	simDone := make(chan error, 1)
	go func() { simDone <- d.sim.Run(simCtx) }()
	select {
	case <-d.sim.Ready():
	case err := <-simDone:
		return fmt.Errorf("demo: sim: %w", err)
	case <-ctx.Done():
		stopSim()
		return <-simDone
	}
	err := d.runGateway(ctx, ready)
	stopSim()
	if serr := <-simDone; serr != nil && !errors.Is(serr, context.Canceled) {
		err = errors.Join(err, fmt.Errorf("demo: sim: %w", serr))
	}
	return err
}

// Finish stops induction and waits until the belt is empty and the line
// has no open pass (every item the gateway commanded has its outcome), at
// most two laps of the loop; then the caller stops the demo. It says
// whether the belt emptied. A run checked with Config.Check ends this way,
// so that few items are cut off mid-pass by the stop.
func (d *Demo) Finish(ctx context.Context) bool {
	d.sim.SetRate(0)
	deadline := time.Now().Add(2 * demoLap(d.cfg.Chutes))
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if d.sim.OnBelt() == 0 && d.line != nil {
			if s := d.line.Snapshot(); s != nil && s.Open == 0 {
				return true
			}
		}
		if time.Now().After(deadline) {
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
		}
	}
}
