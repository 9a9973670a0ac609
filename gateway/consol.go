package gateway

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"sortgw/devices"
	"sortgw/gateway/journal"
	"sortgw/sortplan"
)

// Container states: open at its chute, closed (left the chute), loaded
// onto a van, departed with the van.
const (
	StateOpen     = "open"
	StateClosed   = "closed"
	StateLoaded   = "loaded"
	StateDeparted = "departed"
)

// Close causes besides technician and emptied.
const (
	causeCapacity = "capacity"
	causeCutoff   = "cut-off"
)

// Errors the consolidation API branches on.
var (
	ErrNoContainer    = errors.New("no such container")
	ErrContainerState = errors.New("container is not in a state for this")
	ErrNoVan          = errors.New("van id is required")
	ErrVanFull        = errors.New("van is full")
	ErrNothingLoaded  = errors.New("no container is loaded onto this van")
)

// departAlarmBefore: the departure alarm rises this long before a
// departure while a container for it is still open with parcels.
const departAlarmBefore = 10 * time.Minute

// VanManifest is what left on one van: the route, the departure, the
// van, its containers with their parcels, and the counts.
type VanManifest struct {
	Route      string     `json:"route"`
	Van        string     `json:"van"`
	Departure  time.Time  `json:"departure,omitzero"` // the scheduled cut-off it left for
	Departed   time.Time  `json:"departed"`
	By         string     `json:"by,omitempty"`
	Containers []Manifest `json:"containers"`
	Count      int        `json:"container_count"`
	Parcels    int        `json:"parcel_count"`
}

// routeIndex is the active plan's route rows by name and the chutes each
// route's rule rows use, built once per plan install.
type routeIndex struct {
	specs  map[string]*sortplan.RouteSpec
	chutes map[string][]uint16
}

// routeSpecs indexes a plan's route rows.
func routeSpecs(p *sortplan.Plan) *routeIndex {
	m := make(map[string]*sortplan.RouteSpec, len(p.Routes))
	for i := range p.Routes {
		m[p.Routes[i].Name] = &p.Routes[i]
	}
	return &routeIndex{specs: m, chutes: p.RouteChutes()}
}

func (l *Line) routeSpec(route string) *sortplan.RouteSpec {
	if route == "" {
		return nil
	}
	if ix := l.routes.Load(); ix != nil {
		return ix.specs[route]
	}
	return nil
}

// dockNow is the time departures are judged by: the wall clock, or the
// demo's virtual day.
func (l *Line) dockNow() time.Time {
	if l.cfg.DockClock != nil {
		return l.cfg.DockClock()
	}
	return time.Now()
}

// dueFor is the departure a container whose first parcel came at t
// leaves with: the first cut-off after t plus the auto-close lead (a
// parcel inside that window waits for the next van).
func (l *Line) dueFor(route string, t time.Time) time.Time {
	sp := l.routeSpec(route)
	if sp == nil {
		return time.Time{}
	}
	d, ok := sp.NextDeparture(t.Add(l.cfg.CloseBefore))
	if ok && l.cfg.CloseBefore > 0 && !t.Before(d.Add(-l.cfg.CloseBefore)) {
		// At the close itself: it would close at once.
		d, _ = sp.NextDeparture(d.Add(time.Second))
	}
	return d
}

// afterBook applies the container rules that a booking can trigger: the
// container's departure is fixed by its first parcel, and a container
// at its route's parcel capacity closes.
func (l *Line) afterBook(chute uint16, at time.Time) {
	c := &l.conts[chute]
	if len(c.items) == 1 || c.due.IsZero() {
		c.due = l.dueFor(c.route, l.dockNow())
	}
	if sp := l.routeSpec(c.route); sp != nil && len(c.items) >= sp.ContCap {
		l.closeContainer(chute, causeCapacity, at)
	}
}

// cutoffClose closes the containers whose departure is within the
// configured lead (CloseBefore > 0).
func (l *Line) cutoffClose(now time.Time) {
	if l.dueFix && l.routes.Load() != nil {
		// Closed containers rebuilt before the plan was installed get
		// their departure (the board and the label show it).
		l.dueFix = false
		for i := range l.manifests {
			if m := &l.manifests[i]; m.Due.IsZero() && len(m.Items) > 0 {
				m.Due = l.dueFor(m.Route, m.Items[0].At)
			}
		}
	}
	if l.cfg.CloseBefore <= 0 {
		return
	}
	dock := l.dockNow()
	for n := 1; n <= l.cfg.Chutes; n++ {
		c := &l.conts[n]
		if len(c.items) > 0 && c.due.IsZero() {
			// Rebuilt before the plan (and its routes) was installed.
			c.due = l.dueFor(c.route, c.items[0].At)
		}
		if len(c.items) == 0 || c.due.IsZero() || dock.Before(c.due.Add(-l.cfg.CloseBefore)) {
			continue
		}
		l.closeContainer(uint16(n), causeCutoff, now)
	}
}

