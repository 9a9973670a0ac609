package opcua

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"sortgw/devices"
)

// Errors callers and tests branch on.
var (
	// ErrBadStatus: the server answered a request with a status other than
	// Good for one of its nodes (the call itself succeeded).
	ErrBadStatus = errors.New("opc ua bad status")
	// ErrRingMismatch: ACK_SEQ or CONFIRM_COUNT moved in a way the ring
	// cannot explain without a new BOOT_ID; the link follows the PLC.
	ErrRingMismatch = errors.New("ring out of step with the plc")
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
	// connection survived); the link reconnects to resynchronise.
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

	mu          sync.Mutex
	ring        *ring
	queue       []devices.Command
	minDeadline time.Time // a lower bound of the queue's deadlines; zero = none
	closed      bool
	phase       devices.LinkState // Down, Connecting, Syncing (Up is derived), Closed
	lastErr     string
	cur         *conn // the live connection, nil while down
	sess        sessionState
	plc         plcState
	c           counters
	wasUp       bool
	logged      rateLog
}

type counters struct {
	written, taken, late, confirmed, lost, missed, errors, reconnects uint64
}

// plcState is what the PLC last reported.
type plcState struct {
	heartbeat   uint16
	lastHB      time.Time
	sorterState uint16
	fault       uint16
	chuteCount  uint16
	bootID      uint16
	full        devices.ChuteBits
	disabled    devices.ChuteBits
}

// sessionState is the liveness of the current connection's subscription.
type sessionState struct {
	connectedAt   time.Time
	subscribed    bool      // a data notification arrived in this session
	faultKnown    bool      // FaultCode came from this session's subscription
	lastNotif     time.Time // last data notification
	lastProbeOK   time.Time // last probe read that matched what was published
	mismatchSince time.Time // a probe read saw values never published
	ackSeq, count uint16    // last published ACK_SEQ and CONFIRM_COUNT
}

// conn is one connection: client, session, subscription.
type conn struct {
	cl     client
	nodes  *nodeSet
	ctx    context.Context
	cancel context.CancelCauseFunc
}

func (c *conn) fail(err error) { c.cancel(err) }

// New validates cfg and loads the key material; it does not connect.
func New(cfg Config, log zerolog.Logger) (*Link, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	sec, err := loadSecurity(&cfg)
	if err != nil {
		return nil, fmt.Errorf("opcua link %s: %w", cfg.Name, err)
	}
	l := &Link{
		cfg:    cfg,
		log:    log.With().Str("plc", cfg.Name).Str("protocol", "opcua").Str("endpoint", cfg.Endpoint).Logger(),
		sec:    sec,
		events: make(chan devices.Event, cfg.EventBuffer),
		wake:   make(chan struct{}, 1),
		done:   make(chan struct{}),
		ring:   newRing(cfg.Ring),
		phase:  devices.LinkDown,
	}
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
// EventLate and never written.
func (l *Link) Send(ctx context.Context, cmd devices.Command) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if cmd.TID == 0 || int(cmd.Chute) > devices.MaxChutes {
		return fmt.Errorf("divert tid %d to chute %d: %w", cmd.TID, cmd.Chute, devices.ErrBadCommand)
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return devices.ErrClosed
	}
	if len(l.queue) >= l.cfg.QueueSize {
		l.mu.Unlock()
		return fmt.Errorf("divert tid %d to chute %d: %w", cmd.TID, cmd.Chute, devices.ErrQueueFull)
	}
	l.queue = append(l.queue, cmd)
	if !cmd.Deadline.IsZero() && (l.minDeadline.IsZero() || cmd.Deadline.Before(l.minDeadline)) {
		l.minDeadline = cmd.Deadline
	}
	l.mu.Unlock()
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
	st, reason := l.stateLocked(now)
	s := devices.PLCStatus{
		Name:          l.cfg.Name,
		Addr:          l.cfg.Endpoint,
		Protocol:      "opcua",
		State:         st,
		LastError:     l.lastErr,
		Reconnects:    l.c.reconnects,
		PLCHeartbeat:  l.plc.heartbeat,
		LastHeartbeat: l.plc.lastHB,
		SorterState:   l.plc.sorterState,
		FaultCode:     l.plc.fault,
		ChuteCount:    l.plc.chuteCount,
		BootID:        l.plc.bootID,
		AckSeq:        l.ring.ack,
		NextSeq:       l.ring.next,
		Outstanding:   l.ring.outstanding(),
		Queued:        len(l.queue),
		Full:          l.plc.full,
		Disabled:      l.plc.disabled,
		Written:       l.c.written,
		Taken:         l.c.taken,
		Late:          l.c.late,
		Confirmed:     l.c.confirmed,
		Lost:          l.c.lost,
		Missed:        l.c.missed,
		Errors:        l.c.errors,
		RoundTrip:     l.rt.Snapshot(),
	}
	if st == devices.LinkSyncing && reason != "" {
		s.LastError = reason
	}
	return s
}

