package hostif

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"sortgw/devices"
)

// script drives a Core with a small language, one input per line, so that
// a table case reads like the PLC conversation it is. Inputs:
//
//	send TID [chute=N] [dl=DUR]   Enqueue (dl: deadline from now)
//	dial | conn | disc            Dialing, Connected, Disconnected
//	block k=v ...                 set PLC block fields (hb ack count fault
//	                              boot chutes), then Block and Confirms
//	slot NUM TID RESULT [torn] [unread]  fill confirmation slot NUM mod ring
//	write [fail|hold]             NextWrite, then WriteDone ok / failed / kept
//	done ok|fail                  WriteDone for the oldest held write
//	wait DUR                      advance the clock; then Tick
//	notready WHY | ready          SetReady
//	readback [hb=N wrote=N] [K=SEQ:TID ...]  Readback (hb and wrote:
//	                              CheckHeartbeat; K: divert slot K)
//	close                         Close
//	state NAME                    assert State (no output)
//
// Output tokens, compared with the case's want: wTID@SEQ written, tTID@SEQ
// taken, cTID#NUMrRESULT confirmed, lateTID, lostTID@SEQ, missedN; a write
// handed out is putTID@SEQ/SLOT (reputTID@SEQ/SLOT for a rewrite), none
// when NextWrite gave nothing; sync:warm etc. for a first block;
// err:mismatch for ErrRingMismatch; refused:bad|full|closed from send;
// foreign when a Readback held evidence of another host.
type script struct {
	t     testing.TB
	c     *Core
	now   time.Time
	plc   Block
	slots []Slot
	held  []Write
	evs   []devices.Event
	out   []string
}

func newScript(t testing.TB, cfg Config) *script {
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := &script{t: t, c: c, now: time.Unix(1000, 0), slots: make([]Slot, c.cfg.ConfirmRing)}
	for j := range s.slots {
		s.slots[j].Read = true
	}
	return s
}

func render(e devices.Event) string {
	switch e.Kind {
	case devices.EventWritten:
		return fmt.Sprintf("w%d@%d", e.TID, e.Seq)
	case devices.EventTaken:
		return fmt.Sprintf("t%d@%d", e.TID, e.Seq)
	case devices.EventConfirmed:
		return fmt.Sprintf("c%d#%dr%d", e.TID, e.Seq, e.Result)
	case devices.EventLate:
		return fmt.Sprintf("late%d", e.TID)
	case devices.EventLost:
		return fmt.Sprintf("lost%d@%d", e.TID, e.Seq)
	case devices.EventMissed:
		return fmt.Sprintf("missed%d", e.Count)
	}
	return "?"
}

func (s *script) flush() {
	for _, e := range s.evs {
		s.out = append(s.out, render(e))
	}
	s.evs = s.evs[:0]
}

func (s *script) noteErr(err error) {
	s.flush()
	if errors.Is(err, ErrRingMismatch) {
		s.out = append(s.out, "err:mismatch")
	} else if err != nil {
		s.t.Fatalf("unexpected error %v", err)
	}
}

func (s *script) write(mode string) {
	w, ok := s.c.NextWrite(s.now, &s.evs)
	s.flush()
	if !ok {
		s.out = append(s.out, "none")
		return
	}
	p := "put"
	if w.Rewrite {
		p = "reput"
	}
	s.out = append(s.out, fmt.Sprintf("%s%d@%d/%d", p, w.TID, w.Seq, w.Slot))
	switch mode {
	case "hold":
		s.held = append(s.held, w)
	default:
		s.c.WriteDone(w, mode != "fail", s.now, &s.evs)
	}
}

func kv(f []string) map[string]string {
	m := map[string]string{}
	for _, x := range f {
		k, v, _ := strings.Cut(x, "=")
		m[k] = v
	}
	return m
}

func atoi(t testing.TB, s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("bad number %q", s)
	}
	return n
}

