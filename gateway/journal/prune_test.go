package journal

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// bucketCounts counts the keys of every bucket, to show that retention
// leaves no index entry behind.
func bucketCounts(t *testing.T, j *Journal) map[string]int {
	t.Helper()
	out := map[string]int{}
	err := j.db.View(func(tx *bolt.Tx) error {
		for _, name := range allBuckets {
			out[string(name)] = tx.Bucket(name).Stats().KeyN
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

type testClock struct{ ns atomic.Int64 }

func (c *testClock) Now() time.Time  { return time.Unix(0, c.ns.Load()).UTC() }
func (c *testClock) Set(t time.Time) { c.ns.Store(t.UnixNano()) }

func TestRetentionByAge(t *testing.T) {
	clock := &testClock{}
	clock.Set(t0)
	cfg := testConfig(t)
	cfg.Now = clock.Now
	cfg.MaxBytes = -1
	cfg.PruneBatch = 7 // several transactions
	cfg.PruneInterval = time.Hour
	j := startJournal(t, cfg)
	// One diverted item a day for 40 days, ending today.
	for d := range 40 {
		at := t0.Add(-time.Duration(39-d) * 24 * time.Hour)
		for _, r := range itemRecords("L", uint32(d+1), 1, fmt.Sprint("CODE", d), at) {
			mustAppend(t, j, r)
		}
	}
	flush(t, j)
	if _, err := j.Prune(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Days 0..8 are older than 30 days. Day 9's read sits exactly on the
	// cutoff and is kept: retention deletes Time < now-MaxAge. (Run
	// prunes too, after its commits; the total is what counts.)
	s := j.Stats()
	if s.Pruned != 9*7 || s.PruneTx < 9 {
		t.Fatalf("pruned %d in %d transactions, want %d in at least 9", s.Pruned, s.PruneTx, 9*7)
	}
	if recs, _ := j.ByTID(9); len(recs) != 0 {
		t.Fatalf("tid 9 still has %d records", len(recs))
	}
	if recs, _ := j.ByBarcode("CODE8"); len(recs) != 0 {
		t.Fatalf("code of day 8 still indexed")
	}
	if recs, _ := j.ByTID(10); len(recs) != 7 {
		t.Fatalf("tid 10 (on the cutoff) has %d records", len(recs))
	}
	want := map[string]int{"records": 31 * 7, "by-time": 31 * 7, "by-tid": 31 * 7, "by-code": 31, "open": 0, "meta": 3, "by-key": 31}
	if got := bucketCounts(t, j); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("bucket keys %v, want %v", got, want)
	}
	// A day later, day 10 goes too; nothing else.
	clock.Set(t0.Add(24 * time.Hour))
	if n, err := j.Prune(context.Background()); err != nil || n != 7 {
		t.Fatalf("second prune: %d, %v", n, err)
	}
	if _, err := j.Get(1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("oldest record: %v", err)
	}
}

// TestRetentionByAgeInRun: Run prunes on its own at start.
func TestRetentionByAgeInRun(t *testing.T) {
	clock := &testClock{}
	clock.Set(t0)
	cfg := testConfig(t)
	cfg.Now = clock.Now
	j := openJournal(t, cfg)
	mustAppend(t, j, Record{Time: t0.Add(-31 * 24 * time.Hour), Kind: KindStart, Detail: "old"})
	mustAppend(t, j, Record{Time: t0, Kind: KindStart, Detail: "new"})
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	j = startJournal(t, cfg)
	waitFor(t, func() bool { return j.Stats().Pruned == 1 })
	recs, err := j.Recent(10)
	if err != nil || len(recs) != 1 || recs[0].Detail != "new" {
		t.Fatalf("after pruning: %+v %v", recs, err)
	}
}

func TestRetentionBySize(t *testing.T) {
	cfg := testConfig(t)
	cfg.MaxAge = -1
	cfg.MaxBytes = 256 << 10
	cfg.PruneBatch = 500
	cfg.PruneInterval = time.Hour
	j := startJournal(t, cfg)
	detail := strings.Repeat("d", 100)
	const n = 20000
	for i := range n {
		// Duplicates: indexed like reads, but they open no item.
		mustAppend(t, j, Record{Time: t0.Add(time.Duration(i) * time.Millisecond), Kind: KindDuplicate, TID: uint32(i + 1),
			Pass: 1, Codes: []string{fmt.Sprint("C", i)}, Detail: detail})
	}
	flush(t, j)
	before := j.Stats()
	if before.LiveBytes <= cfg.MaxBytes {
		t.Fatalf("test wrote only %d live bytes", before.LiveBytes)
	}
	pruned, err := j.Prune(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	after := j.Stats()
	if after.LiveBytes > cfg.MaxBytes || pruned == 0 || pruned >= n {
		t.Fatalf("pruned %d: live %d -> %d bytes (limit %d)", pruned, before.LiveBytes, after.LiveBytes, cfg.MaxBytes)
	}
	t.Logf("pruned %d of %d records: live %d -> %d bytes, file %d bytes", pruned, n, before.LiveBytes, after.LiveBytes, after.FileBytes)
	// The oldest went, the newest stayed, and the indexes agree.
	if _, err := j.Get(1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("oldest record: %v", err)
	}
	if r, err := j.Get(n); err != nil || r.TID != n {
		t.Fatalf("newest record: %+v %v", r, err)
	}
	c := bucketCounts(t, j)
	kept := n - pruned
	if c["records"] != kept || c["by-time"] != kept || c["by-tid"] != kept || c["by-code"] != kept {
		t.Fatalf("bucket keys %v, want %d each", c, kept)
	}
	// Below the limit, retention stops.
	if again, err := j.Prune(context.Background()); err != nil || again != 0 {
		t.Fatalf("second prune: %d, %v", again, err)
	}
}
