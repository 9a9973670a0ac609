package journal

import (
	"context"
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"
)

// BenchmarkJournalThroughput: the journal's capacity as the gateway
// writes it. Producers (a line each, as the gateway's line loops are)
// append item passes, a decision and an outcome with the item's GS1 code,
// as fast as the queue takes them (AppendWait: nothing is dropped); the
// writer group-commits them with the gateway's settings (Config's
// defaults: batches of at most 256 records or 5 ms, every commit
// fdatasync'ed: NoSync false, TestCommitSyncSettings). b.N is the number
// of records; the clock stops once all are durable. It reports
//
//   - records/s: records appended and made durable per second;
//   - records/tx: records per commit (1 would be one fsync per record);
//   - commits/s: fsyncs per second;
//   - commit-p50-ms, commit-p99-ms, commit-max-ms: one commit's
//     transaction including its fdatasync (the journal's own histogram,
//     about 12% resolution).
//
// Commits are grouped: at saturation every transaction is full (records/tx
// = MaxBatch). The writer is bound by bbolt's CPU (inserting the records
// and their index keys), not by the fsync: commit time grows with the
// batch, about 25-35 µs per record, so a larger MaxBatch buys little
// throughput for much longer commits (2026-12-05, load 11: MaxBatch 256,
// 1024, 4096 gave 16,000, 16,600, 25,900 records/s with one producer,
// commit p50 9, 41, 98 ms). Many lines cost more than one: their index
// keys land on as many B+tree leaves per commit.
//
//	go test -run '^$' -bench JournalThroughput -benchtime 100000x -count 3 ./gateway/journal
func BenchmarkJournalThroughput(b *testing.B) {
	for _, producers := range []int{1, 4, 16, 64} {
		b.Run(fmt.Sprintf("producers=%d", producers), func(b *testing.B) {
			j := startJournal(b, testConfig(b))
			if j.db.NoSync {
				b.Fatal("fsync is off: the figures would not be the gateway's")
			}
			ctx := context.Background()
			passes := b.N / 2
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			for p := range producers {
				wg.Go(func() {
					line := fmt.Sprint("L", p+1)
					for i := p; i < passes; i += producers {
						tid := uint32(i/producers + 1)
						code := "]C1420902101\x1d92" + fmt.Sprint(1_000_000_000+i)
						for _, r := range [2]Record{
							{Line: line, Kind: KindDecision, TID: tid, Pass: 1, Scanner: "S1", Codes: []string{code},
								Dest: "90210", Chute: 12, Reason: 1, Route: "VAN-12", PlanVersion: 7},
							{Line: line, Kind: KindOutcome, TID: tid, Pass: 1, Scanner: "S1", Codes: []string{code},
								Dest: "90210", Chute: 12, Reason: 1, Result: 1, Route: "VAN-12", PlanVersion: 7,
								Outcome: OutcomeDiverted, Container: "C12-3"},
						} {
							if _, err := j.AppendWait(ctx, r); err != nil {
								b.Error(err)
								return
							}
						}
					}
				})
			}
			wg.Wait()
			if err := j.Flush(ctx); err != nil {
				b.Fatal(err)
			}
			el := time.Since(start)
			b.StopTimer()
			s := j.Stats()
			if s.Committed != uint64(2*passes) || s.Open != 0 {
				b.Fatalf("committed %d of %d records, %d items left open", s.Committed, 2*passes, s.Open)
			}
			b.ReportMetric(float64(s.Committed)/el.Seconds(), "records/s")
			b.ReportMetric(float64(s.Committed)/float64(max(s.Batches, 1)), "records/tx")
			b.ReportMetric(float64(s.Batches)/el.Seconds(), "commits/s")
			ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
			b.ReportMetric(ms(s.Commit.P50), "commit-p50-ms")
			b.ReportMetric(ms(s.Commit.P99), "commit-p99-ms")
			b.ReportMetric(ms(s.Commit.Max), "commit-max-ms")
		})
	}
}

// BenchmarkJournalPaced: the journal at the gateway's pace. Items arrive
// at 1,000/s (a decision and an outcome each, as a line writes them) for
// b.N items, with the gateway's settings but for the flush interval,
// which sets how many commits (each a copy-on-write of the touched B+tree
// pages and an fdatasync) the same records take. It reports the
// process's CPU (a share of one core and per item), commits/s, records
// per commit and the commit p99: what the journal takes from the sorting
// goroutines, which share the process.
//
//	go test -run '^$' -bench JournalPaced -benchtime 5000x ./gateway/journal
func BenchmarkJournalPaced(b *testing.B) {
	for _, flush := range []time.Duration{5 * time.Millisecond, 10 * time.Millisecond, 20 * time.Millisecond, 50 * time.Millisecond} {
		b.Run("flush="+flush.String(), func(b *testing.B) {
			cfg := testConfig(b)
			cfg.FlushInterval = flush
			j := startJournal(b, cfg)
			const rate = 1000 // items/s
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			start, cpu0 := time.Now(), cpuTime(b)
			tick := time.NewTicker(time.Millisecond)
			for n := 0; n < b.N; {
				<-tick.C
				due := min(int(time.Since(start).Seconds()*rate), b.N)
				for ; n < due; n++ {
					tid := uint32(n + 1)
					code := "]C1420902101\x1d92" + fmt.Sprint(1_000_000_000+n)
					for _, r := range [2]Record{
						{Line: "L1", Kind: KindDecision, TID: tid, Pass: 1, Scanner: "S1", Codes: []string{code},
							Dest: "90210", Chute: 12, Reason: 1, Route: "VAN-12", PlanVersion: 7},
						{Line: "L1", Kind: KindOutcome, TID: tid, Pass: 1, Scanner: "S1", Codes: []string{code},
							Dest: "90210", Chute: 12, Reason: 1, Result: 1, Route: "VAN-12", PlanVersion: 7,
							Outcome: OutcomeDiverted, Container: "C12-3"},
					} {
						if _, err := j.AppendWait(ctx, r); err != nil {
							b.Fatal(err)
						}
					}
				}
			}
			tick.Stop()
			if err := j.Flush(ctx); err != nil {
				b.Fatal(err)
			}
			el, cpu := time.Since(start), cpuTime(b)-cpu0
			b.StopTimer()
			s := j.Stats()
			b.ReportMetric(100*cpu.Seconds()/el.Seconds(), "cpu-%")
			b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/item")
			b.ReportMetric(float64(s.Batches)/el.Seconds(), "commits/s")
			b.ReportMetric(float64(s.Committed)/float64(max(s.Batches, 1)), "records/tx")
			b.ReportMetric(float64(s.Commit.P99.Microseconds())/1000, "commit-p99-ms")
		})
	}
}

// cpuTime is the process's CPU time so far (user+sys).
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