// trimManifests bounds the closed containers kept in memory: departed
// ones go first (their van manifest keeps them), then the oldest.
func (l *Line) trimManifests() {
	over := len(l.manifests) - l.cfg.KeepManifests
	if over <= 0 {
		return
	}
	l.c.ManifestsDropped += uint64(over)
	l.manifests = slices.DeleteFunc(l.manifests, func(m Manifest) bool {
		if over > 0 && m.State == StateDeparted {
			over--
			return true
		}
		return false
	})
	if over > 0 {
		n := copy(l.manifests, l.manifests[over:])
		clear(l.manifests[n:])
		l.manifests = l.manifests[:n]
	}
}

func (l *Line) findClosed(id string) *Manifest {
	for i := len(l.manifests) - 1; i >= 0; i-- {
		if l.manifests[i].Container == id {
			return &l.manifests[i]
		}
	}
	return nil
}

// loadContainer moves a closed container onto a van (on the loop).
func (l *Line) loadContainer(id, van, by, src string, at time.Time) (Manifest, error) {
	m := l.findClosed(id)
	if m == nil {
		for n := 1; n <= l.cfg.Chutes; n++ {
			if containerID(l.cfg.Name, uint16(n), l.conts[n].n) == id {
				return Manifest{}, fmt.Errorf("container %s is open at chute %d: close it first: %w", id, n, ErrContainerState)
			}
		}
		return Manifest{}, fmt.Errorf("container %s: %w", id, ErrNoContainer)
	}
	if m.State != StateClosed {
		return Manifest{}, fmt.Errorf("container %s is %s: %w", id, m.State, ErrContainerState)
	}
	if sp := l.routeSpec(m.Route); sp != nil {
		onVan := 0
		for i := range l.manifests {
			if l.manifests[i].State == StateLoaded && l.manifests[i].Van == van {
				onVan++
			}
		}
		if onVan >= sp.VanCap {
			return Manifest{}, fmt.Errorf("van %s holds %d containers (route %s capacity %d): %w", van, onVan, m.Route, sp.VanCap, ErrVanFull)
		}
	}
	l.applyLoad(m, van, by, at)
	l.append(journal.Record{Time: at, Line: l.cfg.Name, Kind: journal.KindContainerLoad, Container: id, Chute: m.Chute,
		Route: m.Route, Detail: van, By: by, Cause: src})
	l.log.Info().Str("container", id).Str("van", van).Str("by", by).Msg("container loaded")
	return *m, nil
}

func (l *Line) applyLoad(m *Manifest, van, by string, at time.Time) {
	m.State, m.Van, m.Loaded, m.LoadedBy = StateLoaded, van, at, by
}

// depart sends off the containers loaded onto van (on the loop).
func (l *Line) depart(route, van, by, src string, at time.Time) (VanManifest, bool) {
	vm := l.applyDepart(route, van, by, at)
	if vm.Count == 0 {
		return vm, false
	}
	if sp := l.routeSpec(route); sp != nil {
		// The cut-off it left for: the latest at or before now, else the next.
		dock := l.dockNow()
		if d, ok := sp.NextDeparture(dock.Add(-12 * time.Hour)); ok && !d.After(dock) {
			vm.Departure = d
		} else if d, ok := sp.NextDeparture(dock); ok {
			vm.Departure = d
		}
		l.vans[len(l.vans)-1].Departure = vm.Departure
	}
	l.append(journal.Record{Time: at, Line: l.cfg.Name, Kind: journal.KindVanDepart, Route: route, Detail: van,
		Count: uint32(vm.Count), By: by, Cause: src})
	l.log.Info().Str("route", route).Str("van", van).Int("containers", vm.Count).Int("parcels", vm.Parcels).Msg("van departed")
	return vm, true
}

// applyDepart marks van's loaded containers departed and keeps the van
// manifest; the rebuild runs it too.
func (l *Line) applyDepart(route, van, by string, at time.Time) VanManifest {
	vm := VanManifest{Route: route, Van: van, Departed: at, By: by}
	for i := range l.manifests {
		m := &l.manifests[i]
		if m.State != StateLoaded || m.Van != van {
			continue
		}
		m.State, m.Departed = StateDeparted, at
		vm.Containers = append(vm.Containers, *m)
		vm.Count++
		vm.Parcels += len(m.Items)
	}
	if vm.Count == 0 {
		return vm
	}
	l.vans = append(l.vans, vm)
	if len(l.vans) > l.cfg.KeepVans {
		l.c.VansDropped += uint64(len(l.vans) - l.cfg.KeepVans)
		n := copy(l.vans, l.vans[len(l.vans)-l.cfg.KeepVans:])
		clear(l.vans[n:])
		l.vans = l.vans[:n]
	}
	l.trimManifests()
	return vm
}

