package gateway

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"sortgw/devices"
	"sortgw/gateway/journal"
	"sortgw/sortplan"
)

// The status page's outcome tiles. Every outcome falls into exactly one
// bucket, and every bucket into one tile, so that the tiles of a window
// add up to all of its outcomes (100 %).
const (
	bucketSorted     = iota // diverted to a plan chute
	bucketRecirc            // recirculated: chute full or late at the PLC, commanded, host lost, refused, not sent
	bucketExcUnknown        // exception chute: codes read, destination unknown
	bucketExcNoRead         // exception chute: nothing read
	bucketExcOther          // exception chute: multi-read, recirculation limit, rejected, degraded
	bucketHostLate          // the command missed the decision budget
	bucketTimeout           // no confirmation in time
	bucketMissed            // the confirmation was overwritten unread
	bucketLost              // tracking lost (PLC, disconnect, gateway restart)
	nBuckets
)

// bucketOf sorts one outcome (with the reason of the decision behind it)
// into its bucket.
func bucketOf(o journal.Outcome, reason sortplan.Reason) int {
	switch o {
	case journal.OutcomeDiverted, journal.OutcomeDivertedOther:
		switch reason {
		case sortplan.ReasonUnknown:
			return bucketExcUnknown
		case sortplan.ReasonNoRead:
			return bucketExcNoRead
		case sortplan.ReasonMultiRead, sortplan.ReasonRecircLimit, sortplan.ReasonDegraded:
			return bucketExcOther
		}
		return bucketSorted
	case journal.OutcomeRejected:
		return bucketExcOther
	case journal.OutcomeHostLate:
		return bucketHostLate
	case journal.OutcomeTimeout:
		return bucketTimeout
	case journal.OutcomeMissedConfirmation:
		return bucketMissed
	case journal.OutcomeLost, journal.OutcomeLostDisconnect, journal.OutcomeLostAtRestart:
		return bucketLost
	}
	// Full, late, commanded recirculation, host lost, refused, not sent,
	// and anything a newer PLC reports: the item comes round again.
	return bucketRecirc
}

// OutcomeTiles are a window's outcomes as the page's tiles: their counts
// add up to Total, their shares to 100 % (to the tenth).
type OutcomeTiles struct {
	Window string        `json:"window"`
	Total  uint64        `json:"total"`
	Tiles  []OutcomeTile `json:"tiles"`
}

// OutcomeTile is one tile: sorted, recirculated, exception, host-late,
// unconfirmed or lost. Level is "" (normal, grey), warn or bad by the
// line's thresholds.
type OutcomeTile struct {
	Key   string     `json:"key"`
	Label string     `json:"label"`
	Count uint64     `json:"count"`
	Pct   float64    `json:"pct"`
	Level string     `json:"level"`
	Parts []TilePart `json:"parts,omitempty"`
}

// TilePart is one cause inside a tile (exception: unknown, no-read).
type TilePart struct {
	Name  string `json:"name"`
	Count uint64 `json:"count"`
}

// outcomeTiles makes the tiles from per-bucket counts of a window.
func outcomeTiles(b *[nBuckets]uint64, window string, cfg *AlarmConfig) OutcomeTiles {
	ts := []OutcomeTile{
		{Key: "sorted", Label: "sorted", Count: b[bucketSorted]},
		{Key: "recirculated", Label: "recirculated", Count: b[bucketRecirc]},
		{Key: "exception", Label: "exception chute", Count: b[bucketExcUnknown] + b[bucketExcNoRead] + b[bucketExcOther],
			Parts: []TilePart{{"unknown", b[bucketExcUnknown]}, {"no-read", b[bucketExcNoRead]}, {"other", b[bucketExcOther]}}},
		{Key: "host-late", Label: "host late", Count: b[bucketHostLate]},
		{Key: "unconfirmed", Label: "unconfirmed", Count: b[bucketTimeout] + b[bucketMissed],
			Parts: []TilePart{{"timeout", b[bucketTimeout]}, {"missed confirmation", b[bucketMissed]}}},
		{Key: "lost", Label: "lost", Count: b[bucketLost]},
	}
	var total uint64
	for i := range ts {
		total += ts[i].Count
	}
	out := OutcomeTiles{Window: window, Total: total, Tiles: ts}
	if total == 0 {
		return out
	}
	// Largest remainder: tenths of a percent that add up to exactly 1000.
	tenths := make([]uint64, len(ts))
	rem := make([]uint64, len(ts))
	var sum uint64
	for i := range ts {
		tenths[i] = ts[i].Count * 1000 / total
		rem[i] = ts[i].Count * 1000 % total
		sum += tenths[i]
	}
	for ; sum < 1000; sum++ {
		best := 0
		for i := range rem {
			if rem[i] > rem[best] {
				best = i
			}
		}
		tenths[best]++
		rem[best] = 0
	}
	for i := range ts {
		ts[i].Pct = float64(tenths[i]) / 10
	}
	// Thresholds colour the tiles; below MinOutcomes a share says little.
	if total >= uint64(max(cfg.MinOutcomes, 1)) {
		if ts[0].Pct < cfg.MinSortedPct {
			ts[0].Level = "bad"
		}
		if pctOf(b[bucketExcUnknown], total) > cfg.MaxUnknownPct || pctOf(b[bucketExcNoRead], total) > cfg.MaxNoReadPct {
			ts[2].Level = "warn"
		}
		for _, i := range []int{1, 3, 4} {
			if ts[i].Pct > 100-cfg.MinSortedPct {
				ts[i].Level = "bad"
			} else if ts[i].Pct >= 5 {
				ts[i].Level = "warn"
			}
		}
	}
	if ts[5].Count > 0 {
		ts[5].Level = "warn"
	}
	return out
}

