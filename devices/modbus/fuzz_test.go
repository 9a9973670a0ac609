package modbus

import (
	"context"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/rs/zerolog"

	"sortgw/devices"
)

// FuzzPLCBlocks feeds the link's ring and confirmation logic with PLC
// blocks the PLC could send (the registers are untrusted input), mixed with
// sends and writes, and checks that nothing panics and the ring's
// invariants hold: never more than Ring-1 commands given out past
// ACK_SEQ, and every command assigned a sequence number accounted for
// exactly once (taken list, unconfirmed list).
//
// Input: a stream of ops. 'S' tid: queue a command; 'W' ok: write the
// next command (ok even: success, odd: I/O error, which starts a new
// session); 'B' reg off, value (2 bytes each): patch a register of the
// block and process it as a poll; 'C': process the block as a reconnect.
func FuzzPLCBlocks(f *testing.F) {
	f.Add([]byte("S\x01W\x00B\x02\x00\x01B\x03\x00\x01"))                                  // send, write, ack 1, confirm 1
	f.Add([]byte("S\x01S\x02W\x00W\x01CB\x02\x00\x02"))                                    // a failed write, reconnect, ack
	f.Add([]byte("B\x76\xbe\xef"))                                                         // a new BOOT_ID under a live link
	f.Add([]byte("B\x02\xff\xf0S\x01W\x00B\x03\x00\x40"))                                  // ack out of window, confirm jump
	f.Add([]byte("S\x01S\x02S\x03W\x00W\x00W\x00B\x02\x00\x02B\x04\x00\x01B\x01\x00\x02")) // fault, sorter state
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := New(Config{Addr: "127.0.0.1:1", EventBuffer: 1 << 16, QueueSize: 64, MaxUnconfirmed: 64}, zerolog.Nop())
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		regs := make([]uint16, l.lay.blockLen)
		regs[offBootID(l)] = 1
		apply := func() {
			if err := l.lay.decode(&l.blk, regs); err != nil {
				t.Fatal(err)
			}
		}
		newSession := func() *session {
			s := &session{errCh: make(chan error, 1)}
			apply()
			l.sync(ctx, s)
			return s
		}
		s := newSession()
		var tid uint32 = 1
		for i := 0; i < len(data); i++ {
			switch data[i] {
			case 'S':
				if i+1 < len(data) {
					i++
					tid += uint32(data[i])
				}
				err := l.Send(ctx, devices.Command{TID: tid, Chute: uint16(tid % 300)})
				if err != nil && !errors.Is(err, devices.ErrQueueFull) && !errors.Is(err, devices.ErrBadCommand) {
					t.Fatalf("send: %v", err)
				}
			case 'W':
				ok := true
				if i+1 < len(data) {
					i++
					ok = data[i]%2 == 0
				}
				job, js, _ := l.nextJob(ctx)
				if job == nil {
					continue
				}
				var werr error
				if !ok {
					werr = errors.New("i/o")
				}
				l.written(ctx, js, job, werr)
				js.wg.Done()
				if !ok {
					l.endSessionState(js)
					s = newSession()
				}
			case 'B':
				if i+4 >= len(data) {
					break
				}
				off := int(data[i+1]) % len(regs)
				regs[off] = binary.BigEndian.Uint16(data[i+2:])
				i += 3
				apply()
				l.process(ctx)
			case 'C':
				l.endSessionState(s)
				s = newSession()
			}
			checkInvariants(t, l)
			for len(l.events) > 0 {
				<-l.events
			}
		}
	})
}

func offBootID(l *Link) int { return l.lay.offBootID }

// endSessionState does what endSession does to the link's state, without
// connections.
func (l *Link) endSessionState(s *session) {
	l.mu.Lock()
	s.failed = true
	if l.sess == s {
		l.sess = nil
	}
	l.state = devices.LinkDown
	l.mu.Unlock()
}

func checkInvariants(t *testing.T, l *Link) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if given := int(l.next - 1 - l.ack); given >= l.cfg.Ring {
		t.Fatalf("ack %d next %d: %d commands past ACK_SEQ, ring %d", l.ack, l.next, given, l.cfg.Ring)
	}
	if len(l.out) > l.cfg.Ring-1 {
		t.Fatalf("%d outstanding", len(l.out))
	}
	for i, e := range l.out {
		if i > 0 && e.seq != l.out[i-1].seq+1 {
			t.Fatalf("outstanding seqs not consecutive: %d after %d", e.seq, l.out[i-1].seq)
		}
		if !passed(e.seq, l.ack, l.next-1) {
			t.Fatalf("outstanding seq %d outside ack %d .. next %d", e.seq, l.ack, l.next)
		}
	}
	n := 0
	for e := l.pend.head; e != nil; e = e.next {
		n++
		if e.lost {
			t.Fatalf("lost command seq %d still pending", e.seq)
		}
	}
	if n != l.pend.n || n > l.cfg.MaxUnconfirmed {
		t.Fatalf("pending list %d, count %d", n, l.pend.n)
	}
	chained := 0
	for _, first := range l.pend.byTID {
		for x := first; x != nil; x = x.sameTID {
			chained++
		}
	}
	if chained != n {
		t.Fatalf("tid index holds %d, list %d", chained, n)
	}
}

// TestFaultCodes: FAULT_CODE 1..99 holds commands (LinkSyncing); 0 and
// PLC-specific faults (100 and up) let them flow.
func TestFaultCodes(t *testing.T) {
	cases := []struct {
		fault uint16
		want  devices.LinkState
	}{
		{0, devices.LinkUp},
		{1, devices.LinkSyncing},
		{2, devices.LinkSyncing},
		{99, devices.LinkSyncing},
		{100, devices.LinkUp},
		{4711, devices.LinkUp},
	}
	for _, tc := range cases {
		l, err := New(Config{Addr: "127.0.0.1:1"}, zerolog.Nop())
		if err != nil {
			t.Fatal(err)
		}
		regs := make([]uint16, l.lay.blockLen)
		regs[l.lay.offBootID] = 7
		regs[offFaultCode] = tc.fault
		if err := l.lay.decode(&l.blk, regs); err != nil {
			t.Fatal(err)
		}
		l.sync(context.Background(), &session{errCh: make(chan error, 1)})
		if st := l.Status().State; st != tc.want {
			t.Errorf("fault %d: state %s, want %s", tc.fault, st, tc.want)
		}
		if err := l.Send(context.Background(), devices.Command{TID: 1, Chute: 1}); err != nil {
			t.Fatal(err)
		}
		job, s, _ := l.nextJob(context.Background())
		if (job != nil) != (tc.want == devices.LinkUp) {
			t.Errorf("fault %d: command given out: %v", tc.fault, job != nil)
		}
		if job != nil {
			s.wg.Done()
		}
	}
}
