package main

// Chaos for `sortgw bench -chaos`: faults injected into the emulated
// sorter at a fixed interval while the load runs, the time every link and
// scanner takes to come back, and at the end the gateway's journal held
// against the sorter's ground truth (fieldbussim.Report).

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"sortgw/devices"
	"sortgw/gateway/journal"
)

// reconnectGoal is how fast every link and scanner must be back.
const reconnectGoal = 2 * time.Second

// stallFor is how long a heartbeat stall lasts: past the link's 1 s
// watchdog, so the link must stop sending and resume by itself.
const stallFor = 1500 * time.Millisecond

// fault is one kind of fault and what recovery from it means.
type fault struct {
	name string
	// plc: the PLC link must be up again (and have reconnected, if
	// reconnect); otherwise the scanners must be.
	plc       bool
	reconnect bool
	// after: recovery is timed from this long after the injection (the
	// fault's own duration).
	after  time.Duration
	inject func(bl *benchLine)
}

func plcFaults(protocol string) []fault {
	fs := []fault{
		{name: "WarmRestart", plc: true, reconnect: true, inject: func(bl *benchLine) { bl.sim.WarmRestart() }},
		{name: "StallPLCHeartbeat 1.5s", plc: true, after: stallFor, inject: func(bl *benchLine) { bl.sim.StallPLCHeartbeat(stallFor) }},
		{name: "ColdRestart", plc: true, reconnect: true, inject: func(bl *benchLine) { bl.sim.ColdRestart() }},
	}
	if protocol == "modbus" {
		fs = append(fs,
			fault{name: "DropPLCConnections", plc: true, reconnect: true, inject: func(bl *benchLine) { bl.sim.DropPLCConnections() }},
			// 400 ms is past the link's 250 ms request timeout: it must
			// redial. Recovery is timed from the timeout.
			fault{name: "DelayNextReply 400ms", plc: true, reconnect: true, after: 250 * time.Millisecond,
				inject: func(bl *benchLine) { bl.sim.DelayNextReply(400 * time.Millisecond) }},
			fault{name: "InjectModbusException 6 x5", plc: true, inject: func(bl *benchLine) { bl.sim.InjectModbusException(6, 5) }},
		)
	} else {
		fs = append(fs, fault{name: "RestartOPCUA", plc: true, reconnect: true, inject: func(bl *benchLine) { bl.sim.RestartOPCUA() }})
	}
	return fs
}

var scannerFaults = []fault{
	{name: "DropScanner", reconnect: true, inject: func(bl *benchLine) { bl.sim.DropScanner(0) }},
	{name: "ScannerGarbage x20", inject: func(bl *benchLine) { bl.sim.ScannerGarbage(0, 20) }},
	{name: "ScannerOversize x3", inject: func(bl *benchLine) { bl.sim.ScannerOversize(0, 3) }},
}

// faultRun is one injected fault and how the gateway came back.
type faultRun struct {
	At       time.Duration // since the window started
	Line     string
	Fault    string
	Recovery time.Duration // from the fault's end to link (or scanners) up
	OK       bool
	Note     string
}

type chaos struct {
	cfg   benchConfig
	lines []*benchLine
	log   zerolog.Logger
	plc   []fault

	mu   sync.Mutex
	runs []faultRun
	wg   sync.WaitGroup
}

func newChaos(cfg benchConfig, lines []*benchLine, log zerolog.Logger) *chaos {
	return &chaos{cfg: cfg, lines: lines, log: log.With().Str("part", "chaos").Logger(), plc: plcFaults(cfg.Protocol)}
}

// run injects, every ChaosEvery, one PLC fault and one scanner fault (on
// rotating lines) until d has passed. Each recovery is watched on its own
// goroutine; run returns once all are settled.
func (c *chaos) run(ctx context.Context, d time.Duration) error {
	start := time.Now()
	tick := time.NewTicker(c.cfg.ChaosEvery)
	defer tick.Stop()
	end := time.NewTimer(d)
	defer end.Stop()
	k := 0
	defer c.wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-end.C:
			return nil
		case <-tick.C:
			// Leave the last fault time to recover inside the window.
			if time.Since(start)+reconnectGoal+stallFor > d {
				continue
			}
			pf := c.plc[k%len(c.plc)]
			sf := scannerFaults[k%len(scannerFaults)]
			c.inject(ctx, start, c.lines[k%len(c.lines)], pf)
			c.inject(ctx, start, c.lines[(k+1)%len(c.lines)], sf)
			k++
		}
	}
}

