package gateway

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"sortgw/gateway/journal"
)

// consolDay writes what a day of parcels leaves in the journal for the
// consolidation record: per parcel a decision and an outcome naming its
// container; per container of 300 a close and a load; per van of 8
// containers a departure. 256 chutes.
func consolDay(parcels int, fn func(journal.Record)) {
	const chutes, perCont, perVan = 256, 300, 8
	t0 := time.Date(2026, 12, 4, 4, 0, 0, 0, time.UTC)
	n := make([]int, chutes+1)
	fill := make([]int, chutes+1)
	loaded := 0
	for i := range n {
		n[i] = 1
	}
	for i := 0; i < parcels; i++ {
		at := t0.Add(time.Duration(i) * 100 * time.Millisecond)
		ch := uint16(i%chutes + 1)
		tid := uint32(i + 1)
		route := fmt.Sprintf("R%03d", ch/2)
		codes := []string{"]C1420" + fmt.Sprintf("%05d", 10000+int(ch)*7)}
		fn(journal.Record{Time: at, Line: "L1", Kind: journal.KindDecision, TID: tid, Pass: 1, Scanner: "S1", Codes: codes,
			Dest: codes[0][6:], Chute: ch, Route: route, PlanVersion: 1})
		id := containerID("L1", ch, n[ch])
		fn(journal.Record{Time: at, Line: "L1", Kind: journal.KindOutcome, TID: tid, Pass: 1, Scanner: "S1", Codes: codes,
			Dest: codes[0][6:], Chute: ch, Route: route, PlanVersion: 1, Result: 1, Outcome: journal.OutcomeDiverted, Container: id})
		fill[ch]++
		if fill[ch] == perCont {
			fn(journal.Record{Time: at, Line: "L1", Kind: journal.KindContainerClose, Chute: ch, Container: id, Route: route,
				Count: perCont, Detail: "emptied"})
			van := fmt.Sprintf("V%d", loaded/perVan)
			fn(journal.Record{Time: at, Line: "L1", Kind: journal.KindContainerLoad, Chute: ch, Container: id, Route: route,
				Detail: van, By: "dock", Cause: "dock-scan"})
			loaded++
			if loaded%perVan == 0 {
				fn(journal.Record{Time: at, Line: "L1", Kind: journal.KindVanDepart, Route: route, Detail: van, Count: perVan,
					By: "dock", Cause: "page"})
			}
			n[ch]++
			fill[ch] = 0
		}
	}
}

// BenchmarkConsolidationJournalBytes: what the consolidation record adds
// to the journal per parcel: the container id on the outcome, plus the
// close, load and departure records shared by the parcels of a container.
func BenchmarkConsolidationJournalBytes(b *testing.B) {
	const parcels = 100_000
	var total, extra, outcomes int
	for i := 0; i < b.N; i++ {
		total, extra, outcomes = 0, 0, 0
		consolDay(parcels, func(r journal.Record) {
			enc, err := r.MarshalBinary()
			if err != nil {
				b.Fatal(err)
			}
			total += len(enc)
			switch r.Kind {
			case journal.KindOutcome:
				outcomes++
				bare := r
				bare.Container = ""
				e2, _ := bare.MarshalBinary()
				extra += len(enc) - len(e2)
			case journal.KindContainerClose, journal.KindContainerLoad, journal.KindVanDepart:
				extra += len(enc)
			}
		})
	}
	b.ReportMetric(float64(extra)/float64(outcomes), "consol-B/parcel")
	b.ReportMetric(float64(total)/float64(outcomes), "all-B/parcel")
}

// BenchmarkRebuild500k: the start-up rebuild of the containers and vans
// from a journal holding a day of 500,000 parcels (1,000,000 item records
// plus the container and van records). Run with -benchtime=1x: building
// the journal takes a while and is not timed.
func BenchmarkRebuild500k(b *testing.B) {
	j, err := journal.Open(journal.Config{Path: filepath.Join(b.TempDir(), "j.db")}, zerolog.Nop())
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- j.Run(ctx) }()
	defer func() {
		cancel()
		<-done
		j.Close()
	}()
	var last uint64
	consolDay(500_000, func(r journal.Record) {
		seq, err := j.AppendWait(ctx, r)
		if err != nil {
			b.Fatal(err)
		}
		last = seq
	})
	if err := j.WaitDurable(ctx, last); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	var st RebuildStats
	for i := 0; i < b.N; i++ {
		l, err := NewLine(LineConfig{Name: "L1", Chutes: 256}, newFakeLink(), nil, j, NewMetrics(), zerolog.Nop())
		if err != nil {
			b.Fatal(err)
		}
		st = l.rebuilt
	}
	if st.Booked != 500_000 {
		b.Fatalf("rebuilt %d parcels", st.Booked)
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/rebuild")
}
