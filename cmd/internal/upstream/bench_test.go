package upstream

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"sortgw/gateway/journal"
)

// BenchmarkPublish measures the publisher's throughput from the journal
// to the embedded server's stream (file storage, acknowledged, with
// message ids): b.N outcome records are in the journal before the clock
// starts; it stops when the server has acknowledged the last one.
//
//	go test -run '^$' -bench BenchmarkPublish -benchtime 50000x ./cmd/internal/upstream/
func BenchmarkPublish(b *testing.B) {
	j := startJournal(b, filepath.Join(b.TempDir(), "j.db"))
	var last uint64
	for i := range b.N {
		seq, err := j.AppendWait(context.Background(), journal.Record{Kind: journal.KindOutcome, Line: "L1",
			TID: uint32(i + 1), Pass: 1, Outcome: journal.OutcomeDiverted, Chute: 7, Dest: "64001", Route: "R028", PlanVersion: 3})
		if err != nil {
			b.Fatal(err)
		}
		last = seq
	}
	if err := j.Flush(context.Background()); err != nil {
		b.Fatal(err)
	}
	cfg := embeddedConfig(b, "s1")
	if v := os.Getenv("SORTGW_BENCH_BATCH"); v != "" {
		cfg.Batch, _ = strconv.Atoi(v)
	}
	b.ResetTimer()
	start := time.Now()
	r, stop := runner(b, cfg, j)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for r.Publisher().Stats().Cursor < last {
		<-tick.C
	}
	el := time.Since(start)
	b.StopTimer()
	stop()
	b.ReportMetric(float64(b.N)/el.Seconds(), "records/s")
}
