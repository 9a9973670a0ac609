package sortplan

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// RouteSpec is one route's consolidation terms, from a `route` row above
// the plan's header:
//
//	route,LH-286,mon-fri 06:30 14:00 / sat 08:00,8,300,hold
//	route,R001,daily 05:45,4,250,exception 253
//
// The cells after the name are the departures (cut-off times by day of
// the week, in the site's local time), the van capacity in containers,
// the container capacity in parcels, and the late policy.
type RouteSpec struct {
	Name string
	// Departures holds, per weekday (time.Sunday = 0), the cut-off times
	// as minutes after midnight, ascending.
	Departures [7][]int
	VanCap     int // containers per van
	ContCap    int // parcels per container
	// Late is what happens to a parcel read after the day's last cut-off.
	Late LatePolicy
	// LateChute is the exception chute of LateException.
	LateChute uint16
	Line      int // line in the plan file
}

// LatePolicy says where a parcel read after its route's last cut-off of
// the day goes.
type LatePolicy uint8

// Late policies.
const (
	// LateHold: into the same chutes, for the next departure.
	LateHold LatePolicy = iota
	// LateException: to the route's exception chute, reason "missed
	// cut-off".
	LateException
)

func (p LatePolicy) String() string {
	if p == LateException {
		return "exception"
	}
	return "hold"
}

var dayNames = []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}

// NextDeparture is the first cut-off at or after now (in now's location),
// within the next 8 days; ok is false if the route has no departures.
func (r *RouteSpec) NextDeparture(now time.Time) (time.Time, bool) {
	y, m, d := now.Date()
	for i := 0; i < 8; i++ {
		day := time.Date(y, m, d+i, 0, 0, 0, 0, now.Location())
		for _, min := range r.Departures[day.Weekday()] {
			t := day.Add(time.Duration(min) * time.Minute)
			if !t.Before(now) {
				return t, true
			}
		}
	}
	return time.Time{}, false
}

// PastLastCutoff reports whether now is after the day's last cut-off
// (a day without departures counts as past).
func (r *RouteSpec) PastLastCutoff(now time.Time) bool {
	deps := r.Departures[now.Weekday()]
	if len(deps) == 0 {
		return true
	}
	h, m, _ := now.Clock()
	return h*60+m >= deps[len(deps)-1]
}

// DeparturesString writes the departures back in the plan's notation.
func (r *RouteSpec) DeparturesString() string {
	var groups []string
	for d := 0; d < 7; d++ {
		if len(r.Departures[d]) == 0 {
			continue
		}
		var b strings.Builder
		b.WriteString(dayNames[d])
		for _, m := range r.Departures[d] {
			fmt.Fprintf(&b, " %02d:%02d", m/60, m%60)
		}
		groups = append(groups, b.String())
	}
	return strings.Join(groups, " / ")
}

// parseDepartures reads "mon-fri 06:30 14:00 / sat 08:00" (also "daily",
// single days and comma-free lists of days "mon sat"). It returns the
// message of the first error.
func parseDepartures(s string) (deps [7][]int, err error) {
	if strings.TrimSpace(s) == "" {
		return deps, fmt.Errorf("no departures: want e.g. \"mon-fri 06:30 14:00 / sat 08:00\"")
	}
	for _, group := range strings.Split(s, "/") {
		var days []int
		var times []int
		for _, f := range strings.Fields(group) {
			f = strings.ToLower(f)
			if strings.Contains(f, ":") {
				hh, mm, ok := strings.Cut(f, ":")
				h, e1 := strconv.Atoi(hh)
				m, e2 := strconv.Atoi(mm)
				if !ok || e1 != nil || e2 != nil || len(mm) != 2 || h < 0 || h > 23 || m < 0 || m > 59 {
					return deps, fmt.Errorf("departure time %q: want HH:MM, 00:00..23:59", f)
				}
				times = append(times, h*60+m)
				continue
			}
			if len(times) > 0 {
				return deps, fmt.Errorf("day %q after the times of its group: write days first, then times", f)
			}
			ds, err := parseDays(f)
			if err != nil {
				return deps, err
			}
			days = append(days, ds...)
		}
		if len(days) == 0 {
			return deps, fmt.Errorf("departure group %q has no days (mon..sun, mon-fri, daily)", strings.TrimSpace(group))
		}
		if len(times) == 0 {
			return deps, fmt.Errorf("departure group %q has no times (HH:MM)", strings.TrimSpace(group))
		}
		for _, d := range days {
			for _, t := range times {
				if slices.Contains(deps[d], t) {
					return deps, fmt.Errorf("departure %s %02d:%02d given twice", dayNames[d], t/60, t%60)
				}
				deps[d] = append(deps[d], t)
			}
		}
	}
	for d := range deps {
		slices.Sort(deps[d])
	}
	return deps, nil
}

