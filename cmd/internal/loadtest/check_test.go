package loadtest

import (
	"bytes"
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"sortgw/gateway/journal"
)

// TestCheckCatchesBrokenOutcomes is the mutation test of `sortgw bench
// -check`, the CI capacity run's verdict: a short direct-feed run whose
// journal is broken the way a gateway bug would break it (one pass's
// outcome dropped, recorded twice, or with a result the PLC never gave)
// fails the check, and the same run unbroken passes it.
func TestCheckCatchesBrokenOutcomes(t *testing.T) {
	if testing.Short() {
		t.Skip("four 1 s end-to-end runs: skipped with -short")
	}
	// nth applies f to the 50th outcome of a pass, every other record
	// passing through.
	nth := func(f func(journal.Record) []journal.Record) func(journal.Record) []journal.Record {
		var n atomic.Int64
		return func(r journal.Record) []journal.Record {
			if r.Kind == journal.KindOutcome && r.Pass > 0 && n.Add(1) == 50 {
				return f(r)
			}
			return []journal.Record{r}
		}
	}
	for _, tc := range []struct {
		name   string
		tamper func(journal.Record) []journal.Record
		want   string // in the printed report; "" = the check passes
	}{
		{"unbroken", nil, ""},
		{"outcome dropped", nth(func(journal.Record) []journal.Record { return nil }), "without an outcome in the journal 1"},
		{"outcome twice", nth(func(r journal.Record) []journal.Record { return []journal.Record{r, r} }), "duplicate outcome 1"},
		{"result the PLC never gave", nth(func(r journal.Record) []journal.Record {
			r.Result = 5 // sent to the reject chute
			return []journal.Record{r}
		}), "phantom 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cfg := Config{Protocol: "modbus", Rate: 200, Duration: time.Second, Warmup: 300 * time.Millisecond,
				Chutes: 64, Baselines: 50, SkipDecide: true, Dir: t.TempDir(), tamper: tc.tamper}
			rep, err := Run(ctx, cfg, testLog(t))
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			rep.Print(&out)
			fails := rep.CheckFailures()
			if tc.want == "" {
				if !rep.Check.OK() {
					t.Errorf("ground truth failed on an unbroken run:\n%s", out.String())
				}
				return
			}
			if len(fails) == 0 || !strings.Contains(strings.Join(fails, ","), "ground truth FAILED") {
				t.Errorf("check failures %q, want ground truth FAILED:\n%s", fails, out.String())
			}
			if !strings.Contains(out.String(), tc.want) || !strings.Contains(out.String(), "ground truth FAILED") {
				t.Errorf("report lacks %q:\n%s", tc.want, out.String())
			}
		})
	}
}

// TestCheckFailures: the check's verdict is correctness only: the ground
// truth, never a timing or capacity figure (missed confirmations are the
// contract's outcome under overload, absorbed item by item in the truth).
func TestCheckFailures(t *testing.T) {
	ok := &TruthCheck{}
	for _, tc := range []struct {
		name string
		rep  Report
		want string
	}{
		{"all good, however slow", Report{Check: ok, HostLate: 900, Written: LatStats{P999: time.Hour}}, ""},
		{"missed confirmations, each recorded", Report{Check: ok, MissedRun: 3}, ""},
		{"missed confirmations counted as the PLC overwrote them", Report{Check: &TruthCheck{MissedExact: true, LinkMissed: 4, PLCUnread: 4, PLCInScan: 2}, MissedRun: 4}, ""},
		{"a missed confirmation the PLC never overwrote", Report{Check: &TruthCheck{MissedExact: true, LinkMissed: 5, PLCUnread: 4}, MissedRun: 5}, "ground truth FAILED"},
		{"an overwritten confirmation not counted", Report{Check: &TruthCheck{MissedExact: true, LinkMissed: 3, PLCUnread: 4}, MissedRun: 3}, "ground truth FAILED"},
		{"a reply lost in a reconnect: counted missed", Report{Check: &TruthCheck{MissedExact: true, LinkMissed: 6, PLCUnread: 4, Reconnects: 1}, MissedRun: 6}, ""},
		{"an overwritten confirmation not counted across a reconnect", Report{Check: &TruthCheck{MissedExact: true, LinkMissed: 3, PLCUnread: 4, Reconnects: 1}, MissedRun: 3}, "ground truth FAILED"},
		{"ground truth", Report{Check: &TruthCheck{DuplicateCommand: 1}}, "ground truth FAILED"},
		{"no ground truth", Report{}, "no ground-truth check"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := strings.Join(tc.rep.CheckFailures(), ", ")
			if got != tc.want {
				t.Errorf("CheckFailures = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestRatios: every ratio names its floor; one below 1.0 is flagged as a
// measuring error, never printed as a result; a quantile with fewer than
// 10 samples above it gets no ratio.
func TestRatios(t *testing.T) {
	us := func(n int) time.Duration { return time.Duration(n) * time.Microsecond }
	r := &Report{Cfg: Config{Protocol: "modbus"}, BaseRateHz: 1000,
		BaseRate: LatStats{N: 20000, P50: us(100), P99: us(1000), P999: us(4000)},
		BaseHot:  LatStats{N: 10000, P50: us(50), P99: us(200), P999: us(900)}}
	line, below := r.ratios(LatStats{N: 20000, P50: us(150), P99: us(700), P999: us(4000)}, nil)
	for _, want := range []string{"p50 0.150 ms = 1.5x raw-fc16@1000/s, 3.0x hot", "0.70x raw-fc16@1000/s: BELOW FLOOR, measuring error", "3.5x hot",
		"p99.9 4.000 ms = 1.0x raw-fc16@1000/s, 4.4x hot"} {
		if !strings.Contains(line, want) {
			t.Errorf("ratios %q lack %q", line, want)
		}
	}
	if len(below) != 1 || below[0] != "p99 vs raw-fc16@1000/s" {
		t.Errorf("below floor %q, want [p99 vs raw-fc16@1000/s]", below)
	}
	line, below = r.ratios(LatStats{N: 500, P50: us(150), P99: us(10), P999: us(10)}, nil)
	if !strings.Contains(line, "p99 0.010 ms: n 500 too small") || !strings.Contains(line, "p99.9 0.010 ms: n 500 too small") || len(below) != 0 {
		t.Errorf("ratios on 500 samples: %q, below %q; want no tail ratio", line, below)
	}
}

// TestRatioIntervals: a ratio below 1.0 says whether the two quantiles'
// intervals leave room for 1.0 (noise) or not (systematic).
func TestRatioIntervals(t *testing.T) {
	series := func(n int, scale float64) latencies {
		l := make(latencies, n)
		for i := range l {
			l[i] = time.Duration(float64(i+1) * scale * float64(time.Microsecond))
		}
		return l
	}
	floor := series(5000, 1)
	r := &Report{Cfg: Config{Protocol: "opcua"}, BaseRateHz: 100, BaseRate: summarise(floor), rateSamples: floor}
	for _, tc := range []struct {
		name string
		path latencies
	}{
		{"noise", series(5000, 0.995)},
		{"systematic", series(5000, 0.5)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			line, below := r.ratios(summarise(tc.path), tc.path)
			if len(below) == 0 {
				t.Fatalf("%q: want below floor", line)
			}
			noise := strings.Contains(line, "within the noise")
			if noise != (tc.name == "noise") || (tc.name == "systematic") != strings.Contains(line, ": systematic)") {
				t.Errorf("%s: %q", tc.name, line)
			}
		})
	}
}
