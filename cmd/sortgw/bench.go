package main

// `sortgw bench`: the emulated sorter and the gateway in one process,
// driven at a target rate over Modbus TCP or OPC UA, with the raw transport
// baselines measured in the same run so that every latency reads as a
// ratio on a noisy machine. docs/performance.md holds the figures.

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"runtime/trace"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	gmb "github.com/goburrow/modbus"
	"github.com/gopcua/opcua"
	"github.com/gopcua/opcua/ua"
	"github.com/rs/zerolog"

	"sortgw/devices"
	"sortgw/devices/modbus"
	uadev "sortgw/devices/opcua"
	"sortgw/devices/scanner"
	fieldbussim "sortgw/fieldbus-sim"
	"sortgw/gateway"
	"sortgw/gateway/journal"
	"sortgw/sortplan"
	"sortgw/sortplan/zcta"
)

// benchConfig is one bench scenario. The zero value of a field selects the
// default noted beside it.
type benchConfig struct {
	Protocol string        // "modbus" (default) or "opcua"
	Rate     float64       // items/s inducted per line (default 1000); <0: the ring's ceiling ("max")
	Duration time.Duration // measured window (default 30s)
	Warmup   time.Duration // before the window; samples discarded (default 2s)
	Lines    int           // sorter lines, each with its own emulated sorter and link (default 1)
	Chutes   int           // default 256
	PLCCycle time.Duration // emulated PLC scan (default 5ms)
	Poll     time.Duration // Modbus poll / OPC UA publishing interval (default 10ms)
	Scanners int           // per line (default 1)
	Seed     int64         // default 1
	Dir      string        // journal directory ("" = a temporary one)
	// Feed is "direct" (default: the bench's own scanner at an exact
	// rate, the emulated PLC in commissioning mode) or "conveyor" (the
	// emulated belt inducts, scans and diverts items; default with Chaos).
	Feed string

	// Chaos injects a fault every ChaosEvery (default 30s) and checks the
	// ground truth at the end.
	Chaos      bool
	ChaosEvery time.Duration

	// Conveyor shape (defaults in benchDefaults).
	ContainerCapacity int // -1 = never full
	EmptyAfter        time.Duration
	LostRate          float64
	ChutePitch        float64
	NoReadRate        float64
	MultiReadRate     float64
	GarbageRate       float64

	Baselines  int           // samples per baseline (default 2000)
	Budget     time.Duration // decision budget (default 500ms)
	SkipDecide bool          // leave out the decision micro-benchmark
	MemProfile string        // write a heap profile at the end of the window
	// Capacity is each line's tracking table (0: the gateway's default,
	// 65536 items); JournalQueue the journal's queue (0: its default).
	Capacity, JournalQueue int
	// ImmediateScan makes the emulated PLC take commands as they are
	// written (not only at its scan), to tell the ring from the gateway.
	ImmediateScan bool
	Log           zerolog.Logger
}

func (c *benchConfig) defaults() error {
	if c.Protocol == "" {
		c.Protocol = "modbus"
	}
	if c.Protocol != "modbus" && c.Protocol != "opcua" {
		return fmt.Errorf("bench: protocol %q: want modbus or opcua", c.Protocol)
	}
	if c.Feed == "" {
		c.Feed = "direct"
		if c.Chaos {
			c.Feed = "conveyor"
		}
	}
	if c.Feed != "direct" && c.Feed != "conveyor" {
		return fmt.Errorf("bench: feed %q: want direct or conveyor", c.Feed)
	}
	if c.Chaos && c.Feed != "conveyor" {
		return errors.New("bench: chaos needs the conveyor feed (its faults act on the emulated scanners)")
	}
	if c.Lines == 0 {
		c.Lines = 1
	}
	if c.Lines < 1 || c.Lines > 512 {
		return fmt.Errorf("bench: lines %d: want 1..512", c.Lines)
	}
	if c.Chutes == 0 {
		c.Chutes = 256
	}
	if c.PLCCycle == 0 {
		c.PLCCycle = 5 * time.Millisecond
	}
	if c.Poll == 0 {
		c.Poll = 10 * time.Millisecond
	}
	if c.Rate == 0 {
		c.Rate = 1000
	}
	if c.Rate < 0 {
		c.Rate = c.ceiling()
	}
	if c.Duration == 0 {
		c.Duration = 30 * time.Second
	}
	if c.Duration < 0 || c.Warmup < 0 {
		return errors.New("bench: negative duration")
	}
	if c.Warmup == 0 {
		c.Warmup = 2 * time.Second
	}
	if c.Scanners == 0 {
		c.Scanners = 1
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
	if c.ChaosEvery == 0 {
		c.ChaosEvery = 30 * time.Second
	}
	if c.ContainerCapacity == 0 {
		c.ContainerCapacity = -1
	}
	if c.EmptyAfter == 0 {
		c.EmptyAfter = 5 * time.Second
	}
	if c.ChutePitch == 0 {
		// A short sort zone: 256 chutes in 25.6 m, so an item is confirmed
		// within seconds and a lap takes about 20 s.
		c.ChutePitch = 0.1
	}
	if c.Baselines == 0 {
		c.Baselines = 2000
	}
	if c.Budget == 0 {
		c.Budget = 500 * time.Millisecond
	}
	return nil
}

// ceiling is the contract's ring ceiling: 15 commands per (PLC cycle + poll).
func (c *benchConfig) ceiling() float64 {
	return 15 / (c.PLCCycle + c.Poll).Seconds()
}

// travel is the longest time from the scanner to the last chute's
// decision point in the bench geometry (belt 2.5 m/s, 3 m to chute 1), or
// the commissioning PLC's fixed travel with the direct feed.
func (c *benchConfig) travel() time.Duration {
	if c.Feed == "direct" {
		return 200 * time.Millisecond
	}
	m := 3 + float64(c.Chutes)*c.ChutePitch
	return time.Duration(m / 2.5 * float64(time.Second))
}

// latencies is one series of samples, exact (sorted at the end).
type latencies []time.Duration

func (l latencies) quantile(p float64) time.Duration {
	if len(l) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(l)))) - 1
	return l[min(max(i, 0), len(l)-1)]
}

// latStats summarises a series.
type latStats struct {
	N                   int
	P50, P99, P999, Max time.Duration
}

func summarise(l latencies) latStats {
	slices.Sort(l)
	s := latStats{N: len(l), P50: l.quantile(0.5), P99: l.quantile(0.99), P999: l.quantile(0.999)}
	if len(l) > 0 {
		s.Max = l[len(l)-1]
	}
	return s
}

