package devices

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

// Histogram records durations in logarithmic buckets without locks or
// allocation, so a device loop can observe every round trip. Buckets are
// powers of two of a microsecond split in 8 linear steps: about 12%
// resolution from 1µs to about 9 hours; the last bucket is open-ended, and
// a quantile that falls in it reports the maximum.
type Histogram struct {
	counts [histBuckets]atomic.Uint64
	n      atomic.Uint64
	sum    atomic.Int64
	max    atomic.Int64
}

const (
	histSub     = 8
	histOctaves = 33
	histBuckets = histOctaves * histSub
)

func histIndex(d time.Duration) int {
	us := uint64(d / time.Microsecond)
	if us < histSub {
		return int(us)
	}
	oct := bits.Len64(us) - 4 // us >= 8 has at least 4 bits
	sub := (us >> uint(oct)) & (histSub - 1)
	i := (oct+1)*histSub + int(sub)
	if i >= histBuckets {
		return histBuckets - 1
	}
	return i
}

// histUpper is the upper bound of bucket i.
func histUpper(i int) time.Duration {
	if i < histSub {
		return time.Duration(i+1) * time.Microsecond
	}
	oct := i/histSub - 1
	sub := uint64(i % histSub)
	return time.Duration(((histSub + sub + 1) << uint(oct))) * time.Microsecond
}

// Observe records one duration.
func (h *Histogram) Observe(d time.Duration) {
	if d < 0 {
		d = 0
	}
	// Max and sum before the bucket count: Snapshot loads the counts
	// first, so every value it counts is already within the max it caps
	// quantiles at.
	for {
		m := h.max.Load()
		if int64(d) <= m || h.max.CompareAndSwap(m, int64(d)) {
			break
		}
	}
	h.sum.Add(int64(d))
	h.n.Add(1)
	h.counts[histIndex(d)].Add(1)
}

// Snapshot returns the count, mean and the usual quantiles.
func (h *Histogram) Snapshot() HistogramSnapshot {
	var c [histBuckets]uint64
	var n uint64
	for i := range c {
		c[i] = h.counts[i].Load()
		n += c[i]
	}
	s := HistogramSnapshot{Count: n, Max: time.Duration(h.max.Load())}
	if n == 0 {
		return s
	}
	s.Mean = time.Duration(h.sum.Load() / int64(n))
	q := func(p float64) time.Duration {
		rank := uint64(math.Ceil(p * float64(n)))
		if rank == 0 {
			rank = 1
		}
		var acc uint64
		for i, v := range c {
			acc += v
			if acc >= rank {
				if i == histBuckets-1 {
					// The last bucket is open-ended: its nominal upper
					// bound is below the values in it.
					return s.Max
				}
				u := histUpper(i)
				if u > s.Max {
					u = s.Max
				}
				return u
			}
		}
		return s.Max
	}
	s.P50, s.P99, s.P999 = q(0.50), q(0.99), q(0.999)
	return s
}

// HistogramSnapshot is a histogram's summary at one moment. Quantiles are
// bucket upper bounds (at most 12% high), capped at the maximum seen.
type HistogramSnapshot struct {
	Count uint64
	Mean  time.Duration
	P50   time.Duration
	P99   time.Duration
	P999  time.Duration
	Max   time.Duration
}
