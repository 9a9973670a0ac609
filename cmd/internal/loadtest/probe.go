package loadtest

import (
	"context"
	"sync/atomic"
	"time"

	"sortgw/devices"
	"sortgw/devices/scanner"
)

// probe follows items from their read to the link's events. It sits
// between the line and its devices (measuredSource, measuredLink) so the
// gateway's own code runs unchanged.
type probe struct {
	base      time.Time
	readAt    []atomic.Int64 // ns since base, by tid & mask; 0 = unknown
	mask      uint32
	recording atomic.Bool
	maxN      int
	// decided is appended by Send (the line's loop); the others by the
	// event forwarder. Read only after both stopped.
	decided, written, taken, confirmed latencies
}

func newProbe(base time.Time, rate float64, maxN int) *probe {
	n := 4096
	for float64(n) < rate*120 && n < 1<<18 {
		n <<= 1
	}
	return &probe{base: base, readAt: make([]atomic.Int64, n), mask: uint32(n - 1), maxN: maxN}
}

func (p *probe) read(r devices.Read) {
	p.readAt[r.TID&p.mask].Store(int64(r.At.Sub(p.base)))
}

// since returns at - the TID's read time, false if unknown.
func (p *probe) since(tid uint32, at time.Time) (time.Duration, bool) {
	v := p.readAt[tid&p.mask].Load()
	if v == 0 {
		return 0, false
	}
	return at.Sub(p.base) - time.Duration(v), true
}

func (p *probe) add(l *latencies, tid uint32, at time.Time) {
	if !p.recording.Load() || len(*l) >= p.maxN {
		return
	}
	if d, ok := p.since(tid, at); ok {
		*l = append(*l, d)
	}
}

// measuredSource wraps a scanner source to note each read's arrival.
// With the abuse soak the source is a restartable one (port).
type measuredSource struct {
	inner *scanner.Source
	port  *portScanner // instead of inner, with Config.Abuse
	p     *probe
}

func (m *measuredSource) Run(ctx context.Context, sink func(devices.Read)) error {
	measured := func(r devices.Read) {
		m.p.read(r)
		sink(r)
	}
	if m.port != nil {
		return m.port.run(ctx, measured)
	}
	return m.inner.Run(ctx, measured)
}

func (m *measuredSource) Status() []devices.ScannerStatus {
	if m.port != nil {
		return m.port.status()
	}
	return m.inner.Status()
}

// watched are the scanners the scanner faults hit (the emulator's scanner
// 0 among them): all but one whose port the soak may hold, which its own
// fault watches.
func (m *measuredSource) watched() []devices.ScannerStatus {
	if m.port != nil {
		return m.port.others()
	}
	return m.inner.Status()
}

// measuredLink wraps a PLC link: Send notes the decision time, and a
// forwarder notes written, taken and confirmed times (the link's own event
// timestamps, so the extra hop does not count) on the way to the line.
type measuredLink struct {
	inner   devices.PLCLink
	p       *probe
	out     chan devices.Event
	dropped atomic.Uint64
}

func newMeasuredLink(inner devices.PLCLink, p *probe, n int) *measuredLink {
	return &measuredLink{inner: inner, p: p, out: make(chan devices.Event, n)}
}

func (m *measuredLink) Run(ctx context.Context) error {
	done := make(chan error, 1)
	go func() { done <- m.inner.Run(ctx) }()
	in := m.inner.Events()
	for {
		select {
		case ev := <-in:
			m.forward(ctx, ev)
		case err := <-done:
			for {
				select {
				case ev := <-in:
					m.forward(ctx, ev)
				default:
					return err
				}
			}
		}
	}
}

func (m *measuredLink) forward(ctx context.Context, ev devices.Event) {
	switch ev.Kind {
	case devices.EventWritten:
		m.p.add(&m.p.written, ev.TID, ev.At)
	case devices.EventTaken:
		m.p.add(&m.p.taken, ev.TID, ev.At)
	case devices.EventConfirmed:
		m.p.add(&m.p.confirmed, ev.TID, ev.At)
	}
	select {
	case m.out <- ev:
	case <-ctx.Done():
		select {
		case m.out <- ev:
		default:
			m.dropped.Add(1)
		}
	}
}

func (m *measuredLink) Send(ctx context.Context, cmd devices.Command) error {
	m.p.add(&m.p.decided, cmd.TID, time.Now())
	return m.inner.Send(ctx, cmd)
}

func (m *measuredLink) Events() <-chan devices.Event     { return m.out }
func (m *measuredLink) Status() devices.PLCStatus        { return m.inner.Status() }
func (m *measuredLink) SetHostState(s devices.HostState) { m.inner.SetHostState(s) }
func (m *measuredLink) SetPlanVersion(v uint16)          { m.inner.SetPlanVersion(v) }
