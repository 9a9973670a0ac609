// Package hostif is the host side of the PLC interface as a pure state
// machine.
//
// A Core holds every rule of the sorter host interface (docs/plc-interface.md)
// that does not depend on the wire: sequence numbers and the ring window,
// the command queue and its deadlines, write results, ACK_SEQ, the
// confirmation ring and its NUMs, missed confirmations, BOOT_ID warm and
// cold reconnects, the FAULT_CODE hold, the PLC heartbeat watchdog, the
// second-host hold, the link state, and the event order Written -> Taken
// -> Confirmed. It does no
// I/O, takes no locks and starts no goroutines: every method takes now and
// appends the devices.Events it causes to a caller's slice. The Modbus and
// OPC UA links are transports around it: they dial, read and write, feed
// the Core what they read, and carry out what it decides. A transport
// guards its Core with one mutex.
//
// A transport's calls, in the order of a connection's life:
//
//	Dialing                      a connection attempt starts
//	Connected                    it is established
//	Block (+ Confirms)           every read of the PLC block; the first one
//	                             of a connection applies the reconnect rule
//	NextWrite / WriteDone        one divert slot write and its outcome
//	Readback                     the host registers read back (another host?)
//	Tick                         deadlines, between the above
//	Disconnected                 the connection is gone
//	Close                        the link stops for good
//
// Every Write that NextWrite hands out must be answered by exactly one
// WriteDone, also when the connection is gone (ok = false).
package hostif

import (
	"errors"
	"fmt"
	"time"

	"sortgw/devices"
)

// Errors transports and tests branch on.
var (
	// ErrRingMismatch: ACK_SEQ or CONFIRM_COUNT moved in a way the host
	// cannot explain without a new BOOT_ID. For ACK_SEQ the core follows
	// the PLC as after a cold restart; for CONFIRM_COUNT it follows the
	// count.
	ErrRingMismatch = errors.New("ring out of step with the plc")
	// ErrPLCFault: FAULT_CODE 1..99 holds commands.
	ErrPLCFault = errors.New("plc fault")
	// ErrHostLost: FAULT_CODE 1, the PLC has not seen the host's heartbeat
	// change (also wraps ErrPLCFault). Every PLC shows it after power-on
	// until the host's first heartbeat: at the start of a session it is
	// expected, not a warning.
	ErrHostLost = errors.New("host lost")
	// ErrPLCStalled: PLC_HEARTBEAT has not changed for the watchdog time.
	ErrPLCStalled = errors.New("plc heartbeat stalled")
	// ErrSecondHost: evidence that another host writes this PLC's host
	// registers (see Core.Readback): commands are held until the evidence
	// has stopped for Config.SecondHostHold.
	ErrSecondHost = errors.New("another host is writing to this plc's divert ring")
	// ErrNotReady: the transport holds commands (ready is false).
	ErrNotReady = errors.New("transport not ready")
	// ErrInvalidConfig is wrapped by every error New returns.
	ErrInvalidConfig = errors.New("invalid host interface config")
)

// Config sizes a Core. Zero fields take the defaults shown.
type Config struct {
	// Ring is the number of divert slots (16), a power of two.
	Ring int
	// ConfirmRing is the number of confirmation slots (Ring), a power of two.
	ConfirmRing int
	// Chutes is the configured chute count (256): Enqueue refuses a command
	// for a chute above it.
	Chutes int
	// QueueSize bounds the commands waiting for a ring slot (1024).
	QueueSize int
	// MaxUnconfirmed bounds the commands that hold a sequence number and
	// wait for their confirmation (65536, at least 2 x Ring). Beyond it
	// the oldest taken one is reported EventLost and forgotten.
	MaxUnconfirmed int
	// PLCWatchdog: PLC_HEARTBEAT unchanged this long holds commands (1s).
	PLCWatchdog time.Duration
	// SecondHostHold: after evidence of a second host (two pieces within
	// this time) commands are held until there has been none for this
	// long (5s).
	SecondHostHold time.Duration
}

