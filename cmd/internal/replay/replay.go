// Package replay re-decides recorded passes against another sort plan
// (`sortgw replay`): which parcels would change chute and between which,
// the exception rate of both plans, parcels per chute and route, the peak
// per-chute rate per minute and the containers each route would need.
//
// A pass keeps what was read (its destination key, a no-read, a
// multi-read conflict, the recirculation limit); only the plan's answer
// is new. Chute states are not in the journal: the new plan sees every
// chute available except those named unavailable, so a pass the old plan
// sent to an alternate (reason 4) counts as changed only if the new plan
// does not list that chute for it, and a pass that recirculated because
// every chute was full (reason 5) or the host had no plan (7) is counted
// as "not compared".
package replay

import (
	"cmp"
	"slices"
	"time"

	"sortgw/devices"
	"sortgw/sortplan"
)

// Pass is one recorded pass, as replay needs it.
type Pass struct {
	Time   time.Time
	Dest   string // destination key found in the codes ("" if none)
	NoRead bool
	Reason uint16 // reason the recorded decision gave
	Chute  uint16 // chute the recorded decision commanded
	Route  string
}

// maxChute bounds the per-chute arrays: chutes 0..devices.MaxChutes.
const maxChute = devices.MaxChutes + 1

// side is one plan's tallies.
type side struct {
	perChute   [maxChute]uint32
	exceptions uint64
	recirc     uint64
	routes     map[string]uint64
	// peak per minute, streamed: passes arrive in (near) time order.
	curMin [maxChute]int64
	curN   [maxChute]uint32
	peak   [maxChute]uint32
}

func newSide() *side { return &side{routes: map[string]uint64{}} }

func (s *side) add(minute int64, chute uint16, reason uint16, route string) {
	if chute < maxChute {
		s.perChute[chute]++
		if minute > s.curMin[chute] {
			s.curMin[chute], s.curN[chute] = minute, 0
		}
		s.curN[chute]++
		if s.curN[chute] > s.peak[chute] {
			s.peak[chute] = s.curN[chute]
		}
	}
	if isException(reason) {
		s.exceptions++
	}
	if chute == 0 {
		s.recirc++
	}
	s.routes[route]++
}

// isException: the reasons that send a parcel to an exception chute.
func isException(r uint16) bool {
	switch sortplan.Reason(r) {
	case sortplan.ReasonNoRead, sortplan.ReasonUnknown, sortplan.ReasonMultiRead, sortplan.ReasonRecircLimit:
		return true
	}
	return false
}

// Replayer re-decides passes one by one. Not safe for concurrent use.
type Replayer struct {
	t       *sortplan.Table
	avail   sortplan.Availability
	chutes  map[int][]uint16 // plan line -> chutes of the row
	old     *side
	new     *side
	changes map[[2]uint16]uint64
	changed uint64
	skipped uint64 // not compared
	passes  uint64
	first   time.Time
	last    time.Time
	t0      int64
}

// New makes a replayer for the candidate plan t, with the chutes
// unavailable taken out (as a technician would disable them).
func New(t *sortplan.Table, unavailable []uint16) *Replayer {
	r := &Replayer{t: t, chutes: map[int][]uint16{}, old: newSide(), new: newSide(), changes: map[[2]uint16]uint64{}}
	for _, c := range unavailable {
		r.avail.Set(c, true)
	}
	for _, rule := range t.Plan().Rules {
		r.chutes[rule.Line] = rule.Chutes
	}
	return r
}

// decide is the candidate plan's answer for a recorded pass.
func (r *Replayer) decide(p *Pass) sortplan.Decision {
	switch sortplan.Reason(p.Reason) {
	case sortplan.ReasonNoRead:
		return r.t.DecideException(sortplan.ReasonNoRead, &r.avail)
	case sortplan.ReasonMultiRead:
		return r.t.DecideException(sortplan.ReasonMultiRead, &r.avail)
	case sortplan.ReasonRecircLimit:
		return r.t.DecideException(sortplan.ReasonRecircLimit, &r.avail)
	}
	if p.NoRead {
		return r.t.DecideException(sortplan.ReasonNoRead, &r.avail)
	}
	if p.Dest == "" {
		return r.t.DecideException(sortplan.ReasonUnknown, &r.avail)
	}
	return r.t.DecideKey(p.Dest, &r.avail)
}

