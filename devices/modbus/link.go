package modbus

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	gmb "github.com/goburrow/modbus"
	"github.com/rs/zerolog"

	"sortgw/devices"
)

// Link is a devices.PLCLink over Modbus TCP. Create it with New, start it
// with Run; Send, Events, Status, SetHostState and SetPlanVersion are safe
// for concurrent use.
//
// Lock order (see doc.go): emitMu before mu. mu is never held across
// network I/O or a channel send; emitMu is held while events are handed to
// the Events channel, so events leave in the order they were decided.
type Link struct {
	cfg Config
	lay layout
	log zerolog.Logger

	events chan devices.Event
	wake   chan struct{}

	rtt         devices.Histogram
	writtenLat  devices.Histogram
	takenLat    devices.Histogram
	dispatchLat devices.Histogram
	pollGap     devices.Histogram

	hostState   atomic.Uint32
	planVersion atomic.Uint32
	started     atomic.Bool

	// Owned by the Run goroutine (the session's poll loop).
	regs     []uint16
	blk      block
	hostHB   uint16
	lastPoll time.Time

	emitMu  sync.Mutex
	evs     []devices.Event // scratch; appended under mu by the emitMu holder
	dropped int             // events dropped at shutdown (emitMu)

	mu          sync.Mutex
	state       devices.LinkState
	hold        error // why a connected link is not up
	lastErr     string
	sess        *session
	closed      bool
	queue       cmdQueue
	out         []*entry // assigned a sequence number, not yet taken, in seq order
	pend        pending  // assigned, not yet confirmed
	ack, next   uint16
	haveBoot    bool
	bootID      uint16
	confirmN    uint16
	plcHB       uint16
	plcHBAt     time.Time // when PLC_HEARTBEAT last changed
	watchFrom   time.Time // start of the current session: the watchdog's earliest base
	sorterState uint16
	faultCode   uint16
	chuteCount  uint16
	warnedCount bool
	full        devices.ChuteBits
	disabled    devices.ChuteBits
	errLog      errLog
	forgetLog   errLog
	nextExpiry  time.Time // no queued deadline is before this (zero: none queued)
	c           counters
}

type counters struct {
	written, taken, late, confirmed, lost, missed, errors, busy, reconnects uint64
	rewrites, forgotten                                                     uint64
}

// session is one connection (or pair of connections) to the PLC, from dial
// to the first error.
type session struct {
	poll, cmd *conn
	failed    bool           // guarded by Link.mu: no request may be sent any more
	errCh     chan error     // the dispatcher's write error, cap 1
	wg        sync.WaitGroup // the dispatcher's write in flight on cmd
}

var _ devices.PLCLink = (*Link)(nil)

// New validates cfg (filling in defaults) and returns a link that does
// nothing until Run.
func New(cfg Config, log zerolog.Logger) (*Link, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	l := &Link{
		cfg:       cfg,
		lay:       newLayout(&cfg),
		log:       log.With().Str("plc", cfg.Name).Str("addr", cfg.Addr).Str("protocol", "modbus").Logger(),
		events:    make(chan devices.Event, cfg.EventBuffer),
		wake:      make(chan struct{}, 1),
		queue:     newCmdQueue(cfg.QueueSize),
		pend:      newPending(),
		errLog:    errLog{every: time.Second},
		forgetLog: errLog{every: time.Second},
		state:     devices.LinkDown,
	}
	l.regs = make([]uint16, 0, l.lay.blockLen)
	return l, nil
}

// Config returns the validated configuration (defaults filled in).
func (l *Link) Config() Config { return l.cfg }

// Events delivers what happens to commands and what the PLC confirms. It
// is buffered (Config.EventBuffer) and never closed. The gateway must drain
// it: while it is full the poll loop stops, the host heartbeat stops with
// it, and after 1 s the PLC declares the host lost.
//
// Per command the order is Written, Taken, Confirmed (Written is missing
// when the write's reply was lost but the PLC took the command anyway), or
// Late, or Lost at any point after it was assigned a sequence number.
func (l *Link) Events() <-chan devices.Event { return l.events }

// SetHostState sets HOST_STATE, written with the next heartbeat.
func (l *Link) SetHostState(s devices.HostState) { l.hostState.Store(uint32(s)) }