func (c *Config) fill() error {
	if c.Ring == 0 {
		c.Ring = 16
	}
	if c.ConfirmRing == 0 {
		c.ConfirmRing = c.Ring
	}
	if c.Chutes == 0 {
		c.Chutes = 256
	}
	if c.QueueSize == 0 {
		c.QueueSize = 1024
	}
	if c.MaxUnconfirmed == 0 {
		c.MaxUnconfirmed = 1 << 16
	}
	if c.PLCWatchdog == 0 {
		c.PLCWatchdog = time.Second
	}
	if c.SecondHostHold == 0 {
		c.SecondHostHold = 5 * time.Second
	}
	pow2 := func(n int) bool { return n >= 2 && n <= 1024 && n&(n-1) == 0 }
	switch {
	case !pow2(c.Ring) || !pow2(c.ConfirmRing):
		return fmt.Errorf("%w: ring %d, confirm ring %d: want powers of two in 2..1024", ErrInvalidConfig, c.Ring, c.ConfirmRing)
	case c.Chutes < 1 || c.Chutes > devices.MaxChutes:
		return fmt.Errorf("%w: chutes %d: want 1..%d", ErrInvalidConfig, c.Chutes, devices.MaxChutes)
	case c.QueueSize < 1:
		return fmt.Errorf("%w: queue size %d: want at least 1", ErrInvalidConfig, c.QueueSize)
	case c.MaxUnconfirmed < 2*c.Ring:
		return fmt.Errorf("%w: max unconfirmed %d: want at least twice the ring (%d)", ErrInvalidConfig, c.MaxUnconfirmed, 2*c.Ring)
	case c.PLCWatchdog <= 0:
		return fmt.Errorf("%w: plc watchdog %s: want a positive duration", ErrInvalidConfig, c.PLCWatchdog)
	case c.SecondHostHold <= 0:
		return fmt.Errorf("%w: second host hold %s: want a positive duration", ErrInvalidConfig, c.SecondHostHold)
	}
	return nil
}

// Block is one read of the PLC block (Modbus: the function-3 read; OPC UA:
// the monitored values as last published).
type Block struct {
	Heartbeat    uint16
	SorterState  uint16
	AckSeq       uint16
	ConfirmCount uint16
	FaultCode    uint16
	ChuteCount   uint16
	BootID       uint16
	Full         devices.ChuteBits
	Disabled     devices.ChuteBits
}

// Slot is one confirmation slot as read.
type Slot struct {
	Num    uint16
	TID    uint32
	Chute  uint16
	Result uint16
	// Read: the slot was read in this read (OPC UA reads some slots only).
	Read bool
	// Torn: the slot changed while it was read (OPC UA reads Num again
	// after the other fields); it counts as missed.
	Torn bool
}

// Write is one divert slot write the transport must carry out: SEQ, TID,
// CHUTE, REASON into slot Slot, as one request.
type Write struct {
	ID      uint64 // hand it back to WriteDone
	Seq     uint16
	Slot    int
	TID     uint32
	Chute   uint16
	Reason  uint16
	Rewrite bool // the same command was written before (failed write or warm reconnect)
}

// Sync is what the first PLC block of a connection decided.
type Sync uint8

// Sync outcomes.
const (
	// SyncNone: not the first block of a connection, and no cold restart.
	SyncNone Sync = iota
	// SyncFirst: the first connection of the link: it follows the PLC.
	SyncFirst
	// SyncWarm: same BOOT_ID: untaken commands are rewritten in place.
	SyncWarm
	// SyncCold: new BOOT_ID (at a reconnect or on a live connection):
	// every unconfirmed command was reported lost.
	SyncCold
)

// String names the outcome for logs.
func (s Sync) String() string {
	return [...]string{"none", "first", "warm", "cold"}[s]
}

// BlockReport says what a Block did, for the transport's log.
type BlockReport struct {
	Sync     Sync
	PrevBoot uint16 // BOOT_ID before a SyncCold
	Lost     int    // commands reported lost
	Rewrite  int    // commands to rewrite after SyncWarm
	// ChuteCountChanged: CHUTE_COUNT differs from the last block's (or
	// this is the first block); ChuteCountAbove: it exceeds Config.Chutes.
	ChuteCountChanged, ChuteCountAbove bool
}

// Counters are the core's totals since New.
type Counters struct {
	Written, Taken, Late, Confirmed, Lost, Missed uint64
	// Unmatched: confirmations whose TID matched no unconfirmed command
	// (also counted in Confirmed).
	Unmatched uint64
	// Rewrites: writes of a command written before.
	Rewrites uint64
	// Forgotten: commands reported lost at the MaxUnconfirmed limit.
	Forgotten uint64
	// Mismatches: ACK_SEQ or CONFIRM_COUNT movements ErrRingMismatch.
	Mismatches uint64
	// Reconnects: connection attempts after the first, failed or not.
	Reconnects uint64
	// ForeignWrites: pieces of evidence of another host (Readback, and
	// ACK_SEQ beyond the commands written); SecondHost: times the link
	// started holding commands for it.
	ForeignWrites, SecondHost uint64
}

