package devices

import (
	"sync"
	"time"
)

// RateLog decides which repeats of a log line are written, so that a
// device that is down for the night leaves a handful of lines, not one per
// redial. The first line of a key is written at once; while the same key
// repeats, the next one is written only after an interval that starts at
// Min and doubles with every line written, up to Max. Each line written
// carries the number of repeats held back since the one before. A key not
// seen for twice Max starts over at Min. Every device package uses this one
// type; it is safe for concurrent use, and its zero value is ready (Min
// 1s, Max 1min).
type RateLog struct {
	Min, Max time.Duration

	mu   sync.Mutex
	keys map[string]*rateEntry
}

type rateEntry struct {
	last       time.Time
	every      time.Duration
	suppressed int
}

// maxRateKeys bounds the keys remembered: error texts are a small set per
// device, and a flood of distinct ones (addresses in them) must not grow
// the map forever.
const maxRateKeys = 64

// Allow reports whether the line for key may be written now, and how many
// lines of that key were held back since the last one written.
func (r *RateLog) Allow(key string, now time.Time) (ok bool, suppressed int) {
	lo, hi := r.Min, r.Max
	if lo <= 0 {
		lo = time.Second
	}
	if hi < lo {
		hi = max(lo, time.Minute)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.keys[key]
	if e == nil {
		if r.keys == nil || len(r.keys) >= maxRateKeys {
			r.keys = make(map[string]*rateEntry)
		}
		r.keys[key] = &rateEntry{last: now, every: lo}
		return true, 0
	}
	gap := now.Sub(e.last)
	if gap < e.every {
		e.suppressed++
		return false, 0
	}
	n := e.suppressed
	e.suppressed, e.last = 0, now
	if gap >= 2*hi {
		e.every = lo
	} else {
		e.every = min(2*e.every, hi)
	}
	return true, n
}
