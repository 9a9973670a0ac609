package journal

import (
	"sync"
	"sync/atomic"
	"time"
)

// queue is the bounded in-memory queue between Append and the writer. A
// ring, so taking a batch off a long backlog moves nothing. Seq numbers
// are assigned under the same lock that orders the ring, so seq order is
// commit order.
type queue struct {
	mu      sync.Mutex
	ring    []Record
	arrived []int64 // monotonic arrival time of ring[i], ns since base
	head, n int
	nextSeq uint64
	closed  bool
	// space is made by an AppendWait that found the ring full and closed by
	// the writer when it takes records off.
	space chan struct{}

	appended uint64

	// holding latches when a push finds the ring full and lets go when
	// take leaves at most resume records: the queue counts as full (and
	// the stop-reads policy holds reads back) for that whole spell, not
	// only at the instants it is at capacity. latchAt is when the spell
	// began, or when the last one ended.
	holding atomic.Bool
	resume  int
	latchAt time.Time
}

func newQueue(size int, nextSeq uint64, resume int) *queue {
	return &queue{ring: make([]Record, size), arrived: make([]int64, size), nextSeq: nextSeq, resume: resume}
}

// push adds rec if there is room. It returns the seq given, whether the
// ring was empty before (the writer needs a kick) or has just reached
// batch records, and the channel to wait on when it is full.
func (q *queue) push(rec *Record, now int64, batch int) (seq uint64, kick bool, wait <-chan struct{}, err error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return 0, false, nil, ErrClosed
	}
	if q.n == len(q.ring) {
		if !q.holding.Load() {
			q.holding.Store(true)
			q.latchAt = time.Now()
		}
		if q.space == nil {
			q.space = make(chan struct{})
		}
		return 0, false, q.space, ErrFull
	}
	seq = q.nextSeq
	q.nextSeq++
	rec.Seq = seq
	i := (q.head + q.n) % len(q.ring)
	q.ring[i] = *rec
	q.arrived[i] = now
	q.n++
	q.appended++
	return seq, q.n == 1 || q.n == batch, nil, nil
}

// peek returns how many records wait and when the oldest arrived.
func (q *queue) peek() (n int, oldest int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.n == 0 {
		return 0, 0
	}
	return q.n, q.arrived[q.head]
}

// take moves up to max records into dst and wakes AppendWait callers.
func (q *queue) take(dst []Record, max int) []Record {
	q.mu.Lock()
	defer q.mu.Unlock()
	k := min(q.n, max)
	for j := 0; j < k; j++ {
		i := (q.head + j) % len(q.ring)
		dst = append(dst, q.ring[i])
		q.ring[i] = Record{} // let the codes go
	}
	q.head = (q.head + k) % len(q.ring)
	q.n -= k
	if q.n <= q.resume && q.holding.Load() {
		q.holding.Store(false)
		q.latchAt = time.Now()
	}
	if k > 0 && q.space != nil {
		close(q.space)
		q.space = nil
	}
	return dst
}

// lastSeq is the seq of the last record accepted (0 if none yet).
func (q *queue) lastSeq() uint64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.nextSeq - 1
}

// close refuses further records and wakes every AppendWait.
func (q *queue) close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	if q.space != nil {
		close(q.space)
		q.space = nil
	}
}

// fill returns the records queued, the capacity, whether the queue is in
// a full spell and when that spell began (or the last one ended).
func (q *queue) fill() (n, size int, full bool, since time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.n, len(q.ring), q.holding.Load(), q.latchAt
}

func (q *queue) counters() (appended uint64, queued int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.appended, q.n
}

// monotonic clock for batching decisions, independent of Config.Now.
var monoBase = time.Now()

func mono() int64 { return int64(time.Since(monoBase)) }
