package hostif

import (
	"time"

	"sortgw/devices"
)

// queued is a command waiting for a ring slot: it has no sequence number.
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

// pending tracks every command that has a sequence number and no terminal
// event yet, in assignment order, indexed by TID.
type pending struct {
	head, tail *entry
	byTID      map[uint32]*entry
	n          int
}

func newPending() pending { return pending{byTID: make(map[uint32]*entry)} }

func (p *pending) add(e *entry) {
	e.prev, e.next, e.sameTID = p.tail, nil, nil
	e.inPend = true
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
	if !e.inPend {
		return
	}
	e.inPend = false
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

// match returns the command a confirmation for tid belongs to: the oldest
// unconfirmed one the PLC has taken, else the oldest not yet taken; nil if
// none.
func (p *pending) match(tid uint32) *entry {
	first := p.byTID[tid]
	for x := first; x != nil; x = x.sameTID {
		if x.taken {
			return x
		}
	}
	return first
}
