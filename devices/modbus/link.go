package modbus

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	gmb "github.com/goburrow/modbus"
	"github.com/rs/zerolog"

	"sortgw/devices"
	"sortgw/devices/hostif"
)

// Link is a devices.PLCLink over Modbus TCP: a transport around a
// hostif.Core, which holds every rule of the interface. Create it with
// New, start it with Run; Send, Events, Status, SetHostState and
// SetPlanVersion are safe for concurrent use.
//
// Lock order (see doc.go): emitMu before mu. mu guards the core and is
// never held across network I/O or a channel send; emitMu is held while
// events are handed to the Events channel, so events leave in the order
// the core decided them.
type Link struct {
	cfg Config
	lay layout
	log zerolog.Logger

	events chan devices.Event
	wake   chan struct{}

	rtt     devices.Histogram
	pollGap devices.Histogram
	// kick (cap 1): the dispatcher wrote a command; the poll loop brings
	// its next read forward to FastPoll.
	kick chan struct{}
	// fastPoll: the poll loop's next read is scheduled FastPoll after
	// the last; the dispatcher kicks only when it is not, so a busy link
	// does not wake the poll loop for every write.
	fastPoll atomic.Bool
	polls    struct{ slow, fast, reread, missedLate atomic.Uint64 }

	hostState   atomic.Uint32
	planVersion atomic.Uint32
	started     atomic.Bool

	// Owned by the Run goroutine (the session's poll loop).
	regs     []uint16
	blk      block
	hb       hostif.Block
	slots    []hostif.Slot
	hostHB   uint16
	lastPoll time.Time
	held     string // the hold reason last logged ("" while up)
	upOnce   bool   // this session reached LinkUp
	// excSince: the first of the block reads answered with an exception
	// in a row (zero: the last one was answered normally); excHeld: the
	// core holds commands for it.
	excSince time.Time
	excHeld  bool
	hbOK     bool // the last heartbeat write of this session succeeded
	rb       hostif.Readback
	rbRegs   []uint16
	active   bool // the core had work at the last apply (hostif.Core.Active)
	missed   int  // confirmations the last apply found overwritten unread

	emitMu  sync.Mutex
	evs     []devices.Event // scratch; appended under mu by the emitMu holder
	dropped int             // events dropped at shutdown (emitMu)

	mu        sync.Mutex
	core      *hostif.Core
	sess      *session
	lastErr   string
	errors    uint64
	busy      uint64
	exc       uint64     // exception replies
	excByCode [16]uint64 // by code, 16 and above at 0
	lastExc   uint8
	lastExcAt time.Time
	forgotten uint64          // core's Forgotten counter at the last log
	rate      devices.RateLog // repeated lines: link down, forgotten, missed
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
// nothing until Run. The caller's logger carries the PLC's identity
// (With().Str("plc", name)); the link adds only addr and protocol.
func New(cfg Config, log zerolog.Logger) (*Link, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	core, err := hostif.New(hostif.Config{
		Ring: cfg.Ring, ConfirmRing: cfg.ConfirmRing, Chutes: cfg.Chutes, QueueSize: cfg.QueueSize,
		MaxUnconfirmed: cfg.MaxUnconfirmed, PLCWatchdog: cfg.PLCWatchdog, SecondHostHold: cfg.SecondHostHold,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: plc %q: %w", ErrInvalidConfig, cfg.Name, err)
	}
	l := &Link{
		cfg:    cfg,
		lay:    newLayout(&cfg),
		log:    log.With().Str("addr", cfg.Addr).Str("protocol", "modbus").Logger(),
		events: make(chan devices.Event, cfg.EventBuffer),
		wake:   make(chan struct{}, 1),
		kick:   make(chan struct{}, 1),
		core:   core,
		slots:  make([]hostif.Slot, cfg.ConfirmRing),
	}
	l.rb.Divert = make([]hostif.DivertSlot, cfg.Ring)
	// A random start: two gateways on one PLC started at about the same
	// time would otherwise count in step, each writing the value the other
	// just wrote, and the read-back could not tell them apart.
	l.hostHB = uint16(rand.Uint32())
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
// Per command the order is Written, Taken, Confirmed, or Late, or Lost at
// any point after it took a sequence number (see devices/hostif).
func (l *Link) Events() <-chan devices.Event { return l.events }

// SetHostState sets HOST_STATE, written with the next heartbeat.
func (l *Link) SetHostState(s devices.HostState) { l.hostState.Store(uint32(s)) }

// SetPlanVersion sets PLAN_VERSION, written with the next heartbeat.
func (l *Link) SetPlanVersion(v uint16) { l.planVersion.Store(uint32(v)) }

// Send queues a command for the ring. It never blocks on the network and
// does not allocate: the command waits for a ring slot and a link that is
// up, and its fate arrives on Events. A command still queued at its
// Deadline is reported EventLate and never written. TID 0 and a chute above
// Config.Chutes are refused with devices.ErrBadCommand.
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

// Status returns a snapshot of the link and of what the PLC last reported.
func (l *Link) Status() devices.PLCStatus {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := devices.PLCStatus{
		Name:      l.cfg.Name,
		Addr:      l.cfg.Addr,
		Protocol:  "modbus",
		LastError: l.lastErr,
		Errors:    l.errors,
		Busy:      l.busy,
		RoundTrip: l.rtt.Snapshot(),

		Exceptions:       l.exc,
		ExceptionsByCode: l.excByCode,
		LastException:    l.lastExc,
		LastExceptionAt:  l.lastExcAt,
	}
	l.core.Status(time.Now(), &st)
	return st
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
	l.mu.Lock()
	lat := l.core.Latency()
	l.mu.Unlock()
	return Latencies{Dispatch: lat.Dispatch, Written: lat.Written, Taken: lat.Taken}
}

// PollInterval is the distribution of the time between the starts of two
// scheduled block reads (immediate re-reads are not in it): Config.Poll
// while idle, Config.FastPoll while busy. A tail above Config.Poll shows
// a host too busy to poll on time (and so late to see ACK_SEQ and
// confirmations).
func (l *Link) PollInterval() devices.HistogramSnapshot { return l.pollGap.Snapshot() }

// PollStats counts the link's block reads by how they were scheduled.
type PollStats struct {
	// Slow: read Config.Poll after the one before (the link was idle).
	Slow uint64
	// Fast: read Config.FastPoll after the one before (commands queued,
	// outstanding or with their confirmation due), or brought forward by
	// a command written while idle.
	Fast uint64
	// Reread: read at once after a read that found CONFIRM_COUNT moved by
	// half the confirmation ring or more.
	Reread uint64
	// MissedLate: of the missed confirmations (PLCStatus.Missed), those
	// found by a read that started more than its interval late (the host
	// did not get the CPU in time, or a heartbeat round ran long): no
	// schedule would have caught them. Missed minus MissedLate is the
	// schedule's share.
	MissedLate uint64
}

// PollStats returns the block read counts since New (the reads at the
// start of each connection are not in them).
func (l *Link) PollStats() PollStats {
	return PollStats{Slow: l.polls.slow.Load(), Fast: l.polls.fast.Load(), Reread: l.polls.reread.Load(),
		MissedLate: l.polls.missedLate.Load()}
}

// Run owns the connection: it dials, reads the PLC block and feeds it to
// the core, writes the heartbeat and the commands the core hands out, and
// redials with capped, jittered back-off after any error that is not a
// Modbus exception. It returns nil when ctx is done (within about
// Config.Timeout, the longest a goburrow request can block), after
// reporting every command still queued as late and every command not yet
// confirmed as lost.
func (l *Link) Run(ctx context.Context) error {
	if !l.started.CompareAndSwap(false, true) {
		return fmt.Errorf("modbus link %s: run called twice", l.cfg.Name)
	}
	dctx, dcancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { l.dispatch(dctx) })

	bo := devices.Backoff{Min: l.cfg.BackoffMin, Max: l.cfg.BackoffMax}
	for {
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

// down records a lost connection or a failed dial. Repeats of the same
// error are rate-limited (devices.RateLog), so a PLC that is off for the
// night leaves a few lines, not a disk full.
func (l *Link) down(err error, retry time.Duration) {
	if err == nil {
		err = errors.New("connection ended")
	}
	now := time.Now()
	l.mu.Lock()
	l.lastErr = err.Error()
	l.errors++
	l.mu.Unlock()
	if ok, n := l.rate.Allow("down:"+err.Error(), now); ok {
		l.log.Warn().Err(err).Int("suppressed", n).Int64("retry_in_ms", retry.Milliseconds()).Msg("plc link down")
	}
}

func (l *Link) retrier() retrier {
	return retrier{retries: max(l.cfg.BusyRetries, 0), delay: l.cfg.BusyDelay, onExc: l.countException}
}

// countException counts one exception reply.
func (l *Link) countException(me *gmb.ModbusError, retry bool) {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.exc++
	i := me.ExceptionCode
	if i >= byte(len(l.excByCode)) {
		i = 0
	}
	l.excByCode[i]++
	l.lastExc, l.lastExcAt = me.ExceptionCode, now
	if retry {
		l.busy++
	}
}

// answered handles an operation that ended with err: it reports whether
// err is a Modbus exception reply, which keeps the connection (the
// operation failed this round). It is then the link's last error, and
// logged, rate-limited per operation and code.
func (l *Link) answered(op string, err error) bool {
	me, ok := isException(err)
	if !ok {
		return false
	}
	now := time.Now()
	l.mu.Lock()
	l.lastErr = err.Error()
	total := l.exc
	l.mu.Unlock()
	if ok, n := l.rate.Allow("exception:"+op+":"+strconv.Itoa(int(me.ExceptionCode)), now); ok {
		l.log.Warn().Err(err).Str("op", op).Uint8("code", me.ExceptionCode).Uint64("exceptions_total", total).
			Int("suppressed", n).Msg("plc answered with a modbus exception; connection kept")
	}
	return true
}

// session runs one connection from dial to its first error. wasUp reports
// whether the link reached LinkUp (the back-off starts over then).
func (l *Link) session(ctx context.Context) (wasUp bool, err error) {
	l.mu.Lock()
	l.core.Dialing(time.Now())
	l.mu.Unlock()
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
	l.mu.Lock()
	l.core.Connected(time.Now())
	l.mu.Unlock()
	l.held, l.upOnce = "connecting", false
	r := l.retrier()
	l.excSince, l.excHeld, l.hbOK = time.Time{}, false, false
	// The contract's (re)connect rule: read the PLC block, write the
	// heartbeat, let the core compare BOOT_ID; commands only once it is up
	// (FAULT_CODE 0). A block read answered with an exception is repeated
	// every poll interval on the same connection.
	for {
		err := l.poll(ctx, s, r)
		if err == nil {
			break
		}
		if !l.pollException(err) {
			return false, err
		}
		t := time.NewTimer(l.cfg.Poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return false, ctx.Err()
		case <-t.C:
		}
	}
	if err := l.heartbeat(ctx, s, r); err != nil && !l.answered("heartbeat", err) {
		return false, err
	}
	l.mu.Lock()
	l.sess = s
	l.mu.Unlock()
	wasUp = l.apply(ctx) == devices.LinkUp
	l.lastPoll = time.Time{}

	// The poll schedule: Poll while idle, FastPoll while the core has work
	// (see Config.FastPoll). A ticker, reset only when the interval
	// changes: it keeps its grid, and a tick that came due during a long
	// round is waiting when the round ends, so a busy loop does not park
	// between reads. (A timer re-armed after each round, tried first, lost
	// the grid at 1 ms and missed more confirmations than the ticker.)
	iv := l.cfg.Poll // the interval in effect
	pollT := time.NewTicker(iv)
	defer pollT.Stop()
	fast := false // iv is FastPoll because the core had work
	l.fastPoll.Store(false)
	var start time.Time // the start of the last scheduled read
	prevIv := iv        // the interval in effect at that read
	hbT := time.NewTicker(l.cfg.Heartbeat)
	defer hbT.Stop()
	for {
		select {
		case <-ctx.Done():
			return wasUp, ctx.Err()
		case err := <-s.errCh:
			return wasUp, err
		case <-hbT.C:
			// Read back before writing: another host's heartbeat write
			// since ours shows as a value we did not write.
			if err := l.readback(ctx, s, r); err != nil && !l.answered("read back host registers", err) {
				return wasUp, err
			}
			if err := l.heartbeat(ctx, s, r); err != nil && !l.answered("heartbeat", err) {
				return wasUp, err
			}
		case <-l.kick:
			// A command went out while the link was idle: the read that
			// sees ACK_SEQ pass it is due within FastPoll, not Poll.
			if !fast {
				fast = true
				l.fastPoll.Store(true)
				if iv != l.cfg.FastPoll {
					iv = l.cfg.FastPoll
					pollT.Reset(iv)
				}
			}
		case now := <-pollT.C:
			if !l.lastPoll.IsZero() {
				l.pollGap.Observe(now.Sub(l.lastPoll))
			}
			l.lastPoll = now
			if fast {
				l.polls.fast.Add(1)
			} else {
				l.polls.slow.Add(1)
			}
			// Late: the read starts more than twice its interval after the
			// one before (the host did not get the CPU, or a heartbeat round
			// ran long); what it finds missed no schedule would have caught.
			t0 := time.Now()
			late := !start.IsZero() && t0.Sub(start) > 2*max(iv, prevIv)
			start, prevIv = t0, iv
			up, err := l.pollRound(ctx, s, r, late)
			if err != nil {
				return wasUp, err
			}
			wasUp = wasUp || up
			fast = l.active
			l.fastPoll.Store(fast)
			d := l.cfg.Poll
			if fast {
				d = l.cfg.FastPoll
			}
			if d != iv {
				iv = d
				pollT.Reset(d)
			}
		}
	}
}

// pollRound reads the PLC block and applies it; after a read that found
// CONFIRM_COUNT moved by half the confirmation ring or more, it reads once
// more at once: at that pace the ring could wrap before the next scheduled
// read. up reports whether the link was up after a read; err ends the
// session (an exception reply does not: the last block stands).
func (l *Link) pollRound(ctx context.Context, s *session, r retrier, late bool) (up bool, err error) {
	for again := false; ; again = true {
		prev := l.hb.ConfirmCount // this session's last block: session() read one before the loop
		if err := l.poll(ctx, s, r); err != nil {
			if l.pollException(err) {
				return up, nil
			}
			return up, err
		}
		if l.apply(ctx) == devices.LinkUp {
			up = true
		}
		if late && !again && l.missed > 0 {
			l.polls.missedLate.Add(uint64(l.missed))
		}
		if again || int(l.hb.ConfirmCount-prev) < l.cfg.ConfirmRing/2 {
			return up, nil
		}
		l.polls.reread.Add(1)
	}
}

// endSession stops every use of the session's connections, waits for a
// write in flight (it reports its outcome to the core), and closes them:
// goburrow must never reuse a conn after an error.
func (l *Link) endSession(s *session) {
	l.mu.Lock()
	s.failed = true
	if l.sess == s {
		l.sess = nil
	}
	l.core.Disconnected(time.Now())
	l.mu.Unlock()
	s.wg.Wait()
	s.poll.close()
	if s.cmd != s.poll {
		s.cmd.close()
	}
}

// poll reads the PLC block and decodes it for the core.
func (l *Link) poll(ctx context.Context, s *session, r retrier) error {
	var err error
	l.regs, err = s.poll.readBlock(ctx, r, l.lay.readSpans(), l.regs)
	if err != nil {
		return fmt.Errorf("read plc block: %w", err)
	}
	if l.excHeld {
		l.mu.Lock()
		l.core.SetReady(true, "")
		l.mu.Unlock()
	}
	l.excSince, l.excHeld = time.Time{}, false
	return l.load(l.regs)
}

// pollException handles a failed block read: false if err ends the
// session. An exception reply keeps the connection and the last block;
// block reads answered with exceptions for half the PLC watchdog in a row
// hold commands (LinkSyncing, the exception as the reason) until a read
// is answered normally. The heartbeat watchdog would hold them at the full
// watchdog anyway; this says why.
func (l *Link) pollException(err error) bool {
	if !l.answered("read plc block", err) {
		return false
	}
	now := time.Now()
	if l.excSince.IsZero() {
		l.excSince = now
	}
	if !l.excHeld && now.Sub(l.excSince) >= l.cfg.PLCWatchdog/2 {
		l.excHeld = true
		l.mu.Lock()
		l.core.SetReady(false, "plc block reads answered with modbus exceptions: "+err.Error())
		st, why := l.core.State(now)
		l.mu.Unlock()
		l.logState(st, why, now)
	}
	return true
}

// load decodes the registers of a PLC block read into the core's terms.
func (l *Link) load(regs []uint16) error {
	if err := l.lay.decode(&l.blk, regs); err != nil {
		return err
	}
	b := &l.blk
	l.hb.Heartbeat, l.hb.SorterState, l.hb.AckSeq, l.hb.ConfirmCount = b.heartbeat, b.sorterState, b.ackSeq, b.confirmCount
	l.hb.FaultCode, l.hb.ChuteCount, l.hb.BootID = b.faultCode, b.chuteCount, b.bootID
	packBits(&l.hb.Full, b.full, l.cfg.Chutes)
	packBits(&l.hb.Disabled, b.disabled, l.cfg.Chutes)
	for j, c := range b.confirm {
		l.slots[j] = hostif.Slot{Num: c.num, TID: c.tid, Chute: c.chute, Result: c.result, Read: true}
	}
	return nil
}

// heartbeat writes HOST_HEARTBEAT+1, HOST_STATE and PLAN_VERSION together.
func (l *Link) heartbeat(ctx context.Context, s *session, r retrier) error {
	l.hostHB++
	regs := [hostRegs]uint16{l.hostHB, uint16(l.hostState.Load()), uint16(l.planVersion.Load())}
	l.hbOK = false
	if err := s.poll.writeSplit(ctx, r, l.lay.hostBase, regs[:]); err != nil {
		return fmt.Errorf("write heartbeat: %w", err)
	}
	l.hbOK = true
	return nil
}

// readback reads HOST_HEARTBEAT and the divert ring back (once per
// heartbeat, on the poll connection, before the heartbeat write) and lets
// the core look for another host's writes in them.
func (l *Link) readback(ctx context.Context, s *session, r retrier) error {
	var err error
	l.rbRegs, err = s.poll.readBlock(ctx, r, []span{{addr: l.lay.hostBase, count: 1}}, l.rbRegs)
	if err != nil {
		return fmt.Errorf("read back host heartbeat: %w", err)
	}
	hb := l.rbRegs[0]
	l.rbRegs, err = s.poll.readBlock(ctx, r, split(l.lay.divertBase, slotRegs*l.cfg.Ring, maxReadRegs), l.rbRegs)
	if err != nil {
		return fmt.Errorf("read back divert ring: %w", err)
	}
	for k := range l.rb.Divert {
		regs := l.rbRegs[k*slotRegs : (k+1)*slotRegs]
		l.rb.Divert[k] = hostif.DivertSlot{Seq: regs[0], TID: l.lay.tid(regs[1:3])}
	}
	l.rb.Heartbeat, l.rb.Wrote, l.rb.CheckHeartbeat = hb, l.hostHB, l.hbOK
	now := time.Now()
	l.mu.Lock()
	l.core.Readback(&l.rb, now)
	st, why := l.core.State(now)
	l.mu.Unlock()
	l.logState(st, why, now)
	return nil
}

// apply feeds the last block read to the core (PLC values, ACK_SEQ, the
// reconnect rule, confirmations), logs what it decided, and hands the
// events on. It returns the link state.
func (l *Link) apply(ctx context.Context) devices.LinkState {
	l.emitMu.Lock()
	defer l.emitMu.Unlock()
	l.mu.Lock()
	now := time.Now()
	ack := l.core.AckSeq()
	rep, blockErr := l.core.Block(&l.hb, now, &l.evs)
	missed, confErr := l.core.Confirms(l.hb.ConfirmCount, l.slots, now, &l.evs)
	l.missed = missed
	st, why := l.core.State(now)
	moved := ack != l.core.AckSeq()
	l.active = l.core.Active()
	l.mu.Unlock()

	logSync(l.log, rep, &l.hb, l.cfg.Chutes)
	for _, err := range []error{blockErr, confErr} {
		if err != nil {
			l.log.Error().Err(err).Msg("following the plc")
		}
	}
	if missed > 0 {
		l.logMissed(missed, now)
	}
	l.logState(st, why, now)
	if moved || rep.Sync != hostif.SyncNone || st == devices.LinkUp {
		l.signal()
	}
	l.flush(ctx)
	return st
}

// logSync logs what the first block of a connection (or a cold restart on
// a live one) decided, and a CHUTE_COUNT above the configured chutes.
func logSync(log zerolog.Logger, rep hostif.BlockReport, b *hostif.Block, chutes int) {
	switch rep.Sync {
	case hostif.SyncFirst:
		log.Info().Uint16("boot_id", b.BootID).Uint16("ack_seq", b.AckSeq).
			Uint16("confirm_count", b.ConfirmCount).Msg("plc link synchronised")
	case hostif.SyncWarm:
		log.Info().Uint16("boot_id", b.BootID).Uint16("ack_seq", b.AckSeq).
			Int("rewrite", rep.Rewrite).Msg("plc link resumed (same boot id)")
	case hostif.SyncCold:
		log.Warn().Uint16("boot_id", b.BootID).Uint16("old_boot_id", rep.PrevBoot).
			Int("lost", rep.Lost).Msg("plc restarted cold: every unconfirmed command is lost")
	}
	if rep.ChuteCountChanged && rep.ChuteCountAbove {
		log.Warn().Uint16("chute_count", b.ChuteCount).Int("configured", chutes).
			Msg("plc reports more chutes than configured; the map may not match the plc")
	}
}

func (l *Link) logMissed(n int, now time.Time) {
	l.mu.Lock()
	total := l.core.Counters().Missed
	l.mu.Unlock()
	if ok, sup := l.rate.Allow("missed", now); ok {
		l.log.Warn().Int("missed", n).Uint64("missed_total", total).Int("suppressed", sup).
			Msg("missed confirmations: overwritten before they were read")
	}
}

// logState logs the link's way in and out of holding commands. The
// power-on FAULT_CODE 1 (host lost until the PLC sees our heartbeat) at
// the start of a session is expected: an info line, not a warning.
func (l *Link) logState(st devices.LinkState, why error, now time.Time) {
	if st == devices.LinkUp {
		if l.held != "" {
			l.held = ""
			l.mu.Lock()
			ack, next, boot := l.core.AckSeq(), l.core.NextSeq(), l.core.BootID()
			l.mu.Unlock()
			l.log.Info().Uint16("ack_seq", ack).Uint16("next_seq", next).Uint16("boot_id", boot).Msg("plc link up")
		}
		l.upOnce = true
		return
	}
	if why == nil || why.Error() == l.held {
		return
	}
	l.held = why.Error()
	ev := l.log.Warn()
	switch {
	case errors.Is(why, hostif.ErrSecondHost):
		ev = l.log.Error()
	case !l.upOnce && errors.Is(why, hostif.ErrHostLost):
		ev = l.log.Info()
	}
	if ok, n := l.rate.Allow("hold:"+l.held, now); ok {
		ev.Err(why).Int("suppressed", n).Msg("plc link holding commands")
	}
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

// dispatch writes what the core hands out, one slot at a time; it also
// makes the core report queued commands late the moment their deadline
// passes, connected or not.
func (l *Link) dispatch(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	// Writes answered with exceptions are repeated in place by the core;
	// this paces the repeats so a PLC refusing every write is not hammered
	// (at most one repeat per two poll intervals once it persists), while
	// a short burst delays the commands behind it by little more than
	// itself.
	bo := devices.Backoff{Min: l.cfg.BusyDelay, Max: max(l.cfg.BusyDelay, 2*l.cfg.Poll)}
	for {
		w, s, ok, earliest := l.nextJob(ctx)
		if ok {
			if !l.write(ctx, s, w) {
				bo.Reset()
				continue
			}
			timer.Reset(bo.Next())
			select {
			case <-ctx.Done():
				return
			case <-timer.C:
			}
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

// nextJob asks the core for the next slot write on the live session.
func (l *Link) nextJob(ctx context.Context) (hostif.Write, *session, bool, time.Time) {
	l.emitMu.Lock()
	defer l.emitMu.Unlock()
	l.mu.Lock()
	now := time.Now()
	earliest := l.core.Tick(now, &l.evs)
	var w hostif.Write
	ok := false
	s := l.sess
	if s != nil && !s.failed {
		w, ok = l.core.NextWrite(now, &l.evs)
		if ok {
			s.wg.Add(1)
		}
	}
	forgotten := l.core.Counters().Forgotten
	newlyForgotten := forgotten != l.forgotten
	l.forgotten = forgotten
	l.mu.Unlock()
	if newlyForgotten {
		if ok, n := l.rate.Allow("forgotten", now); ok {
			l.log.Warn().Int("max_unconfirmed", l.cfg.MaxUnconfirmed).Uint64("forgotten_total", forgotten).Int("suppressed", n).
				Msg("too many unconfirmed commands: the oldest taken one is reported lost")
		}
	}
	l.flush(ctx)
	return w, s, ok, earliest
}

// write sends one command's five registers with one function-16 request
// (or, with SlotWrite seq-last, the four command registers and then SEQ)
// and reports the outcome to the core. A write answered with an exception
// failed (the core repeats it in place) on a connection that is kept; it
// returns true then, for the caller to pace the repeat.
func (l *Link) write(ctx context.Context, s *session, w hostif.Write) (excepted bool) {
	defer s.wg.Done()
	var regs [slotRegs]uint16
	l.lay.divertRegs(&regs, w.Seq, w.TID, w.Chute, w.Reason)
	addr := l.lay.slotAddr(w.Seq)
	var err error
	if l.cfg.SlotWrite == SlotWriteSeqLast {
		// SEQ is the slot's first register: the command goes in first, so
		// a PLC that applies registers one by one never sees the new SEQ
		// over the previous command's TID and chute.
		err = l.retrier().do(ctx, func() error { return s.cmd.write(addr+1, regs[1:]) })
		if err == nil {
			err = l.retrier().do(ctx, func() error { return s.cmd.write(addr, regs[:1]) })
		}
	} else {
		err = l.retrier().do(ctx, func() error { return s.cmd.write(addr, regs[:]) })
	}

	if err != nil {
		err = fmt.Errorf("divert seq %d tid %d to chute %d: %w", w.Seq, w.TID, w.Chute, err)
		excepted = l.answered("divert write", err)
	}
	l.emitMu.Lock()
	defer l.emitMu.Unlock()
	l.mu.Lock()
	l.core.WriteDone(w, err == nil, time.Now(), &l.evs)
	if err != nil && !excepted {
		s.failed = true
		select {
		case s.errCh <- err:
		default:
		}
	}
	l.mu.Unlock()
	if err == nil && !l.fastPoll.Load() {
		select {
		case l.kick <- struct{}{}:
		default:
		}
	}
	l.flush(ctx)
	return excepted
}

// shutdown ends the link for good: queued commands are late, commands not
// yet confirmed are lost. The events go out without blocking; those that
// do not fit are counted and logged.
func (l *Link) shutdown() {
	l.emitMu.Lock()
	defer l.emitMu.Unlock()
	l.mu.Lock()
	l.core.Close(time.Now(), &l.evs)
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
