package fieldbussim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// Scanner framings (ScannerConfig.Framing).
const (
	FramingSTX  = "stx"  // STX (0x02) payload ETX (0x03)
	FramingCRLF = "crlf" // payload CR LF
)

// oversizeLen is the payload length of an Oversize fault frame: above the
// contract's 4096-byte frame limit.
const oversizeLen = 5000

// ScannerConfig configures the emulated barcode scanners.
type ScannerConfig struct {
	// Count is the number of scanners (default 1, or len(Addrs) / len(DialOut)
	// when larger).
	Count int
	// Addrs are the listen addresses, one per scanner; missing entries
	// default to 127.0.0.1:0.
	Addrs []string
	// DialOut, if set, makes the scanners dial the gateway instead of
	// listening: scanner i dials DialOut[i], or DialOut[0] for all when it
	// has one entry.
	DialOut []string
	// Framing is "stx" (default) or "crlf".
	Framing string
	// Heartbeat is the HB period (default 1s; negative: no heartbeats).
	Heartbeat time.Duration
	// NoReadToken is the no-read code (default "NoRead").
	NoReadToken string
	// HeartbeatToken is the heartbeat payload (default "HB").
	HeartbeatToken string
	// Separator separates TID and codes (default ";").
	Separator string
	// QueueSize bounds each connection's send queue in frames (default
	// 1024); a frame that finds the queue full is dropped and counted, so
	// a slow gateway never holds up the conveyor.
	QueueSize int
	// WriteTimeout closes a connection whose peer does not take a frame
	// within it (default 2s).
	WriteTimeout time.Duration
	// BackoffMin and BackoffMax bound the redial back-off in DialOut mode
	// (default 100ms, 2s).
	BackoffMin, BackoffMax time.Duration
}

// ErrScannerConfig wraps scanner configuration errors.
var ErrScannerConfig = errors.New("scanner config")

// Validate fills defaults and checks the configuration.
func (c *ScannerConfig) Validate() error {
	if c.Count == 0 {
		c.Count = max(1, len(c.Addrs), len(c.DialOut))
	}
	if c.Count < 0 {
		return fmt.Errorf("%w: count %d: negative", ErrScannerConfig, c.Count)
	}
	if len(c.Addrs) > c.Count {
		return fmt.Errorf("%w: %d addrs for %d scanners", ErrScannerConfig, len(c.Addrs), c.Count)
	}
	if len(c.DialOut) > 1 && len(c.DialOut) != c.Count {
		return fmt.Errorf("%w: %d dial-out addrs for %d scanners: want 1 or %d", ErrScannerConfig, len(c.DialOut), c.Count, c.Count)
	}
	if len(c.DialOut) > 0 && len(c.Addrs) > 0 {
		return fmt.Errorf("%w: both listen addrs and dial-out addrs set", ErrScannerConfig)
	}
	switch c.Framing {
	case "":
		c.Framing = FramingSTX
	case FramingSTX, FramingCRLF:
	default:
		return fmt.Errorf("%w: framing %q: want %q or %q", ErrScannerConfig, c.Framing, FramingSTX, FramingCRLF)
	}
	if c.Heartbeat == 0 {
		c.Heartbeat = time.Second
	}
	if c.NoReadToken == "" {
		c.NoReadToken = "NoRead"
	}
	if c.HeartbeatToken == "" {
		c.HeartbeatToken = "HB"
	}
	if c.Separator == "" {
		c.Separator = ";"
	}
	for _, tok := range []string{c.NoReadToken, c.HeartbeatToken, c.Separator} {
		if strings.ContainsAny(tok, "\x02\x03\r\n") {
			return fmt.Errorf("%w: token %q holds a framing byte", ErrScannerConfig, tok)
		}
	}
	if c.QueueSize == 0 {
		c.QueueSize = 1024
	}
	if c.QueueSize < 1 {
		return fmt.Errorf("%w: queue size %d: want at least 1", ErrScannerConfig, c.QueueSize)
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = 2 * time.Second
	}
	if c.BackoffMin == 0 {
		c.BackoffMin = 100 * time.Millisecond
	}
	if c.BackoffMax == 0 {
		c.BackoffMax = 2 * time.Second
	}
	if c.WriteTimeout < 0 || c.BackoffMin < 0 || c.BackoffMax < c.BackoffMin {
		return fmt.Errorf("%w: timeouts: negative write timeout or back-off max below min", ErrScannerConfig)
	}
	return nil
}

