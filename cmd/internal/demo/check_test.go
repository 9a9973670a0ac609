package demo

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	fieldbussim "sortgw/fieldbus-sim"
	"sortgw/gateway/journal"
)

// writeJournal commits recs to a new journal file and closes it.
func writeJournal(t *testing.T, recs []journal.Record) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "journal.db")
	j, err := journal.Open(journal.Config{Path: path}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- j.Run(ctx) }()
	for _, r := range recs {
		if _, err := j.AppendWait(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func decision(tid uint32, pass uint16) journal.Record {
	return journal.Record{Line: "L1", Kind: journal.KindDecision, TID: tid, Pass: pass, Chute: 3}
}

func outcome(tid uint32, pass uint16, o journal.Outcome, result uint16) journal.Record {
	return journal.Record{Line: "L1", Kind: journal.KindOutcome, TID: tid, Pass: pass, Outcome: o, Result: result}
}

// simItem is a ground-truth item whose passes had the given PLC results.
func simItem(tid uint32, results ...uint16) fieldbussim.ItemRecord {
	it := fieldbussim.ItemRecord{TID: tid, Outcome: "sorted"}
	for i, r := range results {
		it.Passes = append(it.Passes, fieldbussim.PassRecord{Pass: i + 1,
			Commands: []fieldbussim.CommandRecord{{Chute: 3, Result: r}}})
	}
	return it
}

// TestCheck: the demo's check passes a journal that matches the ground
// truth and fails, naming the fault, on each way one can break.
func TestCheck(t *testing.T) {
	good := []journal.Record{decision(1, 1), outcome(1, 1, journal.OutcomeDiverted, 1),
		decision(2, 1), outcome(2, 1, journal.OutcomeRecirculated, 3), decision(2, 2), outcome(2, 2, journal.OutcomeDiverted, 1)}
	rep := fieldbussim.Report{Items: []fieldbussim.ItemRecord{simItem(1, 1), simItem(2, 3, 1)},
		Counts: fieldbussim.ReportCounts{SortedAsCommanded: 2, RecirculatedFull: 1}}
	inBound := []Bound{{Name: "line item table", Max: 10, Limit: 10}}
	tests := []struct {
		name   string
		recs   []journal.Record
		rep    fieldbussim.Report
		bounds []Bound
		want   string // "" = OK; else a substring of the failed check
	}{
		{"matches", good, rep, inBound, ""},
		{"missing outcome", append(good[:4:4], decision(2, 2)), rep, inBound, "missing outcome 1"},
		{"duplicate outcome", append(good[:len(good):len(good)], outcome(1, 1, journal.OutcomeDiverted, 1)), rep, inBound, "duplicate outcome 1"},
		{"phantom result", append(good[:len(good):len(good)], decision(3, 1), outcome(3, 1, journal.OutcomeDiverted, 1)), rep, inBound, "phantom 1"},
		{"phantom result of a known item", append(good[:len(good):len(good)], decision(1, 2), outcome(1, 2, journal.OutcomeDiverted, 1)), rep, inBound, "phantom 1"},
		{"result not in the journal", good[:4], rep, inBound, "unreported 1 (absorbed 0)"},
		{"result absorbed by a stop", append(good[:4:4], decision(2, 2), outcome(2, 2, journal.OutcomeLostAtRestart, 0)), rep, inBound, ""},
		{"bound exceeded", good, rep, []Bound{{Name: "line item table", Max: 11, Limit: 10, Exceeded: 1}}, "EXCEEDED"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var bw boundWatch
			for _, b := range tc.bounds {
				bw.observe([]Bound{{Name: b.Name, Max: b.Max, Limit: b.Limit}})
			}
			c, err := checkJournal(context.Background(), writeJournal(t, tc.recs), "L1", tc.rep, bw.result())
			if err != nil {
				t.Fatal(err)
			}
			if ok := tc.want == ""; c.OK() != ok {
				t.Fatalf("OK() = %v, want %v:\n%s", c.OK(), ok, c)
			}
			if tc.want != "" && !strings.Contains(c.String(), tc.want) {
				t.Fatalf("want %q in:\n%s", tc.want, c)
			}
		})
	}
}

// TestDemoCheck runs the demo with Config.Check, ends it the way
// `-duration` does (Finish, then stop), and finds the journal agrees with
// the ground truth, every bound sampled and held.
func TestDemoCheck(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end demo: skipped with -short")
	}
	d, err := New(Config{HTTP: "127.0.0.1:0", Rate: 100, Chutes: 16, Seed: 5, NoNATS: true, Check: true, TruthLimit: 100},
		zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx, nil) }()
	waitFor(t, "items inducted past the truth limit", 60*time.Second, func() bool { return d.sim.Inducted() > 300 })
	d.Finish(ctx)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	c := d.Check()
	if c == nil || !c.OK() {
		t.Fatalf("check: %v", c)
	}
	names := map[string]bool{}
	for _, b := range c.Bounds {
		names[b.Name] = true
	}
	for _, n := range []string{"sim ground truth", "line item table", "container manifests", "van manifests", "journal queue", "journal records not kept"} {
		if !names[n] {
			t.Errorf("bound %q not sampled: %v", n, c.Bounds)
		}
	}
	if c.SimEvicted == 0 || c.Passes == 0 || c.SimItems > 100 {
		t.Fatalf("the sim's truth should have hit its limit of 100: evicted %d, compared %d, passes %d", c.SimEvicted, c.SimItems, c.Passes)
	}
}
