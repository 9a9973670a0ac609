package modbus

import "time"

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