// SetPlanVersion sets PLAN_VERSION, written with the next heartbeat.
func (l *Link) SetPlanVersion(v uint16) { l.planVersion.Store(uint32(v)) }

// Send queues a command for the ring. It never blocks on the network and
// does not allocate: the command waits for a ring slot and a link that is
// up, and its fate arrives on Events. A command still queued at its
// Deadline is reported EventLate and never written.
func (l *Link) Send(ctx context.Context, cmd devices.Command) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if cmd.TID == 0 {
		return fmt.Errorf("divert tid 0 to chute %d: %w", cmd.Chute, devices.ErrBadCommand)
	}
	if int(cmd.Chute) > l.cfg.Chutes {
		return fmt.Errorf("divert tid %d to chute %d: above the %d chutes of plc %s: %w",
			cmd.TID, cmd.Chute, l.cfg.Chutes, l.cfg.Name, devices.ErrBadCommand)
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return devices.ErrClosed
	}
	ok := l.queue.push(queued{cmd: cmd, at: time.Now()})
	if ok && !cmd.Deadline.IsZero() && (l.nextExpiry.IsZero() || cmd.Deadline.Before(l.nextExpiry)) {
		l.nextExpiry = cmd.Deadline
	}
	l.mu.Unlock()
	if !ok {
		return fmt.Errorf("divert tid %d to chute %d: %w", cmd.TID, cmd.Chute, devices.ErrQueueFull)
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

// Status returns a snapshot of the link and of what the PLC last reported.
func (l *Link) Status() devices.PLCStatus {
	l.mu.Lock()
	defer l.mu.Unlock()
	return devices.PLCStatus{
		Name:          l.cfg.Name,
		Addr:          l.cfg.Addr,
		Protocol:      "modbus",
		State:         l.state,
		LastError:     l.lastErr,
		Reconnects:    l.c.reconnects,
		PLCHeartbeat:  l.plcHB,
		LastHeartbeat: l.plcHBAt,
		SorterState:   l.sorterState,
		FaultCode:     l.faultCode,
		ChuteCount:    l.chuteCount,
		BootID:        l.bootID,
		AckSeq:        l.ack,
		NextSeq:       l.next,
		Outstanding:   len(l.out),
		Queued:        l.queue.len(),
		Full:          l.full,
		Disabled:      l.disabled,
		Written:       l.c.written,
		Taken:         l.c.taken,
		Late:          l.c.late,
		Confirmed:     l.c.confirmed,
		Lost:          l.c.lost,
		Missed:        l.c.missed,
		Errors:        l.c.errors,
		Busy:          l.c.busy,
		RoundTrip:     l.rtt.Snapshot(),
	}
}

// Latencies are the link's command latencies, each measured from Send.
type Latencies struct {
	// Dispatch: Send to the start of the command's first function-16
	// request (queue wait, ring wait and the hand-off to the writer).
	Dispatch devices.HistogramSnapshot
	// Written: Send to the function-16 reply.
	Written devices.HistogramSnapshot
	// Taken: Send to the poll that saw ACK_SEQ pass the command.
	Taken devices.HistogramSnapshot
}

// Latency returns the command latency distributions since New.
func (l *Link) Latency() Latencies {
	return Latencies{Dispatch: l.dispatchLat.Snapshot(), Written: l.writtenLat.Snapshot(), Taken: l.takenLat.Snapshot()}
}

// PollInterval is the distribution of the time between two polls. Its
// tail above Config.Poll shows a host too busy to poll on time (and so
// late to see ACK_SEQ and confirmations).
func (l *Link) PollInterval() devices.HistogramSnapshot { return l.pollGap.Snapshot() }

// Run owns the connection: it dials, synchronises with the PLC per the
// contract, polls, writes the heartbeat and commands, and redials with
// capped, jittered back-off after any error that is not a Modbus
// exception. It returns nil when ctx is done (within about Config.Timeout,
// the longest a goburrow request can block), after reporting every
// command still queued as late and every command not yet confirmed as
// lost.
func (l *Link) Run(ctx context.Context) error {
	if !l.started.CompareAndSwap(false, true) {
		return fmt.Errorf("modbus link %s: run called twice", l.cfg.Name)
	}
	dctx, dcancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { l.dispatch(dctx) })

	bo := devices.Backoff{Min: l.cfg.BackoffMin, Max: l.cfg.BackoffMax}
	for first := true; ; first = false {
		if !first {
			l.mu.Lock()
			l.c.reconnects++
			l.mu.Unlock()
		}
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
		if ctx.Err() != nil {
			break
		}
	}
	dcancel()
	wg.Wait()
	l.shutdown()
	return nil
}

