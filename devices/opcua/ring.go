package opcua

import (
	"fmt"
	"time"

	"sortgw/devices"
)

// entry is a command that holds a sequence number: from the moment it is
// first written until ACK_SEQ passes it.
type entry struct {
	cmd devices.Command
	seq uint16
	// writing: a WriteRequest for it is in flight.
	writing bool
	// needsWrite: it must be (re)written into its slot (new, after a failed
	// write, or after a warm reconnect).
	needsWrite bool
	// written: EventWritten was emitted.
	written bool
	// taken: ACK_SEQ passed it while its write was in flight; EventTaken
	// follows EventWritten when the response comes.
	taken bool
	// dead: a cold restart or Close reported it lost; a late write reply
	// changes nothing.
	dead   bool
	sentAt time.Time
}

// open is a command written and not yet confirmed: what a cold restart of
// the PLC loses.
type open struct {
	tid   uint32
	seq   uint16
	chute uint16
	at    time.Time
}

// ring is the host's side of the divert ring and the confirmation ring:
// pure bookkeeping, no I/O, guarded by Link.mu. Every method appends the
// events it causes to evs.
type ring struct {
	size     int
	next     uint16   // the sequence number the next command takes
	ack      uint16   // last ACK_SEQ seen
	inflight []*entry // seq order; seq in (ack, next)
	open     []open   // written, not confirmed, in write order
	count    uint16   // last confirmation NUM processed
	boot     uint16   // BOOT_ID of the PLC the state belongs to
	synced   bool     // boot, ack and count come from a PLC read
}

func newRing(size int) *ring { return &ring{size: size, next: 1} }

// outstanding is the number of commands holding a sequence number that
// ACK_SEQ has not passed.
func (r *ring) outstanding() int { return int(uint16(r.next - 1 - r.ack)) }

// room reports whether the next command may be written: never write s
// while (s - ACK_SEQ) mod 65536 >= ring size.
func (r *ring) room() bool { return int(uint16(r.next-r.ack)) < r.size }

// slot is where sequence number s goes.
func (r *ring) slot(s uint16) int { return int(s) % r.size }

// assign gives cmd the next sequence number.
func (r *ring) assign(cmd devices.Command, now time.Time) *entry {
	e := &entry{cmd: cmd, seq: r.next, needsWrite: true}
	r.next++
	r.inflight = append(r.inflight, e)
	r.open = append(r.open, open{tid: cmd.TID, seq: e.seq, chute: cmd.Chute, at: now})
	return e
}

// nextToWrite returns the oldest entry that needs writing, if any.
func (r *ring) nextToWrite() *entry {
	for _, e := range r.inflight {
		if e.needsWrite && !e.writing {
			return e
		}
	}
	return nil
}

// writeDone records the outcome of e's WriteRequest.
func (r *ring) writeDone(e *entry, ok bool, now time.Time, evs *[]devices.Event) {
	e.writing = false
	if e.dead {
		return
	}
	if !ok {
		// The slot keeps its sequence number: a gap would jam the ring, so
		// the command is rewritten in place, late or not.
		if e.taken {
			// The PLC took it although the reply was lost.
			*evs = append(*evs, devices.Event{Kind: devices.EventTaken, TID: e.cmd.TID, Seq: e.seq, Chute: e.cmd.Chute, At: now})
			return
		}
		e.needsWrite = true
		return
	}
	if !e.written {
		e.written = true
		*evs = append(*evs, devices.Event{Kind: devices.EventWritten, TID: e.cmd.TID, Seq: e.seq, Chute: e.cmd.Chute, At: now})
	}
	if e.taken {
		*evs = append(*evs, devices.Event{Kind: devices.EventTaken, TID: e.cmd.TID, Seq: e.seq, Chute: e.cmd.Chute, At: now})
	}
}

// onAck moves ACK_SEQ to a. It returns an error (after following the PLC)
// when a lies beyond the last sequence number written.
func (r *ring) onAck(a uint16, now time.Time, evs *[]devices.Event) error {
	d := int(uint16(a - r.ack))
	if d == 0 {
		return nil
	}
	var err error
	if d > r.outstanding() {
		err = fmt.Errorf("ack seq %d beyond last written %d: %w", a, r.next-1, ErrRingMismatch)
		d = len(r.inflight)
		r.next = a + 1
	}
	for _, e := range r.inflight[:d] {
		switch {
		case e.writing:
			e.taken = true
		case e.written:
			*evs = append(*evs, devices.Event{Kind: devices.EventTaken, TID: e.cmd.TID, Seq: e.seq, Chute: e.cmd.Chute, At: now})
		default:
			// Never confirmed written (failed write, PLC took it anyway).
			*evs = append(*evs, devices.Event{Kind: devices.EventTaken, TID: e.cmd.TID, Seq: e.seq, Chute: e.cmd.Chute, At: now})
		}
	}
	n := copy(r.inflight, r.inflight[d:])
	clear(r.inflight[n:])
	r.inflight = r.inflight[:n]
	r.ack = a
	return err
}

