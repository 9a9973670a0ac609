package journal

import (
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func seqsOf(recs []Record) []uint64 {
	out := make([]uint64, len(recs))
	for i, r := range recs {
		out[i] = r.Seq
	}
	return out
}

func equalSeqs(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestQueries(t *testing.T) {
	cfg := testConfig(t)
	cfg.QueryLimit = 50
	j := startJournal(t, cfg)
	long := strings.Repeat("L", maxIndexedCode) // same index key as longX
	longX, longY := long+"X", long+"Y"
	// seq 1..7: tid 1 on line A, code "4209"; seq 8..14: tid 2 on line A,
	// code "42090"; seq 15..21: tid 1 on line B (same TID, other sorter),
	// code "4209"; 22, 23: decisions with the two long codes; 24: a plan install.
	for _, rs := range [][]Record{
		itemRecords("A", 1, 1, "4209", t0),
		itemRecords("A", 2, 1, "42090", t0.Add(time.Minute)),
		itemRecords("B", 1, 1, "4209", t0.Add(2*time.Minute)),
		{
			{Time: t0.Add(3 * time.Minute), Line: "A", Kind: KindDecision, TID: 3, Pass: 1, Codes: []string{longX, "4209"}},
			{Time: t0.Add(3 * time.Minute), Line: "A", Kind: KindDecision, TID: 4, Pass: 1, Codes: []string{longY}},
			{Time: t0.Add(4 * time.Minute), Kind: KindPlanInstalled, PlanVersion: 8},
		},
	} {
		for _, r := range rs {
			mustAppend(t, j, r)
		}
	}
	flush(t, j)
	seqRange := func(a, b uint64) []uint64 {
		var s []uint64
		for i := a; i <= b; i++ {
			s = append(s, i)
		}
		return s
	}
	cases := []struct {
		name  string
		query func() ([]Record, error)
		want  []uint64
	}{
		{"tid 1 on both lines", func() ([]Record, error) { return j.ByTID(1) }, append(seqRange(1, 7), seqRange(15, 21)...)},
		{"tid 2", func() ([]Record, error) { return j.ByTID(2) }, seqRange(8, 14)},
		{"tid unknown", func() ([]Record, error) { return j.ByTID(99) }, nil},
		{"tid max", func() ([]Record, error) { return j.ByTID(1<<32 - 1) }, nil},
		{"code exact, not a prefix", func() ([]Record, error) { return j.ByBarcode("4209") }, []uint64{1, 15, 22}},
		{"longer code", func() ([]Record, error) { return j.ByBarcode("42090") }, []uint64{8}},
		{"code unknown", func() ([]Record, error) { return j.ByBarcode("420") }, nil},
		{"long code X", func() ([]Record, error) { return j.ByBarcode(longX) }, []uint64{22}},
		{"long code Y", func() ([]Record, error) { return j.ByBarcode(longY) }, []uint64{23}},
		{"range first minute", func() ([]Record, error) { return j.Range(t0, t0.Add(time.Minute), 0) }, seqRange(1, 7)},
		{"range half open", func() ([]Record, error) { return j.Range(t0.Add(time.Second), t0.Add(time.Minute+time.Millisecond), 0) }, []uint64{7, 8}},
		{"range limited", func() ([]Record, error) { return j.Range(t0, t0.Add(time.Hour), 3) }, []uint64{1, 2, 3}},
		{"range over limit", func() ([]Record, error) { return j.Range(t0, t0.Add(time.Hour), 1000) }, seqRange(1, 24)},
		{"range empty", func() ([]Record, error) { return j.Range(t0.Add(time.Hour), t0.Add(2*time.Hour), 0) }, nil},
		{"range before epoch", func() ([]Record, error) { return j.Range(time.Unix(-1e9, 0), t0, 0) }, nil},
		{"recent 3, newest first", func() ([]Record, error) { return j.Recent(3) }, []uint64{24, 23, 22}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			recs, err := tc.query()
			if err != nil {
				t.Fatal(err)
			}
			if got := seqsOf(recs); !equalSeqs(got, tc.want) {
				t.Fatalf("seqs %v, want %v", got, tc.want)
			}
		})
	}
	// Recent(0) and Recent(n > limit) give QueryLimit (or all there is).
	if recs, _ := j.Recent(0); len(recs) != 24 {
		t.Fatalf("recent(0): %d", len(recs))
	}
}

func TestQueryLimitKeepsNewest(t *testing.T) {
	cfg := testConfig(t)
	cfg.QueryLimit = 5
	j := startJournal(t, cfg)
	for i := range 12 {
		mustAppend(t, j, Record{Time: t0.Add(time.Duration(i)), Kind: KindDecision, TID: 7, Pass: uint16(i + 1), Codes: []string{"C"}})
	}
	flush(t, j)
	for name, q := range map[string]func() ([]Record, error){
		"tid":  func() ([]Record, error) { return j.ByTID(7) },
		"code": func() ([]Record, error) { return j.ByBarcode("C") },
	} {
		recs, err := q()
		if err != nil {
			t.Fatal(err)
		}
		if got := seqsOf(recs); !equalSeqs(got, []uint64{8, 9, 10, 11, 12}) {
			t.Fatalf("%s: seqs %v, want the newest five oldest first", name, got)
		}
	}
	if recs, _ := j.Range(t0, t0.Add(time.Hour), 0); len(recs) != 5 || recs[0].Seq != 1 {
		t.Fatalf("range: %v", seqsOf(recs))
	}
}

// TestQuerySkipsDanglingIndex: an index entry whose record is gone (a
// crash cannot cause it, a hand-edited file might) is skipped, not fatal.
func TestQuerySkipsDanglingIndex(t *testing.T) {
	j := startJournal(t, testConfig(t))
	mustAppend(t, j, Record{Time: t0, Kind: KindDecision, TID: 5, Codes: []string{"Z"}})
	mustAppend(t, j, Record{Time: t0, Kind: KindDecision, TID: 5, Codes: []string{"Z"}})
	flush(t, j)
	if err := j.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRecords).Delete(seqKey(nil, 1))
	}); err != nil {
		t.Fatal(err)
	}
	for _, q := range []func() ([]Record, error){
		func() ([]Record, error) { return j.ByTID(5) },
		func() ([]Record, error) { return j.ByBarcode("Z") },
		func() ([]Record, error) { return j.Range(t0, t0.Add(time.Second), 0) },
	} {
		recs, err := q()
		if err != nil || !equalSeqs(seqsOf(recs), []uint64{2}) {
			t.Fatalf("got %v, %v", seqsOf(recs), err)
		}
	}
}