// LoadContainer loads a closed container onto a van, as a dock scan, the
// status page or the API asks.
func (l *Line) LoadContainer(ctx context.Context, id, van, by, src string) (Manifest, error) {
	van = strings.TrimSpace(van)
	if van == "" {
		return Manifest{}, ErrNoVan
	}
	var m Manifest
	var lerr error
	err := l.do(ctx, func() {
		m, lerr = l.loadContainer(id, van, by, src, time.Now())
		l.publish(time.Now())
	})
	if err != nil {
		return m, err
	}
	return m, lerr
}

// Depart sends off the containers of this line loaded onto van; ok is
// false when there were none.
func (l *Line) Depart(ctx context.Context, route, van, by, src string, at time.Time) (VanManifest, bool, error) {
	var vm VanManifest
	var ok bool
	err := l.do(ctx, func() {
		vm, ok = l.depart(route, van, by, src, at)
		l.publish(time.Now())
	})
	return vm, ok, err
}

// Containers lists the line's containers in a state ("" for all), open
// ones first by chute, then the closed ones oldest first.
func (l *Line) Containers(ctx context.Context, state string) ([]Manifest, error) {
	var out []Manifest
	err := l.do(ctx, func() {
		if state == "" || state == StateOpen {
			for n := 1; n <= l.cfg.Chutes; n++ {
				if c := &l.conts[n]; len(c.items) > 0 {
					out = append(out, c.manifest(l.cfg.Name, uint16(n)))
				}
			}
		}
		for i := range l.manifests {
			if state == "" || l.manifests[i].State == state {
				out = append(out, l.manifests[i])
			}
		}
	})
	return out, err
}

// Vans lists the vans departed from this line for route ("" all) at or
// after since, oldest first.
func (l *Line) Vans(ctx context.Context, route string, since time.Time) ([]VanManifest, error) {
	var out []VanManifest
	err := l.do(ctx, func() {
		for _, v := range l.vans {
			if (route == "" || v.Route == route) && !v.Departed.Before(since) {
				out = append(out, v)
			}
		}
	})
	return out, err
}

// RouteBoard is one route on the departures board.
type RouteBoard struct {
	Line  string `json:"line"`
	Route string `json:"route"`
	// Next is the next departure (cut-off) and Countdown the seconds to it.
	Next      time.Time       `json:"next,omitzero"`
	Countdown int64           `json:"countdown_s"`
	Chutes    []uint16        `json:"chutes"`
	VanCap    int             `json:"van_capacity"`
	ContCap   int             `json:"container_capacity"`
	Late      string          `json:"late_policy"`
	Open      []ContainerView `json:"open"`
	Closed    []ContainerView `json:"closed"`
	Loaded    []ContainerView `json:"loaded"`
	// Status: ready (nothing open with parcels, nothing closed and not
	// loaded), late (the departure is within 10 minutes and something is
	// not ready), or filling.
	Status string `json:"status"`
}

// ContainerView is one container on the board.
type ContainerView struct {
	Container string    `json:"container"`
	Chute     uint16    `json:"chute"`
	Parcels   int       `json:"parcels"`
	Van       string    `json:"van,omitempty"`
	Due       time.Time `json:"due,omitzero"`
}

