package fieldbussim

import (
	"errors"
	"testing"

	"github.com/rs/zerolog"
)

// TestTruthLimit: past its limit the ground truth drops its oldest finished
// records (counted in Evicted) and keeps at most the limit, never an item
// still on the belt, and its counts still cover every item.
func TestTruthLimit(t *testing.T) {
	tr := newTruth(epoch)
	tr.limit = 100
	const onBelt = 7 // the first items never finish: they must survive
	var recs []*ItemRecord
	for tid := uint32(1); tid <= 1000; tid++ {
		r := tr.inductedItem(tid, Label{Destination: "x"}, epoch)
		recs = append(recs, r)
		tr.newPass(r, 1, epoch)
		if tid > onBelt {
			tr.itemDone(r, "sorted", 1)
		}
		if len(tr.items) > tr.limit {
			t.Fatalf("after tid %d: %d records kept, limit %d", tid, len(tr.items), tr.limit)
		}
	}
	rep := tr.report(onBelt, func(tid uint32) bool { return tid <= onBelt })
	if rep.Kept > rep.Limit || rep.Kept != len(rep.Items) || rep.Limit != 100 {
		t.Fatalf("kept %d (items %d), limit %d", rep.Kept, len(rep.Items), rep.Limit)
	}
	if rep.Evicted == 0 || rep.Evicted+rep.Kept != 1000 {
		t.Fatalf("evicted %d + kept %d, want 1000 items in all", rep.Evicted, rep.Kept)
	}
	if rep.Counts.ItemsSorted != 1000-onBelt || rep.Inducted != 1000 {
		t.Fatalf("counts: sorted %d, inducted %d: the counts must cover evicted items", rep.Counts.ItemsSorted, rep.Inducted)
	}
	for tid := uint32(1); tid <= onBelt; tid++ {
		if _, ok := tr.items[tid]; !ok {
			t.Fatalf("tid %d still on the belt was dropped", tid)
		}
	}
	if _, ok := tr.items[1000]; !ok {
		t.Fatal("the newest record was dropped")
	}
	// Items over the limit while on the belt go once they finish, with no
	// new item inducted after them.
	tr2 := newTruth(epoch)
	tr2.limit = 10
	var belt []*ItemRecord
	for tid := uint32(1); tid <= 30; tid++ {
		belt = append(belt, tr2.inductedItem(tid, Label{}, epoch))
	}
	if len(tr2.items) != 30 {
		t.Fatalf("%d records with 30 items on the belt, want all 30 kept", len(tr2.items))
	}
	for _, r := range belt {
		tr2.itemDone(r, "sorted", 1)
	}
	if len(tr2.items) > tr2.limit {
		t.Fatalf("%d records after every item finished, limit %d", len(tr2.items), tr2.limit)
	}
}

// TestTruthLimitConfig: the limit is a setting with a default and a floor.
func TestTruthLimitConfig(t *testing.T) {
	c := Config{}
	if err := c.Validate(); err != nil || c.TruthLimit != defaultTruthLimit {
		t.Fatalf("default: %v, limit %d", err, c.TruthLimit)
	}
	c = Config{TruthLimit: 5}
	if err := c.Validate(); !errors.Is(err, ErrConfig) {
		t.Fatalf("limit 5: %v, want a config error", err)
	}
	s, err := New(Config{TruthLimit: 50, DisableScanners: true}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if _, limit := s.TruthSize(); limit != 50 { // nothing on the belt
		t.Fatalf("sim's truth limit %d, want the config's 50", limit)
	}
}
