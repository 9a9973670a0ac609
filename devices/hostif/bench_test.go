package hostif

import (
	"testing"
	"time"

	"sortgw/devices"
)

// BenchmarkCoreCommand runs one command through the whole core per
// iteration (Enqueue, NextWrite, WriteDone, Block with its ACK_SEQ,
// Confirms), as the table's first case does: the per-item path must not
// allocate once the core has warmed up (run with -benchmem).
func BenchmarkCoreCommand(b *testing.B) {
	c, err := New(Config{})
	if err != nil {
		b.Fatal(err)
	}
	now := time.Unix(1000, 0)
	evs := make([]devices.Event, 0, 16)
	plc := Block{BootID: 7, Heartbeat: 1}
	slots := make([]Slot, c.cfg.ConfirmRing)
	c.Connected(now)
	if _, err := c.Block(&plc, now, &evs); err != nil {
		b.Fatal(err)
	}
	tid := uint32(0)
	b.ReportAllocs()
	for b.Loop() {
		tid++
		now = now.Add(time.Millisecond)
		plc.Heartbeat++
		if err := c.Enqueue(devices.Command{TID: tid, Chute: 5, Deadline: now.Add(time.Second)}, now); err != nil {
			b.Fatal(err)
		}
		w, ok := c.NextWrite(now, &evs)
		if !ok {
			b.Fatal("no write")
		}
		c.WriteDone(w, true, now, &evs)
		plc.AckSeq = w.Seq
		plc.ConfirmCount++
		slots[int(plc.ConfirmCount)%len(slots)] = Slot{Num: plc.ConfirmCount, TID: tid, Chute: 5, Result: 1, Read: true}
		if _, err := c.Block(&plc, now, &evs); err != nil {
			b.Fatal(err)
		}
		if _, err := c.Confirms(plc.ConfirmCount, slots, now, &evs); err != nil {
			b.Fatal(err)
		}
		if len(evs) != 3 {
			b.Fatalf("events %v", evs)
		}
		evs = evs[:0]
	}
}