// entry is one command from the moment it takes its sequence number until
// its terminal event and the end of its last write.
type entry struct {
	cmd      devices.Command
	queuedAt time.Time
	seq      uint16

	needWrite  bool   // must be (re)written on the current connection
	writing    bool   // a Write is out, WriteDone pending
	writeID    uint64 // of the Write out
	writeGen   uint64 // connection generation of the Write out
	attempts   int
	wroteEv    bool // EventWritten emitted
	taken      bool // the PLC has it (ACK_SEQ passed it, or it confirmed it)
	takenEv    bool // EventTaken emitted
	closed     bool // terminal: confirmed, lost, forgotten or closed by missed accounting
	inOut      bool // in Core.out (ACK_SEQ has not passed it)
	inPend     bool
	deferred   []devices.Event // confirmations waiting for Written and Taken
	hasDefer   bool
	prev, next *entry
	sameTID    *entry
}

// Core is the host side of one PLC link. It is not safe for concurrent use.
type Core struct {
	cfg Config

	closed     bool
	dialing    bool
	conn       bool   // a connection is established
	synced     bool   // the connection's first block was applied
	gen        uint64 // connection generation, +1 per Connected
	attempted  bool   // a connection attempt was made
	connAt     time.Time
	ready      bool   // the transport's own readiness
	notReady   string // why not
	haveBoot   bool
	boot       uint16
	ack, next  uint16 // last ACK_SEQ seen; the SEQ the next command takes
	count      uint16 // last confirmation NUM processed
	hb         uint16
	hbAt       time.Time
	haveHB     bool
	haveCount  bool
	plc        Block // the last block read
	queue      cmdQueue
	nextExpiry time.Time // no queued deadline is before it (zero: none)
	out        []*entry  // hold a SEQ past ACK_SEQ, seq order
	writing    []*entry  // a Write is out
	pend       pending   // no terminal event yet
	free       []*entry
	writeID    uint64
	c          Counters
	// Evidence of a second host: the last piece, how many came within
	// SecondHostHold of each other, whether commands are held for it, why.
	foreignAt  time.Time
	foreignN   int
	secondHost bool
	hostWhy    string

	dispatchLat, writtenLat, takenLat devices.Histogram
}

// New validates cfg (filling in defaults) and returns a Core with no
// connection.
func New(cfg Config) (*Core, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	return &Core{
		cfg:   cfg,
		next:  1,
		ready: true,
		queue: newCmdQueue(cfg.QueueSize),
		pend:  newPending(),
		out:   make([]*entry, 0, cfg.Ring),
	}, nil
}

// Config returns the configuration with defaults filled in.
func (c *Core) Config() Config { return c.cfg }

func (c *Core) ev(k devices.EventKind, e *entry, now time.Time) devices.Event {
	return devices.Event{Kind: k, TID: e.cmd.TID, Seq: e.seq, Chute: e.cmd.Chute, At: now}
}

// Enqueue queues a command for the ring. It refuses TID 0 and a chute above
// the configured count (devices.ErrBadCommand), a full queue
// (devices.ErrQueueFull) and a closed core (devices.ErrClosed).
func (c *Core) Enqueue(cmd devices.Command, now time.Time) error {
	switch {
	case c.closed:
		return devices.ErrClosed
	case cmd.TID == 0:
		return fmt.Errorf("divert tid 0 to chute %d: %w", cmd.Chute, devices.ErrBadCommand)
	case int(cmd.Chute) > c.cfg.Chutes:
		return fmt.Errorf("divert tid %d to chute %d: above the %d configured chutes: %w",
			cmd.TID, cmd.Chute, c.cfg.Chutes, devices.ErrBadCommand)
	}
	if !c.queue.push(queued{cmd: cmd, at: now}) {
		return fmt.Errorf("divert tid %d to chute %d: %w", cmd.TID, cmd.Chute, devices.ErrQueueFull)
	}
	if d := cmd.Deadline; !d.IsZero() && (c.nextExpiry.IsZero() || d.Before(c.nextExpiry)) {
		c.nextExpiry = d
	}
	return nil
}

// Tick reports queued commands whose deadline passed as EventLate and
// returns the earliest deadline still queued (zero: none). A command may
// be written up to and including its Deadline.
func (c *Core) Tick(now time.Time, evs *[]devices.Event) time.Time {
	if c.nextExpiry.IsZero() || !now.After(c.nextExpiry) {
		return c.nextExpiry
	}
	c.nextExpiry = c.queue.expire(now, func(q queued) {
		c.c.Late++
		*evs = append(*evs, devices.Event{Kind: devices.EventLate, TID: q.cmd.TID, Chute: q.cmd.Chute, At: now})
	})
	return c.nextExpiry
}