func dayIndex(s string) int {
	for i, n := range dayNames {
		if s == n {
			return i
		}
	}
	return -1
}

func parseDays(f string) ([]int, error) {
	if f == "daily" {
		return []int{0, 1, 2, 3, 4, 5, 6}, nil
	}
	a, b, rng := strings.Cut(f, "-")
	from := dayIndex(a)
	if from < 0 {
		return nil, fmt.Errorf("day %q: want mon, tue, wed, thu, fri, sat, sun, a range mon-fri, or daily", f)
	}
	if !rng {
		return []int{from}, nil
	}
	to := dayIndex(b)
	if to < 0 {
		return nil, fmt.Errorf("day %q: want mon, tue, wed, thu, fri, sat, sun, a range mon-fri, or daily", b)
	}
	var out []int
	for d := from; ; d = (d + 1) % 7 {
		out = append(out, d)
		if d == to {
			return out, nil
		}
	}
}

// readRoute reads one `route` row (see RouteSpec).
func (pp *planParser) readRoute(rec []string, cols []int, line int) {
	col := func(i int) int {
		if i < len(cols) {
			return cols[i]
		}
		return 1
	}
	if len(rec) < 6 {
		pp.errorf(line, col(len(rec)-1), "route row has %d cells: want route,NAME,DEPARTURES,VAN_CONTAINERS,CONTAINER_PARCELS,LATE (late: hold or \"exception CHUTE\")", len(rec))
		return
	}
	r := RouteSpec{Name: strings.TrimSpace(rec[1]), Line: line}
	if r.Name == "" {
		pp.errorf(line, col(1), "route name is empty")
		return
	}
	if prev, dup := pp.routeLine[r.Name]; dup {
		pp.errorf(line, col(1), "route %s given twice (first on line %d)", r.Name, prev)
		return
	}
	ok := true
	deps, err := parseDepartures(rec[2])
	if err != nil {
		pp.errorf(line, col(2), "route %s: %v", r.Name, err)
		ok = false
	}
	r.Departures = deps
	for i, dst := range []*int{&r.VanCap, &r.ContCap} {
		v, err := strconv.Atoi(strings.TrimSpace(rec[3+i]))
		what := [...]string{"van capacity (containers)", "container capacity (parcels)"}[i]
		if err != nil || v < 1 || v > 100000 {
			pp.errorf(line, col(3+i), "route %s: %s %q: want a number 1..100000", r.Name, what, strings.TrimSpace(rec[3+i]))
			ok = false
		}
		*dst = v
	}
	late := strings.Fields(strings.ToLower(rec[5]))
	switch {
	case len(late) == 1 && late[0] == "hold":
		r.Late = LateHold
	case len(late) == 2 && late[0] == "exception":
		n, err := strconv.Atoi(late[1])
		if err != nil || n < 1 || n > MaxChutes {
			pp.errorf(line, col(5), "route %s: late exception chute %q: want a chute number", r.Name, late[1])
			ok = false
		}
		r.Late, r.LateChute = LateException, uint16(n)
	default:
		pp.errorf(line, col(5), "route %s: late policy %q: want hold or \"exception CHUTE\"", r.Name, strings.TrimSpace(rec[5]))
		ok = false
	}
	for i := 6; i < len(rec); i++ {
		if strings.TrimSpace(rec[i]) != "" {
			pp.errorf(line, col(i), "route %s: unexpected cell %q after the late policy", r.Name, strings.TrimSpace(rec[i]))
			ok = false
			break
		}
	}
	pp.routeLine[r.Name] = line
	if ok {
		pp.p.Routes = append(pp.p.Routes, r)
	}
}

