package modbus

import (
	"context"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"sortgw/devices"
)

// FuzzPLCBlocks feeds the link's decoding of the PLC block (the registers
// are untrusted input) into its core, mixed with sends and slot writes,
// and checks that nothing panics and the ring's window holds: never Ring
// or more commands given out past ACK_SEQ. The core's own rules are
// fuzzed in devices/hostif (FuzzCore); this covers the Modbus decoding in
// front of it.
//
// Input: a stream of ops. 'S' tid: queue a command; 'W' ok: write the
// next command (ok even: success, odd: I/O error, which starts a new
// session); 'B' reg off, value (2 bytes each): patch a register of the
// block and apply it as a poll; 'C': apply the block as a reconnect.
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
		regs[l.lay.offBootID] = 1
		connect := func() {
			l.mu.Lock()
			if l.sess != nil {
				l.sess.failed = true
				l.core.Disconnected(time.Now())
			}
			l.sess = &session{errCh: make(chan error, 1)}
			l.core.Connected(time.Now())
			l.mu.Unlock()
			if err := l.load(regs); err != nil {
				t.Fatal(err)
			}
			l.apply(ctx)
		}
		connect()
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
				w, s, got, _ := l.nextJob(ctx)
				if !got {
					continue
				}
				l.mu.Lock()
				l.core.WriteDone(w, ok, time.Now(), &l.evs)
				l.mu.Unlock()
				s.wg.Done()
				if !ok {
					connect()
				}
			case 'B':
				if i+4 >= len(data) {
					break
				}
				off := int(data[i+1]) % len(regs)
				regs[off] = binary.BigEndian.Uint16(data[i+2:])
				i += 3
				if err := l.load(regs); err != nil {
					t.Fatal(err)
				}
				l.apply(ctx)
			case 'C':
				connect()
			}
			l.mu.Lock()
			out := l.core.Outstanding()
			l.mu.Unlock()
			if out >= l.cfg.Ring {
				t.Fatalf("%d commands past ACK_SEQ, ring %d", out, l.cfg.Ring)
			}
			for len(l.events) > 0 {
				<-l.events
			}
		}
	})
}
