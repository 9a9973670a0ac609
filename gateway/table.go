package gateway

import (
	"time"

	"sortgw/sortplan"
)

// itemState is where one pass of an item stands.
type itemState uint8

const (
	// itemFree: the slab slot is unused.
	itemFree itemState = iota
	// itemQueued: a command was handed to the PLC link, not yet written.
	itemQueued
	// itemWritten: the PLC replied to the write.
	itemWritten
	// itemTaken: ACK_SEQ passed the command.
	itemTaken
	// itemClosed: the pass has its outcome; the slot is kept a while so the
	// next pass of the same TID knows how often the item went round.
	itemClosed
)

func (s itemState) String() string {
	switch s {
	case itemFree:
		return "free"
	case itemQueued:
		return "queued"
	case itemWritten:
		return "written"
	case itemTaken:
		return "taken"
	case itemClosed:
		return "closed"
	}
	return "unknown"
}

// item is one tracked TID. Items live in a preallocated slab and are reused,
// so tracking an item allocates nothing.
type item struct {
	tid      uint32
	state    itemState
	pass     uint16 // 1 for the first sighting
	gen      uint32 // bumped on every open and close; guards stale FIFO entries
	scanner  string
	codes    []string // the read's codes (owned by the read, never modified)
	noRead   bool
	decision sortplan.Decision
	readAt   time.Time
	sentAt   time.Time // when the command went to the link
	takenAt  time.Time
	closedAt time.Time
	dups     uint16
}

// ref names one item at one generation, for the FIFOs.
type ref struct {
	idx int32
	gen uint32
}

// fifo is a fixed ring of refs; push on a full ring drops the oldest.
type fifo struct {
	buf        []ref
	head, size int
}

func newFIFO(n int) fifo { return fifo{buf: make([]ref, n)} }

func (f *fifo) push(r ref) (dropped ref, ok bool) {
	if f.size == len(f.buf) {
		dropped, ok = f.pop()
	}
	f.buf[(f.head+f.size)%len(f.buf)] = r
	f.size++
	return dropped, ok
}

func (f *fifo) pop() (ref, bool) {
	if f.size == 0 {
		return ref{}, false
	}
	r := f.buf[f.head]
	f.head = (f.head + 1) % len(f.buf)
	f.size--
	return r, true
}

func (f *fifo) peek() (ref, bool) {
	if f.size == 0 {
		return ref{}, false
	}
	return f.buf[f.head], true
}

// table maps TIDs to slab slots with open addressing (linear probing,
// backward-shift deletion): no allocation after construction, unlike a Go
// map whose tombstones may force a rehash.
type table struct {
	slots []int32 // -1 empty, else slab index
	mask  uint32
	items []item
	free  []int32
	live  int
}

func newTable(capacity int) *table {
	n := 1
	for n < capacity*2 {
		n <<= 1
	}
	t := &table{
		slots: make([]int32, n),
		mask:  uint32(n - 1),
		items: make([]item, capacity),
		free:  make([]int32, 0, capacity),
	}
	for i := range t.slots {
		t.slots[i] = -1
	}
	for i := capacity - 1; i >= 0; i-- {
		t.free = append(t.free, int32(i))
	}
	return t
}

func hashTID(tid uint32) uint32 {
	// Fibonacci hashing spreads consecutive TIDs.
	return tid * 2654435769
}

// lookup returns the slab index of tid, or -1.
func (t *table) lookup(tid uint32) int32 {
	for i := hashTID(tid) & t.mask; ; i = (i + 1) & t.mask {
		s := t.slots[i]
		if s < 0 {
			return -1
		}
		if t.items[s].tid == tid {
			return s
		}
	}
}

// insert takes a free slab slot for tid (which must not be present) and
// returns it, or -1 when the slab is exhausted.
func (t *table) insert(tid uint32) int32 {
	if len(t.free) == 0 {
		return -1
	}
	idx := t.free[len(t.free)-1]
	t.free = t.free[:len(t.free)-1]
	gen := t.items[idx].gen
	t.items[idx] = item{tid: tid, gen: gen}
	i := hashTID(tid) & t.mask
	for t.slots[i] >= 0 {
		i = (i + 1) & t.mask
	}
	t.slots[i] = idx
	t.live++
	return idx
}

// remove frees tid's slot.
func (t *table) remove(tid uint32) {
	i := hashTID(tid) & t.mask
	for {
		s := t.slots[i]
		if s < 0 {
			return
		}
		if t.items[s].tid == tid {
			break
		}
		i = (i + 1) & t.mask
	}
	idx := t.slots[i]
	t.items[idx].state = itemFree
	t.items[idx].codes = nil
	t.items[idx].scanner = ""
	t.items[idx].gen++
	t.free = append(t.free, idx)
	t.live--
	// Backward-shift: pull later members of the cluster into the hole.
	j := i
	for {
		j = (j + 1) & t.mask
		s := t.slots[j]
		if s < 0 {
			break
		}
		home := hashTID(t.items[s].tid) & t.mask
		// Move s into the hole at i unless its home lies cyclically in (i, j].
		if (j > i && (home <= i || home > j)) || (j < i && (home <= i && home > j)) {
			t.slots[i] = s
			i = j
		}
	}
	t.slots[i] = -1
}