// stateLocked derives the link state. Up needs a connection whose
// subscription delivers (a notification or a matching probe within
// StaleAfter), FaultCode read from it outside 1..99 (1 is host lost,
// 2..99 are reserved by the contract and held like it, as the Modbus link
// does; 100 and up are the PLC's own and do not stop commands), and a PLC
// heartbeat that changed within PLCWatchdog. The reason says why a
// connected link is not up.
func (l *Link) stateLocked(now time.Time) (devices.LinkState, string) {
	if l.phase != devices.LinkSyncing || l.cur == nil {
		return l.phase, ""
	}
	s := &l.sess
	switch {
	case !s.subscribed:
		return devices.LinkSyncing, "waiting for the subscription's first notification"
	case now.Sub(latest(s.lastNotif, s.lastProbeOK)) > l.cfg.StaleAfter+watchdogTick(l.cfg)*2:
		return devices.LinkSyncing, "subscription silent"
	case !s.mismatchSince.IsZero():
		return devices.LinkSyncing, "subscription lagging: the plc's values changed and were not published"
	case !s.faultKnown:
		return devices.LinkSyncing, "waiting for fault code"
	case l.plc.fault == 1:
		return devices.LinkSyncing, "fault code 1: plc reports host lost"
	case l.plc.fault >= 2 && l.plc.fault <= 99:
		return devices.LinkSyncing, fmt.Sprintf("fault code %d (reserved): commands held", l.plc.fault)
	case now.Sub(l.plc.lastHB) > l.cfg.PLCWatchdog:
		return devices.LinkSyncing, fmt.Sprintf("plc heartbeat unchanged for %s", now.Sub(l.plc.lastHB).Round(time.Millisecond))
	}
	return devices.LinkUp, ""
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
	n := len(l.evs)
	f(time.Now(), &l.evs)
	for _, e := range l.evs[n:] {
		switch e.Kind {
		case devices.EventWritten:
			l.c.written++
		case devices.EventTaken:
			l.c.taken++
		case devices.EventLate:
			l.c.late++
		case devices.EventConfirmed:
			l.c.confirmed++
		case devices.EventLost:
			l.c.lost++
		case devices.EventMissed:
			l.c.missed += uint64(e.Count)
		}
	}
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

// down records a lost or failed connection.
func (l *Link) down(err error, retry time.Duration) {
	if err == nil {
		err = errors.New("connection ended")
	}
	l.mu.Lock()
	l.phase = devices.LinkDown
	l.lastErr = err.Error()
	l.c.errors++
	l.c.reconnects++
	wasUp := l.wasUp
	l.wasUp = false
	log, ok := l.logged.allow(err.Error(), time.Now())
	l.mu.Unlock()
	if ok {
		ev := l.log.Warn()
		if wasUp {
			ev = l.log.Error()
		}
		ev.Err(err).Dur("retry_in", retry).Int("suppressed", log).Msg("plc link down")
	}
}

// rateLog lets the same message through at most once per second.
type rateLog struct {
	msg        string
	at         time.Time
	suppressed int
}

func (r *rateLog) allow(msg string, now time.Time) (suppressed int, ok bool) {
	if msg == r.msg && now.Sub(r.at) < time.Second {
		r.suppressed++
		return 0, false
	}
	s := r.suppressed
	r.msg, r.at, r.suppressed = msg, now, 0
	return s, true
}

// shutdown ends the link for good: queued commands are late, commands not
// yet confirmed are lost. The events go out without blocking; those that
// do not fit are counted and logged.
func (l *Link) shutdown() {
	l.do(func(now time.Time, evs *[]devices.Event) {
		l.closed = true
		l.phase = devices.LinkClosed
		for _, c := range l.queue {
			*evs = append(*evs, devices.Event{Kind: devices.EventLate, TID: c.TID, Chute: c.Chute, At: now})
		}
		clear(l.queue)
		l.queue = l.queue[:0]
		l.ring.closeAll(now, evs)
	})
	l.emitMu.Lock()
	dropped := l.dropped
	l.emitMu.Unlock()
	if dropped > 0 {
		l.log.Warn().Int("dropped", dropped).Msg("events dropped at shutdown: the events channel was full")
	}
	l.log.Info().Msg("plc link closed")
}

// writer owns the divert ring's writes for the whole of Run: it expires
// queued commands at their deadline (while down too), rewrites commands in
// place after a warm reconnect, and writes new ones while the link is up
// and the ring has room. One write at a time, in sequence order.
func (l *Link) writer(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		var (
			job  *entry
			c    *conn
			next time.Time
		)
		l.do(func(now time.Time, evs *[]devices.Event) {
			next = l.expireLocked(now, evs)
			if l.cur == nil {
				return
			}
			if st, _ := l.stateLocked(now); st != devices.LinkUp {
				// Not up by time (watchdogs): look again shortly.
				if len(l.queue) > 0 || l.ring.nextToWrite() != nil {
					next = earliest(next, now.Add(l.cfg.PublishInterval))
				}
				return
			}
			job = l.ring.nextToWrite()
			if job == nil && len(l.queue) > 0 && l.ring.room() {
				cmd := l.queue[0]
				l.queue[0] = devices.Command{}
				l.queue = l.queue[1:]
				job = l.ring.assign(cmd, now)
			}
			if job != nil {
				job.writing, job.needsWrite = true, false
				c = l.cur
			}
		})
		if job != nil {
			l.write(c, job)
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

// expireLocked reports queued commands whose deadline passed as late and
// returns the earliest deadline still queued (zero: none).
func (l *Link) expireLocked(now time.Time, evs *[]devices.Event) time.Time {
	if l.minDeadline.IsZero() || now.Before(l.minDeadline) {
		return l.minDeadline
	}
	var next time.Time
	q := l.queue[:0]
	for _, c := range l.queue {
		if !c.Deadline.IsZero() && !now.Before(c.Deadline) {
			*evs = append(*evs, devices.Event{Kind: devices.EventLate, TID: c.TID, Chute: c.Chute, At: now})
			continue
		}
		if !c.Deadline.IsZero() {
			next = earliest(next, c.Deadline)
		}
		q = append(q, c)
	}
	clear(l.queue[len(q):])
	l.queue = q
	l.minDeadline = next
	return next
}

// write sends one command's WriteRequest and records the outcome.
func (l *Link) write(c *conn, e *entry) {
	req := c.nodes.divertRequest(e.seq, e.cmd.TID, e.cmd.Chute, e.cmd.Reason)
	ctx, cancel := context.WithTimeout(c.ctx, l.cfg.Timeout)
	start := time.Now()
	res, err := c.cl.Write(ctx, req)
	rtt := time.Since(start)
	cancel()
	if err == nil {
		err = writeStatus(req, res)
	}
	l.do(func(now time.Time, evs *[]devices.Event) {
		l.ring.writeDone(e, err == nil, now, evs)
		if err == nil {
			l.rt.Observe(rtt)
		} else {
			l.c.errors++
		}
	})
	if err != nil {
		c.fail(fmt.Errorf("divert seq %d tid %d to chute %d: %w", e.seq, e.cmd.TID, e.cmd.Chute, err))
	}
}
