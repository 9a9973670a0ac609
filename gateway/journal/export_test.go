package journal

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRetentionExportsConsolidation: records of the consolidation record
// that retention deletes are first written to a CSV file per day; other
// records are not, and a failing export keeps them in the journal.
func TestRetentionExportsConsolidation(t *testing.T) {
	clock := &testClock{}
	clock.Set(t0)
	dir := filepath.Join(t.TempDir(), "export")
	cfg := testConfig(t)
	cfg.Now = clock.Now
	cfg.MaxBytes = -1
	cfg.PruneBatch = 3
	cfg.PruneInterval = time.Hour
	cfg.ExportDir = dir
	old := t0.Add(-40 * 24 * time.Hour)
	recs := []Record{
		{Time: old, Line: "L", Kind: KindDecision, TID: 1, Pass: 1, Chute: 3},
		{Time: old, Line: "L", Kind: KindOutcome, TID: 1, Pass: 1, Chute: 3, Result: 1, Outcome: OutcomeDiverted, Container: "L-C3-1", Codes: []string{"=CMD()"}},
		{Time: old, Line: "L", Kind: KindOutcome, TID: 2, Pass: 1, Outcome: OutcomeNotSent},
		{Time: old, Line: "L", Kind: KindContainerClose, Chute: 3, Container: "L-C3-1", Route: "R1", Count: 1, Detail: "emptied"},
		{Time: old.Add(time.Hour), Line: "L", Kind: KindContainerLoad, Chute: 3, Container: "L-C3-1", Route: "R1", Detail: "V1", By: "ann"},
		{Time: old.Add(24 * time.Hour), Line: "L", Kind: KindVanDepart, Route: "R1", Detail: "V1", Count: 1, By: "ann"},
		{Time: t0, Line: "L", Kind: KindContainerClose, Chute: 4, Container: "L-C4-1", Route: "R1", Detail: "technician"},
	}
	fill := func(j *Journal) {
		for _, r := range recs {
			mustAppend(t, j, r)
		}
		flush(t, j)
	}
	// An export directory that cannot be made: retention fails, keeps all.
	blocker := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(blocker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	bad := cfg
	bad.ExportDir = filepath.Join(blocker, "sub")
	jb := startJournal(t, bad)
	fill(jb)
	if _, err := jb.Prune(context.Background()); err == nil {
		t.Fatal("prune with a failing export succeeded")
	}
	if n := len(mustRange(t, jb)); n != len(recs) {
		t.Fatalf("%d records after a failed export, want %d", n, len(recs))
	}
	cfg.Path = filepath.Join(t.TempDir(), "good.db")
	j := startJournal(t, cfg)
	fill(j)
	if _, err := j.Prune(context.Background()); err != nil {
		t.Fatal(err)
	}
	day1, err := os.ReadFile(filepath.Join(dir, "consolidation-"+old.UTC().Format(time.DateOnly)+".csv"))
	if err != nil {
		t.Fatal(err)
	}
	got := string(day1)
	if strings.Count(got, "\n") != 4 || !strings.HasPrefix(got, "seq,time,line,kind,container") ||
		!strings.Contains(got, ",outcome,L-C3-1,3,,1,'=CMD(),") || !strings.Contains(got, ",container-load,L-C3-1,3,R1,0,,,0,V1,0,ann,") ||
		strings.Contains(got, "decision") || strings.Contains(got, "not-sent") {
		t.Fatalf("day file:\n%s", got)
	}
	day2, err := os.ReadFile(filepath.Join(dir, "consolidation-"+old.Add(24*time.Hour).UTC().Format(time.DateOnly)+".csv"))
	if err != nil || !strings.Contains(string(day2), ",van-depart,,0,R1,0,,,0,V1,1,ann,") {
		t.Fatalf("day 2 file: %v\n%s", err, day2)
	}
	if left := mustRange(t, j); len(left) != 1 || left[0].Container != "L-C4-1" {
		t.Fatalf("left %+v", left)
	}
}

func mustRange(t *testing.T, j *Journal) []Record {
	t.Helper()
	rs, err := j.Range(time.Time{}, t0.Add(time.Hour), 0)
	if err != nil {
		t.Fatal(err)
	}
	return rs
}
