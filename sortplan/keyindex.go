package sortplan

import "hash/maphash"

// keyIndex is an open-addressing hash from destination keys to rule
// indexes. It stores no strings of its own: the keys are the plan's, so a
// million-rule plan compiles with one slice allocation instead of a map's
// million buckets, and a lookup costs a hash and about one slot read.
type keyIndex struct {
	slots []uint64 // high 32 bits: hash tag; low 32: rule index + 1 (0 = empty)
	mask  uint32
	seed  maphash.Seed
}

func newKeyIndex(n int) keyIndex {
	size := 8
	for size < 2*n {
		size <<= 1
	}
	return keyIndex{slots: make([]uint64, size), mask: uint32(size - 1), seed: maphash.MakeSeed()}
}

// insert maps key to rule; keys[rule] must be key. A key inserted twice
// keeps the later rule.
func (x *keyIndex) insert(key string, rule int32, keys []string) {
	hash := maphash.String(x.seed, key)
	tag := hash &^ 0xFFFFFFFF
	h := uint32(hash) & x.mask
	for {
		s := x.slots[h]
		if s == 0 || (s&^0xFFFFFFFF == tag && keys[uint32(s)-1] == key) {
			x.slots[h] = tag | uint64(rule+1)
			return
		}
		h = (h + 1) & x.mask
	}
}

func (x *keyIndex) get(key string, keys []string) (int32, bool) {
	if len(x.slots) == 0 {
		return -1, false
	}
	hash := maphash.String(x.seed, key)
	tag := hash &^ 0xFFFFFFFF
	h := uint32(hash) & x.mask
	for {
		s := x.slots[h]
		if s == 0 {
			return -1, false
		}
		if s&^0xFFFFFFFF == tag && keys[uint32(s)-1] == key {
			return int32(uint32(s) - 1), true
		}
		h = (h + 1) & x.mask
	}
}
