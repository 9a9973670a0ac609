package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/rs/zerolog"

	"sortgw/devices"
	"sortgw/devices/modbus"
	"sortgw/devices/opcua"
	"sortgw/devices/scanner"
	fieldbussim "sortgw/fieldbus-sim"
	"sortgw/gateway"
	"sortgw/gateway/journal"
	"sortgw/sortplan"
	"sortgw/sortplan/zcta"
)

// demoConfig is what `sortgw demo` runs; tests use it with port 0.
type demoConfig struct {
	HTTP     string
	Protocol string // modbus | opcua
	Rate     float64
	Chutes   int
	Scanners int
	Seed     int64
	Token    string
	Dir      string // journal directory; "" = a temporary one
	// Sim tweaks for tests (zero = demo defaults).
	PLCCycle          time.Duration
	ContainerCapacity int
	EmptyAfter        time.Duration
	NoReadRate        float64
	MultiReadRate     float64
	ConfirmTimeout    time.Duration
}

// demo is a running demonstration: the emulated sorter, the gateway and
// its journal in one process.
type demo struct {
	cfg     demoConfig
	sim     *fieldbussim.Sim
	plan    *sortplan.Plan
	gw      *gateway.Gateway
	line    *gateway.Line
	journal *journal.Journal
	log     zerolog.Logger
	tmp     string
}

// newDemo builds (but does not start) the sim; start binds it.
func newDemo(cfg demoConfig, log zerolog.Logger) (*demo, error) {
	if cfg.Chutes == 0 {
		cfg.Chutes = 256
	}
	if cfg.Scanners == 0 {
		cfg.Scanners = 2
	}
	if cfg.Protocol == "" {
		cfg.Protocol = "modbus"
	}
	if cfg.Protocol != "modbus" && cfg.Protocol != "opcua" {
		return nil, fmt.Errorf("demo: protocol %q: want modbus or opcua", cfg.Protocol)
	}
	if cfg.ContainerCapacity == 0 {
		cfg.ContainerCapacity = 25
	}
	if cfg.EmptyAfter == 0 {
		cfg.EmptyAfter = 15 * time.Second
	}
	if cfg.NoReadRate == 0 {
		cfg.NoReadRate = 0.02
	}
	if cfg.MultiReadRate == 0 {
		cfg.MultiReadRate = 0.01
	}
	scfg := fieldbussim.Config{
		Chutes:   cfg.Chutes,
		PLCCycle: cfg.PLCCycle,
		Seed:     cfg.Seed,
		Scanners: fieldbussim.ScannerConfig{Count: cfg.Scanners},
		Labels:   fieldbussim.LabelConfig{NoReadRate: cfg.NoReadRate, MultiReadRate: cfg.MultiReadRate, ConflictRate: 0.5},
		// A brisk belt with close chutes: a newcomer sees outcomes within
		// seconds, not after a 30 s trip to the far end.
		Conveyor: fieldbussim.ConveyorConfig{Rate: cfg.Rate, BeltSpeed: 4, ChutePitch: 0.8,
			ContainerCapacity: cfg.ContainerCapacity, EmptyAfter: cfg.EmptyAfter},
	}
	if cfg.Protocol == "modbus" {
		scfg.Modbus.Addr = "127.0.0.1:0"
	} else {
		scfg.OPCUA.Addr = "127.0.0.1:0"
	}
	plan, dests, err := demoPlan(cfg.Chutes, cfg.Seed)
	if err != nil {
		return nil, err
	}
	scfg.Labels.Destinations = dests
	sim, err := fieldbussim.New(scfg, log.With().Str("part", "sim").Logger().Level(zerolog.WarnLevel))
	if err != nil {
		return nil, err
	}
	return &demo{cfg: cfg, sim: sim, plan: plan, log: log}, nil
}

// demoCapacity sizes the line's item table for the demo's rate: every item
// seen in the last 10 minutes (the line's default memory of finished passes)
// with a quarter to spare, at least 8,192.
func demoCapacity(rate float64) int {
	need := int(rate * 600 * 1.25)
	c := 8192
	for c < need {
		c *= 2
	}
	return c
}

// demoPlan generates the demo's sort plan from the embedded ZIP list and
// the destinations its parcels carry: half of them for the sort center's
// own delivery routes (the plan's exact ZIP rules), half from anywhere in
// the country (linehaul), so both kinds of chute fill on the page.
func demoPlan(chutes int, seed int64) (*sortplan.Plan, []string, error) {
	planCSV, err := sortplan.Generate(sortplan.GenerateOptions{Chutes: chutes, Seed: seed + 1, Name: "DEMO-" + strconv.Itoa(chutes)})
	if err != nil {
		return nil, nil, fmt.Errorf("demo: generate plan: %w", err)
	}
	plan, _, err := sortplan.ParsePlan("demo-plan.csv", bytes.NewReader(planCSV), chutes)
	if err != nil {
		return nil, nil, fmt.Errorf("demo: plan: %w", err)
	}
	var local []string
	for _, r := range plan.Rules {
		if r.Kind == sortplan.RuleExact {
			local = append(local, r.Pattern)
		}
	}
	all := zcta.Codes()
	dests := make([]string, 0, 2*len(all))
	dests = append(dests, all...)
	if len(local) > 0 {
		for rep := len(all) / len(local); rep > 0; rep-- {
			dests = append(dests, local...)
		}
	}
	return plan, dests, nil
}