// probe follows items from their read to the link's events. It sits
// between the line and its devices (measuredSource, measuredLink) so the
// gateway's own code runs unchanged.
type probe struct {
	base      time.Time
	readAt    []atomic.Int64 // ns since base, by tid & mask; 0 = unknown
	mask      uint32
	recording atomic.Bool
	maxN      int
	// decided is appended by Send (the line's loop); the others by the
	// event forwarder. Read only after both stopped.
	decided, written, taken, confirmed latencies
}

func newProbe(base time.Time, rate float64, maxN int) *probe {
	n := 4096
	for float64(n) < rate*120 && n < 1<<18 {
		n <<= 1
	}
	return &probe{base: base, readAt: make([]atomic.Int64, n), mask: uint32(n - 1), maxN: maxN}
}

func (p *probe) read(r devices.Read) {
	p.readAt[r.TID&p.mask].Store(int64(r.At.Sub(p.base)))
}

// since returns at - the TID's read time, false if unknown.
func (p *probe) since(tid uint32, at time.Time) (time.Duration, bool) {
	v := p.readAt[tid&p.mask].Load()
	if v == 0 {
		return 0, false
	}
	return at.Sub(p.base) - time.Duration(v), true
}

func (p *probe) add(l *latencies, tid uint32, at time.Time) {
	if !p.recording.Load() || len(*l) >= p.maxN {
		return
	}
	if d, ok := p.since(tid, at); ok {
		*l = append(*l, d)
	}
}

// measuredSource wraps a scanner source to note each read's arrival.
type measuredSource struct {
	inner *scanner.Source
	p     *probe
}

func (m *measuredSource) Run(ctx context.Context, sink func(devices.Read)) error {
	return m.inner.Run(ctx, func(r devices.Read) {
		m.p.read(r)
		sink(r)
	})
}

func (m *measuredSource) Status() []devices.ScannerStatus { return m.inner.Status() }

// measuredLink wraps a PLC link: Send notes the decision time, and a
// forwarder notes written, taken and confirmed times (the link's own event
// timestamps, so the extra hop does not count) on the way to the line.
type measuredLink struct {
	inner   devices.PLCLink
	p       *probe
	out     chan devices.Event
	dropped atomic.Uint64
}

func newMeasuredLink(inner devices.PLCLink, p *probe, n int) *measuredLink {
	return &measuredLink{inner: inner, p: p, out: make(chan devices.Event, n)}
}

func (m *measuredLink) Run(ctx context.Context) error {
	done := make(chan error, 1)
	go func() { done <- m.inner.Run(ctx) }()
	in := m.inner.Events()
	for {
		select {
		case ev := <-in:
			m.forward(ctx, ev)
		case err := <-done:
			for {
				select {
				case ev := <-in:
					m.forward(ctx, ev)
				default:
					return err
				}
			}
		}
	}
}

func (m *measuredLink) forward(ctx context.Context, ev devices.Event) {
	switch ev.Kind {
	case devices.EventWritten:
		m.p.add(&m.p.written, ev.TID, ev.At)
	case devices.EventTaken:
		m.p.add(&m.p.taken, ev.TID, ev.At)
	case devices.EventConfirmed:
		m.p.add(&m.p.confirmed, ev.TID, ev.At)
	}
	select {
	case m.out <- ev:
	case <-ctx.Done():
		select {
		case m.out <- ev:
		default:
			m.dropped.Add(1)
		}
	}
}

func (m *measuredLink) Send(ctx context.Context, cmd devices.Command) error {
	m.p.add(&m.p.decided, cmd.TID, time.Now())
	return m.inner.Send(ctx, cmd)
}

func (m *measuredLink) Events() <-chan devices.Event     { return m.out }
func (m *measuredLink) Status() devices.PLCStatus        { return m.inner.Status() }
func (m *measuredLink) SetHostState(s devices.HostState) { m.inner.SetHostState(s) }
func (m *measuredLink) SetPlanVersion(v uint16)          { m.inner.SetPlanVersion(v) }

// passKey names one pass of one item on one line.
type passKey struct {
	line int
	tid  uint32
	pass uint16
}

// passState is what the journal saw of one pass.
type passState struct {
	decided  bool
	outcomes uint8
	outcome  journal.Outcome
	result   uint16
}

// tallyJournal counts what the lines record on the way to the real
// journal: outcomes by kind, and every pass's decision and outcomes, so the
// bench can check "exactly one outcome per pass".
type tallyJournal struct {
	inner  gateway.Journal
	lineNo map[string]int

	mu         sync.Mutex
	byOutcome  [32]uint64
	passes     map[passKey]*passState
	duplicates uint64 // duplicate reads
	missed     uint64 // confirmations the PLC overwrote unread
	records    uint64
	refused    uint64 // records the journal refused
}

func newTallyJournal(inner gateway.Journal, lines []string) *tallyJournal {
	t := &tallyJournal{inner: inner, lineNo: map[string]int{}, passes: map[passKey]*passState{}}
	for i, n := range lines {
		t.lineNo[n] = i
	}
	return t
}

func (t *tallyJournal) Append(rec journal.Record) (uint64, error) {
	t.mu.Lock()
	t.records++
	switch rec.Kind {
	case journal.KindDecision, journal.KindOutcome:
		var ps *passState
		if rec.Pass > 0 {
			k := passKey{line: t.lineNo[rec.Line], tid: rec.TID, pass: rec.Pass}
			ps = t.passes[k]
			if ps == nil {
				ps = &passState{}
				t.passes[k] = ps
			}
		}
		if rec.Kind == journal.KindDecision {
			if ps != nil {
				ps.decided = true
			}
			break
		}
		if int(rec.Outcome) < len(t.byOutcome) {
			t.byOutcome[rec.Outcome]++
		}
		if ps != nil {
			ps.outcomes++
			ps.outcome, ps.result = rec.Outcome, rec.Result
		}
	case journal.KindDuplicate:
		t.duplicates++
	case journal.KindMissed:
		t.missed += uint64(rec.Count)
	}
	t.mu.Unlock()
	seq, err := t.inner.Append(rec)
	if err != nil {
		t.mu.Lock()
		t.refused++
		t.mu.Unlock()
	}
	return seq, err
}

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

