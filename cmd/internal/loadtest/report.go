package loadtest

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"sortgw/devices"
)

// Report is everything one scenario measured. Print renders it.
type Report struct {
	Cfg       Config
	Started   time.Time
	Window    time.Duration
	Reads     uint64 // reads the lines took in the window (all lines)
	Inducted  uint64
	Taken     uint64 // commands the links saw taken in the window
	Outcomes  map[string]uint64
	HostLate  uint64
	Decided   LatStats
	Written   LatStats
	TakenLat  LatStats
	Confirmed LatStats
	// Missed: confirmations the PLCs overwrote unread, in the window;
	// MissedRun over the whole run (warm-up and drain too).
	Missed, MissedRun uint64
	// The raw floors (baseline.go), measured in the same run against line
	// 1's sim: BaseCold back to back before the load (the idle slot,
	// shown only); BaseRate the spare write at BaseRateHz on a connection
	// of its own during the window; BaseHot the spare write back to back
	// right after the window, the load still running. BaseName says what
	// the spare write is; BaseRateErrors counts its failed writes.
	BaseCold, BaseRate, BaseHot LatStats
	BaseRateHz                  float64
	BaseRateErrors              int
	BaseRateErr                 string
	BaseName                    string
	CPU                         time.Duration // user+system in the window
	CPUUser, CPUSys             time.Duration
	PeakRSS                     int64 // bytes, VmHWM over the scenario
	HeapInuse                   uint64
	Dropped                     uint64
	Decide                      *DecideResult
	// GWDecision is the gateway's own decision time (its
	// sortgw_decision_seconds histogram: table lookup and hand-off to
	// the link queue), all lines, the whole run; quantiles are bucket
	// upper bounds.
	GWDecision BucketStats
	// PollGap is the Modbus link's own histogram of the time between two
	// polls (line 1): a tail far above the poll interval is a host too
	// busy to poll on time.
	PollGap *devices.HistogramSnapshot
	Chaos   *ChaosReport
	Check   *TruthCheck

	// Sorted samples: read-to-written (also pooled across windows,
	// upstream.go), read-to-taken, and the two floors, for the ratios'
	// intervals.
	written, taken, rateSamples, hotSamples latencies
}

func bound(d time.Duration) string {
	if d < 0 {
		return "> last bucket"
	}
	return "<= " + ms(d)
}

func ms(d time.Duration) string { return strconv.FormatFloat(float64(d)/1e6, 'f', 3, 64) }

// floorRatio is d over a floor's figure, named after it; below 1.0 it is
// flagged as a measuring error, never printed as a result, with the
// ratio's 95% interval (ci, from the two quantiles' intervals, "" if
// unknown) to tell noise from a systematic error.
func floorRatio(d, base time.Duration, name string, ci [2]float64) (string, bool) {
	if base <= 0 || d <= 0 {
		return "- " + name, true
	}
	x := float64(d) / float64(base)
	s := strconv.FormatFloat(x, 'f', 1, 64) + "x " + name
	if x >= 1 {
		return s, true
	}
	s = strconv.FormatFloat(x, 'f', 2, 64) + "x " + name + ": BELOW FLOOR, measuring error"
	if ci[1] > 0 {
		kind := "within the noise of two independent tails"
		if ci[1] < 1 {
			kind = "systematic"
		}
		s += fmt.Sprintf(" (95%% interval %.2f-%.2fx: %s)", ci[0], ci[1], kind)
	}
	return s, false
}

// quantileCI is a distribution-free 95% interval of the q quantile of the
// sorted samples l (order statistics at n*q -/+ 1.96 sqrt(n q (1-q))).
func quantileCI(l latencies, q float64) (lo, hi time.Duration) {
	n := float64(len(l))
	if n == 0 {
		return 0, 0
	}
	h := 1.96 * math.Sqrt(n*q*(1-q))
	i := min(max(int(math.Floor(n*q-h)), 1), len(l))
	j := min(max(int(math.Ceil(n*q+h)), 1), len(l))
	return l[i-1], l[j-1]
}

