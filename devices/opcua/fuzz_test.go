package opcua

import (
	"testing"
	"time"

	"sortgw/devices"
)

// FuzzRing drives the ring with whatever a PLC might report (ACK_SEQ,
// CONFIRM_COUNT and slot contents are untrusted input) between commands
// and write outcomes: it must never panic, never let more than Ring-1
// commands be outstanding, and never emit a command's Written twice.
// Each input byte pair is one step: op, value.
func FuzzRing(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 1, 1, 2, 1, 3, 1})
	f.Add([]byte{0, 0, 1, 0, 0, 0, 4, 200, 2, 255, 3, 40})
	f.Add([]byte{5, 7, 0, 0, 6, 3, 1, 9})
	f.Fuzz(func(t *testing.T, steps []byte) {
		now := time.Unix(0, 0)
		r := newRing(16)
		var evs []devices.Event
		r.cold(1, 0, 0, now, &evs)
		var writing []*entry
		written := map[uint16]int{}
		var plcAck, plcCount uint16
		for i := 0; i+1 < len(steps); i += 2 {
			op, v := steps[i]%7, steps[i+1]
			evs = evs[:0]
			switch op {
			case 0: // a command goes out if there is room
				if r.room() {
					e := r.assign(devices.Command{TID: uint32(v) + 1, Chute: uint16(v)}, now)
					e.writing, e.needsWrite = true, false
					writing = append(writing, e)
				}
			case 1, 2: // the oldest write in flight answers, good or not
				if len(writing) > 0 {
					r.writeDone(writing[0], op == 1, now, &evs)
					writing = writing[1:]
				}
			case 3: // ACK_SEQ moves (a PLC may report anything)
				plcAck += uint16(v % 20)
				_ = r.onAck(plcAck, now, &evs)
			case 4: // CONFIRM_COUNT moves; the slots hold what they hold
				plcCount += uint16(v % 40)
				first, n, miss, _ := r.confirmRange(plcCount)
				slots := make([]confirmSlot, n)
				for k := range slots {
					slots[k] = confirmSlot{num: first + uint16(k) + uint16(v%3)*16, tid: uint32(k), torn: v%5 == 0}
				}
				r.applyConfirms(first, slots, miss, now, &evs)
			case 5: // warm reconnect
				_ = r.warm(plcAck, now, &evs)
			case 6: // cold restart
				plcAck, plcCount = uint16(v), uint16(v)
				r.cold(uint16(v)+2, plcAck, plcCount, now, &evs)
				writing = writing[:0]
			}
			if r.outstanding() > 15 {
				t.Fatalf("step %d: %d outstanding", i/2, r.outstanding())
			}
			for _, e := range evs {
				if e.Kind == devices.EventWritten {
					written[e.Seq]++
					if written[e.Seq] > 1 && op != 6 {
						// A seq is written once per life of the ring; only
						// a cold restart starts the numbers again.
						t.Fatalf("step %d: seq %d written twice", i/2, e.Seq)
					}
				}
			}
			if op == 6 {
				clear(written)
			}
		}
	})
}
