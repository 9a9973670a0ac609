// Package scanner connects the gateway to barcode scanners that send
// telegrams over TCP, as in the "Scanner telegrams" section of the host
// interface contract.
//
// A Source runs any number of scanners. In client mode (the default) it
// dials each scanner's TCP server and redials with capped, jittered
// exponential back-off. In server mode it listens and the scanners connect
// out; a connection is matched to a scanner by the listen address it
// arrived on, and, when several scanners share a listen address, by the
// peer's IP address (Config.Peer). A newer connection of the same scanner
// replaces an older one, whose peer has usually rebooted.
//
// Frames are STX/ETX (default) or CR LF terminated; payloads are
// `TID;CODE[;CODE…]`, `TID;NoRead` or the heartbeat `HB`. Every read is
// timestamped with time.Now when its bytes came off the socket and handed
// to the sink; heartbeats only keep the scanner online. A scanner that
// sends neither reads nor heartbeats for HeartbeatTimeout is shown
// offline; in client mode its connection is then closed and redialled
// (a half-open TCP connection looks exactly like that). In server mode the
// silent connection is kept (the scanner owns reconnecting; its next
// connection replaces the silent one).
//
// Link states: connecting (dialling, or listening before the scanner's
// first connection), up (connected), down (lost; client mode waits out its
// back-off), closed (Run returned). Online additionally needs the state up.
//
// Malformed telegrams (bad TID, empty code, no separator) are counted and
// logged at most once per second per scanner and error; codes themselves
// are not judged here: a damaged code is delivered as it is, for the sort
// plan to find no destination in. Framer and ParsePayload are exported so
// that tools and fuzz tests can drive the wire format without sockets.
package scanner

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"sortgw/devices"
)

// Errors callers branch on.
var (
	// ErrRunning: Run was called a second time.
	ErrRunning = errors.New("scanner source already running")
	// ErrNoSink: Run was called without a sink.
	ErrNoSink = errors.New("scanner source needs a sink")
)

// Source reads telegrams from a set of scanners. It implements
// devices.ScannerSource.
type Source struct {
	log       zerolog.Logger
	scanners  []*scanner
	byName    map[string]*scanner
	listeners []*listener
	base      time.Time // monotonic origin of the scanners' timestamps
	ready     chan struct{}
	running   atomic.Bool
	sinkMu    sync.Mutex // sink calls never overlap, whatever the scanner
}

var _ devices.ScannerSource = (*Source)(nil)