// ScannerStats are one emulated scanner's counters.
type ScannerStats struct {
	Name string
	// Addr is the listen address, or the dial-out target.
	Addr        string
	Connections int
	// Telegrams counts telegrams (reads and no-reads) handed to at least
	// one connection; NoConnection those sent while no gateway was
	// connected (lost, as on a real line).
	Telegrams    uint64
	NoReads      uint64
	NoConnection uint64
	Heartbeats   uint64
	Garbage      uint64
	Oversize     uint64
	// QueueDrops counts frames dropped because a connection's queue was
	// full (the gateway did not keep up).
	QueueDrops uint64
	// Accepted counts connections accepted or dialled.
	Accepted uint64
	// Drops counts connections closed by the Drop fault.
	Drops uint64
}

// scanners is the set of emulated scanners. Send and the fault methods are
// safe for concurrent use and never block on the network.
type scanners struct {
	cfg   ScannerConfig
	log   zerolog.Logger
	list  []*scanner
	ready chan struct{}

	mu      sync.Mutex
	bound   bool
	started bool
	// runCtx and runWG are Run's, so that a scanner switched back on
	// (SetOff) serves under the same life cycle.
	runCtx context.Context
	runWG  *sync.WaitGroup
}

type scanner struct {
	idx    int
	name   string
	set    *scanners
	log    zerolog.Logger
	listen string // configured listen address (listen mode)
	dial   string // dial-out target ("" = listen mode)

	mu     sync.Mutex
	ln     net.Listener
	addr   string
	conns  map[*scanConn]struct{}
	closed bool // Run is shutting down: no new connections
	off    bool // SetOff: no listener, no dial, no connection

	telegrams, noReads, noConn, heartbeats, garbage, oversize, queueDrops, accepted, drops atomic.Uint64
}

// scanConn is one gateway connection with its bounded send queue.
type scanConn struct {
	c         net.Conn
	q         chan []byte
	done      chan struct{}
	closeOnce sync.Once
}

func (sc *scanConn) close() {
	sc.closeOnce.Do(func() {
		close(sc.done)
		sc.c.Close()
	})
}

// newScanners builds the scanner set (cfg is validated here).
func newScanners(cfg ScannerConfig, log zerolog.Logger) (*scanners, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &scanners{cfg: cfg, log: log, ready: make(chan struct{})}
	for i := range cfg.Count {
		sc := &scanner{idx: i, name: "scanner-" + strconv.Itoa(i+1), set: s, conns: map[*scanConn]struct{}{}}
		sc.log = log.With().Str("scanner", sc.name).Logger()
		switch {
		case len(cfg.DialOut) == 1:
			sc.dial = cfg.DialOut[0]
		case len(cfg.DialOut) > 1:
			sc.dial = cfg.DialOut[i]
		case i < len(cfg.Addrs) && cfg.Addrs[i] != "":
			sc.listen = cfg.Addrs[i]
		default:
			sc.listen = "127.0.0.1:0"
		}
		if sc.dial != "" {
			sc.addr = sc.dial
		}
		s.list = append(s.list, sc)
	}
	return s, nil
}

// Listen binds every listen-mode scanner's listener; Run calls it if the
// caller did not. After it returns nil, Addrs is valid.
func (s *scanners) Listen() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.bound {
		return nil
	}
	for _, sc := range s.list {
		if sc.dial != "" {
			continue
		}
		ln, err := net.Listen("tcp", sc.listen)
		if err != nil {
			for _, o := range s.list {
				o.mu.Lock()
				if o.ln != nil {
					o.ln.Close()
					o.ln, o.addr = nil, ""
				}
				o.mu.Unlock()
			}
			return fmt.Errorf("%s: listen %s: %w", sc.name, sc.listen, err)
		}
		sc.mu.Lock()
		sc.ln, sc.addr = ln, ln.Addr().String()
		sc.mu.Unlock()
		sc.log.Info().Str("addr", sc.addr).Str("framing", s.cfg.Framing).Msg("scanner listening")
	}
	s.bound = true
	close(s.ready)
	return nil
}