// Run runs the sim, then wires and runs the gateway against it, until ctx
// is done.
func (d *demo) Run(ctx context.Context, ready func(url string)) error {
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

func (d *demo) runGateway(ctx context.Context, ready func(url string)) error {
	cfg := d.cfg
	dir := cfg.Dir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "sortgw-demo-")
		if err != nil {
			return err
		}
		d.tmp = tmp
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	// The demo is the configuration the memory goal names: the journal's
	// record ring and the item table are sized for the demo's rate, not for
	// the defaults' 65,536 (which preallocate 30 MB). See docs/performance.md.
	j, err := journal.Open(journal.Config{Path: filepath.Join(dir, "journal.db"), QueueSize: 8192}, d.log.With().Str("part", "journal").Logger())
	if err != nil {
		return err
	}
	d.journal = j

	plan := d.plan
	var mbuf bytes.Buffer
	if err := d.sim.WriteManifest(&mbuf); err != nil {
		_ = j.Close()
		return fmt.Errorf("demo: manifest: %w", err)
	}
	manifest, err := sortplan.ParseManifest("demo-manifest.csv", &mbuf)
	if err != nil {
		_ = j.Close()
		return fmt.Errorf("demo: manifest: %w", err)
	}

	var plc devices.PLCLink
	plog := d.log.With().Str("plc", "demo-plc").Logger()
	if cfg.Protocol == "opcua" {
		plc, err = opcua.New(opcua.Config{Name: "demo-plc", Endpoint: d.sim.OPCUAEndpoint()}, plog)
	} else {
		plc, err = modbus.New(modbus.Config{Name: "demo-plc", Addr: d.sim.ModbusAddr(), Chutes: cfg.Chutes}, plog)
	}
	if err != nil {
		_ = j.Close()
		return err
	}
	var scs []scanner.Config
	for i, a := range d.sim.ScannerAddrs() {
		scs = append(scs, scanner.Config{Name: "S" + strconv.Itoa(i+1), Addr: a})
	}
	src, err := scanner.New(scs, d.log.With().Str("part", "scanners").Logger())
	if err != nil {
		_ = j.Close()
		return err
	}
	m := gateway.NewMetrics()
	line, err := gateway.NewLine(gateway.LineConfig{Name: "L1", Chutes: cfg.Chutes, ContainerCapacity: cfg.ContainerCapacity,
		Capacity:       demoCapacity(cfg.Rate),
		ConfirmTimeout: cfg.ConfirmTimeout}, plc, src, j, m, d.log)
	if err != nil {
		_ = j.Close()
		return err
	}
	if _, err := line.InstallPlan(plan, manifest); err != nil {
		_ = j.Close()
		return err
	}
	d.line = line
	gw, err := gateway.New(gateway.Config{Listen: cfg.HTTP, Token: cfg.Token, DrainGrace: 3 * time.Second, Version: version + "-demo", Journal: j},
		[]*gateway.Line{line}, j, m, d.log.With().Str("part", "http").Logger())
	if err != nil {
		_ = j.Close()
		return err
	}
	d.gw = gw
	s := &site{gw: gw, journal: j, log: d.log}
	go func() {
		select {
		case <-gw.Started():
			if ready != nil {
				ready("http://" + gw.Addr() + "/")
			}
		case <-ctx.Done():
		}
	}()
	return s.run(ctx, nil)
}

// cmdDemo is `sortgw demo`: an emulated sorter, the gateway and the status
// page in one process, for a first look and for training.
func cmdDemo(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	httpAddr := fs.String("http", "127.0.0.1:8080", "status page address")
	proto := fs.String("protocol", "modbus", "PLC protocol: modbus or opcua")
	rate := fs.Float64("rate", 20, "items inducted per second")
	chutes := fs.Int("chutes", 256, "chute count")
	seed := fs.Int64("seed", 1, "random seed for the sorter and the plan")
	token := fs.String("token", "", "bearer token for actions (default: a random one, printed)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *token == "" {
		b := make([]byte, 12)
		_, _ = rand.Read(b)
		*token = hex.EncodeToString(b)
	}
	log := newLogger(stderr, "console", "info")
	d, err := newDemo(demoConfig{HTTP: *httpAddr, Protocol: *proto, Rate: *rate, Chutes: *chutes, Seed: *seed, Token: *token}, log)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	err = d.Run(ctx, func(url string) {
		fmt.Fprintf(stdout, "sortgw demo: status page %s\n", url)
		fmt.Fprintf(stdout, "sortgw demo: token for actions: %s\n", *token)
		fmt.Fprintf(stdout, "sortgw demo: %s PLC, %.0f items/s, %d chutes; Ctrl-C stops\n", *proto, *rate, *chutes)
	})
	if err != nil {
		fmt.Fprintln(stderr, "sortgw demo:", err)
		return 1
	}
	return 0
}
