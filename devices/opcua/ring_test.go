package opcua

import (
	"errors"
	"testing"
	"time"

	"sortgw/devices"
)

func kinds(evs []devices.Event) []devices.EventKind {
	var k []devices.EventKind
	for _, e := range evs {
		k = append(k, e.Kind)
	}
	return k
}

func sameKinds(a, b []devices.EventKind) bool {
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

// writeAll assigns and successfully writes n commands.
func writeAll(t *testing.T, r *ring, n int, now time.Time) []*entry {
	t.Helper()
	var es []*entry
	for i := range n {
		if !r.room() {
			t.Fatalf("no room for command %d (next %d ack %d)", i, r.next, r.ack)
		}
		e := r.assign(devices.Command{TID: uint32(1000 + i), Chute: uint16(i%7 + 1)}, now)
		e.writing, e.needsWrite = true, false
		var evs []devices.Event
		r.writeDone(e, true, now, &evs)
		if !sameKinds(kinds(evs), []devices.EventKind{devices.EventWritten}) {
			t.Fatalf("write %d: events %v", i, kinds(evs))
		}
		es = append(es, e)
	}
	return es
}

func TestRingFlowControl(t *testing.T) {
	tests := []struct {
		name      string
		ack       uint16 // PLC ACK_SEQ at the start (follows the PLC)
		wantFirst uint16
	}{
		{"cold start", 0, 1},
		{"mid range", 1000, 1001},
		{"wraps 65535 to 0", 65530, 65531},
		{"ack at 65535", 65535, 0},
	}
	now := time.Unix(0, 0)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRing(16)
			var evs []devices.Event
			r.cold(7, tc.ack, 0, now, &evs)
			if r.next != tc.wantFirst {
				t.Fatalf("first seq %d, want %d", r.next, tc.wantFirst)
			}
			es := writeAll(t, r, 15, now)
			if r.room() {
				t.Fatalf("room with 15 outstanding: never write s while (s - ack) mod 65536 >= 16")
			}
			if r.outstanding() != 15 {
				t.Fatalf("outstanding %d, want 15", r.outstanding())
			}
			for i, e := range es {
				if want := tc.wantFirst + uint16(i); e.seq != want {
					t.Fatalf("entry %d seq %d, want %d", i, e.seq, want)
				}
				if r.slot(e.seq) != int(e.seq%16) {
					t.Fatalf("slot of %d", e.seq)
				}
			}
			evs = nil
			if err := r.onAck(tc.ack+3, now, &evs); err != nil {
				t.Fatal(err)
			}
			if !sameKinds(kinds(evs), []devices.EventKind{devices.EventTaken, devices.EventTaken, devices.EventTaken}) {
				t.Fatalf("events %v", kinds(evs))
			}
			for i, e := range evs {
				if e.Seq != tc.wantFirst+uint16(i) || e.TID != uint32(1000+i) {
					t.Fatalf("taken %d: seq %d tid %d", i, e.Seq, e.TID)
				}
			}
			if !r.room() || r.outstanding() != 12 {
				t.Fatalf("room %v outstanding %d after ack", r.room(), r.outstanding())
			}
		})
	}
}

func TestRingTakenWhileWriting(t *testing.T) {
	now := time.Unix(0, 0)
	r := newRing(16)
	var evs []devices.Event
	r.cold(1, 0, 0, now, &evs)
	e := r.assign(devices.Command{TID: 5, Chute: 2}, now)
	e.writing, e.needsWrite = true, false
	// The PLC takes it before the WriteResponse arrives.
	if err := r.onAck(1, now, &evs); err != nil {
		t.Fatal(err)
	}
	if len(evs) != 0 {
		t.Fatalf("taken before written: %v", kinds(evs))
	}
	r.writeDone(e, true, now, &evs)
	if !sameKinds(kinds(evs), []devices.EventKind{devices.EventWritten, devices.EventTaken}) {
		t.Fatalf("events %v, want written then taken", kinds(evs))
	}
}

func TestRingFailedWriteKeepsSeq(t *testing.T) {
	now := time.Unix(0, 0)
	r := newRing(16)
	var evs []devices.Event
	r.cold(1, 0, 0, now, &evs)
	e := r.assign(devices.Command{TID: 5, Chute: 2}, now)
	e.writing, e.needsWrite = true, false
	r.writeDone(e, false, now, &evs)
	if len(evs) != 0 {
		t.Fatalf("events after a failed write: %v", kinds(evs))
	}
	if got := r.nextToWrite(); got != e || got.seq != 1 {
		t.Fatalf("failed command not up for a rewrite with its own seq")
	}
	e2 := r.assign(devices.Command{TID: 6}, now)
	if e2.seq != 2 {
		t.Fatalf("next seq %d", e2.seq)
	}
	if r.nextToWrite() != e {
		t.Fatal("rewrite must come before newer commands")
	}
}

