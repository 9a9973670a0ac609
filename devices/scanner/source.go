// Package scanner connects the gateway to barcode scanners that send
// telegrams over TCP, as in the "Scanner telegrams" section of the host
// interface contract.
//
// A Source runs any number of scanners. In client mode (the default) it
// dials each scanner's TCP server and redials with capped, jittered
// exponential back-off. In server mode it listens and the scanners connect
// out; a connection is matched to a scanner by the listen address it
// arrived on and by the peer's IP address (Config.Peer, required): a
// connection from any other IP is refused, counted and logged at most once
// a second per IP. A second connection from the scanner's peer is refused
// too while the current one is live; it replaces the current one only when
// that has been silent for the heartbeat timeout (the scanner rebooted and
// left a half-open connection behind). So no host on the network can push
// a working scanner off, or inject reads (which become divert commands).
//
// Every scanner fails alone. A listen address that cannot be bound (the
// port is taken, the address is not on the host) does not stop the Source:
// that listener retries with the scanners' back-off, its scanners are shown
// down with the error ("listen 127.0.0.1:2001: address already in use") and
// Stats.ListenErrors counts the attempts; the first failure is logged at
// once and a reminder once a minute. The other listeners and every
// client-mode scanner run meanwhile, and the listener serves as soon as
// the port is free. CheckListen lets `sortgw check` find such a port before
// the gateway starts.
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
// first connection), up (connected), down (lost, or its listen address
// cannot be bound; the Source waits out its back-off), closed (Run
// returned). Online additionally needs the state up.
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
// address must have disjoint peers.
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
				l = &listener{src: s, addr: c.Addr, log: log.With().Str("listen", c.Addr).Logger(), bindLim: devices.RateLog{Min: listenLogEvery, Max: listenLogEvery}}
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

// Ready is closed once Run has made its first attempt to bind every
// server-mode listen address, whether it succeeded or not (at once when
// there is none). After Ready, ListenAddr gives the real address of every
// listener that could bind; one that could not keeps retrying and has an
// address only once it binds.
func (s *Source) Ready() <-chan struct{} { return s.ready }

// ListenAddr returns the address a server-mode scanner's listener is bound
// to ("" before Run bound it, while it cannot bind, for a client-mode
// scanner, or an unknown name).
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
// long, as it holds up every scanner. Device and network failures,
// including a listen address that cannot be bound, are retried and shown
// in Status and Stats, never returned: Run returns nil when ctx is done,
// after every connection is closed, and an error only when it is misused
// (ErrNoSink, ErrRunning).
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
	for _, l := range s.listeners {
		for _, sc := range l.scanners {
			sc.setState(devices.LinkConnecting)
		}
	}
	var pending atomic.Int32
	pending.Store(int32(len(s.listeners)))
	attempted := func() {
		if pending.Add(-1) == 0 {
			close(s.ready)
		}
	}
	if len(s.listeners) == 0 {
		close(s.ready)
	}

	var wg sync.WaitGroup
	for _, sc := range s.scanners {
		if sc.cfg.Mode == ModeClient {
			wg.Go(func() { sc.runClient(ctx, sink) })
		}
	}
	for _, l := range s.listeners {
		wg.Go(func() { l.run(ctx, &wg, sink, attempted) })
	}
	wg.Wait()
	return nil
}

// CheckListen tries to bind every server-mode listen address in cfgs and
// releases it at once, so that a configuration check finds a port that
// Run could not bind now (taken by another process, or an address that is
// not on this host): "scanner "S2": listen 127.0.0.1:2001: address already
// in use". It validates a copy of each configuration first (reporting its
// error) and leaves client-mode scanners alone. Run against a running
// gateway, it reports the gateway's own ports as taken. The errors of all
// addresses are joined.
func CheckListen(cfgs []Config) error {
	var errs []error
	seen := map[string]bool{}
	for _, c := range cfgs {
		if err := c.Validate(); err != nil {
			errs = append(errs, err)
			continue
		}
		if c.Mode != ModeServer || seen[c.Addr] {
			continue
		}
		seen[c.Addr] = true
		ln, err := net.Listen("tcp", c.Addr)
		if err != nil {
			errs = append(errs, fmt.Errorf("scanner %q: %w", c.Name, listenError(c.Addr, err)))
			continue
		}
		ln.Close()
	}
	return errors.Join(errs...)
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
	// Refused connections (server mode): from an IP that is not a peer of
	// any scanner on the listen address (counted on each of them), or a
	// second connection from the scanner's peer while its current one is
	// live.
	Refused uint64
	// ListenErrors counts failed attempts to bind the scanner's listen
	// address (server mode; the listener retries with back-off).
	ListenErrors uint64
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
			ListenErrors:  sc.listenErrs.Load(),
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