// board builds the departures board from the plan's routes and the
// containers (on the loop).
func (l *Line) board(dock time.Time) []RouteBoard {
	ix := l.routes.Load()
	if ix == nil || len(ix.specs) == 0 {
		return nil
	}
	out := make([]RouteBoard, 0, len(ix.specs))
	idx := map[string]int{}
	for name, sp := range ix.specs {
		b := RouteBoard{Line: l.cfg.Name, Route: name, Chutes: ix.chutes[name], VanCap: sp.VanCap, ContCap: sp.ContCap, Late: sp.Late.String(),
			Open: []ContainerView{}, Closed: []ContainerView{}, Loaded: []ContainerView{}}
		if b.Chutes == nil {
			b.Chutes = []uint16{}
		}
		if d, ok := sp.NextDeparture(dock); ok {
			b.Next, b.Countdown = d, int64(d.Sub(dock)/time.Second)
		}
		idx[name] = len(out)
		out = append(out, b)
	}
	for n := 1; n <= l.cfg.Chutes; n++ {
		c := &l.conts[n]
		if i, ok := idx[c.route]; ok && len(c.items) > 0 {
			out[i].Open = append(out[i].Open, ContainerView{Container: containerID(l.cfg.Name, uint16(n), c.n), Chute: uint16(n), Parcels: len(c.items), Due: c.due})
		}
	}
	for k := range l.manifests {
		mf := &l.manifests[k]
		i, ok := idx[mf.Route]
		if !ok {
			continue
		}
		v := ContainerView{Container: mf.Container, Chute: mf.Chute, Parcels: len(mf.Items), Van: mf.Van, Due: mf.Due}
		switch mf.State {
		case StateClosed:
			out[i].Closed = append(out[i].Closed, v)
		case StateLoaded:
			out[i].Loaded = append(out[i].Loaded, v)
		}
	}
	for i := range out {
		b := &out[i]
		switch {
		case len(b.Open) == 0 && len(b.Closed) == 0:
			b.Status = "ready"
		case !b.Next.IsZero() && b.Next.Sub(dock) <= departAlarmBefore:
			b.Status = "late"
		default:
			b.Status = "filling"
		}
	}
	slices.SortFunc(out, func(a, b RouteBoard) int {
		if c := a.Next.Compare(b.Next); c != 0 {
			return c
		}
		return strings.Compare(a.Route, b.Route)
	})
	return out
}

// departureCauses raises the departure alarm of each route whose next
// departure is within 10 minutes while a container for it is open.
func departureCauses(routes []RouteBoard) []alarmCause {
	var out []alarmCause
	for _, b := range routes {
		if b.Next.IsZero() || b.Countdown*int64(time.Second) > int64(departAlarmBefore) || len(b.Open) == 0 {
			continue
		}
		ch := make([]string, len(b.Open))
		for i, o := range b.Open {
			ch[i] = strconv.Itoa(int(o.Chute))
		}
		out = append(out, cause("departure/"+b.Route, SevWarning, fmt.Sprintf("route %s leaves at %s with %d container(s) still open at chute(s) %s",
			b.Route, b.Next.Format("15:04"), len(b.Open), strings.Join(ch, ", "))))
	}
	return out
}

// containerN is the running number at the end of a container id.
func containerN(id string) (int, bool) {
	i := strings.LastIndexByte(id, '-')
	if i < 0 {
		return 0, false
	}
	n, err := strconv.Atoi(id[i+1:])
	return n, err == nil && n > 0
}

// consolScanner is the journal's forward scan (*journal.Journal has it).
type consolScanner interface {
	Scan(from uint64, kinds []journal.Kind, fn func(*journal.Record) error) error
}

// consolKinds are the records the consolidation state is rebuilt from.
var consolKinds = []journal.Kind{journal.KindOutcome, journal.KindContainerClose, journal.KindContainerLoad, journal.KindVanDepart,
	journal.KindContainerBook}

// RebuildStats says what the start-up rebuild found.
type RebuildStats struct {
	Records int // consolidation records read
	Booked  int // parcels put back into containers
	Stray   int // bookings into a container already closed (counted, kept)
}