// Dialing records that a connection attempt started. Every attempt after
// the link's first counts as a reconnect, failed or not: a PLC that is
// off shows its redials.
func (c *Core) Dialing(now time.Time) {
	c.attempt()
	c.dialing = true
}

func (c *Core) attempt() {
	if c.attempted {
		c.c.Reconnects++
	}
	c.attempted = true
}

// Connected records an established connection (an attempt of its own if
// Dialing did not announce it). Commands wait for its first Block.
func (c *Core) Connected(now time.Time) {
	if !c.dialing {
		c.attempt()
	}
	c.conn, c.synced, c.dialing = true, false, false
	c.gen++
	c.connAt = now
	c.ready, c.notReady = true, ""
}

// Disconnected records that the connection is gone. Nothing is lost: the
// next connection's first Block decides (warm or cold).
func (c *Core) Disconnected(now time.Time) {
	c.conn, c.synced, c.dialing = false, false, false
}

// SetReady records the transport's own readiness (OPC UA: a subscription
// that delivers). While not ready, commands are held and the link is
// LinkSyncing with why as its reason.
func (c *Core) SetReady(ready bool, why string) { c.ready, c.notReady = ready, why }

// Block applies a read of the PLC block. The first block of a connection
// applies the reconnect rule: the link's first connection follows the PLC;
// the same BOOT_ID as before rewrites every untaken command in place
// (warm); a new one reports every unconfirmed command lost and follows the
// PLC (cold). Later blocks follow ACK_SEQ; a BOOT_ID change on a live
// connection is a cold restart. An ACK_SEQ beyond the last SEQ given out
// returns ErrRingMismatch after following the PLC as on a cold restart.
// Block does not read confirmations: call Confirms.
func (c *Core) Block(b *Block, now time.Time, evs *[]devices.Event) (BlockReport, error) {
	var rep BlockReport
	if !c.haveHB || b.Heartbeat != c.hb {
		c.hb, c.hbAt, c.haveHB = b.Heartbeat, now, true
	}
	rep.ChuteCountChanged = !c.haveCount || b.ChuteCount != c.plc.ChuteCount
	rep.ChuteCountAbove = int(b.ChuteCount) > c.cfg.Chutes
	c.haveCount = true
	c.plc = *b
	var err error
	switch {
	case !c.haveBoot:
		rep.Sync = SyncFirst
		rep.Lost = c.follow(b, now, evs)
	case b.BootID != c.boot:
		rep.Sync, rep.PrevBoot = SyncCold, c.boot
		rep.Lost = c.follow(b, now, evs)
	case !c.synced && c.conn:
		rep.Sync = SyncWarm
		err = c.onAck(b, now, evs)
		if err != nil {
			rep.Sync, rep.PrevBoot = SyncCold, c.boot
		} else {
			for _, e := range c.out {
				if !e.taken {
					e.needWrite = true
					rep.Rewrite++
				}
			}
		}
	default:
		err = c.onAck(b, now, evs)
	}
	if c.conn {
		c.synced = true
	}
	return rep, err
}

// follow adopts the PLC's ring: every unconfirmed command is lost, the
// next command takes ACK_SEQ+1 and confirmations are read from
// CONFIRM_COUNT on. It returns how many were lost.
func (c *Core) follow(b *Block, now time.Time, evs *[]devices.Event) int {
	lost := 0
	for e := c.pend.head; e != nil; {
		nx := e.next
		c.pend.remove(e)
		e.closed = true
		lost++
		c.c.Lost++
		*evs = append(*evs, c.ev(devices.EventLost, e, now))
		c.release(e)
		e = nx
	}
	// A command the PLC confirmed while its write was out: the
	// confirmation is proof it was written and taken.
	for _, e := range c.out {
		if e.hasDefer && !e.takenEv {
			c.emitTaken(e, now, evs)
		}
	}
	for _, e := range c.out {
		e.inOut, e.needWrite = false, false
		e.closed = true
		c.release(e)
	}
	clear(c.out)
	c.out = c.out[:0]
	c.ack, c.next = b.AckSeq, b.AckSeq+1
	c.count = b.ConfirmCount
	c.boot, c.haveBoot = b.BootID, true
	return lost
}