func (l *Link) setState(s devices.LinkState) {
	l.mu.Lock()
	l.state = s
	l.mu.Unlock()
}

// down records a lost connection. The same error is logged at most once a
// second, so a PLC that is off for the night leaves a few lines, not a
// disk full.
func (l *Link) down(err error, retry time.Duration) {
	if err == nil {
		err = errors.New("connection ended")
	}
	now := time.Now()
	l.mu.Lock()
	l.state = devices.LinkDown
	l.lastErr = err.Error()
	l.c.errors++
	ok, suppressed := l.errLog.allow(now, l.lastErr)
	l.mu.Unlock()
	if ok {
		l.log.Warn().Err(err).Int("repeats_suppressed", suppressed).Dur("retry_in", retry).Msg("plc link down")
	}
}

func (l *Link) retrier() retrier {
	return retrier{retries: max(l.cfg.BusyRetries, 0), delay: l.cfg.BusyDelay, onBusy: func(*gmb.ModbusError) {
		l.mu.Lock()
		l.c.busy++
		l.mu.Unlock()
	}}
}

// session runs one connection from dial to its first error. wasUp reports
// whether the link reached LinkUp (the back-off starts over then).
func (l *Link) session(ctx context.Context) (wasUp bool, err error) {
	l.setState(devices.LinkConnecting)
	s := &session{errCh: make(chan error, 1)}
	s.poll = newConn(&l.cfg, &l.rtt)
	s.cmd = s.poll
	if l.cfg.Connections == 2 {
		s.cmd = newConn(&l.cfg, &l.rtt)
	}
	defer l.endSession(s)

	if err := s.poll.connect(); err != nil {
		return false, fmt.Errorf("dial %s: %w", l.cfg.Addr, err)
	}
	if s.cmd != s.poll {
		if err := s.cmd.connect(); err != nil {
			return false, fmt.Errorf("dial %s (command connection): %w", l.cfg.Addr, err)
		}
	}
	r := l.retrier()
	// The contract's (re)connect rule: read the PLC block, write the
	// heartbeat, compare BOOT_ID; commands only once FAULT_CODE reads 0.
	if err := l.poll(ctx, s, r); err != nil {
		return false, err
	}
	if err := l.heartbeat(ctx, s, r); err != nil {
		return false, err
	}
	wasUp = l.sync(ctx, s)
	l.lastPoll = time.Time{}

	pollT := time.NewTicker(l.cfg.Poll)
	defer pollT.Stop()
	hbT := time.NewTicker(l.cfg.Heartbeat)
	defer hbT.Stop()
	for {
		select {
		case <-ctx.Done():
			return wasUp, ctx.Err()
		case err := <-s.errCh:
			return wasUp, err
		case <-hbT.C:
			if err := l.heartbeat(ctx, s, r); err != nil {
				return wasUp, err
			}
		case now := <-pollT.C:
			if !l.lastPoll.IsZero() {
				l.pollGap.Observe(now.Sub(l.lastPoll))
			}
			l.lastPoll = now
			if err := l.poll(ctx, s, r); err != nil {
				return wasUp, err
			}
			if l.process(ctx) == devices.LinkUp {
				wasUp = true
			}
		}
	}
}

// endSession stops every use of the session's connections, waits for a
// write in flight, and closes them: goburrow must never reuse a conn
// after an error.
func (l *Link) endSession(s *session) {
	l.mu.Lock()
	s.failed = true
	if l.sess == s {
		l.sess = nil
	}
	l.mu.Unlock()
	s.wg.Wait()
	s.poll.close()
	if s.cmd != s.poll {
		s.cmd.close()
	}
}

// poll reads and decodes the PLC block into l.blk.
func (l *Link) poll(ctx context.Context, s *session, r retrier) error {
	var err error
	l.regs, err = s.poll.readBlock(ctx, r, l.lay.readSpans(), l.regs)
	if err != nil {
		return fmt.Errorf("read plc block: %w", err)
	}
	return l.lay.decode(&l.blk, l.regs)
}

