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
// truth and missed confirmations, never a timing figure.
func TestCheckFailures(t *testing.T) {
	ok := &TruthCheck{}
	for _, tc := range []struct {
		name string
		rep  Report
		want string
	}{
		{"all good, however slow", Report{Check: ok, HostLate: 900, Written: LatStats{P999: time.Hour}}, ""},
		{"missed confirmations", Report{Check: ok, MissedRun: 3}, "3 missed confirmations"},
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
