package fieldbussim

import (
	"container/heap"
	"sync"
	"time"
)

// Clock is the sim's source of time. The real clock is the default; a
// VirtualClock lets tests run an hour of sorting in a second, deterministically
// for a given seed, because every timer fires in the goroutine that advances it.
type Clock interface {
	Now() time.Time
	// AfterFunc calls f once d has passed. A virtual clock calls it from
	// Advance; the real clock from a goroutine of its own.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a pending AfterFunc call.
type Timer interface {
	// Stop prevents the call; it reports false if the call already ran or is running.
	Stop() bool
}

// RealClock is wall-clock time.
type RealClock struct{}

// Now returns time.Now().
func (RealClock) Now() time.Time { return time.Now() }

// AfterFunc wraps time.AfterFunc.
func (RealClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }

// VirtualClock is a manually advanced clock. Timers fire in deadline order
// (ties in scheduling order) inside Advance, so a run is a pure function of the
// seed and the calls made.
type VirtualClock struct {
	mu     sync.Mutex
	now    time.Time
	seq    uint64
	timers vtimerHeap
}

// NewVirtualClock returns a clock standing at start.
func NewVirtualClock(start time.Time) *VirtualClock {
	return &VirtualClock{now: start}
}

// Now returns the clock's current time.
func (c *VirtualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// AfterFunc schedules f at Now()+d. It never calls f synchronously, even for d <= 0.
func (c *VirtualClock) AfterFunc(d time.Duration, f func()) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	if d < 0 {
		d = 0
	}
	c.seq++
	t := &vtimer{c: c, when: c.now.Add(d), seq: c.seq, f: f, index: -1}
	heap.Push(&c.timers, t)
	return t
}

// Advance moves the clock forward by d, firing every timer that falls due on
// the way, each with Now() equal to its deadline. Timers scheduled by a firing
// timer fire in the same Advance if they fall due before its end.
func (c *VirtualClock) Advance(d time.Duration) {
	c.mu.Lock()
	end := c.now.Add(d)
	c.mu.Unlock()
	for {
		c.mu.Lock()
		if len(c.timers) == 0 || c.timers[0].when.After(end) {
			if end.After(c.now) {
				c.now = end
			}
			c.mu.Unlock()
			return
		}
		t := heap.Pop(&c.timers).(*vtimer)
		if t.when.After(c.now) {
			c.now = t.when
		}
		c.mu.Unlock()
		t.f()
	}
}

// Pending reports how many timers are waiting.
func (c *VirtualClock) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}

type vtimer struct {
	c     *VirtualClock
	when  time.Time
	seq   uint64
	f     func()
	index int
}

func (t *vtimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	if t.index < 0 {
		return false
	}
	heap.Remove(&t.c.timers, t.index)
	return true
}

type vtimerHeap []*vtimer

func (h vtimerHeap) Len() int { return len(h) }
func (h vtimerHeap) Less(i, j int) bool {
	if h[i].when.Equal(h[j].when) {
		return h[i].seq < h[j].seq
	}
	return h[i].when.Before(h[j].when)
}
func (h vtimerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}
func (h *vtimerHeap) Push(x any) {
	t := x.(*vtimer)
	t.index = len(*h)
	*h = append(*h, t)
}
func (h *vtimerHeap) Pop() any {
	old := *h
	n := len(old)
	t := old[n-1]
	old[n-1] = nil
	t.index = -1
	*h = old[:n-1]
	return t
}

// scheduler runs callbacks on a Clock and can be closed: Close cancels every
// pending callback and waits for running ones, so no goroutine outlives Run.
type scheduler struct {
	clk     Clock
	mu      sync.Mutex
	closed  bool
	nextID  uint64
	pending map[uint64]Timer
	wg      sync.WaitGroup
}

func newScheduler(clk Clock) *scheduler {
	return &scheduler{clk: clk, pending: make(map[uint64]Timer)}
}

// after schedules f; the returned func cancels it (a no-op once it ran).
func (s *scheduler) after(d time.Duration, f func()) (cancel func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return func() {}
	}
	s.nextID++
	id := s.nextID
	s.wg.Add(1)
	// s.mu is held while AfterFunc registers, so a callback that fires at once
	// still finds its entry in pending.
	s.pending[id] = s.clk.AfterFunc(d, func() {
		defer s.wg.Done()
		s.mu.Lock()
		_, ok := s.pending[id]
		delete(s.pending, id)
		closed := s.closed
		s.mu.Unlock()
		if ok && !closed {
			f()
		}
	})
	return func() {
		s.mu.Lock()
		t, ok := s.pending[id]
		delete(s.pending, id)
		s.mu.Unlock()
		if ok && t.Stop() {
			s.wg.Done()
		}
	}
}

// close cancels everything pending and waits for callbacks in flight. It must
// not be called from inside a callback.
func (s *scheduler) close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.wg.Wait()
		return
	}
	s.closed = true
	ts := s.pending
	s.pending = nil
	s.mu.Unlock()
	for _, t := range ts {
		if t.Stop() {
			s.wg.Done()
		}
	}
	s.wg.Wait()
}