// benchReport is everything one scenario measured.
type benchReport struct {
	Cfg       benchConfig
	Started   time.Time
	Window    time.Duration
	Reads     uint64 // reads the lines took in the window (all lines)
	Inducted  uint64
	Taken     uint64 // commands the links saw taken in the window
	Outcomes  map[string]uint64
	HostLate  uint64
	Decided   latStats
	Written   latStats
	TakenLat  latStats
	Confirmed latStats
	// Baselines measured in the same run against line 1's sim: before
	// the load (back to back, and paced), and during it on a connection of
	// their own (HOST_STATE rewritten with its own value, 1 register with
	// Modbus, 1 node with OPC UA) so they see the same machine.
	BaseHot, BasePaced, BaseLoad latStats
	BaseName                     string
	CPU                          time.Duration // user+system in the window
	CPUUser, CPUSys              time.Duration
	PeakRSS                      int64 // bytes, VmHWM over the scenario
	HeapInuse                    uint64
	Dropped                      uint64
	Decide                       *decideResult
	// GWDecision is the gateway's own decision time (its
	// sortgw_decision_seconds histogram: table lookup and hand-off to
	// the link queue), all lines, the whole run; quantiles are bucket
	// upper bounds.
	GWDecision bucketStats
	// PollGap is the Modbus link's own histogram of the time between two
	// polls (line 1): a tail far above the poll interval is a host too
	// busy to poll on time.
	PollGap *devices.HistogramSnapshot
	Chaos   *chaosReport
	Check   *truthCheck
}

