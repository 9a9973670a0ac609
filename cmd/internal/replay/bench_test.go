package replay

import (
	"context"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"sortgw/gateway/journal"
	"sortgw/sortplan"
)

const benchPasses = 1_000_000

// benchPlan is the committed 256-chute plan (`sortgw plan gen -seed 1`).
const benchPlan = "../../../sortplan/testdata/plan-256.csv"

// benchTraffic is n passes as the 256-chute plan decided them: 90% to a
// planned destination, 4% no-read, 6% a destination without a rule, one
// pass every 3.6 ms (a million an hour).
func benchTraffic(b *testing.B, n int) []Pass {
	b.Helper()
	tab := loadTable(b, benchPlan)
	var keys []string
	for _, r := range tab.Plan().Rules {
		if r.Kind == sortplan.RuleExact {
			keys = append(keys, r.Key)
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	at := time.Date(2026, 12, 1, 6, 0, 0, 0, time.UTC)
	out := make([]Pass, n)
	for i := range out {
		p := Pass{Time: at.Add(time.Duration(i) * 3600 * time.Microsecond)}
		switch x := rng.IntN(100); {
		case x < 4:
			p.NoRead = true
		case x < 10:
			p.Dest = "00000"
		default:
			p.Dest = keys[rng.IntN(len(keys))]
		}
		var d sortplan.Decision
		if p.NoRead {
			d = tab.DecideException(sortplan.ReasonNoRead, nil)
		} else {
			d = tab.DecideKey(p.Dest, nil)
		}
		p.Chute, p.Reason, p.Route = d.Chute, uint16(d.Reason), d.Route
		out[i] = p
	}
	return out
}

// BenchmarkReplay1M replays a million passes in memory against the plan
// they were decided with (one op = 1M passes).
func BenchmarkReplay1M(b *testing.B) {
	passes := benchTraffic(b, benchPasses)
	tab := loadTable(b, benchPlan)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		r := New(tab, []uint16{12, 13})
		for i := range passes {
			r.Add(&passes[i])
		}
		if res := r.Result(100); res.Passes != benchPasses {
			b.Fatalf("%d passes", res.Passes)
		}
	}
}

// BenchmarkReplayJournal1M is `sortgw replay` without printing: a million
// decision records read from a journal file and replayed (one op = 1M).
// Writing the journal is setup, not timed.
func BenchmarkReplayJournal1M(b *testing.B) {
	passes := benchTraffic(b, benchPasses)
	path := filepath.Join(b.TempDir(), "journal.db")
	j, err := journal.Open(journal.Config{Path: path, QueueSize: 1 << 20, MaxBatch: 1 << 16, MaxAge: -1, MaxBytes: -1}, zerolog.Nop())
	if err != nil {
		b.Fatal(err)
	}
	for i, p := range passes {
		if _, err := j.Append(journal.Record{Time: p.Time, Line: "A", Kind: journal.KindDecision, TID: uint32(i + 1), Pass: 1,
			Codes: []string{"]C1420" + p.Dest}, NoRead: p.NoRead, Dest: p.Dest, Chute: p.Chute, Reason: p.Reason, Route: p.Route, PlanVersion: 1}); err != nil {
			b.Fatal(err)
		}
	}
	if err := j.Close(); err != nil {
		b.Fatal(err)
	}
	tab := loadTable(b, benchPlan)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		r := New(tab, nil)
		s, err := FromJournal(context.Background(), path, "", time.Time{}, time.Time{}, r)
		if err != nil || s.Passes != benchPasses {
			b.Fatalf("%d passes: %v", s.Passes, err)
		}
		if res := r.Result(max(s.MeanContainer(), 100)); res.Changed != 0 {
			b.Fatalf("%d changes against the same plan", res.Changed)
		}
	}
}
