package scanner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"sortgw/devices"
)

// scanner is one configured scanner: its counters, state and (in client
// mode) its reconnect loop. Counters are atomics so Status never waits for
// a reader goroutine.
type scanner struct {
	src   *Source
	cfg   Config
	pc    ParseConfig
	log   zerolog.Logger
	lis   *listener    // server mode
	peers []netip.Addr // server mode: the IPs a connection may come from
	lim   devices.RateLog

	state     atomic.Uint32 // devices.LinkState
	lastHeard atomic.Int64  // Source.since of the last read or heartbeat; 0 never
	lastHB    atomic.Int64
	connected atomic.Uint64 // connections established so far
	remote    atomic.Pointer[string]
	lastErr   atomic.Pointer[string]

	reads, noreads, heartbeats, malformed, oversized, truncated, ignored, bytes, refused, listenErrs atomic.Uint64

	mu     sync.Mutex // guards conn and connAt (server mode: the current connection)
	conn   net.Conn
	connAt time.Time
}

func newScanner(src *Source, cfg Config, log zerolog.Logger) *scanner {
	sc := &scanner{src: src, cfg: cfg, pc: cfg.parseConfig(), log: log}
	if cfg.Mode == ModeServer {
		sc.peers, _ = parsePeers(cfg.Peer) // Validate has checked them
	}
	sc.state.Store(uint32(devices.LinkDown))
	return sc
}

func (sc *scanner) setState(st devices.LinkState) { sc.state.Store(uint32(st)) }

func (sc *scanner) status(now time.Time) devices.ScannerStatus {
	st := devices.LinkState(sc.state.Load())
	heard := sc.lastHeard.Load()
	addr := sc.cfg.Addr
	if sc.lis != nil {
		if a := sc.lis.bound.Load(); a != nil {
			addr = *a
		}
	}
	reconnects := sc.connected.Load()
	if reconnects > 0 {
		reconnects--
	}
	lastErr := ""
	if p := sc.lastErr.Load(); p != nil {
		lastErr = *p
	}
	return devices.ScannerStatus{
		Name:  sc.cfg.Name,
		Addr:  addr,
		State: st,
		// Online needs a live connection: a scanner whose connection just
		// dropped cannot deliver the next read, whatever it sent before.
		Online:        st == devices.LinkUp && heard != 0 && now.Sub(sc.src.at(heard)) < sc.cfg.HeartbeatTimeout,
		LastHeard:     sc.src.at(heard),
		LastHeartbeat: sc.src.at(sc.lastHB.Load()),
		Reads:         sc.reads.Load(),
		NoReads:       sc.noreads.Load(),
		Heartbeats:    sc.heartbeats.Load(),
		Malformed:     sc.malformed.Load(),
		Oversized:     sc.oversized.Load(),
		Bytes:         sc.bytes.Load(),
		Reconnects:    reconnects,
		Refused:       sc.refused.Load(),
		LastError:     lastErr,
	}
}

func (sc *scanner) setErr(err error) {
	s := err.Error()
	sc.lastErr.Store(&s)
}