// runBench runs one scenario.
func runBench(ctx context.Context, cfg benchConfig) (*benchReport, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	log := cfg.Log
	rep := &benchReport{Cfg: cfg, Started: time.Now().UTC(), Outcomes: map[string]uint64{}}
	if !cfg.SkipDecide {
		d, err := benchDecide(cfg.Chutes, cfg.Seed)
		if err != nil {
			return nil, err
		}
		rep.Decide = d
	}
	// The peak RSS is the scenario's own: not the decision benchmark's,
	// nor an earlier scenario's of the same process.
	runtime.GC()
	debug.FreeOSMemory()
	resetPeakRSS()

	// The plan and its table are shared by every line: compile once.
	planCSV, err := sortplan.Generate(sortplan.GenerateOptions{Chutes: cfg.Chutes, Seed: cfg.Seed + 1, Name: "BENCH-" + strconv.Itoa(cfg.Chutes)})
	if err != nil {
		return nil, fmt.Errorf("bench: generate plan: %w", err)
	}
	plan, _, err := sortplan.ParsePlan("bench-plan.csv", bytes.NewReader(planCSV), cfg.Chutes)
	if err != nil {
		return nil, fmt.Errorf("bench: plan: %w", err)
	}

	// The sims run on a context of their own: they outlive the gateway so
	// that it can drain.
	simCtx, stopSims := context.WithCancel(context.WithoutCancel(ctx))
	defer stopSims()
	var simWG sync.WaitGroup
	simErrs := make(chan error, cfg.Lines)
	defer func() {
		stopSims()
		simWG.Wait()
	}()
	base := time.Now()
	lines := make([]*benchLine, cfg.Lines)
	names := make([]string, cfg.Lines)
	var labels []sortplan.SampleLabel
	var labelManifest []byte
	if cfg.Feed == "direct" {
		// One label set for every line's feed (each line's TIDs are its own).
		if labels, labelManifest, err = feedLabels(cfg.Seed); err != nil {
			return nil, err
		}
	}
	for i := range lines {
		bl, err := newBenchLine(cfg, i, base, labels, labelManifest, log)
		if err != nil {
			return nil, err
		}
		lines[i], names[i] = bl, bl.name
		simWG.Add(1)
		go func() {
			defer simWG.Done()
			if err := bl.sim.Run(simCtx); err != nil {
				simErrs <- fmt.Errorf("bench: sim %s: %w", bl.name, err)
			}
		}()
		if bl.feed != nil {
			simWG.Add(1)
			go func() {
				defer simWG.Done()
				if err := bl.feed.Run(simCtx); err != nil {
					simErrs <- fmt.Errorf("bench: feed %s: %w", bl.name, err)
				}
			}()
		}
		select {
		case <-bl.sim.Ready():
		case err := <-simErrs:
			return nil, err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}

	// Baselines first, on line 1's sim, before anything else talks to it.
	if cfg.Protocol == "modbus" {
		rep.BaseName = "goburrow fc16 (5 regs)"
		rep.BaseHot, rep.BasePaced, err = modbusBaseline(ctx, lines[0].sim.ModbusAddr(), cfg.Baselines, cfg.Rate)
	} else {
		rep.BaseName = "gopcua Write (4 nodes)"
		rep.BaseHot, rep.BasePaced, err = opcuaBaseline(ctx, lines[0].sim.OPCUAEndpoint(), cfg.Baselines, cfg.Rate)
	}
	if err != nil {
		return nil, err
	}

	dir := cfg.Dir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "sortgw-bench-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	j, err := journal.Open(journal.Config{Path: filepath.Join(dir, "journal.db"), QueueSize: cfg.JournalQueue}, log.With().Str("part", "journal").Logger())
	if err != nil {
		return nil, fmt.Errorf("bench: journal: %w", err)
	}
	tally := newTallyJournal(j, names)
	m := gateway.NewMetrics()
	var glines []*gateway.Line
	for _, bl := range lines {
		if err := bl.wire(cfg, plan, tally, m, log); err != nil {
			_ = j.Close()
			return nil, err
		}
		glines = append(glines, bl.line)
	}
	gw, err := gateway.New(gateway.Config{Listen: "127.0.0.1:0", DrainGrace: cfg.travel() + 3*time.Second, Version: version + "-bench", Journal: j},
		glines, j, m, log.With().Str("part", "http").Logger())
	if err != nil {
		_ = j.Close()
		return nil, err
	}
	s := &site{gw: gw, journal: j, log: log}
	gwCtx, stopGW := context.WithCancel(ctx)
	defer stopGW()
	gwDone := make(chan error, 1)
	go func() { gwDone <- s.run(gwCtx, nil) }()
	gwStopped := false
	stopGateway := func() error {
		if gwStopped {
			return nil
		}
		gwStopped = true
		stopGW()
		return <-gwDone
	}
	defer func() { _ = stopGateway() }()

	// Wait until every link is up and every scanner connected.
	if err := waitUntil(ctx, 20*time.Second, func() bool {
		for _, bl := range lines {
			if bl.link.Status().State != devices.LinkUp {
				return false
			}
			for _, st := range bl.src.Status() {
				if st.State != devices.LinkUp {
					return false
				}
			}
		}
		return true
	}); err != nil {
		return nil, fmt.Errorf("bench: links did not come up: %w", err)
	}

	for _, bl := range lines {
		bl.setRate(cfg.Rate)
	}
	if err := sleepCtx(ctx, cfg.Warmup); err != nil {
		return nil, err
	}

	// The measured window.
	snapTotals := func() (reads, taken uint64) {
		for _, bl := range lines {
			reads += bl.line.Snapshot().Totals.Reads
			taken += bl.link.Status().Taken
		}
		return
	}
	var inducted0 uint64
	for _, bl := range lines {
		inducted0 += bl.inducted()
	}
	loadCtx, stopLoadBase := context.WithCancel(ctx)
	defer stopLoadBase()
	loadBase := make(chan latStats, 1)
	go func() {
		var st latStats
		if cfg.Protocol == "modbus" {
			st = modbusLoadBaseline(loadCtx, lines[0].sim.ModbusAddr())
		} else {
			st = opcuaLoadBaseline(loadCtx, lines[0].sim.OPCUAEndpoint())
		}
		loadBase <- st
	}()
	tally.mu.Lock()
	late0 := tally.byOutcome[journal.OutcomeHostLate]
	out0 := tally.byOutcome
	tally.mu.Unlock()
	reads0, taken0 := snapTotals()
	for _, bl := range lines {
		bl.probe.recording.Store(true)
	}
	ru0 := rusage()
	t0 := time.Now()

	var ch *chaos
	if cfg.Chaos {
		ch = newChaos(cfg, lines, log)
		err = ch.run(ctx, cfg.Duration)
	} else {
		err = sleepCtx(ctx, cfg.Duration)
	}
	if err != nil {
		return nil, err
	}

	rep.Window = time.Since(t0)
	ru1 := rusage()
	stopLoadBase()
	rep.BaseLoad = <-loadBase
	if cfg.MemProfile != "" {
		runtime.GC()
		if err := writeProfile("heap", cfg.MemProfile); err != nil {
			return nil, err
		}
	}
	for _, bl := range lines {
		bl.probe.recording.Store(false)
	}
	reads1, taken1 := snapTotals()
	var inducted1 uint64
	for _, bl := range lines {
		inducted1 += bl.inducted()
	}
	rep.Reads, rep.Taken, rep.Inducted = reads1-reads0, taken1-taken0, inducted1-inducted0
	rep.CPUUser, rep.CPUSys = ru1.user-ru0.user, ru1.sys-ru0.sys
	rep.CPU = rep.CPUUser + rep.CPUSys
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	rep.HeapInuse = ms.HeapInuse
	tally.mu.Lock()
	rep.HostLate = tally.byOutcome[journal.OutcomeHostLate] - late0
	for o := range tally.byOutcome {
		if n := tally.byOutcome[o] - out0[o]; n > 0 {
			rep.Outcomes[journal.Outcome(o).String()] = n
		}
	}
	tally.mu.Unlock()

	// Stop inducting, let the gateway drain (it waits for its open items),
	// then hold the journal's tally against the sims' ground truth.
	for _, bl := range lines {
		bl.setRate(0)
	}
	gwErr := stopGateway()
	rep.PeakRSS = peakRSS()
	if gwErr != nil && !errors.Is(gwErr, context.Canceled) {
		return nil, fmt.Errorf("bench: gateway: %w", gwErr)
	}
	var all [4]latencies
	for _, bl := range lines {
		all[0] = append(all[0], bl.probe.decided...)
		all[1] = append(all[1], bl.probe.written...)
		all[2] = append(all[2], bl.probe.taken...)
		all[3] = append(all[3], bl.probe.confirmed...)
		rep.Dropped += bl.link.dropped.Load()
	}
	rep.Decided, rep.Written, rep.TakenLat, rep.Confirmed = summarise(all[0]), summarise(all[1]), summarise(all[2]), summarise(all[3])
	rep.GWDecision = histogramStats(m, "sortgw_decision_seconds")
	if ml, ok := lines[0].link.inner.(*modbus.Link); ok {
		pg := ml.PollInterval()
		rep.PollGap = &pg
	}
	rep.Check = checkTruth(lines, tally)
	if ch != nil {
		rep.Chaos = ch.report()
	}
	select {
	case err := <-simErrs:
		return rep, err
	default:
	}
	return rep, nil
}

func newBenchLine(cfg benchConfig, i int, base time.Time, labels []sortplan.SampleLabel, mf []byte, log zerolog.Logger) (*benchLine, error) {
	name := "L" + strconv.Itoa(i+1)
	noRead, multi := cfg.NoReadRate, cfg.MultiReadRate
	if noRead == 0 {
		noRead = 0.02
	}
	if multi == 0 {
		multi = 0.01
	}
	scfg := fieldbussim.Config{
		Chutes:        cfg.Chutes,
		PLCCycle:      cfg.PLCCycle,
		ImmediateScan: cfg.ImmediateScan,
		Seed:          cfg.Seed + int64(i)*7919,
		Scanners:      fieldbussim.ScannerConfig{Count: cfg.Scanners, QueueSize: 1 << 14},
		Labels:        fieldbussim.LabelConfig{NoReadRate: noRead, MultiReadRate: multi, ConflictRate: 0.5, GarbageRate: cfg.GarbageRate},
		Conveyor: fieldbussim.ConveyorConfig{
			Rate: math.Max(cfg.Rate, 1), ChutePitch: cfg.ChutePitch, ContainerCapacity: cfg.ContainerCapacity,
			EmptyAfter: cfg.EmptyAfter, LostRate: cfg.LostRate,
		},
	}
	bl := &benchLine{name: name}
	if cfg.Feed == "direct" {
		var err error
		if bl.feed, err = newFeeder(labels, cfg.Seed+int64(i)); err != nil {
			return nil, err
		}
		bl.mf = mf
		scfg.Conveyor.Rate = 0 // commissioning: every commanded TID is an item
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
func (bl *benchLine) wire(cfg benchConfig, plan *sortplan.Plan, j gateway.Journal, m *gateway.Metrics, log zerolog.Logger) error {
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
		plc, err = uadev.New(uadev.Config{Name: bl.name + "-plc", Endpoint: bl.sim.OPCUAEndpoint(), PublishInterval: cfg.Poll,
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
		scs = append(scs, scanner.Config{Name: bl.name + "-S" + strconv.Itoa(k+1), Addr: a, BackoffMin: 50 * time.Millisecond, BackoffMax: 500 * time.Millisecond})
	}
	src, err := scanner.New(scs, llog.With().Str("part", "scanners").Logger())
	if err != nil {
		return err
	}
	bl.src = &measuredSource{inner: src, p: bl.probe}
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

// bucketStats summarises a Prometheus histogram.
type bucketStats struct {
	Count          uint64
	P50, P99, P999 time.Duration // upper bound of the bucket the quantile falls in
	Le1ms          float64       // share of observations <= 1 ms
}

func histogramStats(m *gateway.Metrics, name string) bucketStats {
	var st bucketStats
	mfs, err := m.Registry.Gather()
	if err != nil {
		return st
	}
	cum := map[float64]uint64{}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, met := range mf.GetMetric() {
			h := met.GetHistogram()
			st.Count += h.GetSampleCount()
			for _, b := range h.GetBucket() {
				cum[b.GetUpperBound()] += b.GetCumulativeCount()
			}
		}
	}
	if st.Count == 0 {
		return st
	}
	bounds := make([]float64, 0, len(cum))
	for b := range cum {
		bounds = append(bounds, b)
	}
	slices.Sort(bounds)
	q := func(p float64) time.Duration {
		for _, b := range bounds {
			if float64(cum[b]) >= p*float64(st.Count) {
				return time.Duration(b * 1e9)
			}
		}
		return -1 // above the last bucket
	}
	st.P50, st.P99, st.P999 = q(0.5), q(0.99), q(0.999)
	st.Le1ms = float64(cum[0.001]) / float64(st.Count)
	return st
}

func bound(d time.Duration) string {
	if d < 0 {
		return "> last bucket"
	}
	return "<= " + ms(d)
}

// modbusBaseline times raw goburrow function-16 requests of one divert
// slot (slot 0 with SEQ 0, which the PLC never takes: it waits for SEQ 1 in
// slot 1): back to back ("hot"), and paced like the load (exponential
// gaps at the bench rate, "paced").
func modbusBaseline(ctx context.Context, addr string, n int, rate float64) (hot, paced latStats, err error) {
	h := gmb.NewTCPClientHandler(addr)
	h.SlaveId, h.Timeout, h.IdleTimeout = 1, time.Second, 0
	if err := h.Connect(); err != nil {
		return hot, paced, fmt.Errorf("bench: modbus baseline: %w", err)
	}
	defer h.Close()
	c := gmb.NewClient(h)
	payload := make([]byte, 10)
	one := func() (time.Duration, error) {
		t0 := time.Now()
		_, err := c.WriteMultipleRegisters(10, 5, payload)
		return time.Since(t0), err
	}
	return runBaseline(ctx, n, rate, one)
}

// opcuaBaseline times one gopcua WriteRequest of a slot's four nodes
// (slot 0, Seq 0: never taken).
func opcuaBaseline(ctx context.Context, endpoint string, n int, rate float64) (hot, paced latStats, err error) {
	c, err := opcua.NewClient(endpoint, opcua.AutoReconnect(false),
		opcua.SecurityPolicy(ua.SecurityPolicyURINone), opcua.SecurityMode(ua.MessageSecurityModeNone))
	if err != nil {
		return hot, paced, fmt.Errorf("bench: opcua baseline: %w", err)
	}
	if err := c.Connect(ctx); err != nil {
		return hot, paced, fmt.Errorf("bench: opcua baseline: %w", err)
	}
	defer c.Close(context.WithoutCancel(ctx))
	ns, err := c.FindNamespace(ctx, "urn:sortgw:sorter")
	if err != nil {
		return hot, paced, fmt.Errorf("bench: opcua baseline: %w", err)
	}
	node := func(f string) *ua.NodeID { return ua.NewStringNodeID(ns, "Sorter.Divert.0."+f) }
	wv := func(f string, v any) *ua.WriteValue {
		return &ua.WriteValue{NodeID: node(f), AttributeID: ua.AttributeIDValue,
			Value: &ua.DataValue{EncodingMask: ua.DataValueValue, Value: ua.MustVariant(v)}}
	}
	req := &ua.WriteRequest{NodesToWrite: []*ua.WriteValue{
		wv("TrackingId", uint32(40000)), wv("Chute", uint16(1)), wv("Reason", uint16(0)), wv("Seq", uint16(0)),
	}}
	one := func() (time.Duration, error) {
		t0 := time.Now()
		res, err := c.Write(ctx, req)
		d := time.Since(t0)
		if err == nil {
			for i, st := range res.Results {
				if st != ua.StatusOK {
					return d, fmt.Errorf("node %d: %v", i, st)
				}
			}
		}
		return d, err
	}
	return runBaseline(ctx, n, rate, one)
}

// modbusLoadBaseline rewrites HOST_STATE with 1 (ready, what the link
// writes there itself) by function 16, about 100 times a second, on a
// connection of its own, until ctx is done.
func modbusLoadBaseline(ctx context.Context, addr string) latStats {
	h := gmb.NewTCPClientHandler(addr)
	h.SlaveId, h.Timeout, h.IdleTimeout = 1, time.Second, 0
	if err := h.Connect(); err != nil {
		return latStats{}
	}
	defer h.Close()
	c := gmb.NewClient(h)
	return loadBaseline(ctx, func() (time.Duration, error) {
		t0 := time.Now()
		_, err := c.WriteMultipleRegisters(1, 1, []byte{0, 1})
		return time.Since(t0), err
	})
}

// opcuaLoadBaseline writes Sorter.Host.State = 1 the same way.
func opcuaLoadBaseline(ctx context.Context, endpoint string) latStats {
	c, err := opcua.NewClient(endpoint, opcua.AutoReconnect(false),
		opcua.SecurityPolicy(ua.SecurityPolicyURINone), opcua.SecurityMode(ua.MessageSecurityModeNone))
	if err != nil {
		return latStats{}
	}
	if err := c.Connect(ctx); err != nil {
		return latStats{}
	}
	defer c.Close(context.WithoutCancel(ctx))
	ns, err := c.FindNamespace(ctx, "urn:sortgw:sorter")
	if err != nil {
		return latStats{}
	}
	req := &ua.WriteRequest{NodesToWrite: []*ua.WriteValue{{NodeID: ua.NewStringNodeID(ns, "Sorter.Host.State"), AttributeID: ua.AttributeIDValue,
		Value: &ua.DataValue{EncodingMask: ua.DataValueValue, Value: ua.MustVariant(uint16(1))}}}}
	return loadBaseline(ctx, func() (time.Duration, error) {
		t0 := time.Now()
		_, err := c.Write(ctx, req)
		return time.Since(t0), err
	})
}

func loadBaseline(ctx context.Context, one func() (time.Duration, error)) latStats {
	var lat latencies
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return summarise(lat)
		case <-t.C:
		}
		if d, err := one(); err == nil && ctx.Err() == nil {
			lat = append(lat, d)
		}
		t.Reset(min(time.Duration(rand.ExpFloat64()*float64(10*time.Millisecond)), 50*time.Millisecond))
	}
}

func runBaseline(ctx context.Context, n int, rate float64, one func() (time.Duration, error)) (hot, paced latStats, err error) {
	for range 50 { // warm the connection
		if _, err := one(); err != nil {
			return hot, paced, fmt.Errorf("bench: baseline: %w", err)
		}
	}
	lat := make(latencies, 0, n)
	for range n {
		d, err := one()
		if err != nil {
			return hot, paced, fmt.Errorf("bench: baseline: %w", err)
		}
		lat = append(lat, d)
	}
	hot = summarise(lat)
	// Paced: at most ~3 s of it.
	np := min(n, max(200, int(rate*3)))
	mean := time.Second / time.Duration(max(rate, 1))
	lat = lat[:0]
	t := time.NewTimer(0)
	defer t.Stop()
	<-t.C
	for range np {
		t.Reset(min(time.Duration(rand.ExpFloat64()*float64(mean)), 20*time.Millisecond))
		select {
		case <-t.C:
		case <-ctx.Done():
			return hot, paced, ctx.Err()
		}
		d, err := one()
		if err != nil {
			return hot, paced, fmt.Errorf("bench: baseline: %w", err)
		}
		lat = append(lat, d)
	}
	paced = summarise(lat)
	return hot, paced, nil
}

// decideResult is the decision micro-benchmark beside a bare map lookup.
type decideResult struct {
	DecideNs, MixNs, MapNs  float64
	DecideAllocs, MixAllocs float64
}

// benchDecide times Table.Decide on GS1 420 labels and on the realistic
// label mix against the 33,791-ZIP plan, and a bare map[string]uint16
// lookup of the same ZIPs, the way sortplan's benchmarks do.
func benchDecide(chutes int, seed int64) (*decideResult, error) {
	src, err := sortplan.Generate(sortplan.GenerateOptions{Chutes: chutes, Seed: seed})
	if err != nil {
		return nil, err
	}
	p, _, err := sortplan.ParsePlan("plan.csv", bytes.NewReader(src), chutes)
	if err != nil {
		return nil, err
	}
	s := sortplan.SampleLabels(sortplan.SampleOptions{N: 20000, Seed: 42})
	mf, err := sortplan.ParseManifest("manifest.csv", bytes.NewReader(s.Manifest))
	if err != nil {
		return nil, err
	}
	tb, err := sortplan.Compile(p, mf, sortplan.ResolverConfig{})
	if err != nil {
		return nil, err
	}
	var gs1, mix [][]string
	var zips []string
	for _, l := range s.Labels {
		mix = append(mix, l.Codes)
		if l.Kind == "gs1" {
			gs1 = append(gs1, l.Codes)
			zips = append(zips, strings.TrimPrefix(l.Codes[0], "]C1420"))
		}
	}
	if len(gs1) == 0 {
		return nil, errors.New("bench: no gs1 sample labels")
	}
	// The baseline map holds every ZIP of the plan's list (33,791 keys),
	// as sortplan's BenchmarkMapLookup does.
	mp := map[string]uint16{}
	for i, z := range zcta.Codes() {
		mp[z] = uint16(i)
	}
	var avail sortplan.Availability
	avail.Set(7, true)
	res := &decideResult{}
	res.DecideNs, res.DecideAllocs = timeLoop(func(i int) { tb.Decide(gs1[i%len(gs1)], &avail) })
	res.MixNs, res.MixAllocs = timeLoop(func(i int) { tb.Decide(mix[i%len(mix)], &avail) })
	var sink uint16
	res.MapNs, _ = timeLoop(func(i int) { sink += mp[zips[i%len(zips)]] })
	_ = sink
	return res, nil
}

// timeLoop runs f about 300ms and returns ns and allocations per call.
func timeLoop(f func(i int)) (ns, allocs float64) {
	n := 1000
	for {
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		t0 := time.Now()
		for i := range n {
			f(i)
		}
		el := time.Since(t0)
		runtime.ReadMemStats(&m1)
		if el > 300*time.Millisecond || n >= 1<<26 {
			return float64(el.Nanoseconds()) / float64(n), float64(m1.Mallocs-m0.Mallocs) / float64(n)
		}
		n *= 4
	}
}

type cpuUsage struct{ user, sys time.Duration }

func rusage() cpuUsage {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return cpuUsage{}
	}
	return cpuUsage{user: time.Duration(ru.Utime.Nano()), sys: time.Duration(ru.Stime.Nano())}
}

// peakRSS is VmHWM from /proc/self/status in bytes (0 if unknown).
func peakRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, ln := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(ln, "VmHWM:"); ok {
			f := strings.Fields(v)
			if len(f) > 0 {
				kb, _ := strconv.ParseInt(f[0], 10, 64)
				return kb * 1024
			}
		}
	}
	return 0
}

