package loadtest

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/rs/zerolog"

	"sortgw/devices"
	"sortgw/devices/modbus"
	uadev "sortgw/devices/opcua"
	"sortgw/devices/scanner"
	fieldbussim "sortgw/fieldbus-sim"
	"sortgw/gateway"
	"sortgw/sortplan"
)

// benchLine is one sorter line of a scenario: its sim and its devices.
type benchLine struct {
	name  string
	sim   *fieldbussim.Sim
	feed  *feeder // direct feed; nil with the conveyor
	mf    []byte  // the direct feed's manifest
	probe *probe
	link  *measuredLink
	src   *measuredSource
	line  *gateway.Line
}

func newBenchLine(cfg Config, i int, base time.Time, labels []sortplan.SampleLabel, mf []byte, log zerolog.Logger) (*benchLine, error) {
	name := "L" + strconv.Itoa(i+1)
	scfg := fieldbussim.Config{
		Chutes:        cfg.Chutes,
		PLCCycle:      cfg.PLCCycle,
		ImmediateScan: cfg.ImmediateScan,
		Seed:          cfg.Seed + int64(i)*7919,
		Scanners:      fieldbussim.ScannerConfig{Count: cfg.Scanners, QueueSize: 1 << 14},
		Labels:        fieldbussim.LabelConfig{NoReadRate: cfg.NoReadRate, MultiReadRate: cfg.MultiReadRate, ConflictRate: 0.5, GarbageRate: cfg.GarbageRate},
		Conveyor: fieldbussim.ConveyorConfig{
			Rate: math.Max(cfg.Rate, 1), ChutePitch: cfg.ChutePitch, ContainerCapacity: cfg.ContainerCapacity,
			EmptyAfter: cfg.EmptyAfter, LostRate: cfg.LostRate,
		},
	}
	bl := &benchLine{name: name}
	if cfg.Abuse {
		// The scanners connect out to the gateway's server-mode scanners,
		// one port each, so that one port can be taken (abuse.go).
		addrs, err := freeAddrs(cfg.Scanners)
		if err != nil {
			return nil, fmt.Errorf("bench: scanner ports: %w", err)
		}
		scfg.Scanners.DialOut = addrs
		scfg.Scanners.BackoffMin, scfg.Scanners.BackoffMax = 50*time.Millisecond, 500*time.Millisecond
	}
	if cfg.Feed == FeedDirect {
		var err error
		if bl.feed, err = newFeeder(labels, cfg.Seed+int64(i)); err != nil {
			return nil, err
		}
		bl.mf = mf
		scfg.Conveyor.Rate = 0 // commissioning: every commanded TID is an item
		scfg.Conveyor.CommissioningTravel = cfg.travel()
		scfg.DisableScanners = true
	}
	if cfg.Protocol == "modbus" {
		scfg.Modbus.Addr = "127.0.0.1:0"
	} else {
		scfg.OPCUA.Addr = "127.0.0.1:0"
	}
	sim, err := fieldbussim.New(scfg, log.With().Str("part", "sim").Str("line", name).Logger().Level(zerolog.ErrorLevel))
	if err != nil {
		return nil, fmt.Errorf("bench: sim %s: %w", name, err)
	}
	bl.sim = sim
	// Nothing is inducted until the gateway is up and the baselines are
	// taken (the rate above only keeps the sim out of commissioning mode).
	bl.setRate(0)
	maxN := int(math.Min(cfg.Rate*cfg.Duration.Seconds()*1.5+10000, 2_000_000))
	bl.probe = newProbe(base, cfg.Rate, maxN)
	return bl, nil
}

func (bl *benchLine) setRate(r float64) {
	if bl.feed != nil {
		bl.feed.SetRate(r)
		return
	}
	bl.sim.SetRate(r)
}

func (bl *benchLine) inducted() uint64 {
	if bl.feed != nil {
		return bl.feed.Sent()
	}
	return bl.sim.Inducted()
}

func (bl *benchLine) scannerAddrs() []string {
	if bl.feed != nil {
		return []string{bl.feed.Addr()}
	}
	return bl.sim.ScannerAddrs()
}

// wire makes the line's devices and pipeline against its running sim.
func (bl *benchLine) wire(cfg Config, plan *sortplan.Plan, j gateway.Journal, m *gateway.Metrics, log zerolog.Logger) error {
	var mbuf bytes.Buffer
	if bl.feed != nil {
		mbuf.Write(bl.mf)
	} else if err := bl.sim.WriteManifest(&mbuf); err != nil {
		return fmt.Errorf("bench: manifest: %w", err)
	}
	manifest, err := sortplan.ParseManifest("bench-manifest.csv", &mbuf)
	if err != nil {
		return fmt.Errorf("bench: manifest: %w", err)
	}
	llog := log.With().Str("line", bl.name).Logger()
	// Queues hold about a second of items (at least the devices' own
	// defaults), so that many small lines stay small.
	q := 1024
	for float64(q) < cfg.Rate && q < 1<<14 {
		q <<= 1
	}
	var plc devices.PLCLink
	if cfg.Protocol == "opcua" {
		plc, err = uadev.New(uadev.Config{Name: bl.name + "-plc", Endpoint: bl.sim.OPCUAEndpoint(), Chutes: cfg.Chutes, PublishInterval: cfg.Poll,
			QueueSize: q, EventBuffer: 4 * q}, llog)
	} else {
		plc, err = modbus.New(modbus.Config{Name: bl.name + "-plc", Addr: bl.sim.ModbusAddr(), Chutes: cfg.Chutes, Poll: cfg.Poll,
			QueueSize: q, EventBuffer: 4 * q}, llog)
	}
	if err != nil {
		return err
	}
	var scs []scanner.Config
	for k, a := range bl.scannerAddrs() {
		sc := scanner.Config{Name: bl.name + "-S" + strconv.Itoa(k+1), Addr: a, BackoffMin: 50 * time.Millisecond, BackoffMax: 500 * time.Millisecond}
		if cfg.Abuse {
			sc.Mode, sc.Peer = scanner.ModeServer, "127.0.0.1"
		}
		scs = append(scs, sc)
	}
	slog := llog.With().Str("part", "scanners").Logger()
	bl.src = &measuredSource{p: bl.probe}
	if cfg.Abuse {
		// The last scanner is the one whose port the soak takes; the
		// scanner faults hit the emulator's scanner 0, so the two do not
		// mask each other's recovery.
		bl.src.port, err = newPortScanner(scs, slog)
	} else {
		bl.src.inner, err = scanner.New(scs, slog)
	}
	if err != nil {
		return err
	}
	bl.link = newMeasuredLink(plc, bl.probe, 4*q)
	line, err := gateway.NewLine(gateway.LineConfig{Name: bl.name, Chutes: cfg.Chutes, Budget: cfg.Budget,
		ConfirmTimeout: cfg.travel() + 5*time.Second, Remember: 2 * time.Minute, ReadQueue: 4 * q, Capacity: cfg.Capacity},
		bl.link, bl.src, j, m, log)
	if err != nil {
		return err
	}
	if _, err := line.InstallPlan(plan, manifest); err != nil {
		return err
	}
	bl.line = line
	return nil
}