// heartbeat writes HOST_HEARTBEAT+1, HOST_STATE and PLAN_VERSION together.
func (l *Link) heartbeat(ctx context.Context, s *session, r retrier) error {
	l.hostHB++
	regs := [hostRegs]uint16{l.hostHB, uint16(l.hostState.Load()), uint16(l.planVersion.Load())}
	if err := s.poll.writeSplit(ctx, r, l.lay.hostBase, regs[:]); err != nil {
		return fmt.Errorf("write heartbeat: %w", err)
	}
	return nil
}

// sync applies the reconnect rule to the first block of a session.
func (l *Link) sync(ctx context.Context, s *session) bool {
	l.emitMu.Lock()
	defer l.emitMu.Unlock()
	l.mu.Lock()
	now := time.Now()
	b := &l.blk
	if b.heartbeat != l.plcHB || l.plcHBAt.IsZero() {
		l.plcHB, l.plcHBAt = b.heartbeat, now
	}
	// A fresh connection gives the PLC a full watchdog period.
	l.watchFrom = now
	switch {
	case !l.haveBoot:
		l.log.Info().Uint16("boot_id", b.bootID).Uint16("ack_seq", b.ackSeq).
			Uint16("confirm_count", b.confirmCount).Msg("plc link synchronised")
		l.followLocked(b, now)
	case b.bootID != l.bootID:
		l.log.Warn().Uint16("boot_id", b.bootID).Uint16("old_boot_id", l.bootID).
			Int("lost", l.pend.n).Msg("plc restarted cold: every unconfirmed command is lost")
		l.followLocked(b, now)
	default:
		// Warm: rewrite each command still not taken into its own slot
		// with its own SEQ. Harmless if the PLC took it meanwhile: it only
		// ever takes SEQ = ACK_SEQ+1.
		l.takenLocked(b, now)
		for _, e := range l.out {
			e.needWrite = true
		}
		l.c.rewrites += uint64(len(l.out))
		l.log.Info().Uint16("boot_id", b.bootID).Uint16("ack_seq", b.ackSeq).
			Int("rewrite", len(l.out)).Msg("plc link resumed (same boot id)")
	}
	l.statusLocked(b, now)
	l.confirmLocked(b, now)
	l.sess = s
	st := l.stateLocked(now)
	l.mu.Unlock()
	l.flush(ctx)
	return st == devices.LinkUp
}

// process applies a polled block: PLC heartbeat, chute bits, ACK_SEQ,
// confirmations, and the link state.
func (l *Link) process(ctx context.Context) devices.LinkState {
	l.emitMu.Lock()
	defer l.emitMu.Unlock()
	l.mu.Lock()
	now := time.Now()
	b := &l.blk
	if b.heartbeat != l.plcHB {
		l.plcHB, l.plcHBAt = b.heartbeat, now
	}
	if b.bootID != l.bootID {
		// A cold restart the TCP connection survived.
		l.log.Warn().Uint16("boot_id", b.bootID).Uint16("old_boot_id", l.bootID).
			Int("lost", l.pend.n).Msg("plc restarted cold: every unconfirmed command is lost")
		l.followLocked(b, now)
	} else {
		l.takenLocked(b, now)
	}
	l.statusLocked(b, now)
	l.confirmLocked(b, now)
	st := l.stateLocked(now)
	l.mu.Unlock()
	l.flush(ctx)
	return st
}

// followLocked adopts the PLC's ring after a new BOOT_ID (or an ACK_SEQ out
// of step): every command not yet confirmed, taken or not, is lost; the
// next command is ACK_SEQ+1 and confirmations are read from CONFIRM_COUNT
// on.
func (l *Link) followLocked(b *block, now time.Time) {
	for e := l.pend.head; e != nil; {
		nx := e.next
		l.pend.remove(e)
		e.lost, e.needWrite = true, false
		l.c.lost++
		l.evs = append(l.evs, devices.Event{Kind: devices.EventLost, TID: e.cmd.TID, Seq: e.seq, Chute: e.cmd.Chute, At: now})
		e = nx
	}
	clear(l.out)
	l.out = l.out[:0]
	l.ack, l.next = b.ackSeq, b.ackSeq+1
	l.confirmN = b.confirmCount
	l.bootID, l.haveBoot = b.bootID, true
	l.signal()
}