// Ready is closed once the listeners are bound.
func (s *scanners) Ready() <-chan struct{} { return s.ready }

// Addrs returns each scanner's listen address (or its dial-out target).
func (s *scanners) Addrs() []string {
	out := make([]string, len(s.list))
	for i, sc := range s.list {
		sc.mu.Lock()
		out[i] = sc.addr
		sc.mu.Unlock()
	}
	return out
}

// Run serves (or dials) until ctx is done, then closes every listener and
// connection and returns after all its goroutines ended.
func (s *scanners) Run(ctx context.Context) error {
	if err := s.Listen(); err != nil {
		return err
	}
	s.mu.Lock()
	if s.started {
		s.mu.Unlock()
		return errors.New("scanners: Run called twice")
	}
	s.started = true
	var wg sync.WaitGroup
	s.runCtx, s.runWG = ctx, &wg
	s.mu.Unlock()

	for _, sc := range s.list {
		wg.Add(1)
		if sc.dial != "" {
			go func() { defer wg.Done(); sc.dialLoop(ctx, &wg) }()
		} else {
			go func() { defer wg.Done(); sc.acceptLoop(ctx, &wg) }()
		}
	}
	if s.cfg.Heartbeat > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.NewTicker(s.cfg.Heartbeat)
			defer t.Stop()
			hb := s.frame([]byte(s.cfg.HeartbeatToken))
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					for _, sc := range s.list {
						if sc.broadcast(hb) > 0 {
							sc.heartbeats.Add(1)
						}
					}
				}
			}
		}()
	}
	<-ctx.Done()
	for _, sc := range s.list {
		sc.mu.Lock()
		sc.closed = true
		if sc.ln != nil {
			sc.ln.Close()
		}
		sc.mu.Unlock()
		sc.closeAll()
	}
	wg.Wait()
	return nil
}

func (sc *scanner) acceptLoop(ctx context.Context, wg *sync.WaitGroup) {
	sc.mu.Lock()
	ln := sc.ln
	sc.mu.Unlock()
	if ln == nil { // switched off before Run: SetOff starts the loop
		return
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, net.ErrClosed) {
				sc.log.Error().Err(err).Msg("scanner accept")
			}
			return
		}
		sc.accepted.Add(1)
		sc.log.Info().Str("peer", c.RemoteAddr().String()).Msg("gateway connected")
		sc.serve(c, wg)
	}
}

// dialLoop keeps one connection to the gateway, redialling with back-off.
func (sc *scanner) dialLoop(ctx context.Context, wg *sync.WaitGroup) {
	cfg := &sc.set.cfg
	backoff := cfg.BackoffMin
	d := net.Dialer{Timeout: 2 * time.Second}
	for {
		sc.mu.Lock()
		off := sc.off
		sc.mu.Unlock()
		var c net.Conn
		err := errScannerOff
		if !off {
			c, err = d.DialContext(ctx, "tcp", sc.dial)
		}
		if err == nil {
			sc.accepted.Add(1)
			sc.log.Info().Str("gateway", sc.dial).Msg("connected to gateway")
			conn := sc.serve(c, wg)
			select {
			case <-conn.done:
			case <-ctx.Done():
				return
			}
			backoff = cfg.BackoffMin
		} else if ctx.Err() == nil {
			sc.log.Debug().Err(err).Dur("backoff_ms", backoff).Msg("dial gateway")
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, cfg.BackoffMax)
	}
}

