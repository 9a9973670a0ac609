package journal

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	bolt "go.etcd.io/bbolt"

	"sortgw/sortplan"
)

func TestNormaliseCode(t *testing.T) {
	cases := []struct{ in, want string }{
		{"]C142024280", "42024280"},
		{"]d2420902101234\x1d92055901", "42090210123492055901"},
		{"]Q3420902101234\u241d92055901", "42090210123492055901"},
		{"(420)902101234(92)055901", "42090210123492055901"},
		{"\x1d42090210", "42090210"},
		{"]C0 1z999aa1-0123 4567 84", "1Z999AA10123456784"},
		{"]C1]d2TBA1", "TBA1"},
		{"]C1", ""},
		{"]]C1", "]]C1"},        // not a symbology identifier: ']' is no letter
		{"]1A", "]1A"},          // nor is a digit code character
		{"\xe2\x90 \x9dX", "X"}, // a ␝ joined by dropping a blank goes too
		{"PKG-42", "PKG42"},
		{"tba123", "TBA123"},
		{"", ""},
	}
	for _, tc := range cases {
		if got := NormaliseCode(tc.in); got != tc.want {
			t.Errorf("NormaliseCode(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// FuzzNormaliseCode: the search form is stable (normalising it again
// changes nothing), carries no separator, blank or lower-case letter, and
// does not depend on a symbology identifier or on where GS sits.
func FuzzNormaliseCode(f *testing.F) {
	for _, s := range []string{"]C142024280", "]d2420902101234\x1d9205590123456789012345", "(00)006141410000000017",
		"1Z999AA10123456784", "TBA123456789012", "]C1]C1", "\u241d]e0x", "\xe2\x90 \x9d", "90210-1234", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n := NormaliseCode(s)
		if again := NormaliseCode(n); again != n {
			t.Fatalf("NormaliseCode(%q) = %q, again %q", s, n, again)
		}
		if i := strings.IndexAny(n, "\x1d \t\r\n-()\u241dabcdefghijklmnopqrstuvwxyz"); i >= 0 {
			t.Fatalf("NormaliseCode(%q) = %q keeps %q", s, n, n[i])
		}
		if len(n) >= 3 && n[0] == ']' && isAlpha(n[1]) && isAlnum(n[2]) {
			t.Fatalf("NormaliseCode(%q) = %q starts with a symbology identifier", s, n)
		}
		if p := NormaliseCode("]C1" + s); p != n {
			t.Fatalf("with ]C1 in front %q, without %q", p, n)
		}
		if len(s) > 0 {
			mid := len(s) / 2
			if g := NormaliseCode(s[:mid] + "\x1d" + s[mid:]); g != n {
				t.Fatalf("with GS at %d %q, without %q", mid, g, n)
			}
		}
	})
}

// testLabel is a label of one of the four kinds the index knows, made
// from a TID: the code as scanned, its package id and its ZIP5.
type testLabel struct {
	code, id, zip, dest string
}

func labelFor(tid uint32) testLabel {
	zip := fmt.Sprintf("%05d", 10000+tid%90000)
	switch tid % 4 {
	case 0: // UPS 1Z, no postal code on it: the ZIP comes from the manifest's destination
		body := fmt.Sprintf("999AA1%09d", tid)
		id := "1Z" + body + string(sortplan.UPSCheckDigit(body))
		return testLabel{code: "]C0" + id, id: id, zip: zip, dest: zip}
	case 1: // USPS IMpb in GS1-128: 420 ZIP, then the tracking number
		body := fmt.Sprintf("92055901%013d", tid)
		id := body + string(sortplan.GS1CheckDigit(body))
		return testLabel{code: "]C1420" + zip + "\x1d" + id, id: id, zip: zip, dest: zip}
	case 2: // SSCC and ZIP+4 in GS1 DataMatrix
		body := fmt.Sprintf("0061414%010d", tid)
		id := body + string(sortplan.GS1CheckDigit(body))
		return testLabel{code: "]d200" + id + "420" + zip + "1234", id: id, zip: zip, dest: zip + "1234"}
	default: // Amazon TBA
		id := fmt.Sprintf("TBA%012d", tid)
		return testLabel{code: id, id: id, zip: zip, dest: zip}
	}
}

// passRecords is one pass: its decision and, unless o is OutcomeNone, its
// outcome.
func passRecords(line string, tid uint32, pass uint16, at time.Time, o Outcome) []Record {
	l := labelFor(tid)
	rs := []Record{{Time: at, Line: line, Kind: KindDecision, TID: tid, Pass: pass, Scanner: "s1",
		Codes: []string{l.code}, Dest: l.dest, Chute: 12, Route: "R1", PlanVersion: 7}}
	if o != OutcomeNone {
		rs = append(rs, Record{Time: at.Add(time.Second), Line: line, Kind: KindOutcome, TID: tid, Pass: pass,
			Codes: []string{l.code}, Dest: l.dest, Chute: 12, Result: 1, Outcome: o})
	}
	return rs
}

func tidsOf(p ItemPage) []uint32 {
	var out []uint32
	for _, r := range p.Passes {
		out = append(out, r.First().TID)
	}
	return out
}

func mustItems(t *testing.T, j *Journal, q ItemQuery) ItemPage {
	t.Helper()
	p, err := j.Items(q)
	if err != nil {
		t.Fatalf("items %+v: %v", q, err)
	}
	return p
}

func TestItemSearchKeys(t *testing.T) {
	j := startJournal(t, testConfig(t))
	for tid := uint32(100); tid < 108; tid++ {
		for _, r := range passRecords("L1", tid, 1, t0.Add(time.Duration(tid)*time.Second), OutcomeDiverted) {
			mustAppend(t, j, r)
		}
	}
	// A read that never became a pass, and a recirculated item's second
	// pass, on another line.
	mustAppend(t, j, Record{Time: t0.Add(time.Hour), Line: "L2", Kind: KindOutcome, TID: 200,
		Codes: []string{"]C1420" + "55555"}, Outcome: OutcomeNotSent, Detail: "tracking table full"})
	for _, r := range passRecords("L2", 101, 2, t0.Add(2*time.Hour), OutcomeNone) {
		mustAppend(t, j, r)
	}
	flush(t, j)
	ups, impb, sscc, tba := labelFor(100), labelFor(101), labelFor(102), labelFor(103)
	cases := []struct {
		name string
		q    string
		line string
		want []uint32
	}{
		{"tid", "104", "", []uint32{104}},
		{"tid on every line, newest first", "101", "", []uint32{101, 101}},
		{"tid on one line", "101", "L1", []uint32{101}},
		{"raw code as scanned", impb.code, "", []uint32{101, 101}},
		{"code without symbology id", impb.code[3:], "", []uint32{101, 101}},
		{"code without symbology id and GS", strings.ReplaceAll(impb.code[3:], "\x1d", ""), "", []uint32{101, 101}},
		{"code as the page shows GS", strings.ReplaceAll(impb.code[3:], "\x1d", "\u241d"), "", []uint32{101, 101}},
		{"code in GS1 human-readable form", "(00)" + sscc.id + "(420)" + sscc.dest, "", []uint32{102}},
		{"ups 1z", ups.id, "", []uint32{100}},
		{"ups 1z typed in lower case with blanks", strings.ToLower(ups.id[:6] + " " + ups.id[6:]), "", []uint32{100}},
		{"impb tracking number", impb.id, "", []uint32{101, 101}},
		{"impb with its routing prefix", "420" + impb.zip + impb.id, "", []uint32{101, 101}},
		{"sscc", sscc.id, "", []uint32{102}},
		{"sscc with its AI", "00" + sscc.id, "", []uint32{102}},
		{"tba", tba.id, "", []uint32{103}},
		{"zip5 from the label", impb.zip, "", []uint32{101, 101}},
		{"zip5 of a zip+4", sscc.zip, "", []uint32{102}},
		{"zip+4 with hyphen", sscc.zip + "-1234", "", []uint32{102}},
		{"zip from the destination only (1Z)", ups.zip, "", []uint32{100}},
		{"lone outcome by its zip", "55555", "", []uint32{200}},
		{"lone outcome by tid", "200", "L2", []uint32{200}},
		{"nothing", "1Z999AA10000000000", "", nil},
		{"tid nowhere", "999", "", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := mustItems(t, j, ItemQuery{Q: tc.q, Line: tc.line})
			if got := tidsOf(p); !slices.Equal(got, tc.want) || p.Next != 0 {
				t.Fatalf("q %q: tids %v next %d, want %v", tc.q, got, p.Next, tc.want)
			}
		})
	}
	// The rows join decision and outcome.
	p := mustItems(t, j, ItemQuery{Q: "101"})
	if d, o := p.Passes[0].Decision, p.Passes[0].Outcome; d == nil || d.Line != "L2" || d.Pass != 2 || o != nil {
		t.Fatalf("open second pass: %+v %+v", d, o)
	}
	if d, o := p.Passes[1].Decision, p.Passes[1].Outcome; d == nil || o == nil || o.Outcome != OutcomeDiverted || o.Pass != 1 || o.Seq <= d.Seq {
		t.Fatalf("first pass: %+v %+v", d, o)
	}
	if lone := mustItems(t, j, ItemQuery{Q: "200"}).Passes[0]; lone.Decision != nil || lone.Outcome == nil || lone.Outcome.Outcome != OutcomeNotSent {
		t.Fatalf("lone outcome row %+v", lone)
	}
	checkIndexes(t, j)
}

func TestItemPaging(t *testing.T) {
	j := startJournal(t, testConfig(t))
	const n = 120
	for i := range n {
		tid := uint32(4*i + 1) // every one an IMpb label...
		for _, r := range passRecords("L1", tid, 1, t0.Add(time.Duration(i)*time.Second), OutcomeDiverted) {
			r.Dest = "30301" // ...to one destination
			mustAppend(t, j, r)
		}
	}
	flush(t, j)
	for _, q := range []string{"", "30301"} {
		var got []uint32
		var before uint64
		pages := 0
		for {
			p := mustItems(t, j, ItemQuery{Q: q, Before: before, Limit: 50})
			pages++
			if len(p.Passes) > 50 {
				t.Fatalf("page of %d rows", len(p.Passes))
			}
			got = append(got, tidsOf(p)...)
			if p.Next == 0 {
				break
			}
			if p.Next >= before && before != 0 {
				t.Fatalf("cursor went from %d to %d", before, p.Next)
			}
			before = p.Next
		}
		if pages != 3 || len(got) != n {
			t.Fatalf("q %q: %d pages, %d rows", q, pages, len(got))
		}
		for i, tid := range got {
			if want := uint32(4*(n-1-i) + 1); tid != want {
				t.Fatalf("q %q: row %d is tid %d, want %d", q, i, tid, want)
			}
		}
	}
	// The limit is capped by the journal's query limit.
	j2 := startJournal(t, Config{Path: j.cfg.Path + "2", QueryLimit: 7})
	for i := range 10 {
		for _, r := range passRecords("L1", uint32(i+1), 1, t0, OutcomeDiverted) {
			mustAppend(t, j2, r)
		}
	}
	flush(t, j2)
	if p := mustItems(t, j2, ItemQuery{Limit: 500}); len(p.Passes) != 7 || p.Next == 0 {
		t.Fatalf("capped page: %d rows, next %d", len(p.Passes), p.Next)
	}
}

func TestItemExceptions(t *testing.T) {
	j := startJournal(t, testConfig(t))
	outcomes := []Outcome{OutcomeDiverted, OutcomeRecirculatedFull, OutcomeDivertedOther, OutcomeNone,
		OutcomeHostLate, OutcomeTimeout, OutcomeDiverted}
	for i, o := range outcomes {
		for _, r := range passRecords("L1", uint32(i+1), 1, t0.Add(time.Duration(i)*time.Second), o) {
			mustAppend(t, j, r)
		}
	}
	flush(t, j)
	if got := tidsOf(mustItems(t, j, ItemQuery{Exceptions: true})); !slices.Equal(got, []uint32{6, 5, 2}) {
		t.Fatalf("exceptions: %v", got)
	}
	if got := tidsOf(mustItems(t, j, ItemQuery{})); !slices.Equal(got, []uint32{7, 6, 5, 4, 3, 2, 1}) {
		t.Fatalf("all: %v", got)
	}
	// A rare exception far back is found on the first page: exceptions
	// have their own index entries, nothing scans the sorted passes.
	j2 := startJournal(t, Config{Path: j.cfg.Path + "2", QueryLimit: 100}) // scans of 1000 entries
	const n = 2500
	for i := range n {
		o := OutcomeDiverted
		if i == 3 {
			o = OutcomeRejected
		}
		for _, r := range passRecords("L1", uint32(i+1), 1, t0, o) {
			mustAppend(t, j2, r)
		}
	}
	flush(t, j2)
	if p := mustItems(t, j2, ItemQuery{Exceptions: true}); !slices.Equal(tidsOf(p), []uint32{4}) || p.Next != 0 {
		t.Fatalf("exceptions over %d passes: %v next %d", n, tidsOf(p), p.Next)
	}
	// With a line filter too, and a lone read that was never a pass.
	mustAppend(t, j2, Record{Line: "L2", Kind: KindOutcome, TID: 9, Outcome: OutcomeNotSent})
	flush(t, j2)
	if got := tidsOf(mustItems(t, j2, ItemQuery{Exceptions: true, Line: "L2"})); !slices.Equal(got, []uint32{9}) {
		t.Fatalf("L2 exceptions %v", got)
	}
	if got := tidsOf(mustItems(t, j2, ItemQuery{Exceptions: true})); !slices.Equal(got, []uint32{9, 4}) {
		t.Fatalf("all exceptions %v", got)
	}
	checkIndexes(t, j2)
}

// TestItemSearchPrune: retention removes the search entries with their
// records; what is left is found, what went is not.
func TestItemSearchPrune(t *testing.T) {
	clock := &testClock{}
	clock.Set(t0)
	cfg := testConfig(t)
	cfg.Now = clock.Now
	cfg.MaxBytes = -1
	cfg.PruneBatch = 5
	cfg.PruneInterval = time.Hour
	j := startJournal(t, cfg)
	for d := range 40 {
		at := t0.Add(-time.Duration(39-d) * 24 * time.Hour)
		for _, r := range passRecords("L", uint32(d+1), 1, at, OutcomeRejected) {
			mustAppend(t, j, r)
		}
	}
	flush(t, j)
	if _, err := j.Prune(context.Background()); err != nil {
		t.Fatal(err)
	}
	checkIndexes(t, j)
	for d := range 40 {
		tid := uint32(d + 1)
		l := labelFor(tid)
		want := 1
		if d < 9 {
			want = 0
		}
		for _, q := range []string{l.id, l.code, fmt.Sprint(tid)} {
			if got := len(mustItems(t, j, ItemQuery{Q: q}).Passes); got != want {
				t.Fatalf("day %d: q %q found %d", d, q, got)
			}
		}
	}
	if got := bucketCounts(t, j)["by-key"]; got == 0 {
		t.Fatalf("no search entries left")
	}
}

// TestSearchIndexBuiltAtOpen: a journal written before the search index
// existed (no by-key bucket, no fingerprint) gets it at Open, and one
// written under another derivation is rebuilt without its stale entries.
func TestSearchIndexBuiltAtOpen(t *testing.T) {
	cfg := testConfig(t)
	j := openJournal(t, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- j.Run(ctx) }()
	for i := range 30 {
		for _, r := range passRecords("L", uint32(i+1), 1, t0, OutcomeDiverted) {
			mustAppend(t, j, r)
		}
	}
	flush(t, j)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	j.Close()
	edit := func(f func(tx *bolt.Tx) error) {
		t.Helper()
		db, err := bolt.Open(cfg.Path, 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Update(f); err != nil {
			t.Fatal(err)
		}
		db.Close()
	}
	check := func() {
		t.Helper()
		var logged bytes.Buffer
		j, err := Open(cfg, zerolog.New(&logged))
		if err != nil {
			t.Fatal(err)
		}
		defer j.Close()
		if l := logged.String(); !strings.Contains(l, `"message":"journal search index built"`) || !strings.Contains(l, `"records":60`) || !strings.Contains(l, `"took":`) {
			t.Fatalf("open logged %s", l)
		}
		checkIndexes(t, j)
		for tid := uint32(1); tid <= 30; tid++ {
			if p := mustItems(t, j, ItemQuery{Q: labelFor(tid).id}); len(p.Passes) != 1 || p.Passes[0].Decision.TID != tid {
				t.Fatalf("tid %d not found by package id: %v", tid, tidsOf(p))
			}
		}
	}
	edit(func(tx *bolt.Tx) error { // the file as an older build left it
		if err := tx.DeleteBucket(bucketSearch); err != nil {
			return err
		}
		return tx.Bucket(bucketMeta).Delete(keySearchPrint)
	})
	check()
	edit(func(tx *bolt.Tx) error { // another derivation, with entries this one would not write
		if err := tx.Bucket(bucketSearch).Put(searchEntry(nil, searchKey{keyPackage, "STALE"}, 3), nil); err != nil {
			return err
		}
		if err := tx.Bucket(bucketCode).Put(codeKey(nil, "STALE", 3), nil); err != nil {
			return err
		}
		return tx.Bucket(bucketMeta).Put(keySearchPrint, []byte("another build"))
	})
	check()
}

// checkIndexes walks the journal both ways: every record has each index
// entry it should have, and every index entry points at a record that
// should have it. (The open bucket is not an index of records.)
func checkIndexes(t *testing.T, j *Journal) {
	t.Helper()
	err := j.db.View(func(tx *bolt.Tx) error {
		want := map[string]map[string]bool{}
		for _, b := range [][]byte{bucketTID, bucketCode, bucketTime, bucketSearch} {
			want[string(b)] = map[string]bool{}
		}
		recs := 0
		var exc exceptionTracker
		err := tx.Bucket(bucketRecords).ForEach(func(k, v []byte) error {
			recs++
			var r Record
			if err := decodeRecord(v, &r); err != nil {
				return fmt.Errorf("record %x: %w", k, err)
			}
			want[string(bucketTime)][string(timeKey(nil, r.Time, r.Seq))] = true
			if r.TID != 0 {
				want[string(bucketTID)][string(seqKey(tidPrefix(nil, r.TID), r.Seq))] = true
			}
			for _, c := range r.Codes {
				want[string(bucketCode)][string(codeKey(nil, c, r.Seq))] = true
			}
			for _, sk := range appendSearchKeys(nil, &r) {
				want[string(bucketSearch)][string(searchEntry(nil, sk, r.Seq))] = true
			}
			exc.observe(&r, func(seq uint64) { want[string(bucketSearch)][string(exceptionKey(nil, seq))] = true })
			return nil
		})
		if err != nil {
			return err
		}
		for name, keys := range want {
			have := 0
			err := tx.Bucket([]byte(name)).ForEach(func(k, _ []byte) error {
				have++
				if !keys[string(k)] {
					return fmt.Errorf("%s entry %x points at no record that has it (seq %d)", name, k, seqFromIndexKey(k))
				}
				return nil
			})
			if err != nil {
				return err
			}
			if have != len(keys) {
				return fmt.Errorf("%s has %d entries, the %d records want %d", name, have, recs, len(keys))
			}
		}
		if fp := tx.Bucket(bucketMeta).Get(keySearchPrint); !bytes.Equal(fp, searchFingerprint()) {
			return fmt.Errorf("search fingerprint %x, want %x", fp, searchFingerprint())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestItemJoinTIDReused: a TID handed out again (a PLC restart) starts a
// new item; the old pass that never got an outcome does not take the new
// one's.
func TestItemJoinTIDReused(t *testing.T) {
	j := startJournal(t, testConfig(t))
	for _, r := range passRecords("L1", 500, 1, t0, OutcomeNone) {
		mustAppend(t, j, r)
	}
	for _, r := range passRecords("L1", 500, 1, t0.Add(time.Minute), OutcomeRejected) {
		mustAppend(t, j, r)
	}
	flush(t, j)
	for _, q := range []string{"500", ""} { // through the TID index, and the recent list
		p := mustItems(t, j, ItemQuery{Q: q})
		if len(p.Passes) != 2 || p.Passes[0].Outcome == nil || p.Passes[1].Outcome != nil {
			t.Fatalf("q %q: rows %+v", q, p.Passes)
		}
	}
	if got := tidsOf(mustItems(t, j, ItemQuery{Q: "500", Exceptions: true})); len(got) != 1 {
		t.Fatalf("exceptions %v", got)
	}
}

// TestItemPagingSourcesAgree: a query that walks several indexes (here
// "30301" is a TID and a ZIP) pages without skipping rows when one index
// stops at its scan bound far above the rows another one finds.
func TestItemPagingSourcesAgree(t *testing.T) {
	j := startJournal(t, Config{Path: testConfig(t).Path, QueryLimit: 100}) // scans of 1000 entries
	zipPass := passRecords("L1", 7, 1, t0, OutcomeRejected)
	for i := range zipPass {
		zipPass[i].Dest = "30301"
		mustAppend(t, j, zipPass[i])
	}
	for pass := uint16(1); pass <= 1500; pass++ {
		o := OutcomeDiverted
		if pass == 1 {
			o = OutcomeRecirculatedFull
		}
		for _, r := range passRecords("L1", 30301, pass, t0, o) {
			mustAppend(t, j, r)
		}
	}
	flush(t, j)
	var got []string
	var before uint64
	for {
		p := mustItems(t, j, ItemQuery{Q: "30301", Exceptions: true, Before: before})
		for _, r := range p.Passes {
			got = append(got, fmt.Sprintf("%d/%d", r.First().TID, r.First().Pass))
		}
		if p.Next == 0 {
			break
		}
		before = p.Next
	}
	if want := []string{"30301/1", "7/1"}; !slices.Equal(got, want) {
		t.Fatalf("pages gave %v, want %v", got, want)
	}
}