func (c *chaos) inject(ctx context.Context, start time.Time, bl *benchLine, f fault) {
	plc0 := bl.link.Status().Reconnects
	var sc0 uint64
	for _, st := range bl.src.Status() {
		sc0 += st.Reconnects
	}
	at := time.Now()
	c.log.Warn().Str("line", bl.name).Str("fault", f.name).Msg("injecting fault")
	f.inject(bl)
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		from := at.Add(f.after)
		up := func() bool {
			if f.plc {
				st := bl.link.Status()
				return st.State == devices.LinkUp && (!f.reconnect || st.Reconnects > plc0)
			}
			var n uint64
			for _, st := range bl.src.Status() {
				if st.State != devices.LinkUp {
					return false
				}
				n += st.Reconnects
			}
			return !f.reconnect || n > sc0
		}
		// Let the fault take hold before watching for the recovery.
		if f.after > 0 {
			_ = sleepCtx(ctx, f.after)
		}
		err := waitUntilFine(ctx, from.Add(15*time.Second), up)
		r := faultRun{At: at.Sub(start), Line: bl.name, Fault: f.name, Recovery: max(time.Since(from), 0)}
		switch {
		case err != nil:
			r.Note = "not back: " + err.Error()
		case r.Recovery > reconnectGoal:
			r.Note = "slower than " + reconnectGoal.String()
		default:
			r.OK = true
		}
		c.mu.Lock()
		c.runs = append(c.runs, r)
		c.mu.Unlock()
	}()
}

