package journal

import (
	"context"
	"fmt"
	"testing"
	"time"
)

func benchRecord(i int) Record {
	tid := uint32(i + 1)
	return Record{Line: "L1", Kind: KindDecision, TID: tid, Pass: 1, Scanner: "s1",
		Codes: []string{"]C1420902101\x1d92" + fmt.Sprint(tid)}}
}

// reportCommits adds the group-commit figures to a benchmark's output.
func reportCommits(b *testing.B, j *Journal, start time.Time) {
	s := j.Stats()
	el := time.Since(start).Seconds()
	b.ReportMetric(float64(s.Committed)/el, "records/s")
	if s.Batches > 0 {
		b.ReportMetric(float64(s.Committed)/float64(s.Batches), "records/tx")
	}
	b.ReportMetric(float64(s.Commit.P50.Microseconds()), "commit-p50-µs")
	b.ReportMetric(float64(s.Commit.P99.Microseconds()), "commit-p99-µs")
}

// BenchmarkAppend: sustained appends (AppendWait, so a full queue waits)
// with the writer group-committing; the clock stops once all is durable.
func BenchmarkAppend(b *testing.B) {
	j := startJournal(b, testConfig(b))
	recs := make([]Record, 1024)
	for i := range recs {
		recs[i] = benchRecord(i)
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if _, err := j.AppendWait(ctx, recs[i%len(recs)]); err != nil {
			b.Fatal(err)
		}
	}
	if err := j.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	reportCommits(b, j, start)
}

// BenchmarkAppendCall: the cost of Append itself on the item path (the
// writer is not running; the queue is emptied with the clock stopped).
func BenchmarkAppendCall(b *testing.B) {
	cfg := testConfig(b)
	cfg.QueueSize = 1 << 16
	j := openJournal(b, cfg)
	defer j.Close()
	rec := benchRecord(1)
	var scratch []Record
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i%cfg.QueueSize == 0 {
			b.StopTimer()
			scratch = j.q.take(scratch[:0], cfg.QueueSize)
			b.StartTimer()
		}
		if _, err := j.Append(rec); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	j.q.take(scratch[:0], cfg.QueueSize)
}

// BenchmarkAppendDurable: 32 writers that each wait for their record to be
// on disk before appending the next (the worst case for a journal without
// group commit: one fsync per record).
func BenchmarkAppendDurable(b *testing.B) {
	j := startJournal(b, testConfig(b))
	ctx := context.Background()
	b.SetParallelism(16) // x GOMAXPROCS goroutines
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			seq, err := j.AppendWait(ctx, benchRecord(i))
			if err == nil {
				err = j.WaitDurable(ctx, seq)
			}
			if err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
	b.StopTimer()
	reportCommits(b, j, start)
}

// loadedJournal holds n records: items of 7 records each, one item every
// 10 ms of journal time.
func loadedJournal(b *testing.B, n int) (*Journal, int) {
	cfg := testConfig(b)
	cfg.MaxBatch = 4096
	cfg.QueueSize = 1 << 17
	cfg.QueryLimit = 1000
	j := startJournal(b, cfg)
	items := n / 7
	for i := range items {
		for _, r := range itemRecords("L1", uint32(i+1), 1, fmt.Sprint("CODE", i), t0.Add(time.Duration(i)*10*time.Millisecond)) {
			mustAppend(b, j, r)
		}
	}
	flush(b, j)
	return j, items
}

func BenchmarkQuery(b *testing.B) {
	j, items := loadedJournal(b, 100_000)
	st := j.Stats()
	b.Logf("%d records: file %d bytes, live %d bytes (%.0f bytes/record with indexes)",
		st.Committed, st.FileBytes, st.LiveBytes, float64(st.LiveBytes)/float64(st.Committed))
	cases := []struct {
		name string
		q    func(i int) ([]Record, error)
		want int
	}{
		{"ByTID", func(i int) ([]Record, error) { return j.ByTID(uint32(i%items + 1)) }, 7},
		{"ByBarcode", func(i int) ([]Record, error) { return j.ByBarcode(fmt.Sprint("CODE", i%items)) }, 1},
		{"Range1s", func(i int) ([]Record, error) {
			from := t0.Add(time.Duration(100+i%(items-300)) * 10 * time.Millisecond)
			return j.Range(from, from.Add(time.Second), 0)
		}, 100 * 7},
		{"Recent100", func(int) ([]Record, error) { return j.Recent(100) }, 100},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				recs, err := tc.q(i * 7919)
				if err != nil || len(recs) != tc.want {
					b.Fatalf("%d records, %v", len(recs), err)
				}
			}
		})
	}
}

func BenchmarkCodec(b *testing.B) {
	r := fullRecord(KindDecision, OutcomeNone)
	buf, _ := r.MarshalBinary()
	b.Run("encode", func(b *testing.B) {
		b.ReportAllocs()
		out := make([]byte, 0, 256)
		for i := 0; i < b.N; i++ {
			out, _ = r.AppendBinary(out[:0])
		}
	})
	b.Run("decode", func(b *testing.B) {
		b.ReportAllocs()
		var d Record
		for i := 0; i < b.N; i++ {
			if err := d.UnmarshalBinary(buf); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkPassSize writes item passes shaped as the gateway writes them
// (a decision and an outcome, each with the item's GS1 code) and reports
// the journal's live bytes per pass, indexes included. For sizing:
//
//	go test -run '^$' -bench PassSize -benchtime 100000x ./gateway/journal
func BenchmarkPassSize(b *testing.B) {
	cfg := testConfig(b)
	cfg.MaxBatch = 4096
	cfg.QueueSize = 1 << 17
	j := startJournal(b, cfg)
	for i := range b.N {
		tid := uint32(i + 1)
		at := t0.Add(time.Duration(i) * 10 * time.Millisecond)
		code := "]C1420902101\x1d92" + fmt.Sprint(1_000_000_000+i)
		mustAppend(b, j, Record{Time: at, Line: "L1", Kind: KindDecision, TID: tid, Pass: 1, Scanner: "S1",
			Codes: []string{code}, Dest: "90210", Chute: 12, Reason: 1, Route: "VAN-12", PlanVersion: 7})
		mustAppend(b, j, Record{Time: at.Add(3 * time.Second), Line: "L1", Kind: KindOutcome, TID: tid, Pass: 1,
			Scanner: "S1", Codes: []string{code}, Dest: "90210", Chute: 12, Reason: 1, Result: 1, Route: "VAN-12",
			PlanVersion: 7, Outcome: OutcomeDiverted, Container: "L1-C12-3"})
	}
	flush(b, j)
	st := j.Stats()
	b.ReportMetric(float64(st.LiveBytes)/float64(b.N), "bytes/pass")
}