// checkRoutes warns about rows that feed a route with no route row (no
// departures: the dock board cannot show it), route rows no rule uses,
// and late chutes beyond the chute count.
func (pp *planParser) checkRoutes(chuteCount int) {
	if len(pp.p.Routes) == 0 {
		return // a plan without route rows keeps the old meaning
	}
	used := map[string]bool{}
	warned := map[string]bool{}
	for _, r := range pp.p.Rules {
		if r.Route == "" || r.Kind >= RuleNoRead {
			continue
		}
		used[r.Route] = true
		if _, ok := pp.routeLine[r.Route]; !ok && !warned[r.Route] {
			warned[r.Route] = true
			pp.warnf(r.Line, 1, "route %s has no route row: no departures, no cut-off", r.Route)
		}
	}
	if chuteCount == 0 {
		chuteCount = pp.p.ChuteCount
	}
	for _, r := range pp.p.Routes {
		if !used[r.Name] {
			pp.warnf(r.Line, 1, "route %s: no rule row feeds it", r.Name)
		}
		if r.Late == LateException && chuteCount > 0 && int(r.LateChute) > chuteCount {
			pp.errorf(r.Line, 1, "route %s: late exception chute %d beyond the sorter's %d chutes", r.Name, r.LateChute, chuteCount)
		}
	}
}

// Route returns the route row named name, or nil.
func (p *Plan) Route(name string) *RouteSpec {
	for i := range p.Routes {
		if p.Routes[i].Name == name {
			return &p.Routes[i]
		}
	}
	return nil
}

// RouteChutes lists, per route, the chutes its rule rows use (primary
// and alternates), ascending.
func (p *Plan) RouteChutes() map[string][]uint16 {
	out := map[string][]uint16{}
	for _, r := range p.Rules {
		if r.Route == "" || r.Kind >= RuleNoRead {
			continue
		}
		for _, c := range r.Chutes {
			if !slices.Contains(out[r.Route], c) {
				out[r.Route] = append(out[r.Route], c)
			}
		}
	}
	for k := range out {
		slices.Sort(out[k])
	}
	return out
}

// RouteChange is a route whose departures or terms differ between two
// plans.
type RouteChange struct {
	Route    string
	Old, New string // "" when the route is absent on that side
}

// DiffRoutes lists the routes whose departures, capacities or late policy
// changed, by name.
func DiffRoutes(old, new *Plan) []RouteChange {
	desc := func(p *Plan) map[string]string {
		m := map[string]string{}
		for _, r := range p.Routes {
			late := r.Late.String()
			if r.Late == LateException {
				late += " " + strconv.Itoa(int(r.LateChute))
			}
			m[r.Name] = fmt.Sprintf("%s; van %d; container %d; late %s", r.DeparturesString(), r.VanCap, r.ContCap, late)
		}
		return m
	}
	a, b := desc(old), desc(new)
	var names []string
	for n := range a {
		names = append(names, n)
	}
	for n := range b {
		if _, ok := a[n]; !ok {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	var out []RouteChange
	for _, n := range names {
		if a[n] != b[n] {
			out = append(out, RouteChange{Route: n, Old: a[n], New: b[n]})
		}
	}
	return out
}