// Add replays one pass.
func (r *Replayer) Add(p *Pass) {
	ns := p.Time.UnixNano()
	if r.passes == 0 {
		r.first, r.t0 = p.Time, ns
	}
	if p.Time.After(r.last) {
		r.last = p.Time
	}
	r.passes++
	minute := (ns - r.t0) / int64(time.Minute)
	d := r.decide(p)
	r.old.add(minute, p.Chute, p.Reason, p.Route)
	r.new.add(minute, d.Chute, uint16(d.Reason), d.Route)
	switch sortplan.Reason(p.Reason) {
	case sortplan.ReasonRecirculate, sortplan.ReasonDegraded:
		r.skipped++
		return
	case sortplan.ReasonAlternate:
		if slices.Contains(r.chutes[d.Line], p.Chute) {
			return
		}
	default:
		if d.Chute == p.Chute {
			return
		}
	}
	r.changed++
	r.changes[[2]uint16{p.Chute, d.Chute}]++
}

// Result is what a replay found.
type Result struct {
	Plan        string    `json:"plan"`
	Version     uint64    `json:"plan_version"`
	From        time.Time `json:"from"`
	To          time.Time `json:"to"`
	Passes      uint64    `json:"passes"`
	Changed     uint64    `json:"changed"`
	NotCompared uint64    `json:"not_compared"`
	// ExceptionsOld and ExceptionsNew count passes sent to an exception
	// chute; RecircOld and RecircNew passes left on the sorter (chute 0).
	ExceptionsOld uint64   `json:"exceptions_old"`
	ExceptionsNew uint64   `json:"exceptions_new"`
	RecircOld     uint64   `json:"recirculated_old"`
	RecircNew     uint64   `json:"recirculated_new"`
	Chutes        []Chute  `json:"chutes"`
	Routes        []Route  `json:"routes"`
	Changes       []Change `json:"changes"`
	// ContainerSize is the items per container the route counts assume.
	ContainerSize int `json:"container_size"`
}

// Chute is one chute's parcels and peak per-minute rate, old and new.
type Chute struct {
	Chute   uint16 `json:"chute"`
	Old     uint32 `json:"old"`
	New     uint32 `json:"new"`
	PeakOld uint32 `json:"peak_per_minute_old"`
	PeakNew uint32 `json:"peak_per_minute_new"`
}

// Route is one route's parcels and containers, old and new.
type Route struct {
	Route         string `json:"route"`
	Old           uint64 `json:"old"`
	New           uint64 `json:"new"`
	ContainersOld uint64 `json:"containers_old"`
	ContainersNew uint64 `json:"containers_new"`
}

// Change is how many parcels would go to another chute, and between which.
type Change struct {
	From  uint16 `json:"from"`
	To    uint16 `json:"to"`
	Count uint64 `json:"count"`
}

// ExceptionRate is the share of passes sent to an exception chute.
func (res *Result) ExceptionRate(newPlan bool) float64 {
	if res.Passes == 0 {
		return 0
	}
	if newPlan {
		return float64(res.ExceptionsNew) / float64(res.Passes)
	}
	return float64(res.ExceptionsOld) / float64(res.Passes)
}

// Result sums up; containerSize is the items one container holds (at
// least 1).
func (r *Replayer) Result(containerSize int) *Result {
	containerSize = max(containerSize, 1)
	res := &Result{Plan: r.t.Name(), Version: r.t.Version(), From: r.first, To: r.last, Passes: r.passes,
		Changed: r.changed, NotCompared: r.skipped, ContainerSize: containerSize,
		ExceptionsOld: r.old.exceptions, ExceptionsNew: r.new.exceptions, RecircOld: r.old.recirc, RecircNew: r.new.recirc}
	for c := 0; c < maxChute; c++ {
		if o, n := r.old.perChute[c], r.new.perChute[c]; o != 0 || n != 0 {
			res.Chutes = append(res.Chutes, Chute{Chute: uint16(c), Old: o, New: n, PeakOld: r.old.peak[c], PeakNew: r.new.peak[c]})
		}
	}
	need := func(n uint64) uint64 { return (n + uint64(containerSize) - 1) / uint64(containerSize) }
	seen := map[string]bool{}
	for _, m := range []map[string]uint64{r.old.routes, r.new.routes} {
		for rt := range m {
			if seen[rt] {
				continue
			}
			seen[rt] = true
			o, n := r.old.routes[rt], r.new.routes[rt]
			res.Routes = append(res.Routes, Route{Route: rt, Old: o, New: n, ContainersOld: need(o), ContainersNew: need(n)})
		}
	}
	slices.SortFunc(res.Routes, func(a, b Route) int { return cmp.Compare(a.Route, b.Route) })
	for k, n := range r.changes {
		res.Changes = append(res.Changes, Change{From: k[0], To: k[1], Count: n})
	}
	slices.SortFunc(res.Changes, func(a, b Change) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.From, b.From), cmp.Compare(a.To, b.To))
	})
	return res
}
