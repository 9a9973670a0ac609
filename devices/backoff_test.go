package devices

import (
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	cases := []struct {
		name     string
		min, max time.Duration
	}{
		{"site defaults", 100 * time.Millisecond, 2 * time.Second},
		{"scanner", 200 * time.Millisecond, 2 * time.Second},
		{"min above max", 3 * time.Second, 2 * time.Second},
		{"one nanosecond", time.Nanosecond, time.Microsecond},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := Backoff{Min: tc.min, Max: tc.max}
			for round := range 50 {
				b.Reset()
				for n := range 40 {
					d := b.Next()
					ceil := tc.max
					if n < 30 && tc.min<<n < tc.max {
						ceil = tc.min << n
					}
					if d > ceil || d < ceil/2 {
						t.Fatalf("round %d attempt %d: %v outside [%v, %v]", round, n, d, ceil/2, ceil)
					}
					if d > tc.max {
						t.Fatalf("attempt %d: %v above the cap %v", n, d, tc.max)
					}
				}
			}
			b.Reset()
			if d := b.Next(); d > min(tc.min, tc.max) {
				t.Fatalf("first retry after reset %v, want within %v", d, min(tc.min, tc.max))
			}
		})
	}
}
