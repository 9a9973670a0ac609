package gateway

import (
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
