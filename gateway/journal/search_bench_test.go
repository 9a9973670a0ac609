package journal

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// BenchmarkItemSearch: item searches over a journal of 500,000 passes
// (a decision and an outcome each, labels of the four kinds, one pass in
// 50 an exception), one case per key kind. It reports the search index's
// size per pass (by-key pages) and the whole journal's live bytes per
// pass. Building the journal takes a while:
//
//	go test -run '^$' -bench ItemSearch -benchtime 2000x ./gateway/journal
func BenchmarkItemSearch(b *testing.B) {
	const passes = 500_000
	cfg := bulkConfig(b)
	j := startJournal(b, cfg)
	start := time.Now()
	for i := range passes {
		o := OutcomeDiverted
		if i%50 == 0 {
			o = OutcomeRecirculatedFull
		}
		for _, r := range passRecords("L1", uint32(i+1), 1, t0.Add(time.Duration(i)*10*time.Millisecond), o) {
			mustAppend(b, j, r)
		}
	}
	// Writing a million records takes minutes on a busy machine: more
	// than the tests' flush wait.
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	if err := j.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	st := j.Stats()
	idx, err := j.searchIndexBytes()
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("%d passes written in %s: live %d bytes (%.0f bytes/pass), search index %d bytes (%.1f bytes/pass)",
		passes, time.Since(start).Round(time.Millisecond), st.LiveBytes, float64(st.LiveBytes)/passes, idx, float64(idx)/passes)
	tid := func(i int) uint32 { return uint32(i*7919%passes + 1) }
	cases := []struct {
		name string
		q    func(i int) ItemQuery
		min  int // rows expected at least
	}{
		{"TID", func(i int) ItemQuery { return ItemQuery{Q: fmt.Sprint(tid(i))} }, 1},
		{"CodeAsRead", func(i int) ItemQuery { return ItemQuery{Q: labelFor(tid(i)).code} }, 1},
		{"CodeStripped", func(i int) ItemQuery {
			return ItemQuery{Q: strings.ReplaceAll(strings.TrimPrefix(labelFor(tid(i)|1).code, "]C1"), "\x1d", "")}
		}, 1},
		{"PackageID", func(i int) ItemQuery { return ItemQuery{Q: labelFor(tid(i)).id} }, 1},
		{"ZIP5", func(i int) ItemQuery { return ItemQuery{Q: labelFor(tid(i)).zip, Limit: 50} }, 5},
		{"Recent50", func(int) ItemQuery { return ItemQuery{Limit: 50} }, 50},
		{"Exceptions50", func(int) ItemQuery { return ItemQuery{Exceptions: true, Limit: 50} }, 50},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				p, err := j.Items(tc.q(i))
				if err != nil || len(p.Passes) < tc.min {
					b.Fatalf("%+v: %d rows, %v", tc.q(i), len(p.Passes), err)
				}
			}
			b.ReportMetric(float64(idx)/passes, "index-bytes/pass")
		})
	}
}

// BenchmarkSearchIndexBuild: what Open spends building the search index
// of a journal written before it existed, per pass (100,000 passes):
//
//	go test -run '^$' -bench SearchIndexBuild -benchtime 3x ./gateway/journal
func BenchmarkSearchIndexBuild(b *testing.B) {
	const passes = 100_000
	cfg := bulkConfig(b)
	j := startJournal(b, cfg)
	for i := range passes {
		for _, r := range passRecords("L1", uint32(i+1), 1, t0, OutcomeDiverted) {
			mustAppend(b, j, r)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	if err := j.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		if err := j.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Delete(keySearchPrint) }); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if err := j.ensureSearchIndex(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/passes, "ns/pass")
}
