package modbus

import (
	"time"

	"sortgw/devices"
)

// Ring arithmetic. Sequence numbers are uint16 and wrap 65535 -> 0, so
// every comparison is a distance modulo 65536.

// canWrite reports whether command seq may be written while the PLC's
// ACK_SEQ is ack: never while (seq - ack) mod 65536 >= ring.
func canWrite(seq, ack uint16, ring int) bool {
	return int(seq-ack) < ring
}

// ackInWindow reports whether a newly read ACK_SEQ is consistent with the
// commands this link gave out: between the last ACK_SEQ seen and the last
// sequence number assigned (next-1), inclusive.
func ackInWindow(newAck, ack, next uint16) bool {
	return newAck-ack <= next-1-ack
}

// passed reports whether ACK_SEQ newAck has consumed seq, given the
// previous ACK_SEQ ack (seq is assigned after ack).
func passed(seq, ack, newAck uint16) bool {
	return seq-ack <= newAck-ack && seq != ack
}

// entry is one command from the moment it got its sequence number until
// its confirmation (or until it is reported lost).
type entry struct {
	cmd      devices.Command
	queuedAt time.Time
	seq      uint16

	needWrite bool // not yet written on the current connection (new, failed or to rewrite)
	inflight  bool // a function-16 request is on the wire
	written   bool // EventWritten emitted
	taken     bool // ACK_SEQ passed it
	takenSent bool // EventTaken emitted
	lost      bool // EventLost emitted; nothing more is reported

	// A confirmation that arrived while the write's reply was still in
	// flight waits here so the gateway always sees written, taken,
	// confirmed in that order.
	deferred *devices.Event

	// unconfirmed list (assignment order) and same-TID chain.
	prev, next *entry
	sameTID    *entry
}

// queued is a command waiting for a ring slot.
type queued struct {
	cmd devices.Command
	at  time.Time
}

// cmdQueue is a bounded FIFO ring buffer; it never allocates after New.
type cmdQueue struct {
	buf  []queued
	head int
	n    int
}

func newCmdQueue(size int) cmdQueue { return cmdQueue{buf: make([]queued, size)} }

func (q *cmdQueue) len() int { return q.n }

func (q *cmdQueue) push(c queued) bool {
	if q.n == len(q.buf) {
		return false
	}
	q.buf[(q.head+q.n)%len(q.buf)] = c
	q.n++
	return true
}

func (q *cmdQueue) pop() (queued, bool) {
	if q.n == 0 {
		return queued{}, false
	}
	c := q.buf[q.head]
	q.buf[q.head] = queued{}
	q.head = (q.head + 1) % len(q.buf)
	q.n--
	return c, true
}

// expire removes every command whose deadline is before now, in queue
// order, handing each to late; it returns the earliest remaining deadline
// (zero if none).
func (q *cmdQueue) expire(now time.Time, late func(queued)) time.Time {
	var earliest time.Time
	keep := 0
	for i := 0; i < q.n; i++ {
		c := q.buf[(q.head+i)%len(q.buf)]
		d := c.cmd.Deadline
		if !d.IsZero() && d.Before(now) {
			late(c)
			continue
		}
		if !d.IsZero() && (earliest.IsZero() || d.Before(earliest)) {
			earliest = d
		}
		q.buf[(q.head+keep)%len(q.buf)] = c
		keep++
	}
	for i := keep; i < q.n; i++ {
		q.buf[(q.head+i)%len(q.buf)] = queued{}
	}
	q.n = keep
	return earliest
}

// pending tracks every command that has a sequence number and no
// confirmation yet, in assignment order, indexed by TID.
type pending struct {
	head, tail *entry
	byTID      map[uint32]*entry
	n          int
}

func newPending() pending { return pending{byTID: make(map[uint32]*entry)} }

func (p *pending) add(e *entry) {
	e.prev, e.next, e.sameTID = p.tail, nil, nil
	if p.tail != nil {
		p.tail.next = e
	} else {
		p.head = e
	}
	p.tail = e
	p.n++
	if first := p.byTID[e.cmd.TID]; first == nil {
		p.byTID[e.cmd.TID] = e
	} else {
		for first.sameTID != nil {
			first = first.sameTID
		}
		first.sameTID = e
	}
}

// remove unlinks e from the order list and from its TID chain.
func (p *pending) remove(e *entry) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		p.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		p.tail = e.prev
	}
	e.prev, e.next = nil, nil
	p.n--
	tid := e.cmd.TID
	first := p.byTID[tid]
	if first == e {
		if e.sameTID != nil {
			p.byTID[tid] = e.sameTID
		} else {
			delete(p.byTID, tid)
		}
	} else {
		for x := first; x != nil; x = x.sameTID {
			if x.sameTID == e {
				x.sameTID = e.sameTID
				break
			}
		}
	}
	e.sameTID = nil
}

// oldestFor returns the oldest unconfirmed command for tid, taken by the
// PLC first; nil if none. A confirmation belongs to a command the PLC has
// taken, so a not-yet-taken one is matched only when no taken one exists.
func (p *pending) oldestFor(tid uint32) *entry {
	first := p.byTID[tid]
	for x := first; x != nil; x = x.sameTID {
		if x.taken {
			return x
		}
	}
	return first
}