// ratioCI bounds path/floor at q from both quantiles' intervals.
func ratioCI(path, floor latencies, q float64) [2]float64 {
	pl, ph := quantileCI(path, q)
	fl, fh := quantileCI(floor, q)
	if fl <= 0 || fh <= 0 {
		return [2]float64{}
	}
	return [2]float64{float64(pl) / float64(fh), float64(ph) / float64(fl)}
}

// Floors names the ratios' baselines: the rate-matched one and the hot one.
func (r *Report) floors() (rateName string) {
	return rawName(r.Cfg.Protocol) + "@" + strconv.FormatFloat(r.BaseRateHz, 'f', 0, 64) + "/s"
}

// resolved: a quantile q of n samples is trusted when at least 10
// samples lie above it (n >= 10/(1-q)); below that its estimate is one of
// the few largest samples, and a ratio of two such is noise.
func resolved(n int, q float64) bool { return float64(n)*(1-q) >= 10 }

// ratios is one path's p50, p99 and p99.9, each against both floors;
// samples are the path's, sorted (nil: no intervals).
func (r *Report) ratios(s LatStats, samples latencies) (line string, below []string) {
	rn := r.floors()
	var parts []string
	for _, q := range []struct {
		name    string
		q       float64
		v, rate time.Duration
		hot     time.Duration
	}{{"p50", 0.5, s.P50, r.BaseRate.P50, r.BaseHot.P50}, {"p99", 0.99, s.P99, r.BaseRate.P99, r.BaseHot.P99}, {"p99.9", 0.999, s.P999, r.BaseRate.P999, r.BaseHot.P999}} {
		if !resolved(s.N, q.q) {
			parts = append(parts, fmt.Sprintf("%s %s ms: n %d too small for a ratio", q.name, ms(q.v), s.N))
			continue
		}
		a, okA := "n too small for a ratio to "+rn, true
		if resolved(r.BaseRate.N, q.q) {
			a, okA = floorRatio(q.v, q.rate, rn, ratioCI(samples, r.rateSamples, q.q))
		}
		b, okB := "n too small for a ratio to hot", true
		if resolved(r.BaseHot.N, q.q) {
			b, okB = floorRatio(q.v, q.hot, "hot", ratioCI(samples, r.hotSamples, q.q))
		}
		if !okA {
			below = append(below, q.name+" vs "+rn)
		}
		if !okB {
			below = append(below, q.name+" vs hot")
		}
		parts = append(parts, fmt.Sprintf("%s %s ms = %s, %s", q.name, ms(q.v), a, b))
	}
	return strings.Join(parts, "; "), below
}