// takenLocked moves ACK_SEQ forward and reports the commands it passed.
func (l *Link) takenLocked(b *block, now time.Time) {
	if b.ackSeq == l.ack {
		return
	}
	if !ackInWindow(b.ackSeq, l.ack, l.next) {
		l.log.Error().Err(ErrAckOutOfStep).Uint16("ack_seq", b.ackSeq).Uint16("last_ack", l.ack).
			Uint16("next_seq", l.next).Int("lost", l.pend.n).
			Msg("ack_seq outside the commands this link wrote; following the plc, unconfirmed commands lost")
		l.followLocked(b, now)
		return
	}
	i := 0
	for ; i < len(l.out); i++ {
		e := l.out[i]
		if !passed(e.seq, l.ack, b.ackSeq) {
			break
		}
		e.taken, e.needWrite = true, false
		if !e.inflight {
			l.takenEventLocked(e, now)
		}
	}
	n := copy(l.out, l.out[i:])
	clear(l.out[n:])
	l.out = l.out[:n]
	l.ack = b.ackSeq
	l.signal()
}

func latest(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func (l *Link) takenEventLocked(e *entry, now time.Time) {
	if e.takenSent || e.lost {
		return
	}
	e.takenSent = true
	l.c.taken++
	l.takenLat.Observe(now.Sub(e.queuedAt))
	l.evs = append(l.evs, devices.Event{Kind: devices.EventTaken, TID: e.cmd.TID, Seq: e.seq, Chute: e.cmd.Chute, At: now})
}

// statusLocked copies the PLC's state words and chute bits.
func (l *Link) statusLocked(b *block, now time.Time) {
	l.sorterState, l.faultCode = b.sorterState, b.faultCode
	if b.chuteCount != l.chuteCount || !l.warnedCount {
		l.chuteCount = b.chuteCount
		if int(b.chuteCount) > l.cfg.Chutes {
			l.log.Warn().Uint16("chute_count", b.chuteCount).Int("configured", l.cfg.Chutes).
				Msg("plc reports more chutes than configured; the map may not match the plc")
		}
		l.warnedCount = true
	}
	packBits(&l.full, b.full, l.cfg.Chutes)
	packBits(&l.disabled, b.disabled, l.cfg.Chutes)
}

// packBits turns the PLC's 16-bit words (bit (n-1) mod 16 of word (n-1)/16
// is chute n) into a ChuteBits, dropping bits above chutes.
func packBits(dst *devices.ChuteBits, words []uint16, chutes int) {
	*dst = devices.ChuteBits{}
	for i, w := range words {
		if i*16 >= chutes {
			break
		}
		if rest := chutes - i*16; rest < 16 {
			w &= 1<<rest - 1
		}
		dst[i/4] |= uint64(w) << (16 * (i % 4))
	}
}

// confirmLocked reads every confirmation added since the last poll. NUM
// must equal the expected number; a slot already overwritten (the count
// moved by more than the ring) is a missed confirmation.
func (l *Link) confirmLocked(b *block, now time.Time) {
	d := int(b.confirmCount - l.confirmN)
	if d == 0 {
		return
	}
	start := l.confirmN + 1
	if ring := l.cfg.ConfirmRing; d > ring {
		l.missedLocked(d-ring, now, "confirm_count moved by more than the confirmation ring")
		start = b.confirmCount - uint16(ring) + 1
	}
	bad := 0
	for c := start; ; c++ {
		slot := l.lay.confirmAt(b, c)
		if slot.num != c {
			bad++
		} else {
			l.confirmedLocked(slot, now)
		}
		if c == b.confirmCount {
			break
		}
	}
	l.confirmN = b.confirmCount
	if bad > 0 {
		l.missedLocked(bad, now, "confirmation slot holds another NUM than expected")
	}
}

func (l *Link) missedLocked(n int, now time.Time, why string) {
	l.c.missed += uint64(n)
	l.log.Warn().Int("missed", n).Uint64("missed_total", l.c.missed).Msg("missed confirmations: " + why)
	l.evs = append(l.evs, devices.Event{Kind: devices.EventMissed, Count: n, At: now})
}

func (l *Link) confirmedLocked(s confirmSlot, now time.Time) {
	ev := devices.Event{Kind: devices.EventConfirmed, TID: s.tid, Seq: s.num, Chute: s.chute, Result: s.result, At: now}
	if e := l.pend.oldestFor(s.tid); e != nil {
		l.pend.remove(e)
		if e.inflight {
			e.deferred = &ev
			return
		}
	}
	l.c.confirmed++
	l.evs = append(l.evs, ev)
}

// stateLocked derives the link state of a connected session: up unless
// FAULT_CODE is 1..99 (host lost or reserved) or PLC_HEARTBEAT stalled.
// A stalled heartbeat keeps the link connected but LinkSyncing: the PLC's
// communication processor answers while its logic does not run, so a
// redial would not help, and commands must wait (and go late).
func (l *Link) stateLocked(now time.Time) devices.LinkState {
	if l.sess == nil {
		return l.state
	}
	var hold error
	switch {
	case l.faultCode >= 1 && l.faultCode <= 99:
		hold = fmt.Errorf("%w %d", ErrPLCFault, l.faultCode)
	case now.Sub(latest(l.plcHBAt, l.watchFrom)) >= l.cfg.PLCWatchdog:
		hold = fmt.Errorf("%w at %d", ErrPLCStalled, l.plcHB)
	}
	st := devices.LinkUp
	if hold != nil {
		st = devices.LinkSyncing
	}
	prev := ""
	if l.hold != nil {
		prev = l.hold.Error()
	}
	switch {
	case hold != nil && hold.Error() != prev:
		l.log.Warn().Err(hold).Msg("plc link holding commands")
		l.lastErr = hold.Error()
		l.signal()
	case hold == nil && l.state != devices.LinkUp:
		l.log.Info().Uint16("ack_seq", l.ack).Uint16("next_seq", l.next).Uint16("boot_id", l.bootID).Msg("plc link up")
		l.signal()
	}
	l.state, l.hold = st, hold
	return st
}

// flush hands the decided events to the Events channel. Caller holds
// emitMu (not mu). A full channel blocks the caller: the contract of
// Events is that the gateway drains it.
func (l *Link) flush(ctx context.Context) {
	for i, ev := range l.evs {
		select {
		case l.events <- ev:
		case <-ctx.Done():
			l.dropped += len(l.evs) - i
			clear(l.evs)
			l.evs = l.evs[:0]
			return
		}
	}
	clear(l.evs)
	l.evs = l.evs[:0]
}

// dispatch writes commands: rewrites first, then new commands while a
// ring slot is free and the link is up; it also reports queued commands
// late the moment their deadline passes, connected or not.
func (l *Link) dispatch(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		job, s, earliest := l.nextJob(ctx)
		if job != nil {
			l.write(ctx, s, job)
			continue
		}
		var tc <-chan time.Time
		if !earliest.IsZero() {
			timer.Reset(time.Until(earliest) + time.Millisecond)
			tc = timer.C
		}
		select {
		case <-ctx.Done():
			return
		case <-l.wake:
		case <-tc:
		}
		timer.Stop()
	}
}