// serve registers c and starts its writer and reader goroutines.
func (sc *scanner) serve(c net.Conn, wg *sync.WaitGroup) *scanConn {
	conn := &scanConn{c: c, q: make(chan []byte, sc.set.cfg.QueueSize), done: make(chan struct{})}
	sc.mu.Lock()
	if sc.closed || sc.off {
		sc.mu.Unlock()
		conn.close()
		return conn
	}
	sc.conns[conn] = struct{}{}
	sc.mu.Unlock()
	wt := sc.set.cfg.WriteTimeout
	wg.Add(2)
	go func() { // writer: the only goroutine that writes to c
		defer wg.Done()
		defer sc.remove(conn)
		for {
			select {
			case <-conn.done:
				return
			case f := <-conn.q:
				if wt > 0 {
					c.SetWriteDeadline(time.Now().Add(wt))
				}
				if _, err := c.Write(f); err != nil {
					sc.log.Warn().Err(err).Msg("scanner write; closing connection")
					return
				}
			}
		}
	}()
	go func() { // reader: the gateway sends nothing; EOF means it hung up
		defer wg.Done()
		defer sc.remove(conn)
		io.Copy(io.Discard, c)
	}()
	return conn
}

func (sc *scanner) remove(conn *scanConn) {
	conn.close()
	sc.mu.Lock()
	_, ok := sc.conns[conn]
	delete(sc.conns, conn)
	sc.mu.Unlock()
	if ok {
		sc.log.Info().Msg("gateway connection closed")
	}
}

func (sc *scanner) closeAll() int {
	sc.mu.Lock()
	conns := make([]*scanConn, 0, len(sc.conns))
	for c := range sc.conns {
		conns = append(conns, c)
	}
	sc.mu.Unlock()
	for _, c := range conns {
		sc.remove(c)
	}
	return len(conns)
}

// broadcast queues frame on every connection without blocking and returns
// how many connections took it.
func (sc *scanner) broadcast(frame []byte) int {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	n := 0
	for c := range sc.conns {
		select {
		case c.q <- frame:
			n++
		default:
			sc.queueDrops.Add(1)
		}
	}
	return n
}

// frame wraps payload in the configured framing.
func (s *scanners) frame(payload []byte) []byte {
	if s.cfg.Framing == FramingCRLF {
		f := make([]byte, 0, len(payload)+2)
		return append(append(f, payload...), '\r', '\n')
	}
	f := make([]byte, 0, len(payload)+2)
	return append(append(append(f, 0x02), payload...), 0x03)
}

func (s *scanners) get(i int) *scanner {
	if i < 0 || i >= len(s.list) {
		s.log.Error().Int("scanner", i).Int("count", len(s.list)).Msg("no such scanner")
		return nil
	}
	return s.list[i]
}

// Send sends the telegram "TID;CODE[;CODE...]" from scanner i; no codes is a
// no-read.
func (s *scanners) Send(i int, tid uint32, codes []string) {
	sc := s.get(i)
	if sc == nil {
		return
	}
	var b strings.Builder
	b.WriteString(strconv.FormatUint(uint64(tid), 10))
	if len(codes) == 0 {
		b.WriteString(s.cfg.Separator)
		b.WriteString(s.cfg.NoReadToken)
		sc.noReads.Add(1)
	}
	for _, c := range codes {
		b.WriteString(s.cfg.Separator)
		b.WriteString(c)
	}
	if sc.broadcast(s.frame([]byte(b.String()))) == 0 {
		sc.noConn.Add(1)
		return
	}
	sc.telegrams.Add(1)
}

// SendNoRead sends "TID;NoRead" from scanner i.
func (s *scanners) SendNoRead(i int, tid uint32) { s.Send(i, tid, nil) }

// Drop closes scanner i's gateway connections (the fault of a cable pulled
// and put back): a listening scanner accepts again, a dialling one redials.
func (s *scanners) Drop(i int) {
	if sc := s.get(i); sc != nil {
		n := sc.closeAll()
		sc.drops.Add(uint64(n))
		sc.log.Warn().Int("connections", n).Msg("fault: scanner connections dropped")
	}
}

var errScannerOff = errors.New("scanner switched off")

