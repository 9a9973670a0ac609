package hostif

import (
	"testing"
	"time"

	"sortgw/devices"
)

// Command stages as the fuzz model sees them from the events.
const (
	stQueued = iota
	stPut    // a Write was handed out, nothing reported yet
	stWritten
	stTaken
	stDone // terminal
)

type cmdModel struct {
	tid        uint32
	stage      int
	put        bool
	seq        uint16
	mayRewrite bool // a failed write or a reconnect since the last put
	order      int  // assignment order (first put)
}

// FuzzCore drives one Core with random PLC block sequences (ACK_SEQ,
// CONFIRM_COUNT, slot contents, boot ids, fault codes, heartbeats), write
// failures, reconnects and time steps, and checks the interface's
// invariants on what it emits:
//
//   - every accepted command gets exactly one terminal event: Late (never
//     handed out for writing), Confirmed (the first confirmation whose TID
//     is an open command; any other confirmation is unmatched and closes
//     nothing), Lost, or closure by missed accounting: an EventMissed of
//     Count n closes the n oldest open commands (in assignment order) whose
//     EventTaken was emitted;
//   - per command, in order: Written, then Taken, then the terminal event
//     (Lost may come at any stage once it was handed out, Late only before);
//   - a command is handed out for writing again only after a failed write
//     or a reconnect; never after it was taken or ended;
//   - a new command takes the next SEQ, and never ring or more past
//     ACK_SEQ.
//
// TIDs are unique, so a confirmation names its command.
func FuzzCore(f *testing.F) {
	f.Add([]byte{0, 0, 1, 0, 4, 1, 1, 5, 1, 1})
	f.Add([]byte{0, 0, 0, 0, 2, 0, 3, 0, 4, 2, 7, 0, 8, 0, 4, 0, 3, 1})
	f.Add([]byte{0, 0, 1, 0, 6, 5, 4, 200, 9, 3, 10, 0, 4, 3, 11, 4})
	f.Add([]byte{0, 0, 0, 9, 2, 0, 4, 1, 5, 17, 4, 2, 7, 0, 8, 0, 4, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := New(Config{Ring: 8, MaxUnconfirmed: 24, QueueSize: 32})
		if err != nil {
			t.Fatal(err)
		}
		now := time.Unix(0, 0)
		var (
			plc     = Block{BootID: 1}
			slots   = make([]Slot, 8)
			cmds    = map[uint32]*cmdModel{}
			byOrder []*cmdModel
			held    []Write
			evs     []devices.Event
			nextTID uint32
			orders  int
		)
		for j := range slots {
			slots[j].Read = true
		}
		check := func(step int) {
			for _, e := range evs {
				if e.Kind == devices.EventMissed {
					left := e.Count
					for _, m := range byOrder {
						if left == 0 {
							break
						}
						if m.stage == stTaken {
							m.stage = stDone
							left--
						}
					}
					continue
				}
				m := cmds[e.TID]
				if e.Kind == devices.EventConfirmed && (m == nil || m.stage == stDone || !m.put) {
					continue // unmatched: no open command with a seq has this TID
				}
				if m == nil {
					t.Fatalf("step %d: %s for unknown tid %d", step, e.Kind, e.TID)
				}
				if m.stage == stDone {
					t.Fatalf("step %d: %s for tid %d after its terminal event", step, e.Kind, e.TID)
				}
				switch e.Kind {
				case devices.EventLate:
					if m.put {
						t.Fatalf("step %d: tid %d late after it was handed out", step, e.TID)
					}
					m.stage = stDone
				case devices.EventWritten:
					if !m.put || m.stage >= stWritten {
						t.Fatalf("step %d: tid %d written at stage %d", step, e.TID, m.stage)
					}
					m.stage = stWritten
				case devices.EventTaken:
					if m.stage != stWritten {
						t.Fatalf("step %d: tid %d taken at stage %d", step, e.TID, m.stage)
					}
					m.stage = stTaken
				case devices.EventConfirmed:
					if m.stage != stTaken {
						t.Fatalf("step %d: tid %d confirmed at stage %d", step, e.TID, m.stage)
					}
					m.stage = stDone
				case devices.EventLost:
					if !m.put {
						t.Fatalf("step %d: tid %d lost without a seq", step, e.TID)
					}
					m.stage = stDone
				}
			}
			evs = evs[:0]
			if c.Outstanding() >= c.cfg.Ring {
				t.Fatalf("step %d: %d outstanding, ring %d", step, c.Outstanding(), c.cfg.Ring)
			}
		}
		for i := 0; i+1 < len(data); i += 2 {
			op, v := data[i]%12, data[i+1]
			switch op {
			case 0: // send
				nextTID++
				cmd := devices.Command{TID: nextTID, Chute: uint16(v)}
				if v%5 == 0 {
					cmd.Deadline = now.Add(time.Duration(v) * time.Millisecond)
				}
				if c.Enqueue(cmd, now) == nil {
					cmds[nextTID] = &cmdModel{tid: nextTID}
				}
			case 1, 2: // a write, kept or answered at once
				want := c.NextSeq()
				w, ok := c.NextWrite(now, &evs)
				check(i)
				if !ok {
					break
				}
				m := cmds[w.TID]
				switch {
				case m == nil:
					t.Fatalf("step %d: write of unknown tid %d", i, w.TID)
				case m.stage >= stTaken:
					t.Fatalf("step %d: tid %d handed out again at stage %d", i, w.TID, m.stage)
				case !m.put && (w.Rewrite || w.Seq != want):
					t.Fatalf("step %d: first write of tid %d: seq %d rewrite %v, want seq %d", i, w.TID, w.Seq, w.Rewrite, want)
				case m.put && (!m.mayRewrite || !w.Rewrite || w.Seq != m.seq):
					t.Fatalf("step %d: tid %d written twice (seq %d, was %d) without a failed write or reconnect", i, w.TID, w.Seq, m.seq)
				}
				if !m.put {
					m.put, m.seq, m.order = true, w.Seq, orders
					orders++
					byOrder = append(byOrder, m)
				}
				m.mayRewrite = false
				if m.stage == stQueued {
					m.stage = stPut
				}
				if op == 1 {
					held = append(held, w)
				} else {
					ok := v%4 != 0
					c.WriteDone(w, ok, now, &evs)
					if !ok {
						m.mayRewrite = true
					}
				}
			case 3: // the oldest held write answers
				if len(held) > 0 {
					w := held[0]
					held = held[1:]
					ok := v%3 != 0
					c.WriteDone(w, ok, now, &evs)
					if !ok {
						cmds[w.TID].mayRewrite = true
					}
				}
			case 4: // ACK_SEQ: mostly plausible, sometimes anything
				switch {
				case v < 200:
					plc.AckSeq = c.AckSeq() + uint16(v%uint8(c.cfg.Ring))
				default:
					plc.AckSeq = uint16(v) * 257
				}
				_, _ = c.Block(&plc, now, &evs)
			case 5: // a confirmation slot
				num := c.ConfirmCount() + 1 + uint16(v%10)
				tid := uint32(v)
				if len(byOrder) > 0 && v%3 != 0 {
					tid = byOrder[int(v)%len(byOrder)].tid
				}
				slots[int(num)%len(slots)] = Slot{Num: num + uint16(v/200)*8, TID: tid, Result: uint16(v % 10), Read: v%11 != 0, Torn: v%13 == 0}
			case 6: // CONFIRM_COUNT moves (and the block is read)
				plc.ConfirmCount += uint16(v % 24)
				if v > 240 {
					plc.ConfirmCount -= 30
				}
				_, _ = c.Block(&plc, now, &evs)
				_, _ = c.Confirms(plc.ConfirmCount, slots, now, &evs)
			case 7: // the connection drops
				c.Disconnected(now)
			case 8: // a connection comes up: every unconfirmed may be rewritten
				c.Connected(now)
				for _, m := range cmds {
					m.mayRewrite = true
				}
				_, _ = c.Block(&plc, now, &evs)
			case 9: // a cold restart
				plc.BootID = uint16(v) + 2
				plc.AckSeq, plc.ConfirmCount = uint16(v), uint16(v)*3
				_, _ = c.Block(&plc, now, &evs)
			case 10: // fault code, heartbeat
				plc.FaultCode = []uint16{0, 1, 50, 100}[v%4]
				if v&4 != 0 {
					plc.Heartbeat++
				}
				_, _ = c.Block(&plc, now, &evs)
				if v&8 != 0 { // a read-back, sometimes with another host's writes in it
					rb := Readback{Heartbeat: uint16(v >> 5), Wrote: uint16(v>>5) + uint16(v&16)/16, CheckHeartbeat: true,
						Divert: make([]DivertSlot, c.cfg.Ring)}
					k := int(v) % c.cfg.Ring
					rb.Divert[k] = DivertSlot{Seq: c.AckSeq() + uint16(v%uint8(c.cfg.Ring)), TID: uint32(v)}
					c.Readback(&rb, now)
				}
			case 11: // time passes
				now = now.Add(time.Duration(v) * 10 * time.Millisecond)
				c.Tick(now, &evs)
			}
			check(i)
		}
		c.Close(now, &evs)
		for _, w := range held {
			c.WriteDone(w, true, now, &evs)
		}
		check(len(data))
		for tid, m := range cmds {
			if m.stage != stDone {
				t.Fatalf("tid %d ended at stage %d without a terminal event", tid, m.stage)
			}
		}
	})
}