func TestRingWarmAndCold(t *testing.T) {
	now := time.Unix(0, 0)
	t.Run("warm rewrites unacknowledged in place", func(t *testing.T) {
		r := newRing(16)
		var evs []devices.Event
		r.cold(9, 100, 50, now, &evs)
		writeAll(t, r, 5, now) // 101..105
		evs = nil
		if err := r.warm(102, now, &evs); err != nil {
			t.Fatal(err)
		}
		if len(evs) != 2 {
			t.Fatalf("taken events %v", kinds(evs))
		}
		var seqs []uint16
		for e := r.nextToWrite(); e != nil; e = r.nextToWrite() {
			seqs = append(seqs, e.seq)
			e.writing, e.needsWrite = true, false
			var evs []devices.Event
			r.writeDone(e, true, now, &evs)
			if len(evs) != 0 {
				t.Fatalf("rewrite emitted %v: written is reported once", kinds(evs))
			}
		}
		if len(seqs) != 3 || seqs[0] != 103 || seqs[2] != 105 {
			t.Fatalf("rewrites %v, want 103..105", seqs)
		}
		if r.next != 106 {
			t.Fatalf("next %d", r.next)
		}
	})
	t.Run("cold loses every unconfirmed command", func(t *testing.T) {
		r := newRing(16)
		var evs []devices.Event
		r.cold(9, 100, 50, now, &evs)
		writeAll(t, r, 5, now)
		evs = nil
		_ = r.onAck(105, now, &evs) // all taken
		r.confirmed(51, 1000, 1, 1, now, &evs)
		evs = nil
		r.cold(10, 0, 0, now, &evs)
		if len(evs) != 4 {
			t.Fatalf("lost %d, want 4 (taken or not, unconfirmed is lost)", len(evs))
		}
		for _, e := range evs {
			if e.Kind != devices.EventLost || e.TID == 1000 {
				t.Fatalf("bad lost event %+v", e)
			}
		}
		if r.next != 1 || r.count != 0 || r.boot != 10 {
			t.Fatalf("after cold: next %d count %d boot %d", r.next, r.count, r.boot)
		}
	})
	t.Run("late write reply after cold is ignored", func(t *testing.T) {
		r := newRing(16)
		var evs []devices.Event
		r.cold(9, 0, 0, now, &evs)
		e := r.assign(devices.Command{TID: 5}, now)
		e.writing = true
		r.cold(10, 0, 0, now, &evs)
		evs = nil
		r.writeDone(e, true, now, &evs)
		if len(evs) != 0 {
			t.Fatalf("events %v", kinds(evs))
		}
	})
	t.Run("ack beyond what was written follows the plc", func(t *testing.T) {
		r := newRing(16)
		var evs []devices.Event
		r.cold(9, 0, 0, now, &evs)
		writeAll(t, r, 2, now)
		if err := r.onAck(10, now, &evs); !errors.Is(err, ErrRingMismatch) {
			t.Fatalf("err %v", err)
		}
		if r.next != 11 || r.outstanding() != 0 {
			t.Fatalf("next %d outstanding %d", r.next, r.outstanding())
		}
	})
}

func TestRingConfirmations(t *testing.T) {
	tests := []struct {
		name       string
		from, to   uint16
		wantFirst  uint16
		wantN      int
		wantMissed int
		wantErr    bool
	}{
		{"none", 5, 5, 0, 0, 0, false},
		{"one", 5, 6, 6, 1, 0, false},
		{"full ring", 0, 16, 1, 16, 0, false},
		{"seventeen: one overwritten", 0, 17, 2, 16, 1, false},
		{"wraps", 65534, 2, 65535, 4, 0, false},
		{"backwards", 100, 90, 0, 0, 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRing(16)
			r.count = tc.from
			first, n, missed, err := r.confirmRange(tc.to)
			if (err != nil) != tc.wantErr || first != tc.wantFirst || n != tc.wantN || missed != tc.wantMissed {
				t.Fatalf("got first %d n %d missed %d err %v", first, n, missed, err)
			}
		})
	}

	t.Run("stale slot is missed", func(t *testing.T) {
		now := time.Unix(0, 0)
		r := newRing(16)
		var evs []devices.Event
		r.cold(1, 0, 0, now, &evs)
		writeAll(t, r, 3, now)
		evs = nil
		slots := []confirmSlot{
			{num: 1, tid: 1000, chute: 1, result: 1},
			{num: 18, tid: 77, chute: 3, result: 1}, // overwritten before the read
			{num: 3, tid: 1002, chute: 3, result: 4},
			{num: 4, tid: 99, chute: 1, result: 1, torn: true}, // Num changed while read
		}
		missed := r.applyConfirms(1, slots, 0, now, &evs)
		if missed != 2 {
			t.Fatalf("missed %d", missed)
		}
		want := []devices.EventKind{devices.EventMissed, devices.EventConfirmed, devices.EventConfirmed}
		if !sameKinds(kinds(evs), want) {
			t.Fatalf("events %v, want %v", kinds(evs), want)
		}
		if evs[2].TID != 1002 || evs[2].Result != 4 || evs[2].Seq != 3 {
			t.Fatalf("confirmation %+v", evs[2])
		}
		if r.count != 4 || len(r.open) != 1 || r.open[0].tid != 1001 {
			t.Fatalf("count %d open %+v", r.count, r.open)
		}
	})
}

func TestRingPrune(t *testing.T) {
	t0 := time.Unix(100, 0)
	r := newRing(16)
	var evs []devices.Event
	r.cold(1, 0, 0, t0, &evs)
	r.assign(devices.Command{TID: 1}, t0)
	r.assign(devices.Command{TID: 2}, t0.Add(time.Minute))
	if n := r.prune(t0.Add(time.Second)); n != 1 || len(r.open) != 1 || r.open[0].tid != 2 {
		t.Fatalf("pruned %d, open %+v", n, r.open)
	}
}
