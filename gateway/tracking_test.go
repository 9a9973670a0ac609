package gateway

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestTrackingBound: the item table never holds more than Capacity items;
// a full table drops its oldest finished pass before Remember elapsed and
// counts it (Totals.ForgottenEarly, sortgw_tracking_forgotten_total), and
// the item's next pass then counts from 1, while a remembered item's
// counts on. Every pass keeps its outcome record.
func TestTrackingBound(t *testing.T) {
	const capacity, n = 16, 20
	h := newHarness(t, true, func(c *LineConfig) { c.Capacity = capacity; c.Remember = time.Hour })
	for tid := uint32(1); tid <= n; tid++ {
		h.read(tid, zip420("90210"))
		h.cmd()
		h.confirm(tid, 0, ResultRecircFull)
		h.outcome(tid, 1)
	}
	const early = n - capacity
	waitFor(t, "snapshot with every outcome", func() bool { return h.l.Snapshot().Totals.Outcomes == n })
	tot := h.l.Snapshot().Totals
	if tot.Tracked > capacity || tot.TrackCapacity != capacity || tot.ForgottenEarly != early {
		t.Fatalf("tracked %d of %d, forgotten early %d; want at most %d, forgotten %d", tot.Tracked, tot.TrackCapacity, tot.ForgottenEarly, capacity, early)
	}
	if v := testutil.ToFloat64(h.l.met.forgotten); v != early {
		t.Fatalf("sortgw_tracking_forgotten_total %v, want %d", v, early)
	}
	// TID 1 was forgotten: its second sighting is pass 1 again. TID n is
	// remembered: pass 2.
	for _, c := range []struct {
		tid  uint32
		pass uint16
	}{{1, 1}, {n, 2}} {
		h.read(c.tid, zip420("90210"))
		h.cmd()
		h.confirm(c.tid, 0, ResultRecircFull)
		if got := h.outcome(c.tid, 2)[1].Pass; got != c.pass {
			t.Fatalf("tid %d: second sighting is pass %d, want %d", c.tid, got, c.pass)
		}
	}
}

// TestManifestBounds: closed container and van manifests past KeepManifests
// and KeepVans leave memory, counted (Totals.ManifestsDropped,
// VansDropped), and the snapshot shows what is kept within its bound.
func TestManifestBounds(t *testing.T) {
	j, _ := openJournal(t, filepath.Join(t.TempDir(), "j.db"))
	clock := &dockClock{}
	clock.set(time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC))
	c := newConsolLine(t, j, clock, func(cfg *LineConfig) { cfg.KeepManifests, cfg.KeepVans = 2, 1 })
	ctx := context.Background()
	tid := uint32(0)
	fill := func() { // three parcels: R1's container capacity closes it
		for range 3 {
			tid++
			c.sort(tid, "10115", 1)
		}
	}
	depart := func(van string, at time.Time, ids ...string) {
		for _, id := range ids {
			if _, err := c.l.LoadContainer(ctx, id, van, "ann", "api"); err != nil {
				t.Fatalf("load %s: %v", id, err)
			}
		}
		clock.set(at)
		if _, ok, err := c.l.Depart(ctx, "R1", van, "bob", "api", time.Now()); err != nil || !ok {
			t.Fatalf("depart %s: %v %v", van, ok, err)
		}
	}
	fill()
	fill()
	depart("V1", time.Date(2026, 12, 4, 12, 1, 0, 0, time.UTC), "L1-C1-1", "L1-C1-2")
	fill()
	fill()
	depart("V2", time.Date(2026, 12, 4, 18, 1, 0, 0, time.UTC), "L1-C1-3", "L1-C1-4")
	fill()
	waitFor(t, "snapshot after the last booking", func() bool { return c.l.Snapshot().Totals.Sorted == uint64(tid) })
	tot := c.l.Snapshot().Totals
	if tot.Manifests > 2 || tot.KeepManifests != 2 || tot.ManifestsDropped != 3 {
		t.Errorf("manifests kept %d of %d, dropped %d; want at most 2, 3 dropped", tot.Manifests, tot.KeepManifests, tot.ManifestsDropped)
	}
	if tot.Vans != 1 || tot.KeepVans != 1 || tot.VansDropped != 1 {
		t.Errorf("vans kept %d of %d, dropped %d; want 1, 1 dropped", tot.Vans, tot.KeepVans, tot.VansDropped)
	}
}