// waitUntilFine polls every 2ms (recoveries are timed to a few ms).
func waitUntilFine(ctx context.Context, deadline time.Time, ok func() bool) error {
	t := time.NewTicker(2 * time.Millisecond)
	defer t.Stop()
	for !ok() {
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

func (c *chaos) report() *chaosReport {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := &chaosReport{Runs: slices.Clone(c.runs)}
	slices.SortFunc(r.Runs, func(a, b faultRun) int { return int(a.At - b.At) })
	return r
}

// chaosReport lists the faults of a run.
type chaosReport struct{ Runs []faultRun }

// OK: every link and scanner came back within the goal.
func (r *chaosReport) OK() bool {
	for _, f := range r.Runs {
		if !f.OK {
			return false
		}
	}
	return true
}

func (r *chaosReport) print(w io.Writer) {
	fmt.Fprintf(w, "chaos: %d faults\n", len(r.Runs))
	for _, f := range r.Runs {
		status := "ok"
		if !f.OK {
			status = "FAIL " + f.Note
		}
		fmt.Fprintf(w, "  %8s  %-4s %-28s back in %8s ms  %s\n", f.At.Round(time.Millisecond), f.Line, f.Fault, ms(f.Recovery), status)
	}
}

// truthCheck holds the journal against the emulated sorters' ground truth.
type truthCheck struct {
	Passes           int // passes the gateway tracked (decided or given an outcome)
	Decided          int
	MissingOutcome   int // decided, no outcome
	DuplicateOutcome int // more than one outcome for one pass
	SimPasses        int
	SimCommands      int // commands the PLCs took
	DuplicateCommand int // sim passes with more than one command taken
	Confirmed        int // gateway outcomes carrying a PLC result
	Phantom          int // a result the gateway recorded that the PLC never gave that TID
	Unreported       int // PLC results the gateway has no result for ...
	Absorbed         int // ... of which covered by a lost, missed or timeout outcome of the TID
	Evicted          int // records the sims dropped to bound memory (not checked)
	Examples         []string
}

// OK: exactly one outcome per pass, no duplicate command, no phantom and
// no unexplained result.
func (t *truthCheck) OK() bool {
	return t.MissingOutcome == 0 && t.DuplicateOutcome == 0 && t.DuplicateCommand == 0 && t.Phantom == 0 && t.Unreported == t.Absorbed
}

func (t *truthCheck) example(s string) {
	if len(t.Examples) < 10 {
		t.Examples = append(t.Examples, s)
	}
}

func (t *truthCheck) print(w io.Writer) {
	verdict := "OK"
	if !t.OK() {
		verdict = "FAILED"
	}
	fmt.Fprintf(w, "ground truth %s: gateway passes %d (decided %d), missing outcome %d, duplicate outcome %d; "+
		"sim passes %d, commands taken %d, duplicate command %d; results matched %d, phantom %d, unreported %d (absorbed by lost/missed/timeout %d)\n",
		verdict, t.Passes, t.Decided, t.MissingOutcome, t.DuplicateOutcome, t.SimPasses, t.SimCommands, t.DuplicateCommand,
		t.Confirmed-t.Phantom, t.Phantom, t.Unreported, t.Absorbed)
	for _, e := range t.Examples {
		fmt.Fprintf(w, "  %s\n", e)
	}
}

// absorbs: an outcome that stands for a PLC result the gateway could not
// see (the link went away, the confirmation was overwritten, or the
// gateway stopped first).
func absorbs(o journal.Outcome) bool {
	switch o {
	case journal.OutcomeLostDisconnect, journal.OutcomeMissedConfirmation, journal.OutcomeLostAtRestart, journal.OutcomeTimeout:
		return true
	}
	return false
}

// checkTruth runs after the gateway stopped (every pass closed).
func checkTruth(lines []*benchLine, tally *tallyJournal) *truthCheck {
	t := &truthCheck{}
	tally.mu.Lock()
	defer tally.mu.Unlock()
	type gwItem struct {
		results  []uint16
		absorber int
	}
	gw := make([]map[uint32]*gwItem, len(lines))
	for i := range gw {
		gw[i] = map[uint32]*gwItem{}
	}
	for k, ps := range tally.passes {
		t.Passes++
		if ps.decided {
			t.Decided++
			if ps.outcomes == 0 {
				t.MissingOutcome++
				t.example(fmt.Sprintf("%s tid %d pass %d: decided, no outcome", lines[k.line].name, k.tid, k.pass))
			}
		}
		if ps.outcomes > 1 {
			t.DuplicateOutcome++
			t.example(fmt.Sprintf("%s tid %d pass %d: %d outcomes", lines[k.line].name, k.tid, k.pass, ps.outcomes))
		}
		g := gw[k.line][k.tid]
		if g == nil {
			g = &gwItem{}
			gw[k.line][k.tid] = g
		}
		if ps.result != 0 {
			g.results = append(g.results, ps.result)
			t.Confirmed++
		}
		if absorbs(ps.outcome) {
			g.absorber++
		}
	}
	for i, bl := range lines {
		rep := bl.sim.Report()
		seen := map[uint32]bool{}
		for _, it := range rep.Items {
			seen[it.TID] = true
			var simRes []uint16
			if bl.feed != nil && len(it.Passes) > 1 {
				// Commissioning: each command is an item of its own, and
				// the direct feed reads every TID once.
				t.DuplicateCommand++
				t.example(fmt.Sprintf("%s tid %d: %d commands taken", bl.name, it.TID, len(it.Passes)))
			}
			for _, p := range it.Passes {
				t.SimPasses++
				t.SimCommands += len(p.Commands)
				if len(p.Commands) > 1 {
					t.DuplicateCommand++
					t.example(fmt.Sprintf("%s tid %d pass %d: %d commands taken", bl.name, it.TID, p.Pass, len(p.Commands)))
				}
				for _, c := range p.Commands {
					if c.Result != 0 {
						simRes = append(simRes, c.Result)
					}
				}
			}
			g := gw[i][it.TID]
			var gres []uint16
			absorber := 0
			if g != nil {
				gres, absorber = slices.Clone(g.results), g.absorber
			}
			// Multiset difference both ways.
			for _, r := range simRes {
				if j := slices.Index(gres, r); j >= 0 {
					gres = slices.Delete(gres, j, j+1)
					continue
				}
				t.Unreported++
				if absorber > 0 {
					absorber--
					t.Absorbed++
				} else {
					t.example(fmt.Sprintf("%s tid %d: PLC result %d, gateway has none for it", bl.name, it.TID, r))
				}
			}
			for _, r := range gres {
				t.Phantom++
				t.example(fmt.Sprintf("%s tid %d: gateway recorded result %d the PLC never gave", bl.name, it.TID, r))
			}
		}
		t.Evicted += rep.Evicted
		for tid, g := range gw[i] {
			if rep.Evicted > 0 {
				break // the sim dropped its oldest records: absence proves nothing
			}
			if !seen[tid] && len(g.results) > 0 {
				t.Phantom += len(g.results)
				t.example(fmt.Sprintf("%s tid %d: results for an item the PLC never had", bl.name, tid))
			}
		}
	}
	return t
}