// SetOff switches scanner i off or back on. Off: its listener closes (a
// gateway's dial is refused) or it stops dialling, and its connections
// drop; it sends nothing. On: it listens again on the address it had, or
// dials again. Switching to the state it is in does nothing.
func (s *scanners) SetOff(i int, on bool) error {
	if i < 0 || i >= len(s.list) {
		return fmt.Errorf("scanner %d: no such scanner (%d configured)", i, len(s.list))
	}
	sc := s.list[i]
	sc.mu.Lock()
	if sc.off == on || sc.closed {
		sc.mu.Unlock()
		return nil
	}
	if on {
		sc.off = true
		ln := sc.ln
		sc.ln = nil
		sc.mu.Unlock()
		if ln != nil {
			ln.Close()
		}
		n := sc.closeAll()
		sc.drops.Add(uint64(n))
		sc.log.Warn().Int("connections", n).Msg("fault: scanner switched off")
		return nil
	}
	defer sc.mu.Unlock()
	if sc.dial == "" && sc.addr != "" {
		// The old port may linger a moment after its listener closed.
		var ln net.Listener
		var err error
		for attempt := 0; attempt < 50; attempt++ {
			if attempt > 0 {
				time.Sleep(10 * time.Millisecond)
			}
			if ln, err = net.Listen("tcp", sc.addr); err == nil {
				break
			}
		}
		if err != nil {
			return fmt.Errorf("%s: listen again on %s: %w", sc.name, sc.addr, err)
		}
		sc.ln = ln
		s.mu.Lock()
		ctx, wg := s.runCtx, s.runWG
		s.mu.Unlock()
		// Run sets closed (checked above, under sc.mu) before it waits on
		// wg, so this Add comes before that Wait.
		if wg != nil {
			wg.Add(1)
			go func() { defer wg.Done(); sc.acceptLoop(ctx, wg) }()
		}
	}
	sc.off = false
	sc.log.Warn().Msg("fault cleared: scanner switched on")
	return nil
}

// Garbage sends n frames of binary junk from scanner i (framed, so a
// gateway that resynchronises on the next frame start survives it).
func (s *scanners) Garbage(i, n int) {
	sc := s.get(i)
	if sc == nil {
		return
	}
	for range n {
		p := make([]byte, 4+rand.IntN(60))
		for j := range p {
			for {
				c := byte(rand.IntN(256))
				if c != 0x02 && c != 0x03 && c != '\r' && c != '\n' {
					p[j] = c
					break
				}
			}
		}
		sc.broadcast(s.frame(p))
		sc.garbage.Add(1)
	}
	sc.log.Warn().Int("frames", n).Msg("fault: scanner garbage")
}

// Oversize sends n frames whose payload is longer than the contract's
// 4096-byte limit from scanner i.
func (s *scanners) Oversize(i, n int) {
	sc := s.get(i)
	if sc == nil {
		return
	}
	p := []byte(strings.Repeat("9", oversizeLen))
	for range n {
		sc.broadcast(s.frame(p))
		sc.oversize.Add(1)
	}
	sc.log.Warn().Int("frames", n).Msg("fault: scanner oversize frames")
}

// Stats returns every scanner's counters.
func (s *scanners) Stats() []ScannerStats {
	out := make([]ScannerStats, len(s.list))
	for i, sc := range s.list {
		sc.mu.Lock()
		st := ScannerStats{Name: sc.name, Addr: sc.addr, Connections: len(sc.conns)}
		sc.mu.Unlock()
		st.Telegrams, st.NoReads, st.NoConnection = sc.telegrams.Load(), sc.noReads.Load(), sc.noConn.Load()
		st.Heartbeats, st.Garbage, st.Oversize = sc.heartbeats.Load(), sc.garbage.Load(), sc.oversize.Load()
		st.QueueDrops, st.Accepted, st.Drops = sc.queueDrops.Load(), sc.accepted.Load(), sc.drops.Load()
		out[i] = st
	}
	return out
}

// Len is the number of scanners.
func (s *scanners) Len() int { return len(s.list) }
