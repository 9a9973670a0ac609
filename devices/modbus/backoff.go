package modbus

import (
	"math/rand/v2"
	"time"
)

// backoff is a capped exponential back-off with "equal jitter": each delay
// is half fixed, half random, so a row of gateways that lost the same PLC
// do not redial in step. The first delay is at most min; later ones double
// up to max.
type backoff struct {
	min, max time.Duration
	cur      time.Duration
	rnd      func(n int64) int64
}

func newBackoff(min, max time.Duration) *backoff {
	return &backoff{min: min, max: max, rnd: func(n int64) int64 { return rand.Int64N(n) }}
}

// next returns the delay before the next attempt.
func (b *backoff) next() time.Duration {
	if b.cur == 0 {
		b.cur = b.min
	} else {
		b.cur = min(2*b.cur, b.max)
	}
	half := b.cur / 2
	if half <= 0 {
		return b.cur
	}
	return b.cur - half + time.Duration(b.rnd(int64(half)+1))
}

// reset starts the next run of failures from min again.
func (b *backoff) reset() { b.cur = 0 }

// errLog logs a repeated error at most once per interval: a PLC that is
// down for an hour must not fill the disk with the same dial error. The
// count of suppressed repeats goes with the next line.
type errLog struct {
	every      time.Duration
	last       string
	at         time.Time
	suppressed int
}

// allow reports whether msg may be logged now and how many identical
// messages were suppressed since the last one logged.
func (e *errLog) allow(now time.Time, msg string) (bool, int) {
	if msg == e.last && now.Sub(e.at) < e.every {
		e.suppressed++
		return false, 0
	}
	n := e.suppressed
	e.last, e.at, e.suppressed = msg, now, 0
	return true, n
}