// resetPeakRSS starts VmHWM afresh (Linux: "5" to clear_refs), so each
// scenario of one process reports its own peak.
func resetPeakRSS() { _ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

func waitUntil(ctx context.Context, d time.Duration, ok func() bool) error {
	deadline := time.Now().Add(d)
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for !ok() {
		if time.Now().After(deadline) {
			return errors.New("timed out")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func ms(d time.Duration) string { return strconv.FormatFloat(float64(d)/1e6, 'f', 3, 64) }

func ratio(d, base time.Duration) string {
	if base <= 0 {
		return "-"
	}
	return strconv.FormatFloat(float64(d)/float64(base), 'f', 1, 64) + "x"
}

// print writes the scenario's tables.
func (r *benchReport) print(w io.Writer) {
	c := &r.Cfg
	mode := strconv.FormatFloat(c.Rate, 'f', 0, 64) + " items/s"
	fmt.Fprintf(w, "\n== %s, %s feed, %d line(s), %s per line, PLC cycle %v, poll %v, %d chutes, window %v%s\n",
		c.Protocol, c.Feed, c.Lines, mode, c.PLCCycle, c.Poll, c.Chutes, r.Window.Round(time.Millisecond), map[bool]string{true: ", chaos every " + c.ChaosEvery.String()}[c.Chaos])
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	win := r.Window.Seconds()
	fmt.Fprintf(tw, "inducted\treads\tcommands taken\ttaken/s\tring ceiling/s\t%% of ceiling\thost-late\tCPU s (user+sys)\tCPU %%\tpeak RSS MB\theap MB\t\n")
	fmt.Fprintf(tw, "%d\t%d\t%d\t%.0f\t%.0f\t%.1f\t%d\t%.2f+%.2f\t%.0f\t%.1f\t%.1f\t\n", r.Inducted, r.Reads, r.Taken,
		float64(r.Taken)/win, c.ceiling()*float64(c.Lines), 100*float64(r.Taken)/win/(c.ceiling()*float64(c.Lines)), r.HostLate,
		r.CPUUser.Seconds(), r.CPUSys.Seconds(), 100*r.CPU.Seconds()/win, float64(r.PeakRSS)/(1<<20), float64(r.HeapInuse)/(1<<20))
	tw.Flush()

	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "latency (ms)\tn\tp50\tp99\tp99.9\tmax\tp50/base\tp99/base\tp99.9/base\t\n")
	base := r.BaseLoad
	row := func(name string, s latStats, withRatio bool) {
		if withRatio {
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", name, s.N, ms(s.P50), ms(s.P99), ms(s.P999), ms(s.Max),
				ratio(s.P50, base.P50), ratio(s.P99, base.P99), ratio(s.P999, base.P999))
		} else {
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t\t\t\t\n", name, s.N, ms(s.P50), ms(s.P99), ms(s.P999), ms(s.Max))
		}
	}
	row("baseline "+r.BaseName+", hot", r.BaseHot, false)
	row("baseline "+r.BaseName+", paced", r.BasePaced, false)
	row("baseline under load (1 reg/node, own conn)", r.BaseLoad, false)
	row("read-to-decided (Send)", r.Decided, false)
	row("read-to-written", r.Written, true)
	row("read-to-taken", r.TakenLat, true)
	row("read-to-confirmation", r.Confirmed, false)
	tw.Flush()
	fmt.Fprintf(w, "read-to-taken goal: p99 <= cycle+poll+2ms = %s ms\n", ms(c.PLCCycle+c.Poll+2*time.Millisecond))

	keys := make([]string, 0, len(r.Outcomes))
	for k := range r.Outcomes {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, r.Outcomes[k]))
	}
	fmt.Fprintf(w, "outcomes in the window: %s\n", strings.Join(parts, ", "))
	if r.Dropped > 0 {
		fmt.Fprintf(w, "events dropped at stop: %d\n", r.Dropped)
	}
	if pg := r.PollGap; pg != nil && pg.Count > 0 {
		fmt.Fprintf(w, "modbus poll gap (line 1, whole run, %d polls): p50 %s ms, p99 %s ms, p99.9 %s ms, max %s ms\n",
			pg.Count, ms(pg.P50), ms(pg.P99), ms(pg.P999), ms(pg.Max))
	}
	if g := r.GWDecision; g.Count > 0 {
		fmt.Fprintf(w, "gateway decision time (its histogram, %d reads): p50 %s ms, p99 %s ms, p99.9 %s ms; %.2f%% within 1 ms\n",
			g.Count, bound(g.P50), bound(g.P99), bound(g.P999), 100*g.Le1ms)
	}
	if d := r.Decide; d != nil {
		fmt.Fprintf(w, "decision: Decide(GS1 420) %.1f ns/op %.2f allocs/op; Decide(label mix) %.1f ns/op %.2f allocs/op; bare map lookup %.1f ns/op; ratio %.2fx\n",
			d.DecideNs, d.DecideAllocs, d.MixNs, d.MixAllocs, d.MapNs, d.DecideNs/d.MapNs)
	}
	if r.Check != nil {
		r.Check.print(w)
	}
	if r.Chaos != nil {
		r.Chaos.print(w)
	}
}

