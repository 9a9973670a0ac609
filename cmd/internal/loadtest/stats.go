package loadtest

import (
	"math"
	"slices"
	"time"

	"sortgw/gateway"
)

// latencies is one series of samples, exact (sorted at the end).
type latencies []time.Duration

func (l latencies) quantile(p float64) time.Duration {
	if len(l) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(l)))) - 1
	return l[min(max(i, 0), len(l)-1)]
}

// LatStats summarises a series of latencies: exact quantiles.
type LatStats struct {
	N                   int
	P50, P99, P999, Max time.Duration
}

// summarise sorts l in place and summarises it.
func summarise(l latencies) LatStats {
	slices.Sort(l)
	s := LatStats{N: len(l), P50: l.quantile(0.5), P99: l.quantile(0.99), P999: l.quantile(0.999)}
	if len(l) > 0 {
		s.Max = l[len(l)-1]
	}
	return s
}

// BucketStats summarises a Prometheus histogram.
type BucketStats struct {
	Count          uint64
	P50, P99, P999 time.Duration // upper bound of the bucket the quantile falls in; -1: above the last
	Le1ms          float64       // share of observations <= 1 ms
}

// histogramStats sums the named histogram over its label sets.
func histogramStats(m *gateway.Metrics, name string) BucketStats {
	var st BucketStats
	mfs, err := m.Registry.Gather()
	if err != nil {
		return st
	}
	cum := map[float64]uint64{}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, met := range mf.GetMetric() {
			h := met.GetHistogram()
			st.Count += h.GetSampleCount()
			for _, b := range h.GetBucket() {
				cum[b.GetUpperBound()] += b.GetCumulativeCount()
			}
		}
	}
	if st.Count == 0 {
		return st
	}
	bounds := make([]float64, 0, len(cum))
	for b := range cum {
		bounds = append(bounds, b)
	}
	slices.Sort(bounds)
	q := func(p float64) time.Duration {
		for _, b := range bounds {
			if float64(cum[b]) >= p*float64(st.Count) {
				return time.Duration(b * 1e9)
			}
		}
		return -1 // above the last bucket
	}
	st.P50, st.P99, st.P999 = q(0.5), q(0.99), q(0.999)
	st.Le1ms = float64(cum[0.001]) / float64(st.Count)
	return st
}
