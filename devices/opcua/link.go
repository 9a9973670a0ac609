package opcua

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"sortgw/devices"
	"sortgw/devices/hostif"
)

// Errors callers and tests branch on.
var (
	// ErrBadStatus: the server answered a request with a status other than
	// Good for one of its nodes (the call itself succeeded).
	ErrBadStatus = errors.New("opc ua bad status")
	// ErrRingMismatch: ACK_SEQ or CONFIRM_COUNT moved in a way the ring
	// cannot explain without a new BOOT_ID; the link follows the PLC
	// (devices/hostif).
	ErrRingMismatch = hostif.ErrRingMismatch
	// ErrUntrustedServer: the server's certificate is not in the trusted
	// list (or outside its validity period).
	ErrUntrustedServer = errors.New("untrusted server certificate")
	// ErrNoEndpoint: the server offers no endpoint with the configured
	// security policy and mode.
	ErrNoEndpoint = errors.New("no matching endpoint")
	// ErrSubscriptionDead: the subscription stopped delivering (a probe
	// read saw a change it never published, its status changed, or gopcua
	// reported a publish error).
	ErrSubscriptionDead = errors.New("subscription dead")
	// ErrDisconnected: gopcua reports the secure channel lost.
	ErrDisconnected = errors.New("secure channel lost")
	// ErrBootChanged: BOOT_ID changed while connected (a cold restart the
	// connection survived). The core follows the PLC as on a cold restart;
	// the value is kept for callers that branch on it.
	ErrBootChanged = errors.New("plc boot id changed")
)

var _ devices.PLCLink = (*Link)(nil)

// Link is a devices.PLCLink over OPC UA (gopcua). Create it with New, run
// it with Run; Send, Events, Status, SetHostState and SetPlanVersion are
// safe for concurrent use.
//
// Locks: emitMu before mu, never the other way round. mu guards all state
// and is never held across network I/O or a channel send; emitMu is held
// while the events decided under mu are handed to the Events channel, so
// events leave in the order they were decided.
type Link struct {
	cfg Config
	log zerolog.Logger
	sec *security

	events  chan devices.Event
	wake    chan struct{} // cap 1: the writer has something to look at
	done    chan struct{} // closed when Run's ctx is done: stop blocking on events
	running atomic.Bool
	rt      devices.Histogram
	// blocked is set while an event waits for room in a full Events
	// channel, unblocked is when that last ended (UnixNano): a handler
	// stalled by the gateway is not a dead subscription.
	blocked   atomic.Bool
	unblocked atomic.Int64

	hostHB      atomic.Uint32
	hostState   atomic.Uint32
	planVersion atomic.Uint32

	emitMu  sync.Mutex
	evs     []devices.Event // decided, not yet delivered (emitMu)
	dropped int             // events dropped at shutdown (emitMu)

	mu      sync.Mutex
	core    *hostif.Core // every rule of the interface
	blk     hostif.Block // the PLC's values as last published or read
	lastErr string
	errors  uint64
	cur     *conn // the live connection, nil while down
	// inFlight counts divert writes out (at most Config.MaxInFlight).
	inFlight int
	sess     sessionState
	wasUp    bool
	rate     devices.RateLog
}

// sessionState is the liveness of the current connection's subscription:
// the transport's own readiness, which it reports to the core.
type sessionState struct {
	connectedAt   time.Time
	subscribed    bool      // a data notification arrived in this session
	faultKnown    bool      // FaultCode came from this session's subscription
	lastNotif     time.Time // last data notification
	lastProbeOK   time.Time // last probe read that matched what was published
	mismatchSince time.Time // a probe read saw values never published
	ackSeq, count uint16    // last published ACK_SEQ and CONFIRM_COUNT
	// ackNewest is the newest ACK_SEQ applied, published or read with the
	// confirmations.
	ackNewest uint16
}

// conn is one connection: client, session, subscription.
type conn struct {
	cl     client
	nodes  *nodeSet
	ctx    context.Context
	cancel context.CancelCauseFunc
	// writes counts the divert writes out on this connection: the session
	// waits for them before the next connection, so that a rewrite never
	// overtakes the failing write it repeats.
	writes sync.WaitGroup
	kick   chan struct{} // cap 1: Count was notified, the reader reads
}

func (c *conn) fail(err error) { c.cancel(err) }