// TestByKind: the newest records of one kind, oldest first, bounded by n
// and by the records scanned; the alarm fields round-trip.
func TestByKind(t *testing.T) {
	j := startJournal(t, testConfig(t))
	for i := 0; i < 5; i++ {
		for _, r := range itemRecords("A", uint32(i+1), 1, "4209", t0.Add(time.Duration(i)*time.Minute)) {
			mustAppend(t, j, r)
		}
		mustAppend(t, j, Record{Time: t0.Add(time.Duration(i) * time.Minute), Line: "A", Kind: KindAlarm,
			Alarm: "A/estop", Severity: "critical", Cause: "acked", By: "ana", Detail: "emergency stop", Count: uint32(i)})
	}
	flush(t, j)
	all, err := j.ByKind(KindAlarm, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 5 || all[0].Count != 0 || all[4].Count != 4 {
		t.Fatalf("ByKind: %d records, want 5 oldest first: %+v", len(all), all)
	}
	if r := all[4]; r.Alarm != "A/estop" || r.Severity != "critical" || r.By != "ana" || r.Cause != "acked" {
		t.Errorf("alarm fields after the round trip: %+v", r)
	}
	if two, _ := j.ByKind(KindAlarm, 2, 0); len(two) != 2 || two[1].Count != 4 {
		t.Errorf("n=2: %+v, want the newest two", two)
	}
	// Scanning only the newest records finds only the alarms among them.
	per := len(itemRecords("A", 1, 1, "4209", t0)) + 1
	if some, _ := j.ByKind(KindAlarm, 0, per); len(some) != 1 || some[0].Count != 4 {
		t.Errorf("scan %d: %+v, want the newest alarm only", per, some)
	}
}
