package loadtest

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"sortgw/sortplan"
)

// The direct feed of `sortgw bench`: a scanner of the bench's own that
// sends telegrams at an exact Poisson rate (arrival times fixed in advance,
// late ones sent at once), for rates the emulated conveyor's per-item
// timers cannot keep on a loaded machine. The emulated PLC then runs in
// commissioning mode: every commanded TID is an item that reaches its
// decision point 200 ms after the command is taken.

type feeder struct {
	ln     net.Listener
	labels []sortplan.SampleLabel
	rnd    *rand.Rand
	rate   atomic.Uint64 // float64 bits
	sent   atomic.Uint64
	skip   atomic.Uint64 // telegrams due while no gateway was connected
	tid    uint32
}

func newFeeder(labels []sortplan.SampleLabel, seed int64) (*feeder, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	return &feeder{ln: ln, labels: labels, rnd: rand.New(rand.NewPCG(uint64(seed), 0xfeed))}, nil
}

func (f *feeder) Addr() string { return f.ln.Addr().String() }

func (f *feeder) SetRate(r float64) { f.rate.Store(math.Float64bits(r)) }

func (f *feeder) Sent() uint64 { return f.sent.Load() }

// Run serves one gateway connection at a time until ctx is done.
func (f *feeder) Run(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { f.ln.Close() })
	defer stop()
	defer f.ln.Close()
	for {
		c, err := f.ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		f.serve(ctx, c)
		c.Close()
	}
}

// serve sends telegrams on c until the connection fails or ctx is done.
func (f *feeder) serve(ctx context.Context, c net.Conn) {
	closed := context.AfterFunc(ctx, func() { c.Close() })
	defer closed()
	go func() { // the gateway never sends; notice when it hangs up
		var b [64]byte
		for {
			if _, err := c.Read(b[:]); err != nil {
				c.Close()
				return
			}
		}
	}()
	t := time.NewTimer(0)
	defer t.Stop()
	next := time.Now()
	lastHB := time.Time{}
	var buf []byte
	for {
		now := time.Now()
		r := math.Float64frombits(f.rate.Load())
		if r <= 0 {
			next = now.Add(5 * time.Millisecond)
		} else if now.Sub(next) > 100*time.Millisecond {
			// A stall longer than that is not made up (at most 100 ms of
			// telegrams go out in one burst).
			f.skip.Add(uint64(now.Sub(next).Seconds() * r))
			next = now.Add(-100 * time.Millisecond)
		}
		buf = buf[:0]
		if now.Sub(lastHB) >= time.Second {
			buf = append(buf, "\x02HB\x03"...)
			lastHB = now
		}
		for r > 0 && !next.After(now) {
			buf = f.frame(buf)
			next = next.Add(time.Duration(f.rnd.ExpFloat64() / r * float64(time.Second)))
		}
		if len(buf) > 0 {
			_ = c.SetWriteDeadline(now.Add(2 * time.Second))
			if _, err := c.Write(buf); err != nil {
				return
			}
		}
		wait := time.Until(next)
		if d := time.Second - time.Since(lastHB); d < wait {
			wait = d
		}
		t.Reset(max(wait, 0))
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// frame appends one telegram: "<STX>TID;CODE[;CODE]<ETX>" or a no-read.
func (f *feeder) frame(b []byte) []byte {
	f.tid++
	if f.tid == 0 {
		f.tid = 1
	}
	l := f.labels[int(f.tid)%len(f.labels)]
	b = append(b, 0x02)
	b = strconv.AppendUint(b, uint64(f.tid), 10)
	if len(l.Codes) == 0 {
		b = append(b, ";NoRead"...)
	}
	for _, c := range l.Codes {
		b = append(b, ';')
		b = append(b, c...)
	}
	f.sent.Add(1)
	return append(b, 0x03)
}

// feedLabels is the direct feed's label set: the sortplan sample mix
// (GS1 420/421/403, IMpb, carrier ids resolved through its manifest, 2%
// no-reads), without codes the telegram cannot carry.
func feedLabels(seed int64) ([]sortplan.SampleLabel, []byte, error) {
	s := sortplan.SampleLabels(sortplan.SampleOptions{N: 20000, Seed: seed})
	out := s.Labels[:0]
	for _, l := range s.Labels {
		ok := true
		for _, c := range l.Codes {
			if strings.ContainsAny(c, ";\x02\x03") {
				ok = false
			}
		}
		if ok {
			out = append(out, l)
		}
	}
	if len(out) == 0 {
		return nil, nil, errors.New("bench: no usable sample labels")
	}
	return out, s.Manifest, nil
}