// New validates cfg and loads the key material; it does not connect. The
// caller's logger carries the PLC's identity (With().Str("plc", name)); the
// link adds only protocol and endpoint.
func New(cfg Config, log zerolog.Logger) (*Link, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	sec, err := loadSecurity(&cfg)
	if err != nil {
		return nil, fmt.Errorf("opcua link %s: %w", cfg.Name, err)
	}
	core, err := hostif.New(hostif.Config{
		Ring: cfg.Ring, Chutes: cfg.Chutes, QueueSize: cfg.QueueSize,
		MaxUnconfirmed: cfg.MaxUnconfirmed, PLCWatchdog: cfg.PLCWatchdog, SecondHostHold: cfg.SecondHostHold,
	})
	if err != nil {
		return nil, fmt.Errorf("%w %q: %w", ErrInvalidConfig, cfg.Name, err)
	}
	l := &Link{
		cfg:    cfg,
		log:    log.With().Str("protocol", "opcua").Str("endpoint", cfg.Endpoint).Logger(),
		sec:    sec,
		events: make(chan devices.Event, cfg.EventBuffer),
		wake:   make(chan struct{}, 1),
		done:   make(chan struct{}),
		core:   core,
	}
	// A random start: two gateways on one PLC started at about the same
	// time would otherwise count in step and their read-backs could not
	// tell them apart.
	l.hostHB.Store(rand.Uint32() & 0xffff)
	return l, nil
}

// Config returns the validated configuration (defaults filled in).
func (l *Link) Config() Config { return l.cfg }

// Events delivers what happens to commands and what the PLC confirms. It
// is buffered (Config.EventBuffer) and never closed. The gateway must
// drain it: while it is full the subscription handler stops, and the
// publish loop with it.
//
// Per command the order is Written, Taken, Confirmed (Written is missing
// when the write's reply was lost but the PLC took the command anyway), or
// Late, or Lost at any point after it took a sequence number.
func (l *Link) Events() <-chan devices.Event { return l.events }

// SetHostState sets Host.State, written with the next heartbeat.
func (l *Link) SetHostState(s devices.HostState) { l.hostState.Store(uint32(s)) }

// SetPlanVersion sets Host.PlanVersion, written with the next heartbeat.
func (l *Link) SetPlanVersion(v uint16) { l.planVersion.Store(uint32(v)) }

// Send queues a command for the ring. It never blocks on the network: the
// command waits for a ring slot and a link that is up, and its fate
// arrives on Events. A command still queued at its Deadline is reported
// EventLate and never written. TID 0 and a chute above Config.Chutes are
// refused with devices.ErrBadCommand.
func (l *Link) Send(ctx context.Context, cmd devices.Command) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	l.mu.Lock()
	err := l.core.Enqueue(cmd, time.Now())
	l.mu.Unlock()
	if err != nil {
		return err
	}
	l.signal()
	return nil
}

func (l *Link) signal() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// Status is a snapshot for the status page; it never touches the network.
func (l *Link) Status() devices.PLCStatus {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	l.readyLocked(now)
	st := devices.PLCStatus{
		Name:      l.cfg.Name,
		Addr:      l.cfg.Endpoint,
		Protocol:  "opcua",
		LastError: l.lastErr,
		Errors:    l.errors,
		RoundTrip: l.rt.Snapshot(),
	}
	l.core.Status(now, &st)
	return st
}

// readyLocked tells the core whether the transport can carry commands: a
// connection whose subscription delivers (a notification, or a probe read
// that matched what was published, within StaleAfter) and has published
// FaultCode. Everything else that holds commands (FAULT_CODE, the PLC
// heartbeat) is the core's rule.
func (l *Link) readyLocked(now time.Time) {
	if l.cur == nil {
		return
	}
	s := &l.sess
	switch {
	case !s.subscribed:
		l.core.SetReady(false, "waiting for the subscription's first notification")
	case now.Sub(latest(s.lastNotif, s.lastProbeOK)) > l.cfg.StaleAfter+watchdogTick(l.cfg)*2:
		l.core.SetReady(false, "subscription silent")
	case !s.mismatchSince.IsZero():
		l.core.SetReady(false, "subscription lagging: the plc's values changed and were not published")
	case !s.faultKnown:
		l.core.SetReady(false, "waiting for fault code")
	default:
		l.core.SetReady(true, "")
	}
}

