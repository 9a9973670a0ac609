package journal

import (
	"fmt"
	"slices"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// TestSpannedIndexes: by-code and by-key entries lead with the span of
// their seq, so a lookup must visit every span. A journal of three spans
// (18,001 passes, 36,002 records) answers searches, exception lists and
// ByBarcode with rows from all of them, in order, however small the
// page or the spans one page may seek; a rebuild in chunks smaller than
// a span gives the same entries as the writer did.
func TestSpannedIndexes(t *testing.T) {
	const passes = 18_000
	cfg := bulkConfig(t)
	j := startJournal(t, cfg)
	var want30301 []uint64 // rows (decision seqs) with ZIP 30301, newest first
	appendPass := func(tid uint32, pass uint16) {
		o, dest := OutcomeDiverted, ""
		if tid%3000 == 0 {
			o, dest = OutcomeRejected, "30301"
		}
		for i, r := range passRecords("L1", tid, pass, t0, o) {
			if dest != "" {
				r.Dest = dest
			}
			seq, err := j.Append(r)
			if err != nil {
				t.Fatal(err)
			}
			if i == 0 && dest != "" {
				want30301 = append([]uint64{seq}, want30301...)
			}
		}
	}
	for tid := uint32(1); tid <= passes; tid++ {
		appendPass(tid, 1)
	}
	appendPass(5, 2) // tid 5's code again, two spans later
	flush(t, j)
	if last := j.Stats().LastSeq; spanOf(last) < 2 {
		t.Fatalf("last seq %d is in span %d: the test wants three spans", last, spanOf(last))
	}

	rowsOf := func(q ItemQuery) []Pass {
		t.Helper()
		var got []Pass
		for pages := 0; ; pages++ {
			if pages > 1000 {
				t.Fatalf("%+v: no end after 1000 pages", q)
			}
			p := mustItems(t, j, q)
			got = append(got, p.Passes...)
			if p.Next == 0 {
				return got
			}
			q.Before = p.Next
		}
	}
	check := func(name string) {
		t.Helper()
		seqs := func(ps []Pass) (out []uint64) {
			for _, p := range ps {
				out = append(out, p.Seq)
			}
			return out
		}
		if got := seqs(rowsOf(ItemQuery{Q: "30301", Limit: 2})); !slices.Equal(got, want30301) {
			t.Fatalf("%s: ZIP 30301 gave rows %v, want %v", name, got, want30301)
		}
		if got := seqs(rowsOf(ItemQuery{Exceptions: true, Limit: 4})); !slices.Equal(got, want30301) {
			t.Fatalf("%s: exceptions gave rows %v, want %v", name, got, want30301)
		}
		for _, q := range []string{labelFor(5).code, labelFor(5).id} {
			ps := rowsOf(ItemQuery{Q: q})
			if len(ps) != 2 || ps[0].First().Pass != 2 || ps[1].First().Pass != 1 || spanOf(ps[0].Seq) == spanOf(ps[1].Seq) {
				t.Fatalf("%s: %q gave rows %v, want tid 5's passes 2 and 1 from two spans", name, q, seqs(ps))
			}
		}
		recs, err := j.ByBarcode(labelFor(5).code)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range recs {
			got = append(got, fmt.Sprintf("%s/%d", r.Kind, r.Pass))
		}
		if want := []string{"decision/1", "outcome/1", "decision/2", "outcome/2"}; !slices.Equal(got, want) {
			t.Fatalf("%s: ByBarcode gave %v, want %v", name, got, want)
		}
	}
	check("as written")
	checkIndexes(t, j)

	defer func(c int) { spanScanCap = c }(spanScanCap)
	spanScanCap = 1
	check("one span a page")
	spanScanCap = 4096

	defer func(c int) { rebuildChunk = c }(rebuildChunk)
	rebuildChunk = 5000
	if err := j.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Delete(keySearchPrint) }); err != nil {
		t.Fatal(err)
	}
	if err := j.ensureSearchIndex(); err != nil {
		t.Fatal(err)
	}
	checkIndexes(t, j)
	check("rebuilt")
}