// run executes one input line and returns its output tokens.
func (s *script) run(line string) string {
	t := s.t
	s.out = s.out[:0]
	f := strings.Fields(line)
	switch f[0] {
	case "send":
		cmd := devices.Command{TID: uint32(atoi(t, f[1])), Chute: 1}
		m := kv(f[2:])
		if v, ok := m["chute"]; ok {
			cmd.Chute = uint16(atoi(t, v))
		}
		if v, ok := m["dl"]; ok {
			d, err := time.ParseDuration(v)
			if err != nil {
				t.Fatal(err)
			}
			cmd.Deadline = s.now.Add(d)
		}
		switch err := s.c.Enqueue(cmd, s.now); {
		case err == nil:
		case errors.Is(err, devices.ErrBadCommand):
			s.out = append(s.out, "refused:bad")
		case errors.Is(err, devices.ErrQueueFull):
			s.out = append(s.out, "refused:full")
		case errors.Is(err, devices.ErrClosed):
			s.out = append(s.out, "refused:closed")
		default:
			t.Fatalf("send: %v", err)
		}
	case "dial":
		s.c.Dialing(s.now)
	case "conn":
		s.c.Connected(s.now)
	case "disc":
		s.c.Disconnected(s.now)
	case "block":
		for k, v := range kv(f[1:]) {
			n := uint16(atoi(t, v))
			switch k {
			case "hb":
				s.plc.Heartbeat = n
			case "ack":
				s.plc.AckSeq = n
			case "count":
				s.plc.ConfirmCount = n
			case "fault":
				s.plc.FaultCode = n
			case "boot":
				s.plc.BootID = n
			case "chutes":
				s.plc.ChuteCount = n
			default:
				t.Fatalf("block field %q", k)
			}
		}
		b := s.plc
		rep, err := s.c.Block(&b, s.now, &s.evs)
		s.noteErr(err)
		if rep.Sync != SyncNone {
			s.out = append(s.out, "sync:"+rep.Sync.String())
		}
		_, err = s.c.Confirms(s.plc.ConfirmCount, s.slots, s.now, &s.evs)
		s.noteErr(err)
	case "slot":
		num := uint16(atoi(t, f[1]))
		sl := Slot{Num: num, TID: uint32(atoi(t, f[2])), Result: uint16(atoi(t, f[3])), Read: true}
		for _, x := range f[4:] {
			switch x {
			case "torn":
				sl.Torn = true
			case "unread":
				sl.Read = false
			}
		}
		s.slots[int(num)%len(s.slots)] = sl
	case "write":
		mode := "ok"
		if len(f) > 1 {
			mode = f[1]
		}
		s.write(mode)
	case "done":
		if len(s.held) == 0 {
			t.Fatal("done without a held write")
		}
		w := s.held[0]
		s.held = s.held[1:]
		s.c.WriteDone(w, f[1] == "ok", s.now, &s.evs)
	case "wait":
		d, err := time.ParseDuration(f[1])
		if err != nil {
			t.Fatal(err)
		}
		s.now = s.now.Add(d)
		s.c.Tick(s.now, &s.evs)
	case "readback":
		rb := Readback{Divert: make([]DivertSlot, s.c.cfg.Ring)}
		for k, v := range kv(f[1:]) {
			switch k {
			case "hb":
				rb.Heartbeat, rb.CheckHeartbeat = uint16(atoi(t, v)), true
			case "wrote":
				rb.Wrote = uint16(atoi(t, v))
			default:
				seq, tid, _ := strings.Cut(v, ":")
				rb.Divert[atoi(t, k)] = DivertSlot{Seq: uint16(atoi(t, seq)), TID: uint32(atoi(t, tid))}
			}
		}
		if s.c.Readback(&rb, s.now) {
			s.out = append(s.out, "foreign")
		}
	case "notready":
		s.c.SetReady(false, strings.Join(f[1:], " "))
	case "ready":
		s.c.SetReady(true, "")
	case "close":
		s.c.Close(s.now, &s.evs)
	case "reconnects":
		if got := s.c.Counters().Reconnects; got != uint64(atoi(t, f[1])) {
			t.Errorf("%q: reconnects %d", line, got)
		}
	case "state":
		st, _ := s.c.State(s.now)
		if st.String() != f[1] {
			t.Errorf("%q: state %s", line, st)
		}
	default:
		t.Fatalf("unknown input %q", line)
	}
	s.flush()
	return strings.Join(s.out, " ")
}