// onAck follows ACK_SEQ: every command it passed is taken.
func (c *Core) onAck(b *Block, now time.Time, evs *[]devices.Event) error {
	a := b.AckSeq
	d := int(uint16(a - c.ack))
	if d == 0 {
		return nil
	}
	if d > c.Outstanding() {
		c.evidence(now, "ack seq moved past the commands this host wrote")
		c.c.Mismatches++
		prev, last := c.ack, c.next-1
		lost := c.follow(b, now, evs)
		return fmt.Errorf("ack seq %d beyond the last seq written %d (ack was %d), %d unconfirmed lost: %w",
			a, last, prev, lost, ErrRingMismatch)
	}
	for _, e := range c.out[:d] {
		e.inOut = false
		if !e.taken {
			e.taken, e.needWrite = true, false
		}
		if !e.writing && !e.takenEv {
			c.emitTaken(e, now, evs)
		}
		c.release(e)
	}
	n := copy(c.out, c.out[d:])
	clear(c.out[n:])
	c.out = c.out[:n]
	c.ack = a
	return nil
}

// emitTaken reports a taken command: Written first if it was not (the PLC
// has it, so it was written), then Taken, then a confirmation that waited.
func (c *Core) emitTaken(e *entry, now time.Time, evs *[]devices.Event) {
	if e.takenEv {
		return
	}
	if !e.wroteEv {
		e.wroteEv = true
		c.c.Written++
		c.writtenLat.Observe(now.Sub(e.queuedAt))
		*evs = append(*evs, c.ev(devices.EventWritten, e, now))
	}
	e.takenEv = true
	c.c.Taken++
	c.takenLat.Observe(now.Sub(e.queuedAt))
	*evs = append(*evs, c.ev(devices.EventTaken, e, now))
	if e.hasDefer {
		e.hasDefer = false
		for _, ev := range e.deferred {
			c.c.Confirmed++
			ev.At = now
			*evs = append(*evs, ev)
		}
		clear(e.deferred)
		e.deferred = e.deferred[:0]
	}
}

// Confirms processes confirmations up to CONFIRM_COUNT count from slots,
// indexed by slot (NUM mod ConfirmRing); a slot not Read ends the range
// for now (the rest is read next time). It returns how many confirmations
// were missed: overwritten unread (count moved by more than the ring), or a
// slot holding another NUM than expected, or torn. EventMissed (with the
// total) comes before the confirmations, and closes the commands it
// accounts for: the Count oldest unconfirmed commands whose EventTaken was
// emitted. A count that went backwards without a new BOOT_ID returns
// ErrRingMismatch and is followed; no command is lost or missed for it.
func (c *Core) Confirms(count uint16, slots []Slot, now time.Time, evs *[]devices.Event) (missed int, err error) {
	moved := int(uint16(count - c.count))
	if moved == 0 {
		return 0, nil
	}
	if moved >= 0x8000 {
		c.c.Mismatches++
		err = fmt.Errorf("confirm count went back from %d to %d with the same boot id %d: %w", c.count, count, c.boot, ErrRingMismatch)
		c.count = count
		return 0, err
	}
	ring := c.cfg.ConfirmRing
	first := c.count + 1
	if moved > ring {
		missed = moved - ring
		first = count - uint16(ring) + 1
		moved = ring
	}
	// Pass 1: how far the slots reach, and which are stale or torn.
	n := 0
	for ; n < moved; n++ {
		j := int(first+uint16(n)) & (ring - 1)
		if j >= len(slots) || !slots[j].Read {
			break
		}
		if s := slots[j]; s.Torn || s.Num != first+uint16(n) {
			missed++
		}
	}
	if missed > 0 {
		c.missed(missed, now, evs)
	}
	for i := range n {
		num := first + uint16(i)
		s := slots[int(num)&(ring-1)]
		if !s.Torn && s.Num == num {
			c.confirm(s, now, evs)
		}
	}
	// Overwritten ones are behind us even when no slot could be read.
	c.count = first + uint16(n) - 1
	return missed, nil
}

// missed emits EventMissed and closes the n oldest taken, unconfirmed
// commands (items reach their decision points in about take order).
func (c *Core) missed(n int, now time.Time, evs *[]devices.Event) {
	c.c.Missed += uint64(n)
	*evs = append(*evs, devices.Event{Kind: devices.EventMissed, Count: n, At: now})
	left := n
	for e := c.pend.head; e != nil && left > 0; {
		nx := e.next
		if e.takenEv {
			c.pend.remove(e)
			e.closed = true
			c.release(e)
			left--
		}
		e = nx
	}
}