// stateLocked is the link state (the core's decision) and why it is not up.
func (l *Link) stateLocked(now time.Time) (devices.LinkState, error) {
	l.readyLocked(now)
	return l.core.State(now)
}

func latest(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// do runs f under mu and then delivers the events f decided, in order.
func (l *Link) do(f func(now time.Time, evs *[]devices.Event)) {
	l.emitMu.Lock()
	defer l.emitMu.Unlock()
	l.mu.Lock()
	f(time.Now(), &l.evs)
	l.mu.Unlock()
	l.flush()
}

// flush hands the decided events to the Events channel, blocking while it
// is full unless the link is shutting down. Caller holds emitMu.
func (l *Link) flush() {
	for i, e := range l.evs {
		select {
		case l.events <- e:
			continue
		default:
		}
		l.blocked.Store(true)
		select {
		case l.events <- e:
			l.unblocked.Store(time.Now().UnixNano())
			l.blocked.Store(false)
		case <-l.done:
			l.blocked.Store(false)
			l.dropped += len(l.evs) - i
			clear(l.evs)
			l.evs = l.evs[:0]
			return
		}
	}
	clear(l.evs)
	l.evs = l.evs[:0]
}

// Run connects, keeps the link up and reconnects until ctx is done. It is
// the one owner of reconnection: gopcua's own auto-reconnect is off, and
// every connection (client, session, subscription) is made new.
func (l *Link) Run(ctx context.Context) error {
	if !l.running.CompareAndSwap(false, true) {
		return fmt.Errorf("opcua link %s: run called twice", l.cfg.Name)
	}
	ctx, cancel := context.WithCancel(ctx)
	// Once ctx is done nobody may be left blocked on a full Events
	// channel (the gateway may have stopped reading): session teardown
	// waits for goroutines that could be.
	context.AfterFunc(ctx, func() { close(l.done) })
	var wg sync.WaitGroup
	wg.Go(func() { l.writer(ctx) })
	l.log.Info().Str("security", l.cfg.Security).Msg("plc link starting")

	bo := devices.Backoff{Min: l.cfg.BackoffMin, Max: l.cfg.BackoffMax}
	for ctx.Err() == nil {
		wasUp, err := l.session(ctx)
		if ctx.Err() != nil {
			break
		}
		if wasUp {
			bo.Reset()
		}
		d := bo.Next()
		l.down(err, d)
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
	cancel()
	<-l.done
	wg.Wait()
	l.shutdown()
	return nil
}

// down records a lost or failed connection. Repeats of the same error
// are rate-limited (devices.RateLog).
func (l *Link) down(err error, retry time.Duration) {
	if err == nil {
		err = errors.New("connection ended")
	}
	l.mu.Lock()
	l.lastErr = err.Error()
	l.errors++
	wasUp := l.wasUp
	l.wasUp = false
	l.mu.Unlock()
	if ok, n := l.rate.Allow("down:"+err.Error(), time.Now()); ok {
		ev := l.log.Warn()
		if wasUp {
			ev = l.log.Error()
		}
		ev.Err(err).Int64("retry_in_ms", retry.Milliseconds()).Int("suppressed", n).Msg("plc link down")
	}
}

// shutdown ends the link for good: queued commands are late, commands not
// yet confirmed are lost. The events go out without blocking; those that
// do not fit are counted and logged.
func (l *Link) shutdown() {
	l.do(func(now time.Time, evs *[]devices.Event) {
		l.core.Close(now, evs)
	})
	l.emitMu.Lock()
	dropped := l.dropped
	l.emitMu.Unlock()
	if dropped > 0 {
		l.log.Warn().Int("dropped", dropped).Msg("events dropped at shutdown: the events channel was full")
	}
	l.log.Info().Msg("plc link closed")
}

// writer carries out the core's slot writes for the whole of Run, up to
// Config.MaxInFlight at a time on the live connection: the core decides
// what (rewrites in place first, then new commands while the ring has
// room) and when (up); it also makes the core report queued commands late
// at their deadline, connected or not.
//
// Each write runs in its own goroutine, but the writer hands out the next
// one only once the previous one's request is on the wire (sentCtx), so
// the WriteRequests leave in the order the core handed them out: the ring
// in order. A PLC that still applies them out of order is safe: it takes
// only SEQ = ACK_SEQ+1, so a later slot written first waits for the
// earlier one (docs/plc-interface.md).
func (l *Link) writer(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	// prev is closed once the last write handed out has reported its
	// outcome: each write reports after the one before it.
	prev := make(chan struct{})
	close(prev)
	for {
		var (
			job  hostif.Write
			ok   bool
			c    *conn
			next time.Time
		)
		l.do(func(now time.Time, evs *[]devices.Event) {
			next = l.core.Tick(now, evs)
			if l.cur == nil || l.cur.ctx.Err() != nil {
				return
			}
			if l.inFlight >= l.cfg.MaxInFlight {
				return // a write's end wakes the writer
			}
			l.readyLocked(now)
			job, ok = l.core.NextWrite(now, evs)
			if ok {
				c = l.cur
				// Under mu while l.cur is c: session waits for c's writes
				// only after it has cleared l.cur, so no Add comes after
				// its Wait.
				c.writes.Add(1)
				l.inFlight++
				return
			}
			if st, _ := l.core.State(now); st != devices.LinkUp && (l.core.Queued() > 0 || l.core.Outstanding() > 0) {
				// Held by time (watchdogs): look again shortly.
				next = earliest(next, now.Add(l.cfg.PublishInterval))
			}
		})
		if ok {
			sent, done, before := make(chan struct{}), make(chan struct{}), prev
			prev = done
			go func() {
				defer c.writes.Done()
				defer close(done)
				l.write(c, job, sent, before)
			}()
			select {
			case <-sent:
			case <-ctx.Done():
				return
			}
			continue
		}
		if !next.IsZero() {
			timer.Reset(max(time.Until(next), 0))
		}
		select {
		case <-ctx.Done():
			return
		case <-l.wake:
		case <-timer.C:
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
	}
}

func earliest(a, b time.Time) time.Time {
	if a.IsZero() || b.Before(a) {
		return b
	}
	return a
}

// write sends one command's WriteRequest and reports the outcome to the
// core once before is closed (the write handed out before it has reported),
// so that Written and Taken leave in ring order. sent is closed once the
// request is on the wire (or the write has ended without sending it).
func (l *Link) write(c *conn, w hostif.Write, sent chan struct{}, before <-chan struct{}) {
	req := c.nodes.divertRequest(w.Seq, w.TID, w.Chute, w.Reason)
	ctx, cancel := context.WithTimeout(c.ctx, l.cfg.Timeout)
	sctx := &sentCtx{Context: ctx, sent: sent}
	start := time.Now()
	res, err := c.cl.Write(sctx, req)
	rtt := time.Since(start)
	cancel()
	sctx.signal()
	if err == nil {
		err = writeStatus(req, res)
	}
	if err != nil {
		// Before WriteDone: the writer must not hand out more writes on a
		// connection that failed one (they would follow it out of order).
		c.fail(fmt.Errorf("divert seq %d tid %d to chute %d: %w", w.Seq, w.TID, w.Chute, err))
	}
	// The server answers in order, so this rarely waits; the write before
	// ends promptly even on a dead connection (its context is c's, or a
	// former connection's, which the session waited for).
	<-before
	l.do(func(now time.Time, evs *[]devices.Event) {
		l.inFlight--
		l.core.WriteDone(w, err == nil, now, evs)
		if err == nil {
			l.rt.Observe(rtt)
		} else {
			l.errors++
		}
	})
	l.signal()
}

// sentCtx tells when gopcua has put a request on the wire. gopcua v0.8.0
// has no asynchronous send: Client.Write sends and waits for the reply in
// one call. It does call ctx.Done for the first time while it holds the
// secure channel's send lock, just before it writes the request's first
// (here: only) chunk, and again after the send, when it starts waiting for
// the reply (uasc.SecureChannel sendAsyncWithTimeout and
// sendRequestWithTimeout). The second call therefore comes after the
// request was written or while the lock is still held, so a write started
// after it is sent after this one. Should a gopcua version call Done
// differently, the end of the write signals too: the writes then go one at
// a time, never out of order (TestLinkPipelinedRingOrder checks the wire).
type sentCtx struct {
	context.Context
	calls atomic.Int32
	once  sync.Once
	sent  chan struct{}
}

func (s *sentCtx) Done() <-chan struct{} {
	if s.calls.Add(1) == 2 {
		s.signal()
	}
	return s.Context.Done()
}

func (s *sentCtx) signal() { s.once.Do(func() { close(s.sent) }) }
