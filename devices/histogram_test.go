package devices

import (
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"
)

// refQuantile is the nearest-rank quantile of a sorted sample: the
// smallest value with at least p·n values at or below it.
func refQuantile(sorted []time.Duration, num, den uint64) time.Duration {
	n := uint64(len(sorted))
	rank := (num*n + den - 1) / den // ceil(p·n), exact
	if rank == 0 {
		rank = 1
	}
	return sorted[rank-1]
}

// checkQuantile: a histogram quantile is the upper bound of the bucket
// holding the reference value, capped at the maximum, so it is never below
// the reference and at most one bucket width (1µs below 8µs, 1/8 above)
// over it.
func checkQuantile(t *testing.T, what string, got, ref, hi time.Duration) {
	t.Helper()
	slack := max(ref/8, time.Microsecond)
	if ref >= histUpper(histBuckets-2) {
		// Beyond the last bucket's start all the histogram knows is the max.
		slack = hi - ref
	}
	if got < ref || got > ref+slack || got > hi {
		t.Errorf("%s = %v, reference %v (allowed %v..%v, max %v)", what, got, ref, ref, min(ref+slack, hi), hi)
	}
}

func TestHistogramQuantiles(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	cases := []struct {
		name string
		n    int
		gen  func(i int) time.Duration
	}{
		{"one value", 1, func(int) time.Duration { return 1234 * time.Microsecond }},
		{"two values", 2, func(i int) time.Duration { return time.Duration(i+1) * time.Millisecond }},
		{"constant", 1000, func(int) time.Duration { return 3 * time.Millisecond }},
		{"zeros", 100, func(int) time.Duration { return 0 }},
		{"sub-microsecond", 500, func(int) time.Duration { return time.Duration(rnd.IntN(1000)) }},
		{"below 8µs", 999, func(int) time.Duration { return time.Duration(rnd.IntN(8000)) }},
		{"bucket edges", 2000, func(i int) time.Duration {
			us := time.Duration(8+i%200) << uint(i%20)
			return us*time.Microsecond - time.Duration(i%2)
		}},
		{"uniform 0-10ms", 10000, func(int) time.Duration { return time.Duration(rnd.Int64N(int64(10 * time.Millisecond))) }},
		{"exponential round trips", 10007, func(int) time.Duration {
			return time.Duration(rnd.ExpFloat64() * float64(2*time.Millisecond))
		}},
		{"bimodal with rare outliers", 5000, func(i int) time.Duration {
			switch {
			case i%1000 == 999:
				return 2*time.Second + time.Duration(rnd.IntN(1000))*time.Millisecond
			case i%2 == 0:
				return 800*time.Microsecond + time.Duration(rnd.IntN(200))*time.Microsecond
			}
			return 12 * time.Millisecond
		}},
		{"beyond the last bucket", 10, func(i int) time.Duration { return time.Duration(i+1) * 24 * time.Hour }},
		{"mostly beyond the last bucket", 1000, func(i int) time.Duration {
			if i < 5 {
				return time.Millisecond
			}
			return 20*time.Hour + time.Duration(i)*time.Second
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var h Histogram
			vals := make([]time.Duration, tc.n)
			var sum time.Duration
			for i := range vals {
				vals[i] = tc.gen(i)
				sum += vals[i]
				h.Observe(vals[i])
			}
			// Observation order must not matter; shuffle a copy to sort.
			sorted := slices.Clone(vals)
			slices.Sort(sorted)
			s := h.Snapshot()
			if s.Count != uint64(tc.n) {
				t.Fatalf("count %d, want %d", s.Count, tc.n)
			}
			if s.Max != sorted[len(sorted)-1] {
				t.Fatalf("max %v, want %v", s.Max, sorted[len(sorted)-1])
			}
			if want := sum / time.Duration(tc.n); s.Mean != want {
				t.Fatalf("mean %v, want %v", s.Mean, want)
			}
			checkQuantile(t, "p50", s.P50, refQuantile(sorted, 500, 1000), s.Max)
			checkQuantile(t, "p99", s.P99, refQuantile(sorted, 990, 1000), s.Max)
			checkQuantile(t, "p99.9", s.P999, refQuantile(sorted, 999, 1000), s.Max)
			if s.P50 > s.P99 || s.P99 > s.P999 || s.P999 > s.Max {
				t.Fatalf("quantiles out of order: %+v", s)
			}
		})
	}
}

func TestHistogramEmptyAndNegative(t *testing.T) {
	var h Histogram
	if s := h.Snapshot(); s != (HistogramSnapshot{}) {
		t.Fatalf("empty snapshot %+v", s)
	}
	h.Observe(-5 * time.Second) // a clock step; recorded as 0
	s := h.Snapshot()
	if s.Count != 1 || s.Max != 0 || s.Mean != 0 || s.P50 != 0 || s.P999 != 0 {
		t.Fatalf("negative observation: %+v", s)
	}
}

// TestHistogramBuckets: every bucket's bounds map back to it, buckets are
// contiguous and at most 1/8 (or 1µs) wide.
func TestHistogramBuckets(t *testing.T) {
	lower := time.Duration(0)
	for i := range histBuckets - 1 {
		upper := histUpper(i)
		if got := histIndex(lower); got != i {
			t.Fatalf("lower bound %v of bucket %d maps to %d", lower, i, got)
		}
		if got := histIndex(upper - 1); got != i {
			t.Fatalf("%v (just below bucket %d's upper bound) maps to %d", upper-1, i, got)
		}
		if w := upper - lower; w > max(lower/8, time.Microsecond) {
			t.Fatalf("bucket %d [%v, %v) is %v wide", i, lower, upper, w)
		}
		lower = upper
	}
	if got := histIndex(1000 * time.Hour); got != histBuckets-1 {
		t.Fatalf("1000h maps to %d, want the last bucket", got)
	}
	if histUpper(histBuckets-2) < 8*time.Hour {
		t.Fatalf("buckets end at %v, want over an hour", histUpper(histBuckets-2))
	}
}

// TestHistogramConcurrent: observers and a reader at once (run with -race);
// every snapshot is self-consistent and nothing is lost.
func TestHistogramConcurrent(t *testing.T) {
	var h Histogram
	const workers, each = 4, 2000
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				h.Observe(time.Duration(w*each+i) * time.Microsecond)
			}
		})
	}
	done := make(chan struct{})
	var rg sync.WaitGroup
	rg.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			s := h.Snapshot()
			if s.Count > 0 && (s.P50 > s.P99 || s.P99 > s.P999 || s.P999 > s.Max) {
				t.Errorf("inconsistent snapshot %+v", s)
				return
			}
		}
	})
	wg.Wait()
	close(done)
	rg.Wait()
	s := h.Snapshot()
	if s.Count != workers*each || s.Max != (workers*each-1)*time.Microsecond {
		t.Fatalf("after concurrent observes: %+v", s)
	}
}

func BenchmarkHistogramObserve(b *testing.B) {
	var h Histogram
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		h.Observe(time.Duration(i&0xFFFFF) * time.Microsecond)
	}
}