// New validates every configuration (filling defaults) and returns a Source
// for them. Names must be unique; server-mode scanners that share a listen
// address must each name a distinct Peer.
func New(cfgs []Config, log zerolog.Logger) (*Source, error) {
	if len(cfgs) == 0 {
		return nil, fmt.Errorf("%w: no scanners configured", ErrConfig)
	}
	s := &Source{
		log:    log,
		byName: make(map[string]*scanner, len(cfgs)),
		base:   time.Now(),
		ready:  make(chan struct{}),
	}
	dialed := map[string]string{}
	byAddr := map[string]*listener{}
	for i := range cfgs {
		c := cfgs[i]
		if err := c.Validate(); err != nil {
			return nil, err
		}
		if _, dup := s.byName[c.Name]; dup {
			return nil, fmt.Errorf("%w: scanner name %q used twice", ErrConfig, c.Name)
		}
		sc := newScanner(s, c, log.With().Str("scanner", c.Name).Logger())
		s.scanners = append(s.scanners, sc)
		s.byName[c.Name] = sc
		switch c.Mode {
		case ModeClient:
			if other, dup := dialed[c.Addr]; dup {
				return nil, fmt.Errorf("%w: scanners %q and %q both dial %s", ErrConfig, other, c.Name, c.Addr)
			}
			dialed[c.Addr] = c.Name
		case ModeServer:
			key := c.Addr
			if _, port, _ := net.SplitHostPort(c.Addr); port == "0" {
				// Port 0: each scanner gets a port of its own from the OS.
				key += "\x00" + c.Name
			}
			l := byAddr[key]
			if l == nil {
				l = &listener{src: s, addr: c.Addr, log: log.With().Str("listen", c.Addr).Logger()}
				byAddr[key] = l
				s.listeners = append(s.listeners, l)
			}
			l.scanners = append(l.scanners, sc)
		}
	}
	for _, l := range s.listeners {
		if err := l.check(); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Ready is closed once Run has bound every server-mode listener, so that
// ListenAddr returns the real addresses.
func (s *Source) Ready() <-chan struct{} { return s.ready }

// ListenAddr returns the address a server-mode scanner's listener is bound
// to ("" before Run bound it, for a client-mode scanner, or an unknown name).
func (s *Source) ListenAddr(name string) string {
	sc := s.byName[name]
	if sc == nil || sc.lis == nil {
		return ""
	}
	if a := sc.lis.bound.Load(); a != nil {
		return *a
	}
	return ""
}

// Run connects every scanner (or listens for them) and hands each read to
// sink, in arrival order per scanner. Calls of sink never overlap, even
// across scanners, so sink needs no lock of its own; it must not block for
// long, as it holds up every scanner. Run returns nil when ctx is done,
// after every connection is closed, or an error if a listener cannot be
// bound.
func (s *Source) Run(ctx context.Context, sink func(devices.Read)) error {
	if sink == nil {
		return ErrNoSink
	}
	if !s.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer func() {
		for _, sc := range s.scanners {
			sc.setState(devices.LinkClosed)
		}
	}()
	var lc net.ListenConfig
	for i, l := range s.listeners {
		ln, err := lc.Listen(ctx, "tcp", l.addr)
		if err != nil {
			for _, l := range s.listeners[:i] {
				l.ln.Close()
			}
			return fmt.Errorf("scanner listen %s: %w", l.addr, err)
		}
		l.ln = ln
		a := ln.Addr().String()
		l.bound.Store(&a)
		l.log.Info().Str("addr", a).Msg("listening for scanners")
	}
	close(s.ready)

	var wg sync.WaitGroup
	for _, sc := range s.scanners {
		if sc.cfg.Mode == ModeClient {
			wg.Go(func() { sc.runClient(ctx, sink) })
		} else {
			sc.setState(devices.LinkConnecting)
		}
	}
	for _, l := range s.listeners {
		wg.Go(func() { l.run(ctx, &wg, sink) })
	}
	wg.Wait()
	return nil
}

// Status returns a snapshot of every scanner, in configuration order.
func (s *Source) Status() []devices.ScannerStatus {
	out := make([]devices.ScannerStatus, len(s.scanners))
	now := time.Now()
	for i, sc := range s.scanners {
		out[i] = sc.status(now)
	}
	return out
}

// Stats is a scanner's status with the counters that do not fit in
// devices.ScannerStatus.
type Stats struct {
	devices.ScannerStatus
	// Ignored bytes outside any frame (STX framing).
	Ignored uint64
	// Truncated frames: a new STX came before the ETX.
	Truncated uint64
	// Refused connections (server mode: from an IP that is not Peer).
	Refused uint64
	// Remote is the peer address of the current connection.
	Remote string
	// LastError is the last connection error, "" if none yet.
	LastError string
}

// Stats returns the extended snapshot of every scanner.
func (s *Source) Stats() []Stats {
	out := make([]Stats, len(s.scanners))
	now := time.Now()
	for i, sc := range s.scanners {
		out[i] = Stats{
			ScannerStatus: sc.status(now),
			Ignored:       sc.ignored.Load(),
			Truncated:     sc.truncated.Load(),
			Refused:       sc.refused.Load(),
		}
		if p := sc.remote.Load(); p != nil {
			out[i].Remote = *p
		}
		if p := sc.lastErr.Load(); p != nil {
			out[i].LastError = *p
		}
	}
	return out
}

// since returns t as an offset from the Source's origin, never 0 (0 means
// "never" in the scanners' atomics).
func (s *Source) since(t time.Time) int64 {
	d := int64(t.Sub(s.base))
	if d <= 0 {
		d = 1
	}
	return d
}

// at turns an offset back into a time that keeps the monotonic reading.
func (s *Source) at(d int64) time.Time {
	if d == 0 {
		return time.Time{}
	}
	return s.base.Add(time.Duration(d))
}

func (s *Source) deliver(sink func(devices.Read), r devices.Read) {
	s.sinkMu.Lock()
	defer s.sinkMu.Unlock()
	sink(r)
}