// Print writes the scenario's tables.
func (r *Report) Print(w io.Writer) {
	c := &r.Cfg
	mode := strconv.FormatFloat(c.Rate, 'f', 0, 64) + " items/s"
	if c.Max {
		mode = "max: offered " + mode + " (2x the ring's ceiling)"
	}
	fmt.Fprintf(w, "\n== %s, %s feed, %d line(s), %s per line, PLC cycle %v, poll %v, %d chutes, window %v%s\n",
		c.Protocol, c.Feed, c.Lines, mode, c.PLCCycle, c.Poll, c.Chutes, r.Window.Round(time.Millisecond), map[bool]string{true: ", chaos every " + c.ChaosEvery.String()}[c.Chaos]+map[bool]string{true: ", upstream on"}[c.Upstream])
	if c.ImmediateScan {
		fmt.Fprintln(w, "DIAGNOSTIC (-immediate-scan: the emulated PLC takes commands as they are written, which no real PLC does): not a goal figure")
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	win := r.Window.Seconds()
	ceil := c.Ceiling() * float64(c.Lines)
	fmt.Fprintf(tw, "inducted\treads\tcommands taken\ttaken/s\tring ceiling/s\t%% of ceiling\thost-late\tmissed conf.\tCPU s (user+sys)\tCPU %%\tpeak RSS MB\theap MB\t\n")
	fmt.Fprintf(tw, "%d\t%d\t%d\t%.0f\t%.0f\t%.1f\t%d\t%d\t%.2f+%.2f\t%.0f\t%.1f\t%.1f\t\n", r.Inducted, r.Reads, r.Taken,
		float64(r.Taken)/win, ceil, 100*float64(r.Taken)/win/ceil, r.HostLate, r.Missed,
		r.CPUUser.Seconds(), r.CPUSys.Seconds(), 100*r.CPU.Seconds()/win, float64(r.PeakRSS)/(1<<20), float64(r.HeapInuse)/(1<<20))
	tw.Flush()
	if c.Max {
		poll := "configured " + c.Poll.String()
		if pg := r.PollGap; pg != nil && pg.Count > 0 {
			poll += ", measured gap p50 " + ms(pg.P50) + " ms (line 1)"
		}
		fmt.Fprintf(w, "capacity: offered %.0f/s, achieved %.0f taken/s = %.1f%% of the formula's ceiling %.0f/s (15/(cycle %v + poll %v)); host-late %d, missed confirmations %d, CPU %.0f%%; poll %s\n",
			c.Rate*float64(c.Lines), float64(r.Taken)/win, 100*float64(r.Taken)/win/ceil, ceil, c.PLCCycle, c.Poll, r.HostLate, r.Missed, 100*r.CPU.Seconds()/win, poll)
	}

	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "latency (ms)\tn\tp50\tp99\tp99.9\tmax\t\n")
	row := func(name string, s LatStats) {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t\n", name, s.N, ms(s.P50), ms(s.P99), ms(s.P999), ms(s.Max))
	}
	rn := r.floors()
	row("floor cold: idle slot back to back, before the load", r.BaseCold)
	row("floor "+rn+": spare write, own conn, in the window", r.BaseRate)
	row("floor hot: spare write back to back, after the window", r.BaseHot)
	row("read-to-decided (Send)", r.Decided)
	row("read-to-written", r.Written)
	row("read-to-taken", r.TakenLat)
	row("read-to-confirmation", r.Confirmed)
	tw.Flush()
	fmt.Fprintf(w, "spare write: %s; rate-matched floor achieved %.0f/s of %.0f/s (the floor's own requests are in the CPU figure)\n",
		r.BaseName, float64(r.BaseRate.N)/win, r.BaseRateHz)
	if r.BaseRateErrors > 0 {
		fmt.Fprintf(w, "rate-matched floor: %d writes failed (first: %s)\n", r.BaseRateErrors, r.BaseRateErr)
	}
	var below []string
	for _, p := range []struct {
		name string
		s    LatStats
		l    latencies
	}{{"read-to-written", r.Written, r.written}, {"read-to-taken", r.TakenLat, r.taken}} {
		line, b := r.ratios(p.s, p.l)
		fmt.Fprintf(w, "%s: %s\n", p.name, line)
		for _, x := range b {
			below = append(below, p.name+" "+x)
		}
	}
	if len(below) > 0 {
		fmt.Fprintf(w, "BELOW FLOOR (a path with a round trip cannot beat it; not a result): %s\n", strings.Join(below, ", "))
	}
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

// CheckFailures are the correctness failures `sortgw bench -check` exits
// non-zero on: the journal against the emulator's ground truth (every pass
// one outcome, every PLC result either reported or absorbed by a recorded
// lost, missed or timed-out outcome, no phantom, no duplicate command).
// Never a timing or capacity figure: a missed confirmation under overload
// is the contract's own outcome (the ring has no back-pressure), printed
// with the capacity line and judged in docs/performance.md, not here.
func (r *Report) CheckFailures() []string {
	var f []string
	if r.Check == nil {
		f = append(f, "no ground-truth check")
	} else if !r.Check.OK() {
		f = append(f, "ground truth FAILED")
	}
	return f
}

// OK: the ground truth held and every fault was recovered from within the
// goal (a report without those checks is OK).
func (r *Report) OK() bool {
	return (r.Check == nil || r.Check.OK()) && (r.Chaos == nil || r.Chaos.OK())
}