// runClient owns the dial/redial loop of a client-mode scanner.
func (sc *scanner) runClient(ctx context.Context, sink func(devices.Read)) {
	bo := devices.Backoff{Min: sc.cfg.BackoffMin, Max: sc.cfg.BackoffMax}
	d := net.Dialer{Timeout: max(sc.cfg.HeartbeatTimeout, time.Second), KeepAlive: 15 * time.Second}
	for {
		sc.setState(devices.LinkConnecting)
		conn, err := d.DialContext(ctx, "tcp", sc.cfg.Addr)
		if err == nil {
			heard, err := sc.serve(ctx, conn, sink, true)
			if ctx.Err() != nil {
				return
			}
			sc.lost(err)
			if heard {
				// Only a connection that carried telegrams proves the
				// scanner well; one that is accepted and dropped at once
				// keeps backing off.
				bo.Reset()
			}
		} else {
			if ctx.Err() != nil {
				return
			}
			sc.setErr(err)
			sc.logLimited("dial", err, "dial failed", 0)
		}
		sc.setState(devices.LinkDown)
		t := time.NewTimer(bo.Next())
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// lost records and logs why a connection ended.
func (sc *scanner) lost(err error) {
	sc.setErr(err)
	sc.logLimited("lost", err, "scanner connection lost", 0)
}

var (
	// errSilent: the connection carried no read and no heartbeat for the
	// heartbeat timeout.
	errSilent = errors.New("no read or heartbeat within the heartbeat timeout")
	// errClosedByPeer: the scanner closed the connection (EOF).
	errClosedByPeer = errors.New("closed by the scanner")
)

// serve reads one connection until it fails, ctx is done or (closeSilent)
// the scanner stays silent past its heartbeat timeout. It reports whether
// any telegram arrived and why the connection ended.
func (sc *scanner) serve(ctx context.Context, conn net.Conn, sink func(devices.Read), closeSilent bool) (heardAny bool, err error) {
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	defer conn.Close()

	remote := conn.RemoteAddr().String()
	sc.remote.Store(&remote)
	// A scanner that accepts and hangs up at once would log a connect per
	// attempt: these go through the same rate limit as errors.
	if ok, n := sc.lim.Allow("connected", time.Now()); ok {
		msg := "scanner connected"
		if sc.connected.Load() > 0 {
			msg = "scanner reconnected"
		}
		sc.log.Info().Str("remote", remote).Int("suppressed", n).Msg(msg)
	}
	sc.connected.Add(1)
	sc.setState(devices.LinkUp)

	cs := connState{sc: sc, sink: sink, framer: NewFramer(sc.cfg.framing(), sc.cfg.MaxFrame)}
	emit := cs.frame // one closure per connection, not per chunk
	buf := make([]byte, sc.cfg.ReadBuffer)
	// The silence clock starts at connect: a scanner gets one heartbeat
	// timeout to say something.
	heard := time.Now()
	silent := false
	for {
		if !silent {
			if err := conn.SetReadDeadline(heard.Add(sc.cfg.HeartbeatTimeout)); err != nil {
				return cs.heard, err
			}
		}
		n, rerr := conn.Read(buf)
		if n > 0 {
			cs.now = time.Now()
			sc.bytes.Add(uint64(n))
			before := cs.framer.Stats()
			cs.framer.Feed(buf[:n], emit)
			sc.account(before, cs.framer.Stats())
			if !cs.heardAt.IsZero() {
				heard = cs.heardAt
				cs.heardAt = time.Time{}
				if silent {
					silent = false
					sc.log.Info().Msg("scanner heard again")
				}
			}
		}
		if rerr == nil {
			continue
		}
		if errors.Is(rerr, os.ErrDeadlineExceeded) && ctx.Err() == nil {
			if closeSilent {
				return cs.heard, fmt.Errorf("%w (%v)", errSilent, sc.cfg.HeartbeatTimeout)
			}
			// Server mode: keep the connection, show the scanner offline
			// (Status does that by itself) and say so once.
			silent = true
			sc.log.Warn().Int64("timeout_ms", sc.cfg.HeartbeatTimeout.Milliseconds()).Msg("scanner silent, shown offline")
			if err := conn.SetReadDeadline(time.Time{}); err != nil {
				return cs.heard, err
			}
			continue
		}
		if errors.Is(rerr, io.EOF) {
			rerr = errClosedByPeer
		}
		return cs.heard, rerr
	}
}

// account adds what the framer counted during one Feed to the scanner's
// counters and logs dropped frames, rate-limited.
func (sc *scanner) account(before, after FramerStats) {
	if d := after.Ignored - before.Ignored; d > 0 {
		sc.ignored.Add(d)
	}
	if d := after.Oversized - before.Oversized; d > 0 {
		sc.oversized.Add(d)
		sc.logLimited("oversized", nil, fmt.Sprintf("frame over %d bytes dropped", sc.cfg.MaxFrame), d)
	}
	if d := after.Truncated - before.Truncated; d > 0 {
		sc.truncated.Add(d)
		sc.logLimited("truncated", nil, "frame without its end dropped (new STX before ETX)", d)
	}
}

// connState is the per-connection state the frame callback needs.
type connState struct {
	sc      *scanner
	sink    func(devices.Read)
	framer  *Framer
	now     time.Time // arrival of the chunk being fed
	heardAt time.Time // set when a chunk held a good telegram
	heard   bool
}

func (cs *connState) frame(p []byte) {
	sc := cs.sc
	r, kind, err := ParsePayload(p, sc.pc)
	if err != nil {
		sc.malformed.Add(1)
		if ok, suppressed := sc.lim.Allow("malformed:"+errors.Unwrap(err).Error(), cs.now); ok {
			sc.log.Warn().Err(err).Str("payload", excerpt(p)).Int("suppressed", suppressed).Msg("malformed telegram")
		}
		return
	}
	d := sc.src.since(cs.now)
	sc.lastHeard.Store(d)
	cs.heardAt = cs.now
	cs.heard = true
	switch kind {
	case KindHeartbeat:
		sc.heartbeats.Add(1)
		sc.lastHB.Store(d)
		return
	case KindNoRead:
		sc.noreads.Add(1)
	}
	sc.reads.Add(1)
	r.Scanner = sc.cfg.Name
	r.At = cs.now
	sc.src.deliver(cs.sink, r)
}

// excerpt is the start of a bad payload for the log (which escapes it).
func excerpt(p []byte) string {
	const n = 64
	if len(p) > n {
		return string(p[:n]) + "…"
	}
	return string(p)
}

// logLimited logs at warn level, rate-limited per key (and error text) by
// devices.RateLog, with the number of repeats it held back: a scanner that
// is off redials every couple of seconds and must not log each time.
func (sc *scanner) logLimited(key string, err error, msg string, count uint64) {
	k := key
	if err != nil {
		k += ":" + err.Error()
	}
	ok, suppressed := sc.lim.Allow(k, time.Now())
	if !ok {
		return
	}
	ev := sc.log.Warn()
	if err != nil {
		ev = ev.Err(err)
	}
	if count > 1 {
		ev = ev.Uint64("count", count)
	}
	ev.Int("suppressed", suppressed).Msg(msg)
}

// listener accepts server-mode scanners on one address.
type listener struct {
	src      *Source
	addr     string
	log      zerolog.Logger
	scanners []*scanner
	bound    atomic.Pointer[string]
	lim      devices.RateLog
	// bindLim holds back repeats of a bind failure: the first is logged at
	// once, then one line a minute says the port is still unusable.
	bindLim devices.RateLog
}

// listenLogEvery is how often a listen address that stays unusable is
// logged again (the state, LastError and the counter show it at once).
const listenLogEvery = time.Minute

func (l *listener) check() error {
	peers := map[netip.Addr]string{}
	for _, sc := range l.scanners {
		sc.lis = l
		for _, ip := range sc.peers {
			if other, dup := peers[ip]; dup && other != sc.cfg.Name {
				return fmt.Errorf("%w: scanners %q and %q on %s have the same peer %s", ErrConfig, other, sc.cfg.Name, l.addr, ip)
			}
			peers[ip] = sc.cfg.Name
		}
	}
	return nil
}

// remoteIP is the IP of a connection's peer, in the form parsePeers gives.
func remoteIP(a net.Addr) netip.Addr {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return netip.Addr{}
	}
	return canonical(ta.AddrPort().Addr())
}

// match finds the scanner a connection from ip belongs to, nil if none.
func (l *listener) match(ip netip.Addr) *scanner {
	if !ip.IsValid() {
		return nil
	}
	for _, sc := range l.scanners {
		if slices.Contains(sc.peers, ip) {
			return sc
		}
	}
	return nil
}

// backoff is the re-listen delay: the smallest bounds of the listener's
// scanners.
func (l *listener) backoff() devices.Backoff {
	b := devices.Backoff{Min: l.scanners[0].cfg.BackoffMin, Max: l.scanners[0].cfg.BackoffMax}
	for _, sc := range l.scanners[1:] {
		b.Min = min(b.Min, sc.cfg.BackoffMin)
		b.Max = min(b.Max, sc.cfg.BackoffMax)
	}
	return b
}

// listenError names the address and the cause without the layers of
// net.OpError: "listen 127.0.0.1:2001: address already in use".
func listenError(addr string, err error) error {
	var se *os.SyscallError
	var oe *net.OpError
	switch {
	case errors.As(err, &se):
		err = se.Err
	case errors.As(err, &oe):
		err = oe.Err
	}
	return fmt.Errorf("listen %s: %w", addr, err)
}

// bind binds the listen address, retrying with back-off for as long as it
// cannot (a port held by another process, an address not yet on the
// host). Only this listener's scanners wait: they are shown down with the
// error meanwhile. attempted is called once, after the first attempt. bind
// returns nil when ctx is done first.
func (l *listener) bind(ctx context.Context, attempted func()) net.Listener {
	bo := l.backoff()
	var lc net.ListenConfig
	failures := 0
	var firstFail time.Time
	for {
		ln, err := lc.Listen(ctx, "tcp", l.addr)
		// Ready follows the first attempt's bookkeeping: after it, the
		// address or the error is there to see.
		first := attempted
		attempted = nil
		if err == nil {
			a := ln.Addr().String()
			l.bound.Store(&a)
			for _, sc := range l.scanners {
				sc.setState(devices.LinkConnecting)
			}
			ev := l.log.Info().Str("addr", a)
			if failures > 0 {
				ev = ev.Int("failed_attempts", failures).Str("unusable_for", time.Since(firstFail).Round(time.Millisecond).String())
			}
			ev.Msg("listening for scanners")
			if first != nil {
				first()
			}
			return ln
		}
		if ctx.Err() != nil {
			if first != nil {
				first()
			}
			return nil
		}
		err = listenError(l.addr, err)
		if failures == 0 {
			firstFail = time.Now()
		}
		failures++
		for _, sc := range l.scanners {
			sc.listenErrs.Add(1)
			sc.setErr(err)
			sc.setState(devices.LinkDown)
		}
		if first != nil {
			first()
		}
		wait := bo.Next()
		if ok, n := l.bindLim.Allow("listen:"+err.Error(), time.Now()); ok {
			l.log.Error().Err(err).Strs("scanners", l.names()).Int("failed_attempts", failures).Int("suppressed", n).
				Str("retry_in", wait.Round(time.Millisecond).String()).
				Msg("cannot listen for scanners, retrying; free the port or fix the address")
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

func (l *listener) names() []string {
	out := make([]string, len(l.scanners))
	for i, sc := range l.scanners {
		out[i] = sc.cfg.Name
	}
	return out
}

// run binds the listener (see bind) and accepts connections until ctx is
// done.
func (l *listener) run(ctx context.Context, wg *sync.WaitGroup, sink func(devices.Read), attempted func()) {
	ln := l.bind(ctx, attempted)
	if ln == nil {
		return
	}
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	defer ln.Close()
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: wait a little.
			if ok, n := l.lim.Allow("accept:"+err.Error(), time.Now()); ok {
				l.log.Error().Err(err).Int("suppressed", n).Msg("accept failed")
			}
			t := time.NewTimer(100 * time.Millisecond)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			continue
		}
		ip := remoteIP(conn.RemoteAddr())
		sc := l.match(ip)
		if sc == nil {
			for _, s := range l.scanners {
				s.refused.Add(1)
			}
			// Keyed by IP, not IP and port: a connect loop uses a new
			// port each time and must still be one line a second.
			if ok, n := l.lim.Allow("refused:"+ip.String(), time.Now()); ok {
				l.log.Warn().Str("remote", conn.RemoteAddr().String()).Int("suppressed", n).
					Msg("connection from an unknown peer refused (not a configured scanner peer)")
			}
			conn.Close()
			continue
		}
		sc.attach(ctx, wg, conn, sink)
	}
}

// attach serves a server-mode connection from the scanner's peer. While
// the current connection is live (it carried a telegram, or connected,
// within the heartbeat timeout) a second one is refused and counted: a
// host at the peer's address cannot take over a working scanner. Once the
// current one has been silent that long (the scanner rebooted and its old
// connection is half-open), the new connection replaces it.
func (sc *scanner) attach(ctx context.Context, wg *sync.WaitGroup, conn net.Conn, sink func(devices.Read)) {
	now := time.Now()
	sc.mu.Lock()
	old := sc.conn
	var quiet time.Duration
	if old != nil {
		last := sc.connAt
		if h := sc.lastHeard.Load(); h != 0 {
			if t := sc.src.at(h); t.After(last) {
				last = t
			}
		}
		quiet = now.Sub(last)
		if quiet < sc.cfg.HeartbeatTimeout {
			sc.mu.Unlock()
			sc.refused.Add(1)
			if ok, n := sc.lim.Allow("busy", now); ok {
				sc.log.Warn().Str("remote", conn.RemoteAddr().String()).Str("current", old.RemoteAddr().String()).
					Int("suppressed", n).Msg("second connection refused: the current one is live")
			}
			conn.Close()
			return
		}
	}
	sc.conn = conn
	sc.connAt = now
	sc.mu.Unlock()
	if old != nil {
		sc.log.Warn().Str("old", old.RemoteAddr().String()).Str("new", conn.RemoteAddr().String()).
			Str("silent_for", quiet.Round(time.Millisecond).String()).Msg("new connection replaces the silent old one")
		old.Close()
	}
	wg.Go(func() {
		_, err := sc.serve(ctx, conn, sink, false)
		sc.mu.Lock()
		current := sc.conn == conn
		if current {
			sc.conn = nil
		}
		sc.mu.Unlock()
		if ctx.Err() != nil || !current {
			return
		}
		sc.setState(devices.LinkDown)
		sc.lost(err)
	})
}