// rebuildContainers replays the journal into the open containers, the
// closed ones and the vans. It runs in NewLine, before the loop.
func (l *Line) rebuildContainers(j consolScanner, now time.Time) (RebuildStats, error) {
	var st RebuildStats
	l.dueFix = true
	name := l.cfg.Name
	err := j.Scan(0, consolKinds, func(r *journal.Record) error {
		if r.Line != name {
			return nil
		}
		switch r.Kind {
		case journal.KindOutcome, journal.KindContainerBook:
			if r.Container == "" || r.Chute < 1 || int(r.Chute) > l.cfg.Chutes {
				return nil
			}
			st.Records++
			n, ok := containerN(r.Container)
			if !ok {
				return nil
			}
			c := &l.conts[r.Chute]
			item := ManifestItem{TID: r.TID, Codes: r.Codes, Dest: r.Dest, Result: r.Result, Version: r.PlanVersion, At: r.Time}
			switch {
			case n == c.n || n > c.n:
				if n > c.n {
					// The close of the old one is missing (lost in a crash):
					// the new number says it left the chute.
					*c = container{n: n, opened: r.Time, route: l.lastRoute[r.Chute]}
				}
				if r.Result == ResultDiverted && r.Route != "" {
					c.route = r.Route
					l.lastRoute[r.Chute] = r.Route
				}
				c.items = append(c.items, item)
				if len(c.items) == 1 {
					c.due = l.dueFor(c.route, r.Time)
				}
				l.chuteCount[r.Chute]++
			default:
				if m := l.findClosed(r.Container); m != nil {
					m.Items = append(m.Items, item)
				}
				st.Stray++
			}
			st.Booked++
		case journal.KindContainerClose:
			if r.Chute < 1 || int(r.Chute) > l.cfg.Chutes {
				return nil
			}
			st.Records++
			n, ok := containerN(r.Container)
			c := &l.conts[r.Chute]
			if !ok || n < c.n {
				return nil
			}
			if n > c.n {
				*c = container{n: n, opened: r.Time, route: l.lastRoute[r.Chute]}
			}
			m := c.manifest(name, r.Chute)
			m.Closed, m.Cause, m.State = r.Time, r.Detail, StateClosed
			if r.Route != "" {
				m.Route = r.Route
			}
			l.manifests = append(l.manifests, m)
			l.trimManifests()
			*c = container{n: n + 1, opened: r.Time, route: l.lastRoute[r.Chute]}
		case journal.KindContainerLoad:
			st.Records++
			if m := l.findClosed(r.Container); m != nil && m.State == StateClosed {
				l.applyLoad(m, r.Detail, r.By, r.Time)
			}
		case journal.KindVanDepart:
			st.Records++
			l.applyDepart(r.Route, r.Detail, r.By, r.Time)
		}
		return nil
	})
	return st, err
}

// CloseContainerID closes the open container id, as a technician asks.
func (l *Line) CloseContainerID(ctx context.Context, id string) (Manifest, error) {
	var m Manifest
	var cerr error
	err := l.do(ctx, func() {
		for n := 1; n <= l.cfg.Chutes; n++ {
			if containerID(l.cfg.Name, uint16(n), l.conts[n].n) == id {
				m = l.closeContainer(uint16(n), "technician", time.Now())
				l.publish(time.Now())
				return
			}
		}
		if c := l.findClosed(id); c != nil {
			cerr = fmt.Errorf("container %s is %s already: %w", id, c.State, ErrContainerState)
			return
		}
		cerr = fmt.Errorf("container %s: %w", id, ErrNoContainer)
	})
	if err != nil {
		return m, err
	}
	return m, cerr
}

// lateBook books a divert the PLC confirmed for an item this gateway
// holds no pass of (a command from before a crash): the parcel is in the
// chute, so it goes into the chute's container, on a record of its own
// (its pass already has its lost-at-restart outcome).
func (l *Line) lateBook(ev devices.Event) {
	if (ev.Result != ResultDiverted && ev.Result != ResultOverride) || ev.Chute < 1 || int(ev.Chute) > l.cfg.Chutes {
		return
	}
	at := ev.At
	if at.IsZero() {
		at = time.Now()
	}
	c := &l.conts[ev.Chute]
	if c.route == "" {
		if rp := l.chuteRoutes.Load(); rp != nil && int(ev.Chute) < len(*rp) {
			c.route = (*rp)[ev.Chute]
		}
	}
	c.items = append(c.items, ManifestItem{TID: ev.TID, Result: ev.Result, At: at})
	l.chuteCount[ev.Chute]++
	l.c.Booked++
	id := containerID(l.cfg.Name, ev.Chute, c.n)
	l.append(journal.Record{Time: at, Line: l.cfg.Name, Kind: journal.KindContainerBook, TID: ev.TID, Chute: ev.Chute,
		Result: ev.Result, Container: id, Detail: "confirmation for no open item"})
	l.afterBook(ev.Chute, at)
}

// missedCutoff applies the late policy "exception CHUTE" of a parcel's
// route: read after the day's last cut-off, it goes to that chute with
// reason missed-cutoff (recirculated, reason 5, when the chute is full or
// disabled). The hold policy leaves the decision: the parcel waits in the
// route's chutes for the next departure.
func (l *Line) missedCutoff(d *sortplan.Decision) {
	if d.Route == "" || (d.Reason != sortplan.ReasonSorted && d.Reason != sortplan.ReasonAlternate && d.Reason != sortplan.ReasonRecirculate) {
		return
	}
	sp := l.routeSpec(d.Route)
	if sp == nil || sp.Late != sortplan.LateException || !sp.PastLastCutoff(l.dockNow()) {
		return
	}
	if int(sp.LateChute) > l.cfg.Chutes || l.avail.Unavailable(sp.LateChute) {
		d.Chute, d.Reason = 0, sortplan.ReasonRecirculate
		return
	}
	d.Chute, d.Reason = sp.LateChute, sortplan.ReasonMissedCutoff
}