// confirm matches a confirmation to its command by TID and emits it, after
// Written and Taken: a confirmation that overtakes its in-flight write (or
// its ACK_SEQ) waits for them.
func (c *Core) confirm(s Slot, now time.Time, evs *[]devices.Event) {
	ev := devices.Event{Kind: devices.EventConfirmed, TID: s.TID, Seq: s.Num, Chute: s.Chute, Result: s.Result, At: now}
	e := c.pend.match(s.TID)
	if e == nil {
		c.c.Unmatched++
		// Behind a confirmation of the same TID that waits for its write:
		// the gateway must see them in the order they were read.
		for _, w := range c.writing {
			if w.hasDefer && w.cmd.TID == s.TID {
				w.deferred = append(w.deferred, ev)
				return
			}
		}
		c.c.Confirmed++
		*evs = append(*evs, ev)
		return
	}
	c.pend.remove(e)
	e.closed = true
	if e.takenEv {
		c.c.Confirmed++
		*evs = append(*evs, ev)
		c.release(e)
		return
	}
	// The PLC confirms only what it took.
	e.taken, e.needWrite = true, false
	e.deferred, e.hasDefer = append(e.deferred, ev), true
	if !e.writing {
		c.emitTaken(e, now, evs)
	}
	c.release(e)
}

// up reports whether commands may be written now, and why not.
func (c *Core) up(now time.Time) (bool, error) {
	switch {
	case c.closed || !c.conn:
		return false, nil
	case !c.synced:
		// Part of every connect, not a reason to show: the transport's
		// last error (why it reconnected) stays visible meanwhile.
		return false, nil
	case c.heldForHost(now):
		return false, fmt.Errorf("%w (%s): stop the other host", ErrSecondHost, c.hostWhy)
	case !c.ready:
		return false, fmt.Errorf("%w: %s", ErrNotReady, c.notReady)
	case c.plc.FaultCode == 1:
		return false, fmt.Errorf("%w 1: %w", ErrPLCFault, ErrHostLost)
	case c.plc.FaultCode >= 2 && c.plc.FaultCode <= 99:
		return false, fmt.Errorf("%w %d", ErrPLCFault, c.plc.FaultCode)
	case !now.Before(latest(c.hbAt, c.connAt).Add(c.cfg.PLCWatchdog)):
		// No duration in the text: transports log a hold when its text
		// changes.
		return false, fmt.Errorf("%w at %d", ErrPLCStalled, c.hb)
	}
	return true, nil
}

// DivertSlot is one divert slot as the transport read it back.
type DivertSlot struct {
	Seq uint16
	TID uint32
}

// Readback is what the transport read back of the registers only the host
// writes, to catch a second host writing them (the PLC's ring can have one
// host only).
type Readback struct {
	// Heartbeat is HOST_HEARTBEAT as read; Wrote the value this host last
	// wrote. CheckHeartbeat: that write succeeded on this connection, and
	// nothing of this host's can have landed between it and the read.
	Heartbeat, Wrote uint16
	CheckHeartbeat   bool
	// Divert holds the divert slots by slot index (nil: not read).
	Divert []DivertSlot
}

// Readback checks what the transport read back of the host registers for
// evidence of another host:
//   - HOST_HEARTBEAT not the value this host wrote last;
//   - a divert slot holding a SEQ ahead of ACK_SEQ that this host never
//     gave out, or one it gave out but with another TID (only slots whose
//     command was written and has no write out or pending: a slot this
//     host is about to rewrite may hold anything).
//
// ACK_SEQ moving past the commands written (ErrRingMismatch in Block) is
// evidence too. Two pieces within Config.SecondHostHold hold commands
// (LinkSyncing, ErrSecondHost) until none has come for SecondHostHold: a
// single piece (a cold restart seen on a live connection zeroes the host
// block once) is not enough. It reports whether the read held evidence.
func (c *Core) Readback(r *Readback, now time.Time) bool {
	why := ""
	if r.CheckHeartbeat && r.Heartbeat != r.Wrote {
		why = "host heartbeat changed by another writer"
	}
	for k, sl := range r.Divert {
		if why != "" || c.closed || !c.synced {
			break
		}
		d := int(uint16(sl.Seq - c.ack))
		if d == 0 || d >= c.cfg.Ring || int(sl.Seq)&(c.cfg.Ring-1) != k {
			continue // taken, stale, or not a slot of ours
		}
		if d > c.Outstanding() {
			why = "divert slot holds a sequence number this host never gave out"
			break
		}
		e := c.out[d-1]
		if e.writing || e.needWrite || !e.wroteEv {
			continue
		}
		if e.cmd.TID != sl.TID {
			why = "divert slot holds a command this host did not write"
		}
	}
	if why == "" {
		return false
	}
	c.evidence(now, why)
	return true
}

