package loadtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"sortgw/devices"
	"sortgw/gateway"
	"sortgw/gateway/journal"
	"sortgw/sortplan"
)

// Run runs one scenario: the emulated sorters, the raw baselines on line
// 1's, the gateway against all of them, a warm-up, the measured window
// (with faults if cfg.Chaos), a drain, and the ground-truth check. A
// failed ground truth or chaos check is in the report (Report.OK), not an
// error. A sim that failed during the run returns the report and the
// error.
func Run(ctx context.Context, cfg Config, log zerolog.Logger) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	rep := &Report{Cfg: cfg, Started: time.Now().UTC(), Outcomes: map[string]uint64{}}
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

	s := &scenario{cfg: cfg, log: log}
	defer s.stop()
	if err := s.startSims(ctx); err != nil {
		return nil, err
	}
	// The cold baseline first, on line 1's sim, before anything else
	// talks to it (its idle slot write is taken by no PLC only then).
	var err error
	if rep.BaseCold, err = coldBaseline(ctx, &s.cfg, s.lines[0].sim); err != nil {
		return nil, err
	}
	if err := s.startGateway(ctx); err != nil {
		return nil, err
	}
	if err := s.warmUp(ctx); err != nil {
		return nil, err
	}
	ch, err := s.window(ctx, rep)
	if err != nil {
		return nil, err
	}
	if err := s.finish(rep, ch); err != nil {
		return nil, err
	}
	select {
	case err := <-s.simErrs:
		return rep, err
	default:
	}
	return rep, nil
}

// scenario is one run's moving parts.
type scenario struct {
	cfg   Config
	log   zerolog.Logger
	lines []*benchLine

	simWG    sync.WaitGroup
	simErrs  chan error
	stopSims context.CancelFunc

	tmp     string // the journal's temporary directory, if the run made one
	tally   *tallyJournal
	metrics *gateway.Metrics
	journal *journal.Journal
	disk    *diskFull // the soak's journal-disk-full fault
	gwAddr  string    // the status page's address
	// stopGateway stops the gateway (lines drain, then HTTP, then the
	// journal) and returns Run's error; later calls return the same.
	stopGateway func() error
}

// stop releases what the scenario started, in order: the gateway (it
// drains against the running sims), its journal directory, the sims.
func (s *scenario) stop() {
	if s.stopGateway != nil {
		_ = s.stopGateway()
	}
	if s.tmp != "" {
		_ = os.RemoveAll(s.tmp)
	}
	if s.stopSims != nil {
		s.stopSims()
		s.simWG.Wait()
	}
}

// startSims makes and starts every line's sim (and direct feed) and waits
// until each listens.
func (s *scenario) startSims(ctx context.Context) error {
	cfg := &s.cfg
	// The sims run on a context of their own: they outlive the gateway so
	// that it can drain.
	simCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	s.stopSims = stop
	s.simErrs = make(chan error, 2*cfg.Lines)
	var labels []sortplan.SampleLabel
	var manifest []byte
	if cfg.Feed == FeedDirect {
		// One label set for every line's feed (each line's TIDs are its own).
		var err error
		if labels, manifest, err = feedLabels(cfg.Seed); err != nil {
			return err
		}
	}
	base := time.Now()
	for i := range cfg.Lines {
		bl, err := newBenchLine(*cfg, i, base, labels, manifest, s.log)
		if err != nil {
			return err
		}
		s.lines = append(s.lines, bl)
		s.goRun(simCtx, "sim "+bl.name, bl.sim.Run)
		if bl.feed != nil {
			s.goRun(simCtx, "feed "+bl.name, bl.feed.Run)
		}
		select {
		case <-bl.sim.Ready():
		case err := <-s.simErrs:
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func (s *scenario) goRun(ctx context.Context, what string, run func(context.Context) error) {
	s.simWG.Add(1)
	go func() {
		defer s.simWG.Done()
		if err := run(ctx); err != nil {
			s.simErrs <- fmt.Errorf("bench: %s: %w", what, err)
		}
	}()
}

// startGateway opens the journal, wires every line against its sim and
// starts the gateway, which runs and closes the journal.
func (s *scenario) startGateway(ctx context.Context) error {
	cfg := &s.cfg
	plan, err := benchPlan(cfg)
	if err != nil {
		return err
	}
	dir := cfg.Dir
	if dir == "" {
		if s.tmp, err = os.MkdirTemp("", "sortgw-bench-"); err != nil {
			return err
		}
		dir = s.tmp
	}
	s.disk = &diskFull{}
	j, err := journal.Open(journal.Config{Path: filepath.Join(dir, "journal.db"), QueueSize: cfg.JournalQueue, CommitFault: s.disk.fault},
		s.log.With().Str("part", "journal").Logger())
	if err != nil {
		return fmt.Errorf("bench: journal: %w", err)
	}
	names := make([]string, len(s.lines))
	for i, bl := range s.lines {
		names[i] = bl.name
	}
	s.tally = newTallyJournal(j, names)
	s.tally.tamper = cfg.tamper
	s.metrics = gateway.NewMetrics()
	var glines []*gateway.Line
	for _, bl := range s.lines {
		if err := bl.wire(*cfg, plan, s.tally, s.metrics, s.log); err != nil {
			return errors.Join(err, j.Close())
		}
		glines = append(glines, bl.line)
	}
	s.journal = j
	gcfg := gateway.Config{Listen: "127.0.0.1:0", DrainGrace: cfg.travel() + 3*time.Second,
		Version: cfg.Version + "-bench", Journal: tallyRunner{j, s.tally}}
	if cfg.Upstream {
		if err := s.upstream(dir, j, &gcfg); err != nil {
			return errors.Join(err, j.Close())
		}
	}
	if cfg.Abuse {
		cfg.Soak.gatewayConfig(&gcfg)
	}
	gw, err := gateway.New(gcfg, glines, j, s.metrics, s.log.With().Str("part", "http").Logger())
	if err != nil {
		return errors.Join(err, j.Close())
	}
	gwCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- gw.Run(gwCtx) }()
	select {
	case <-gw.Started():
		s.gwAddr = gw.Addr()
	case err := <-done:
		done <- err
	}
	var once sync.Once
	var gwErr error
	s.stopGateway = func() error {
		once.Do(func() {
			cancel()
			gwErr = <-done
		})
		return gwErr
	}
	return nil
}

// benchPlan is the plan every line shares: generated and compiled once.
func benchPlan(cfg *Config) (*sortplan.Plan, error) {
	planCSV, err := sortplan.Generate(sortplan.GenerateOptions{Chutes: cfg.Chutes, Seed: cfg.Seed + 1, Name: "BENCH-" + strconv.Itoa(cfg.Chutes)})
	if err != nil {
		return nil, fmt.Errorf("bench: generate plan: %w", err)
	}
	plan, _, err := sortplan.ParsePlan("bench-plan.csv", bytes.NewReader(planCSV), cfg.Chutes)
	if err != nil {
		return nil, fmt.Errorf("bench: plan: %w", err)
	}
	return plan, nil
}

// warmUp waits until every link is up and every scanner connected, starts
// inducting and lets the warm-up pass.
func (s *scenario) warmUp(ctx context.Context) error {
	if err := waitUntil(ctx, 20*time.Second, s.allUp); err != nil {
		return fmt.Errorf("bench: links did not come up: %w", err)
	}
	for _, bl := range s.lines {
		bl.setRate(s.cfg.Rate)
	}
	return sleepCtx(ctx, s.cfg.Warmup)
}

func (s *scenario) allUp() bool {
	for _, bl := range s.lines {
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
}
