package devices

import (
	"math/rand/v2"
	"time"
)

// Backoff is the reconnect delay every device loop uses: capped exponential
// back-off with "equal jitter". Attempt n waits a random time in [d/2, d],
// d = min(Min·2ⁿ, Max), so the first retry comes within Min, no wait
// exceeds Max, and a row of gateways that lost the same PLC or scanner do
// not redial in step. One loop owns a Backoff; it is not safe for
// concurrent use.
type Backoff struct {
	Min, Max time.Duration
	n        int
}

// Next returns the wait before the next attempt and counts the attempt.
func (b *Backoff) Next() time.Duration {
	d := b.Max
	if b.n < 30 && b.Min<<b.n < b.Max {
		d = b.Min << b.n
	}
	b.n++
	half := d / 2
	if half <= 0 {
		return d
	}
	return half + time.Duration(rand.Int64N(int64(d-half)+1))
}

// Reset starts the next run of failures from Min again; call it after a
// connection that worked.
func (b *Backoff) Reset() { b.n = 0 }
