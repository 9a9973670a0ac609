package gateway

import (
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// rateLogger writes a warning at most once per interval and says, on the
// next line it lets through, how many it held back. Refusals come in
// floods (a connect loop, a script with an old token); one line a second
// tells the technician as much as a thousand.
type rateLogger struct {
	log   zerolog.Logger
	every time.Duration

	mu         sync.Mutex
	last       time.Time
	suppressed int
}

func newRateLogger(log zerolog.Logger, every time.Duration) *rateLogger {
	return &rateLogger{log: log, every: every}
}

// Log writes msg with the fields fields adds, unless a line went out
// within the interval.
func (r *rateLogger) Log(fields func(*zerolog.Event), msg string) {
	now := time.Now()
	r.mu.Lock()
	if !r.last.IsZero() && now.Sub(r.last) < r.every {
		r.suppressed++
		r.mu.Unlock()
		return
	}
	n := r.suppressed
	r.last, r.suppressed = now, 0
	r.mu.Unlock()
	e := r.log.Warn()
	fields(e)
	e.Int("suppressed", n).Msg(msg)
}