// nextJob expires late commands and picks the next write, assigning a
// sequence number to a new command only now that it can be written.
func (l *Link) nextJob(ctx context.Context) (*entry, *session, time.Time) {
	l.emitMu.Lock()
	defer l.emitMu.Unlock()
	l.mu.Lock()
	now := time.Now()
	// Scan the queue only when a deadline may have passed: a full queue
	// must not cost a scan per Send.
	if !l.nextExpiry.IsZero() && !now.Before(l.nextExpiry) {
		l.nextExpiry = l.queue.expire(now, func(q queued) {
			l.c.late++
			l.evs = append(l.evs, devices.Event{Kind: devices.EventLate, TID: q.cmd.TID, Chute: q.cmd.Chute, At: now})
		})
	}
	earliest := l.nextExpiry
	var job *entry
	s := l.sess
	if s != nil && !s.failed && l.state == devices.LinkUp {
		for _, e := range l.out {
			if e.needWrite {
				job = e
				break
			}
		}
		if job == nil && l.queue.len() > 0 && canWrite(l.next, l.ack, l.cfg.Ring) {
			q, _ := l.queue.pop()
			job = &entry{cmd: q.cmd, queuedAt: q.at, seq: l.next, needWrite: true}
			l.next++
			l.out = append(l.out, job)
			l.addPendingLocked(job)
		}
		if job != nil {
			job.inflight = true
			s.wg.Add(1)
		}
	}
	l.mu.Unlock()
	l.flush(ctx)
	return job, s, earliest
}

