package loadtest

// Chaos for `sortgw bench -chaos`: faults injected into the emulated
// sorter at a fixed interval while the load runs, the time every link and
// scanner takes to come back, and at the end the gateway's journal held
// against the sorter's ground truth (fieldbussim.Report).

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"sortgw/devices"
	fieldbussim "sortgw/fieldbus-sim"
	"sortgw/gateway"
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
	// soak, if set, stands for inject and the recovery watch: it injects,
	// waits for the recovery, checks its own invariant and returns the
	// run (At, Line and Fault are filled in by the caller). abuse.go.
	soak func(ctx context.Context, c *chaos, bl *benchLine) FaultRun
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
				inject: func(bl *benchLine) {
					// Reads: the gateway's polls, never the baseline's raw
					// writes on their own connection (a fault the link
					// would never see).
					bl.sim.DelayNextReplyOn(400*time.Millisecond, fieldbussim.ExceptionReads)
				}},
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

// FaultRun is one injected fault and how the gateway came back.
type FaultRun struct {
	At       time.Duration // since the window started
	Line     string
	Fault    string
	Recovery time.Duration // from the fault's end to link (or scanners) up
	OK       bool
	Note     string
	// Broken: an invariant of the fault did not hold (a correctness
	// failure, unlike a slow recovery). Figures: what it measured.
	Broken, Figures string
}

// setBack sets OK and Note from the recovery wait's error and time.
func (r *FaultRun) setBack(err error) {
	switch {
	case err != nil:
		r.Note = "not back: " + err.Error()
	case r.Recovery > reconnectGoal:
		r.Note = "slower than " + reconnectGoal.String()
	default:
		r.OK = true
	}
}

type chaos struct {
	cfg   Config
	lines []*benchLine
	log   zerolog.Logger
	plc   []fault
	abuse []fault // with Config.Abuse

	// What the abuse faults need of the gateway.
	gwAddr  string
	metrics *gateway.Metrics
	tally   *tallyJournal
	journal *journal.Journal
	disk    *diskFull // the journal's commits fail while it is on
	// httpMu keeps the HTTP abuse faults apart: each counts the gateway's
	// streams and refusals as its own.
	httpMu sync.Mutex

	mu   sync.Mutex
	runs []FaultRun
	wg   sync.WaitGroup
}

func newChaos(s *scenario) *chaos {
	c := &chaos{cfg: s.cfg, lines: s.lines, log: s.log.With().Str("part", "chaos").Logger(), plc: plcFaults(s.cfg.Protocol),
		gwAddr: s.gwAddr, metrics: s.metrics, tally: s.tally, journal: s.journal, disk: s.disk}
	if s.cfg.Abuse {
		c.abuse = abuseFaults(s.cfg.Protocol)
	}
	return c
}

// run injects, every ChaosEvery, one PLC fault and one scanner fault (on
// rotating lines), and with Abuse one abuse fault half an interval later,
// until d has passed. Each recovery is watched on its own goroutine; run
// returns once all are settled.
func (c *chaos) run(ctx context.Context, d time.Duration) error {
	start := time.Now()
	tick := time.NewTicker(c.cfg.ChaosEvery)
	defer tick.Stop()
	end := time.NewTimer(d)
	defer end.Stop()
	k, a := 0, 0
	defer c.wg.Wait()
	// The abuse faults come between the others, so that each one's
	// figures are mostly its own.
	half := time.NewTimer(c.cfg.ChaosEvery / 2)
	defer half.Stop()
	if len(c.abuse) == 0 {
		half.Stop()
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-end.C:
			return nil
		case <-half.C:
			half.Reset(c.cfg.ChaosEvery)
			if time.Since(start)+reconnectGoal+stallFor > d {
				continue
			}
			c.inject(ctx, start, c.lines[a%len(c.lines)], c.abuse[a%len(c.abuse)])
			a++
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
	for _, st := range bl.src.watched() {
		sc0 += st.Reconnects
	}
	at := time.Now()
	c.log.Warn().Str("line", bl.name).Str("fault", f.name).Msg("injecting fault")
	if f.soak != nil {
		c.wg.Go(func() {
			r := f.soak(ctx, c, bl)
			r.At, r.Line, r.Fault = at.Sub(start), bl.name, f.name
			if r.Broken != "" {
				r.OK = false
			}
			c.mu.Lock()
			c.runs = append(c.runs, r)
			c.mu.Unlock()
		})
		return
	}
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
			// The scanner faults hit the emulator's scanner 0; a scanner
			// whose port the soak holds is watched by its own fault.
			for _, st := range bl.src.watched() {
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
		r := FaultRun{At: at.Sub(start), Line: bl.name, Fault: f.name, Recovery: max(time.Since(from), 0)}
		r.setBack(err)
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

func (c *chaos) report() *ChaosReport {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := &ChaosReport{Runs: slices.Clone(c.runs)}
	slices.SortFunc(r.Runs, func(a, b FaultRun) int { return int(a.At - b.At) })
	return r
}

// ChaosReport lists the faults of a run.
type ChaosReport struct{ Runs []FaultRun }

// OK: every link and scanner came back within the goal.
func (r *ChaosReport) OK() bool {
	for _, f := range r.Runs {
		if !f.OK {
			return false
		}
	}
	return true
}

func (r *ChaosReport) print(w io.Writer) {
	fmt.Fprintf(w, "chaos: %d faults\n", len(r.Runs))
	for _, f := range r.Runs {
		status := "ok"
		if !f.OK {
			status = strings.TrimSpace("FAIL " + f.Note)
		}
		if f.Broken != "" {
			status += " BROKEN: " + f.Broken
		}
		fmt.Fprintf(w, "  %8s  %-4s %-28s back in %8s ms  %s\n", f.At.Round(time.Millisecond), f.Line, f.Fault, ms(f.Recovery), status)
		if f.Figures != "" {
			fmt.Fprintf(w, "            %s\n", f.Figures)
		}
	}
}
