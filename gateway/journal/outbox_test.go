package journal

import (
	"context"
	"testing"
	"time"
)

// TestAfterReadsInSeqOrder: After pages through committed records from a
// cursor, as the upstream publisher does.
func TestAfterReadsInSeqOrder(t *testing.T) {
	j := startJournal(t, testConfig(t))
	for i := range 10 {
		mustAppend(t, j, Record{Kind: KindAlarm, Line: "L", Alarm: "a", Count: uint32(i), Time: t0})
	}
	flush(t, j)
	var got []uint64
	for cursor := uint64(0); ; {
		recs, err := j.After(cursor, 3)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) == 0 {
			break
		}
		if len(recs) > 3 {
			t.Fatalf("After(%d, 3) gave %d records", cursor, len(recs))
		}
		for _, r := range recs {
			got = append(got, r.Seq)
		}
		cursor = recs[len(recs)-1].Seq
	}
	if len(got) != 10 {
		t.Fatalf("paged %v, want 10 records", got)
	}
	for i := 1; i < len(got); i++ {
		if got[i] != got[i-1]+1 {
			t.Fatalf("seqs %v not consecutive", got)
		}
	}
}

// TestRetainHoldsUnsentFromAgePruning: records the publisher has not sent
// survive retention by age; retention by size deletes them anyway and
// counts them.
func TestRetainHoldsUnsentFromAgePruning(t *testing.T) {
	clock := &testClock{}
	clock.Set(t0)
	cfg := testConfig(t)
	cfg.Now = clock.Now
	cfg.MaxBytes = -1
	cfg.PruneInterval = time.Hour
	j := startJournal(t, cfg)
	// Held before the appends: Run prunes after its commits too. A fresh
	// journal's first seq is 1: records 1..4 are published, 5..10 not.
	j.Retain(5)
	var seqs []uint64
	for d := range 10 {
		at := t0.Add(-time.Duration(40-d) * 24 * time.Hour) // all too old
		seqs = append(seqs, mustAppend(t, j, Record{Kind: KindAlarm, Line: "L", Alarm: "a", Time: at}))
	}
	flush(t, j)
	if _, err := j.Prune(context.Background()); err != nil {
		t.Fatal(err)
	}
	recs, err := j.After(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 6 || recs[0].Seq != seqs[4] || seqs[4] != 5 {
		t.Fatalf("after age pruning kept %d records (%v), want the 6 unsent from seq 5", len(recs), recs)
	}
	if n := j.Stats().PrunedUnsent; n != 0 {
		t.Fatalf("pruned unsent %d by age, want 0", n)
	}
	// The disk wins: by size, held records go too and are counted. Run
	// may be pruning after a commit: change the limit under its lock.
	j.pruneMu.Lock()
	j.cfg.MaxBytes = 1
	j.pruneMu.Unlock()
	if _, err := j.Prune(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := j.Stats().PrunedUnsent; n != 6 {
		t.Fatalf("pruned unsent %d by size, want 6", n)
	}
}