func (l *Link) addPendingLocked(e *entry) {
	if l.pend.n >= l.cfg.MaxUnconfirmed {
		old := l.pend.head
		l.pend.remove(old)
		l.c.forgotten++
		if ok, n := l.forgetLog.allow(time.Now(), "forget"); ok {
			l.log.Warn().Uint32("tid", old.cmd.TID).Uint16("seq", old.seq).Int("max_unconfirmed", l.cfg.MaxUnconfirmed).
				Uint64("forgotten_total", l.c.forgotten).Int("repeats_suppressed", n).
				Msg("too many unconfirmed commands; forgetting the oldest (its confirmation still arrives as an event)")
		}
	}
	l.pend.add(e)
}

// write sends one command's five registers with one function-16 request.
func (l *Link) write(ctx context.Context, s *session, e *entry) {
	defer s.wg.Done()
	var regs [slotRegs]uint16
	l.lay.divertRegs(&regs, e.seq, e.cmd.TID, e.cmd.Chute, e.cmd.Reason)
	addr := l.lay.slotAddr(e.seq)
	if !e.written {
		l.dispatchLat.Observe(time.Since(e.queuedAt))
	}
	err := l.retrier().do(ctx, func() error { return s.cmd.write(addr, regs[:]) })
	l.written(ctx, s, e, err)
}

// written records the outcome of a command's write (err nil: the PLC
// replied without exception) and releases the events that waited for it.
func (l *Link) written(ctx context.Context, s *session, e *entry, err error) {
	l.emitMu.Lock()
	defer l.emitMu.Unlock()
	l.mu.Lock()
	now := time.Now()
	e.inflight = false
	if err == nil {
		if !e.taken {
			e.needWrite = false
		}
		if !e.written && !e.lost {
			e.written = true
			l.c.written++
			l.writtenLat.Observe(now.Sub(e.queuedAt))
			l.evs = append(l.evs, devices.Event{Kind: devices.EventWritten, TID: e.cmd.TID, Seq: e.seq, Chute: e.cmd.Chute, At: now})
		}
	} else {
		s.failed = true
		select {
		case s.errCh <- fmt.Errorf("divert seq %d tid %d to chute %d: %w", e.seq, e.cmd.TID, e.cmd.Chute, err):
		default:
		}
	}
	if e.taken {
		l.takenEventLocked(e, now)
	}
	if e.deferred != nil {
		l.c.confirmed++
		l.evs = append(l.evs, *e.deferred)
		e.deferred = nil
	}
	l.mu.Unlock()
	l.flush(ctx)
}

// shutdown ends the link for good: queued commands are late, commands not
// yet confirmed are lost. The events go out without blocking; those that
// do not fit are counted and logged.
func (l *Link) shutdown() {
	l.emitMu.Lock()
	defer l.emitMu.Unlock()
	l.mu.Lock()
	now := time.Now()
	l.closed = true
	l.state = devices.LinkClosed
	for {
		q, ok := l.queue.pop()
		if !ok {
			break
		}
		l.c.late++
		l.evs = append(l.evs, devices.Event{Kind: devices.EventLate, TID: q.cmd.TID, Chute: q.cmd.Chute, At: now})
	}
	for e := l.pend.head; e != nil; {
		nx := e.next
		l.pend.remove(e)
		e.lost = true
		l.c.lost++
		l.evs = append(l.evs, devices.Event{Kind: devices.EventLost, TID: e.cmd.TID, Seq: e.seq, Chute: e.cmd.Chute, At: now})
		e = nx
	}
	clear(l.out)
	l.out = l.out[:0]
	l.mu.Unlock()
send:
	for i, ev := range l.evs {
		select {
		case l.events <- ev:
		default:
			l.dropped += len(l.evs) - i
			break send
		}
	}
	clear(l.evs)
	l.evs = l.evs[:0]
	if l.dropped > 0 {
		l.log.Warn().Int("dropped", l.dropped).Msg("events dropped at shutdown: the events channel was full")
	}
	l.log.Info().Msg("plc link closed")
}
