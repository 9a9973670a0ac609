package loadtest

import (
	"fmt"
	"io"
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
	// Baselines measured in the same run against line 1's sim: before
	// the load (back to back, and paced), and during it on a connection of
	// their own (HOST_STATE rewritten with its own value, 1 register with
	// Modbus, 1 node with OPC UA) so they see the same machine.
	BaseHot, BasePaced, BaseLoad LatStats
	BaseName                     string
	CPU                          time.Duration // user+system in the window
	CPUUser, CPUSys              time.Duration
	PeakRSS                      int64 // bytes, VmHWM over the scenario
	HeapInuse                    uint64
	Dropped                      uint64
	Decide                       *DecideResult
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
}

func bound(d time.Duration) string {
	if d < 0 {
		return "> last bucket"
	}
	return "<= " + ms(d)
}

func ms(d time.Duration) string { return strconv.FormatFloat(float64(d)/1e6, 'f', 3, 64) }

func ratio(d, base time.Duration) string {
	if base <= 0 {
		return "-"
	}
	return strconv.FormatFloat(float64(d)/float64(base), 'f', 1, 64) + "x"
}

// Print writes the scenario's tables.
func (r *Report) Print(w io.Writer) {
	c := &r.Cfg
	mode := strconv.FormatFloat(c.Rate, 'f', 0, 64) + " items/s"
	fmt.Fprintf(w, "\n== %s, %s feed, %d line(s), %s per line, PLC cycle %v, poll %v, %d chutes, window %v%s\n",
		c.Protocol, c.Feed, c.Lines, mode, c.PLCCycle, c.Poll, c.Chutes, r.Window.Round(time.Millisecond), map[bool]string{true: ", chaos every " + c.ChaosEvery.String()}[c.Chaos])
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	win := r.Window.Seconds()
	fmt.Fprintf(tw, "inducted\treads\tcommands taken\ttaken/s\tring ceiling/s\t%% of ceiling\thost-late\tCPU s (user+sys)\tCPU %%\tpeak RSS MB\theap MB\t\n")
	fmt.Fprintf(tw, "%d\t%d\t%d\t%.0f\t%.0f\t%.1f\t%d\t%.2f+%.2f\t%.0f\t%.1f\t%.1f\t\n", r.Inducted, r.Reads, r.Taken,
		float64(r.Taken)/win, c.Ceiling()*float64(c.Lines), 100*float64(r.Taken)/win/(c.Ceiling()*float64(c.Lines)), r.HostLate,
		r.CPUUser.Seconds(), r.CPUSys.Seconds(), 100*r.CPU.Seconds()/win, float64(r.PeakRSS)/(1<<20), float64(r.HeapInuse)/(1<<20))
	tw.Flush()

	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "latency (ms)\tn\tp50\tp99\tp99.9\tmax\tp50/base\tp99/base\tp99.9/base\t\n")
	base := r.BaseLoad
	row := func(name string, s LatStats, withRatio bool) {
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

// OK: the ground truth held and every fault was recovered from within the
// goal (a report without those checks is OK).
func (r *Report) OK() bool {
	return (r.Check == nil || r.Check.OK()) && (r.Chaos == nil || r.Chaos.OK())
}