// cmdBench is `sortgw bench`.
func cmdBench(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	proto := fs.String("protocol", "modbus", "PLC protocol: modbus, opcua or both")
	rate := fs.String("rate", "", `items/s per line (default 1000; 200 with -chaos), or "max" for the ring's ceiling`)
	dur := fs.Duration("duration", 30*time.Second, "measured window per protocol")
	warm := fs.Duration("warmup", 2*time.Second, "warm-up before the window")
	lines := fs.Int("lines", 1, "sorter lines in the process, each with its own emulated sorter")
	chutes := fs.Int("chutes", 256, "chutes per sorter")
	cycle := fs.Duration("cycle", 5*time.Millisecond, "emulated PLC scan cycle")
	poll := fs.Duration("poll", 10*time.Millisecond, "Modbus poll / OPC UA publishing interval")
	chaosOn := fs.Bool("chaos", false, "inject a fault every -chaos-every and check the ground truth at the end")
	every := fs.Duration("chaos-every", 30*time.Second, "interval between faults")
	contCap := fs.Int("container-capacity", 0, "items per container before the chute is full (default: never full; 40 with -chaos)")
	seed := fs.Int64("seed", 1, "random seed")
	noDecide := fs.Bool("skip-decide", false, "leave out the decision micro-benchmark")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the whole run here")
	mutexprofile := fs.String("mutexprofile", "", "write a mutex contention profile of the whole run here")
	traceFile := fs.String("trace", "", "write a runtime execution trace of the whole run here")
	logLevel := fs.String("log", "error", "log level")
	capacity := fs.Int("capacity", 0, "items tracked per line (default: the gateway's, 65536)")
	jqueue := fs.Int("journal-queue", 0, "journal queue size (default: the journal's, 65536)")
	immediate := fs.Bool("immediate-scan", false, "the emulated PLC takes commands as they are written, not only at its scan")
	memprofile := fs.String("memprofile", "", "write a heap profile at the end of the (last) window here")
	feed := fs.String("feed", "", "direct (the bench's own scanner at an exact rate; default) or conveyor (the emulated belt; default with -chaos)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg := benchConfig{Duration: *dur, Warmup: *warm, Lines: *lines, Chutes: *chutes, PLCCycle: *cycle, Poll: *poll,
		Chaos: *chaosOn, ChaosEvery: *every, Feed: *feed, ImmediateScan: *immediate, MemProfile: *memprofile, Capacity: *capacity, JournalQueue: *jqueue, ContainerCapacity: *contCap, Seed: *seed, SkipDecide: *noDecide,
		Log: newLogger(stderr, "console", *logLevel)}
	switch *rate {
	case "":
		if cfg.Chaos {
			cfg.Rate = 200
		}
	case "max":
		cfg.Rate = -1
	default:
		v, err := strconv.ParseFloat(*rate, 64)
		if err != nil || v <= 0 {
			fmt.Fprintf(stderr, "sortgw bench: -rate %q: want a positive number or max\n", *rate)
			return 2
		}
		cfg.Rate = v
	}
	if cfg.Chaos {
		if cfg.ContainerCapacity == 0 {
			cfg.ContainerCapacity = 40
		}
		cfg.LostRate = 0.001
		cfg.GarbageRate = 0.005
	}
	protos := []string{*proto}
	if *proto == "both" {
		protos = []string{"modbus", "opcua"}
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintln(stderr, "sortgw bench:", err)
			return 1
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(stderr, "sortgw bench:", err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}
	if *mutexprofile != "" {
		runtime.SetMutexProfileFraction(5)
		defer func() {
			if err := writeProfile("mutex", *mutexprofile); err != nil {
				fmt.Fprintln(stderr, "sortgw bench:", err)
			}
		}()
	}
	if *traceFile != "" {
		f, err := os.Create(*traceFile)
		if err != nil {
			fmt.Fprintln(stderr, "sortgw bench:", err)
			return 1
		}
		defer f.Close()
		if err := trace.Start(f); err != nil {
			fmt.Fprintln(stderr, "sortgw bench:", err)
			return 1
		}
		defer trace.Stop()
	}
	fmt.Fprintf(stdout, "sortgw bench %s: %s, nproc %d, GOMAXPROCS %d, %s, %s\n", version, cpuModel(), runtime.NumCPU(),
		runtime.GOMAXPROCS(0), runtime.Version(), time.Now().UTC().Format(time.RFC3339))
	fmt.Fprintf(stdout, "command: sortgw bench %s\n", strings.Join(args, " "))
	code := 0
	for _, p := range protos {
		c := cfg
		c.Protocol = p
		rep, err := runBench(ctx, c)
		if rep != nil {
			rep.print(stdout)
		}
		if err != nil {
			fmt.Fprintln(stderr, "sortgw bench:", err)
			return 1
		}
		if rep.Check != nil && !rep.Check.OK() {
			code = 1
		}
		if rep.Chaos != nil && !rep.Chaos.OK() {
			code = 1
		}
	}
	return code
}

func writeProfile(name, path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.Lookup(name).WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// cpuModel is the first "model name" of /proc/cpuinfo.
func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "cpu unknown"
	}
	for _, ln := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(ln, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "cpu unknown"
}

// The direct feed of `sortgw bench`: a scanner of the bench's own that
// sends telegrams at an exact Poisson rate (arrival times fixed in advance,
// late ones sent at once), for rates the emulated conveyor's per-item
// timers cannot keep on a loaded machine. The emulated PLC then runs in
// commissioning mode: every commanded TID is an item that reaches its
// decision point 200 ms after the command is taken.

type feeder struct {
	ln     net.Listener
	labels []sortplan.SampleLabel
	rnd    *rand.Rand
	rate   atomic.Uint64 // float64 bits
	sent   atomic.Uint64
	skip   atomic.Uint64 // telegrams due while no gateway was connected
	tid    uint32
}

func newFeeder(labels []sortplan.SampleLabel, seed int64) (*feeder, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	return &feeder{ln: ln, labels: labels, rnd: rand.New(rand.NewPCG(uint64(seed), 0xfeed))}, nil
}

func (f *feeder) Addr() string { return f.ln.Addr().String() }

func (f *feeder) SetRate(r float64) { f.rate.Store(math.Float64bits(r)) }

func (f *feeder) Sent() uint64 { return f.sent.Load() }

// Run serves one gateway connection at a time until ctx is done.
func (f *feeder) Run(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { f.ln.Close() })
	defer stop()
	defer f.ln.Close()
	for {
		c, err := f.ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		f.serve(ctx, c)
		c.Close()
	}
}