// warm is the reconnect to a PLC that kept its memory: follow ACK_SEQ and
// rewrite every command it has not taken, each with its own sequence
// number into its own slot.
func (r *ring) warm(a uint16, now time.Time, evs *[]devices.Event) error {
	err := r.onAck(a, now, evs)
	for _, e := range r.inflight {
		e.needsWrite = true
	}
	return err
}

// cold is the reconnect to a PLC that restarted cold (or the first
// connect): every command not yet confirmed is lost, and the host follows
// the PLC from ACK_SEQ and CONFIRM_COUNT on.
func (r *ring) cold(boot, a, count uint16, now time.Time, evs *[]devices.Event) {
	for _, o := range r.open {
		*evs = append(*evs, devices.Event{Kind: devices.EventLost, TID: o.tid, Seq: o.seq, Chute: o.chute, At: now})
	}
	clear(r.open)
	r.open = r.open[:0]
	for _, e := range r.inflight {
		e.dead = true
	}
	clear(r.inflight)
	r.inflight = r.inflight[:0]
	r.ack, r.next, r.count, r.boot, r.synced = a, a+1, count, boot, true
}

// closeAll reports every open command lost when the link stops.
func (r *ring) closeAll(now time.Time, evs *[]devices.Event) {
	r.cold(r.boot, r.ack, r.count, now, evs)
	r.synced = false
}

// confirmed records confirmation num and emits it.
func (r *ring) confirmed(num uint16, tid uint32, chute, result uint16, now time.Time, evs *[]devices.Event) {
	for i, o := range r.open {
		if o.tid == tid {
			r.open = append(r.open[:i], r.open[i+1:]...)
			break
		}
	}
	*evs = append(*evs, devices.Event{Kind: devices.EventConfirmed, TID: tid, Seq: num, Chute: chute, Result: result, At: now})
}

// prune forgets open commands older than cutoff: their confirmation was
// missed (EventMissed told the gateway) and no cold restart may report
// them lost long after.
func (r *ring) prune(cutoff time.Time) int {
	i := 0
	for i < len(r.open) && r.open[i].at.Before(cutoff) {
		i++
	}
	if i > 0 {
		n := copy(r.open, r.open[i:])
		r.open = r.open[:n]
	}
	return i
}

// confirmRange says which confirmations to read when CONFIRM_COUNT reads
// c: n of them from NUM first on, and how many were overwritten unread
// (moved by more than the ring). A count that went backwards without a
// new BOOT_ID is an error; the ring follows it.
func (r *ring) confirmRange(c uint16) (first uint16, n, missed int, err error) {
	moved := int(uint16(c - r.count))
	switch {
	case moved == 0:
		return 0, 0, 0, nil
	case moved >= 0x8000:
		err = fmt.Errorf("confirm count went back from %d to %d: %w", r.count, c, ErrRingMismatch)
		r.count = c
		return 0, 0, 0, err
	case moved > r.size:
		return c - uint16(r.size) + 1, r.size, moved - r.size, nil
	}
	return r.count + 1, moved, 0, nil
}

// confirmSlot is one confirmation as read from the PLC.
type confirmSlot struct {
	num    uint16
	tid    uint32
	chute  uint16
	result uint16
	torn   bool // overwritten while it was read
}

func (s confirmSlot) is(num uint16) bool { return !s.torn && s.num == num }

// applyConfirms processes the slots read for NUM first.. (as confirmRange
// said), plus missed ones counted before the read. A slot whose NUM is not
// the expected one was overwritten before it could be read, or while it
// was read (torn): missed too.
func (r *ring) applyConfirms(first uint16, slots []confirmSlot, missed int, now time.Time, evs *[]devices.Event) int {
	for i, s := range slots {
		if !s.is(first + uint16(i)) {
			missed++
		}
	}
	if missed > 0 {
		*evs = append(*evs, devices.Event{Kind: devices.EventMissed, Count: missed, At: now})
	}
	for i, s := range slots {
		if s.is(first + uint16(i)) {
			r.confirmed(s.num, s.tid, s.chute, s.result, now, evs)
		}
	}
	if len(slots) > 0 {
		r.count = first + uint16(len(slots)) - 1
	}
	return missed
}