func pctOf(a, b uint64) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) * 100 / float64(b)
}

// TrendPoint is one minute of the sort-rate trend.
type TrendPoint struct {
	At       time.Time `json:"at"` // the minute's start
	Sorted   uint64    `json:"sorted"`
	Outcomes uint64    `json:"outcomes"`
}

// trendRing is the last hour, one slot per minute.
type trendRing struct {
	slots      [60]TrendPoint
	n          int // slots used, the newest at (n-1)%60
	lastSorted uint64
	lastTotal  uint64
}

// add counts what happened since the previous call into now's minute.
func (r *trendRing) add(now time.Time, sorted, total uint64) {
	m := now.Truncate(time.Minute)
	ds, dt := sorted-r.lastSorted, total-r.lastTotal
	r.lastSorted, r.lastTotal = sorted, total
	if r.n == 0 || r.slots[(r.n-1)%60].At.Before(m) {
		// Minutes without a call (a stalled loop) stay as gaps of zero.
		for r.n > 0 && r.n < 1<<30 {
			next := r.slots[(r.n-1)%60].At.Add(time.Minute)
			if !next.Before(m) || now.Sub(next) > time.Hour {
				break
			}
			r.slots[r.n%60] = TrendPoint{At: next}
			r.n++
		}
		r.slots[r.n%60] = TrendPoint{At: m}
		r.n++
	}
	s := &r.slots[(r.n-1)%60]
	s.Sorted += ds
	s.Outcomes += dt
}

// points lists the trend, oldest first.
func (r *trendRing) points() []TrendPoint {
	k := min(r.n, 60)
	out := make([]TrendPoint, 0, k)
	for i := r.n - k; i < r.n; i++ {
		out = append(out, r.slots[i%60])
	}
	return out
}

// Shift is one shift of the site's day: its name and the local time it
// starts at ("06:00"). A shift lasts until the next one starts.
type Shift struct {
	Name  string `yaml:"name"`
	Start string `yaml:"start"`
}

// ShiftError is a bad shift in the configuration; Index and Field say
// which (for the site file's line and column).
type ShiftError struct {
	Index int
	Field string
	Msg   string
}

func (e *ShiftError) Error() string {
	return fmt.Sprintf("gateway: shifts[%d].%s: %s", e.Index, e.Field, e.Msg)
}

// parseHHMM reads a shift start as minutes after midnight.
func parseHHMM(s string) (int, error) {
	t, err := time.Parse("15:04", strings.TrimSpace(s))
	if err != nil || len(strings.TrimSpace(s)) != 5 {
		return 0, errors.New("want HH:MM, 00:00 to 23:59")
	}
	return t.Hour()*60 + t.Minute(), nil
}

// validateShifts checks names and start times.
func validateShifts(ss []Shift) error {
	names, starts := map[string]bool{}, map[int]bool{}
	for i, s := range ss {
		if strings.TrimSpace(s.Name) == "" {
			return &ShiftError{i, "name", "a shift needs a name"}
		}
		if names[s.Name] {
			return &ShiftError{i, "name", fmt.Sprintf("shift %q named twice", s.Name)}
		}
		names[s.Name] = true
		m, err := parseHHMM(s.Start)
		if err != nil {
			return &ShiftError{i, "start", fmt.Sprintf("start %q: %v", s.Start, err)}
		}
		if starts[m] {
			return &ShiftError{i, "start", fmt.Sprintf("start %q: another shift starts then", s.Start)}
		}
		starts[m] = true
	}
	return nil
}

// currentShift is the shift running at now (local to now's location) and
// when it started; ok is false without shifts.
func currentShift(ss []Shift, now time.Time) (name string, start time.Time, ok bool) {
	if len(ss) == 0 {
		return "", time.Time{}, false
	}
	y, mo, d := now.Date()
	best, bestAt := -1, time.Time{}
	for i, s := range ss {
		m, err := parseHHMM(s.Start)
		if err != nil {
			continue
		}
		at := time.Date(y, mo, d, m/60, m%60, 0, 0, now.Location())
		if at.After(now) {
			at = time.Date(y, mo, d-1, m/60, m%60, 0, 0, now.Location()) // began yesterday
		}
		if best < 0 || at.After(bestAt) {
			best, bestAt = i, at
		}
	}
	if best < 0 {
		return "", time.Time{}, false
	}
	return ss[best].Name, bestAt, true
}