// serve sends telegrams on c until the connection fails or ctx is done.
func (f *feeder) serve(ctx context.Context, c net.Conn) {
	closed := context.AfterFunc(ctx, func() { c.Close() })
	defer closed()
	go func() { // the gateway never sends; notice when it hangs up
		var b [64]byte
		for {
			if _, err := c.Read(b[:]); err != nil {
				c.Close()
				return
			}
		}
	}()
	t := time.NewTimer(0)
	defer t.Stop()
	next := time.Now()
	lastHB := time.Time{}
	var buf []byte
	for {
		now := time.Now()
		r := math.Float64frombits(f.rate.Load())
		if r <= 0 {
			next = now.Add(5 * time.Millisecond)
		} else if now.Sub(next) > 100*time.Millisecond {
			// A stall longer than that is not made up (at most 100 ms of
			// telegrams go out in one burst).
			f.skip.Add(uint64(now.Sub(next).Seconds() * r))
			next = now.Add(-100 * time.Millisecond)
		}
		buf = buf[:0]
		if now.Sub(lastHB) >= time.Second {
			buf = append(buf, "\x02HB\x03"...)
			lastHB = now
		}
		for r > 0 && !next.After(now) {
			buf = f.frame(buf)
			next = next.Add(time.Duration(f.rnd.ExpFloat64() / r * float64(time.Second)))
		}
		if len(buf) > 0 {
			_ = c.SetWriteDeadline(now.Add(2 * time.Second))
			if _, err := c.Write(buf); err != nil {
				return
			}
		}
		wait := time.Until(next)
		if d := time.Second - time.Since(lastHB); d < wait {
			wait = d
		}
		t.Reset(max(wait, 0))
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// frame appends one telegram: "<STX>TID;CODE[;CODE]<ETX>" or a no-read.
func (f *feeder) frame(b []byte) []byte {
	f.tid++
	if f.tid == 0 {
		f.tid = 1
	}
	l := f.labels[int(f.tid)%len(f.labels)]
	b = append(b, 0x02)
	b = strconv.AppendUint(b, uint64(f.tid), 10)
	if len(l.Codes) == 0 {
		b = append(b, ";NoRead"...)
	}
	for _, c := range l.Codes {
		b = append(b, ';')
		b = append(b, c...)
	}
	f.sent.Add(1)
	return append(b, 0x03)
}

// feedLabels is the direct feed's label set: the sortplan sample mix
// (GS1 420/421/403, IMpb, carrier ids resolved through its manifest, 2%
// no-reads), without codes the telegram cannot carry.
func feedLabels(seed int64) ([]sortplan.SampleLabel, []byte, error) {
	s := sortplan.SampleLabels(sortplan.SampleOptions{N: 20000, Seed: seed})
	out := s.Labels[:0]
	for _, l := range s.Labels {
		ok := true
		for _, c := range l.Codes {
			if strings.ContainsAny(c, ";\x02\x03") {
				ok = false
			}
		}
		if ok {
			out = append(out, l)
		}
	}
	if len(out) == 0 {
		return nil, nil, errors.New("bench: no usable sample labels")
	}
	return out, s.Manifest, nil
}