// evidence records one piece of evidence of a second host.
func (c *Core) evidence(now time.Time, why string) {
	c.c.ForeignWrites++
	if c.foreignN > 0 && now.Sub(c.foreignAt) < c.cfg.SecondHostHold {
		c.foreignN++
	} else {
		c.foreignN, c.secondHost = 1, false
	}
	c.foreignAt = now
	if c.foreignN >= 2 {
		if !c.secondHost {
			c.c.SecondHost++
		}
		c.secondHost, c.hostWhy = true, why
	}
}

// heldForHost reports whether commands are held for a second host.
func (c *Core) heldForHost(now time.Time) bool {
	return c.secondHost && now.Sub(c.foreignAt) < c.cfg.SecondHostHold
}

func latest(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// State is the link state now, and for LinkSyncing why commands are held
// (nil while the connection's first block is awaited).
func (c *Core) State(now time.Time) (devices.LinkState, error) {
	switch {
	case c.closed:
		return devices.LinkClosed, nil
	case !c.conn && c.dialing:
		return devices.LinkConnecting, nil
	case !c.conn:
		return devices.LinkDown, nil
	}
	if ok, why := c.up(now); !ok {
		return devices.LinkSyncing, why
	}
	return devices.LinkUp, nil
}

// NextWrite expires late commands and returns the next slot write, if the
// link is up: a rewrite first (oldest first), else the oldest queued
// command, which takes its sequence number only now, while (SEQ - ACK_SEQ)
// mod 65536 < Ring. At MaxUnconfirmed the oldest taken, unconfirmed command
// is reported EventLost to make room.
func (c *Core) NextWrite(now time.Time, evs *[]devices.Event) (Write, bool) {
	c.Tick(now, evs)
	if ok, _ := c.up(now); !ok {
		return Write{}, false
	}
	var job *entry
	for _, e := range c.out {
		if e.needWrite && !e.writing && !e.taken {
			job = e
			break
		}
	}
	if job == nil && c.queue.len() > 0 && c.room() {
		if c.pend.n >= c.cfg.MaxUnconfirmed {
			c.forget(now, evs)
		}
		q, _ := c.queue.pop()
		job = c.alloc()
		job.cmd, job.queuedAt, job.seq, job.needWrite = q.cmd, q.at, c.next, true
		c.next++
		job.inOut = true
		c.out = append(c.out, job)
		c.pend.add(job)
	}
	if job == nil {
		return Write{}, false
	}
	c.writeID++
	job.writing, job.writeID, job.writeGen = true, c.writeID, c.gen
	job.attempts++
	if job.attempts == 1 {
		c.dispatchLat.Observe(now.Sub(job.queuedAt))
	} else {
		c.c.Rewrites++
	}
	c.writing = append(c.writing, job)
	return Write{ID: job.writeID, Seq: job.seq, Slot: int(job.seq) & (c.cfg.Ring - 1), TID: job.cmd.TID,
		Chute: job.cmd.Chute, Reason: job.cmd.Reason, Rewrite: job.attempts > 1}, true
}

// forget reports the oldest taken, unconfirmed command lost.
func (c *Core) forget(now time.Time, evs *[]devices.Event) {
	for e := c.pend.head; e != nil; e = e.next {
		if e.takenEv {
			c.pend.remove(e)
			e.closed = true
			c.c.Forgotten++
			c.c.Lost++
			*evs = append(*evs, c.ev(devices.EventLost, e, now))
			c.release(e)
			return
		}
	}
}

// WriteDone records the outcome of w. ok: the PLC acknowledged the write
// (EventWritten, once per command). Failed: the command is rewritten in
// place, into its own slot with its own SEQ, unless the PLC took it
// meanwhile. An ACK_SEQ or confirmation that overtook the write is
// reported now, after EventWritten.
func (c *Core) WriteDone(w Write, ok bool, now time.Time, evs *[]devices.Event) {
	var e *entry
	for i, x := range c.writing {
		if x.writeID == w.ID && x.writing {
			e = x
			last := len(c.writing) - 1
			copy(c.writing[i:], c.writing[i+1:])
			c.writing[last] = nil
			c.writing = c.writing[:last]
			break
		}
	}
	if e == nil {
		return
	}
	e.writing = false
	defer c.release(e)
	if e.closed && !e.hasDefer {
		return // lost meanwhile: nothing more is reported
	}
	switch {
	case e.taken:
		c.emitTaken(e, now, evs)
	case ok:
		if e.writeGen == c.gen {
			e.needWrite = false
		}
		if !e.wroteEv {
			e.wroteEv = true
			c.c.Written++
			c.writtenLat.Observe(now.Sub(e.queuedAt))
			*evs = append(*evs, c.ev(devices.EventWritten, e, now))
		}
	default:
		e.needWrite = true
	}
}

// Close ends the core for good: queued commands are late, commands without
// a terminal event are lost.
func (c *Core) Close(now time.Time, evs *[]devices.Event) {
	if c.closed {
		return
	}
	for {
		q, ok := c.queue.pop()
		if !ok {
			break
		}
		c.c.Late++
		*evs = append(*evs, devices.Event{Kind: devices.EventLate, TID: q.cmd.TID, Chute: q.cmd.Chute, At: now})
	}
	c.nextExpiry = time.Time{}
	c.follow(&Block{AckSeq: c.ack, ConfirmCount: c.count, BootID: c.boot}, now, evs)
	c.closed, c.conn, c.synced = true, false, false
}

func (c *Core) room() bool { return int(uint16(c.next-c.ack)) < c.cfg.Ring }

// Outstanding is the number of commands holding a SEQ that ACK_SEQ has not
// passed.
func (c *Core) Outstanding() int { return int(uint16(c.next - 1 - c.ack)) }

// Queued is the number of commands waiting for a ring slot.
func (c *Core) Queued() int { return c.queue.len() }

// Unconfirmed is the number of commands holding a SEQ without a terminal
// event.
func (c *Core) Unconfirmed() int { return c.pend.n }

// Active reports whether the link has work a prompt read of the PLC
// block serves: a command queued (a slot frees when ACK_SEQ moves), or
// holding a SEQ without a terminal event (written and not yet taken, or
// taken with its confirmation due). The transports poll faster then.
func (c *Core) Active() bool { return c.queue.len() > 0 || c.pend.n > 0 }

// Writing reports whether a Write is out.
func (c *Core) Writing() bool { return len(c.writing) > 0 }

// AckSeq, NextSeq and ConfirmCount are the ring positions: the last
// ACK_SEQ seen, the SEQ the next command takes, the last NUM processed.
func (c *Core) AckSeq() uint16       { return c.ack }
func (c *Core) NextSeq() uint16      { return c.next }
func (c *Core) ConfirmCount() uint16 { return c.count }

// BootID is the BOOT_ID the ring belongs to (0 before the first block).
func (c *Core) BootID() uint16 { return c.boot }

// PLC is the last block read.
func (c *Core) PLC() Block { return c.plc }

// Counters returns the totals since New.
func (c *Core) Counters() Counters { return c.c }

// Latencies are the command latencies, each from Enqueue.
type Latencies struct {
	Dispatch devices.HistogramSnapshot // to the start of the first write
	Written  devices.HistogramSnapshot // to EventWritten
	Taken    devices.HistogramSnapshot // to EventTaken
}

// Latency returns the latency distributions since New.
func (c *Core) Latency() Latencies {
	return Latencies{Dispatch: c.dispatchLat.Snapshot(), Written: c.writtenLat.Snapshot(), Taken: c.takenLat.Snapshot()}
}

// Status fills the fields of st the core knows: state, ring, PLC values
// and the event counters. LastError is set to the hold reason while the
// link is LinkSyncing; the transport fills the rest.
func (c *Core) Status(now time.Time, st *devices.PLCStatus) {
	state, why := c.State(now)
	st.State = state
	if why != nil {
		st.LastError = why.Error()
	}
	st.Reconnects = c.c.Reconnects
	st.PLCHeartbeat, st.LastHeartbeat = c.hb, c.hbAt
	st.SorterState, st.FaultCode, st.ChuteCount = c.plc.SorterState, c.plc.FaultCode, c.plc.ChuteCount
	st.BootID, st.AckSeq, st.NextSeq = c.boot, c.ack, c.next
	st.Outstanding, st.Queued = c.Outstanding(), c.queue.len()
	st.Full, st.Disabled = c.plc.Full, c.plc.Disabled
	st.Written, st.Taken, st.Late = c.c.Written, c.c.Taken, c.c.Late
	st.Confirmed, st.Lost, st.Missed = c.c.Confirmed, c.c.Lost, c.c.Missed
}

// alloc and release recycle entries: the decision path does not allocate
// once the ring has run for a while.
func (c *Core) alloc() *entry {
	if n := len(c.free); n > 0 {
		e := c.free[n-1]
		c.free[n-1] = nil
		c.free = c.free[:n-1]
		return e
	}
	return &entry{}
}

func (c *Core) release(e *entry) {
	if !e.closed || e.inOut || e.inPend || e.writing || e.hasDefer {
		return
	}
	if len(c.free) < 4*c.cfg.Ring {
		*e = entry{deferred: e.deferred[:0]}
		c.free = append(c.free, e)
	}
}