// ShiftView is the current shift's counts since it started (or since the
// gateway started, when that was later: Partial).
type ShiftView struct {
	Name       string    `json:"name"`
	Start      time.Time `json:"start"`
	Since      time.Time `json:"since"`
	Partial    bool      `json:"partial"`
	Sorted     uint64    `json:"sorted"`
	Exceptions uint64    `json:"exceptions"`
	Total      uint64    `json:"total"`
	Reads      uint64    `json:"reads"`
}

// shiftCounter keeps the counters at the current shift's start.
type shiftCounter struct {
	start   time.Time
	since   time.Time
	partial bool
	base    [nBuckets]uint64
	reads   uint64
}

func (sc *shiftCounter) view(ss []Shift, now time.Time, c *counters) *ShiftView {
	name, start, ok := currentShift(ss, now)
	if !ok {
		return nil
	}
	if !start.Equal(sc.start) {
		// The first call inside a shift that began more than a moment
		// before: the gateway started mid-shift, and counts only since.
		first := sc.start.IsZero()
		sc.start, sc.since, sc.partial = start, start, false
		sc.base, sc.reads = c.Buckets, c.Reads
		if first && now.Sub(start) > 5*time.Second {
			sc.since, sc.partial = now, true
		}
	}
	v := &ShiftView{Name: name, Start: start, Since: sc.since, Partial: sc.partial, Reads: c.Reads - sc.reads}
	for i := range c.Buckets {
		d := c.Buckets[i] - sc.base[i]
		v.Total += d
		switch i {
		case bucketSorted:
			v.Sorted += d
		case bucketExcUnknown, bucketExcNoRead, bucketExcOther:
			v.Exceptions += d
		}
	}
	return v
}

// LinkEvent is one change of the PLC link's state, for the page's list
// of recent link events (it stays after the link recovers).
type LinkEvent struct {
	At    time.Time `json:"at"`
	From  string    `json:"from"`
	To    string    `json:"to"`
	Cause string    `json:"cause,omitempty"`
}

// linkEventsN is how many link events the snapshot carries.
const linkEventsN = 8

// linkLog remembers the newest link events and since when the link is
// not up. Owned by the line's loop.
type linkLog struct {
	ev        [linkEventsN]LinkEvent
	n         int
	last      devices.LinkState
	seen      bool
	downSince time.Time
}

func (g *linkLog) observe(st *devices.PLCStatus, now time.Time) {
	if g.seen && st.State == g.last {
		return
	}
	if !g.seen {
		g.seen, g.last = true, st.State
		if st.State != devices.LinkUp {
			g.downSince = now
		}
		return
	}
	e := LinkEvent{At: now, From: g.last.String(), To: st.State.String()}
	if st.State != devices.LinkUp {
		e.Cause = st.LastError
		if g.last == devices.LinkUp {
			g.downSince = now
		}
	} else {
		g.downSince = time.Time{}
	}
	g.ev[g.n%linkEventsN] = e
	g.n++
	g.last = st.State
}

// events lists the newest first.
func (g *linkLog) events() []LinkEvent {
	out := make([]LinkEvent, 0, min(g.n, linkEventsN))
	for i := g.n - 1; i >= 0 && i >= g.n-linkEventsN; i-- {
		out = append(out, g.ev[i%linkEventsN])
	}
	return out
}

// LinkBanner is the PLC link's state for the page's banner: while the
// link is not up, its cause, since when, and the next step.
type LinkBanner struct {
	Up    bool      `json:"up"`
	Cause string    `json:"cause,omitempty"`
	Since time.Time `json:"since,omitzero"`
	For   string    `json:"for,omitempty"`
	Next  string    `json:"next,omitempty"`
}

// linkNext is the next step for a link that is down, from its error.
func linkNext(cause, addr string) string {
	c := strings.ToLower(cause)
	switch {
	case strings.Contains(c, "refused"):
		return "Nothing accepts connections at " + addr + ": check the PLC is powered and running and its Modbus/OPC UA server is enabled on that port."
	case strings.Contains(c, "timeout") || strings.Contains(c, "no route") || strings.Contains(c, "unreachable"):
		return "The PLC does not answer at " + addr + ": check the network cable, the switch and the PLC's IP address."
	case strings.Contains(c, "reset") || strings.Contains(c, "eof") || strings.Contains(c, "broken pipe"):
		return "The PLC closed the connection: check whether it restarted or another client took its connection slot."
	}
	return alarmActions["plc-down"]
}
