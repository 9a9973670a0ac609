package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ConsolRequest is the body of the container and route actions.
type ConsolRequest struct {
	Van    string `json:"van"`
	By     string `json:"by"`
	Source string `json:"source"` // api (default), page, dock-scan
}

func readConsolRequest(w http.ResponseWriter, r *http.Request) (ConsolRequest, bool) {
	var req ConsolRequest
	b, err := io.ReadAll(io.LimitReader(r.Body, 4096))
	if err == nil && len(strings.TrimSpace(string(b))) > 0 {
		err = json.Unmarshal(b, &req)
	}
	if err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{`body must be JSON {"van":"...","by":"name"}: ` + err.Error()})
		return req, false
	}
	req.Van, req.By = strings.TrimSpace(req.Van), strings.TrimSpace(req.By)
	switch req.Source {
	case "":
		req.Source = "api"
	case "api", "page", "dock-scan":
	default:
		writeJSON(w, http.StatusBadRequest, apiError{"source: api, page or dock-scan"})
		return req, false
	}
	return req, true
}

// lineOfContainer finds the line a container id belongs to ("L1-C12-3").
func (g *Gateway) lineOfContainer(id string) *Line {
	for _, l := range g.lines {
		if strings.HasPrefix(id, l.Name()+"-C") {
			return l
		}
	}
	return nil
}

func consolStatus(err error) int {
	switch {
	case errors.Is(err, ErrNoContainer):
		return http.StatusNotFound
	case errors.Is(err, ErrContainerState), errors.Is(err, ErrVanFull), errors.Is(err, ErrNothingLoaded):
		return http.StatusConflict
	case errors.Is(err, ErrNoVan):
		return http.StatusBadRequest
	}
	return http.StatusServiceUnavailable
}

// handleRoutes serves the departures board of every line.
func (g *Gateway) handleRoutes(w http.ResponseWriter, r *http.Request) {
	out := []RouteBoard{}
	for _, l := range g.lines {
		if s := l.Snapshot(); s != nil {
			out = append(out, s.Routes...)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (g *Gateway) handleContainers(w http.ResponseWriter, r *http.Request) {
	l := g.lineOf(w, r)
	if l == nil {
		return
	}
	state := r.URL.Query().Get("state")
	switch state {
	case "", StateOpen, StateClosed, StateLoaded, StateDeparted:
	default:
		writeJSON(w, http.StatusBadRequest, apiError{"state: open, closed, loaded or departed"})
		return
	}
	ms, err := l.Containers(r.Context(), state)
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, apiError{err.Error()})
		return
	}
	out := make([]ContainerInfo, 0, len(ms))
	for i := range ms {
		out = append(out, containerInfo(&ms[i]))
	}
	writeJSON(w, http.StatusOK, out)
}

// ContainerInfo is a container as GET /api/lines/{line}/containers lists it.
type ContainerInfo struct {
	Container string    `json:"container"`
	Chute     uint16    `json:"chute"`
	Route     string    `json:"route"`
	State     string    `json:"state"`
	Opened    time.Time `json:"opened"`
	Closed    time.Time `json:"closed,omitzero"`
	Cause     string    `json:"cause,omitempty"`
	Due       time.Time `json:"due,omitzero"`
	Van       string    `json:"van"`
	TIDs      []uint32  `json:"tids"`
}

func containerInfo(m *Manifest) ContainerInfo {
	c := ContainerInfo{Container: m.Container, Chute: m.Chute, Route: m.Route, State: m.State, Opened: m.Opened,
		Closed: m.Closed, Cause: m.Cause, Due: m.Due, Van: m.Van, TIDs: make([]uint32, len(m.Items))}
	for i, it := range m.Items {
		c.TIDs[i] = it.TID
	}
	return c
}

func (g *Gateway) handleContainerAction(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	l := g.lineOfContainer(id)
	if l == nil {
		writeJSON(w, http.StatusNotFound, apiError{"no such container: " + id})
		return
	}
	req, ok := readConsolRequest(w, r)
	if !ok {
		return
	}
	var m Manifest
	var err error
	action := r.PathValue("action")
	switch action {
	case "close":
		m, err = l.CloseContainerID(r.Context(), id)
	case "load":
		m, err = l.LoadContainer(r.Context(), id, req.Van, req.By, req.Source)
	case "print":
		g.handlePrint(w, r)
		return
	default:
		writeJSON(w, http.StatusNotFound, apiError{"unknown action " + strconv.Quote(action)})
		return
	}
	if err != nil {
		writeJSON(w, consolStatus(err), apiError{err.Error()})
		return
	}
	g.log.Info().Str("line", l.Name()).Str("container", id).Str("action", action).Str("van", req.Van).Str("by", req.By).
		Str("remote", r.RemoteAddr).Msg("dock action")
	writeJSON(w, http.StatusOK, containerInfo(&m))
}

// Depart sends off van on route from every line; the answer is the van
// manifest (containers of all lines).
func (g *Gateway) Depart(ctx context.Context, route, van, by, src string) (VanManifest, error) {
	if van == "" {
		return VanManifest{}, ErrNoVan
	}
	at := time.Now()
	vm := VanManifest{Route: route, Van: van, Departed: at, By: by, Containers: []Manifest{}}
	for _, l := range g.lines {
		part, ok, err := l.Depart(ctx, route, van, by, src, at)
		if err != nil {
			return vm, err
		}
		if !ok {
			continue
		}
		vm.Departure = part.Departure
		vm.Containers = append(vm.Containers, part.Containers...)
		vm.Count += part.Count
		vm.Parcels += part.Parcels
	}
	if vm.Count == 0 {
		return vm, fmt.Errorf("route %s van %s: %w", route, van, ErrNothingLoaded)
	}
	return vm, nil
}

func (g *Gateway) handleDepart(w http.ResponseWriter, r *http.Request) {
	route := r.PathValue("route")
	req, ok := readConsolRequest(w, r)
	if !ok {
		return
	}
	vm, err := g.Depart(r.Context(), route, req.Van, req.By, req.Source)
	if err != nil {
		writeJSON(w, consolStatus(err), apiError{err.Error()})
		return
	}
	g.log.Info().Str("route", route).Str("van", req.Van).Str("by", req.By).Int("containers", vm.Count).
		Str("remote", r.RemoteAddr).Msg("van departed")
	writeVans(w, r, []VanManifest{vm}, true)
}

// Vans merges the lines' departed vans (same route, van and departure
// time: one van), oldest first.
func (g *Gateway) Vans(ctx context.Context, route string, since time.Time) ([]VanManifest, error) {
	var out []VanManifest
	for _, l := range g.lines {
		vs, err := l.Vans(ctx, route, since)
		if err != nil {
			return nil, err
		}
	next:
		for _, v := range vs {
			for i := range out {
				if o := &out[i]; o.Route == v.Route && o.Van == v.Van && o.Departed.Equal(v.Departed) {
					o.Containers = append(o.Containers, v.Containers...)
					o.Count += v.Count
					o.Parcels += v.Parcels
					continue next
				}
			}
			out = append(out, v)
		}
	}
	slices.SortStableFunc(out, func(a, b VanManifest) int { return a.Departed.Compare(b.Departed) })
	return out, nil
}

func (g *Gateway) handleVans(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var since time.Time
	if s := q.Get("since"); s != "" {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, apiError{"since: want RFC 3339, e.g. 2026-12-05T06:00:00Z"})
			return
		}
		since = t
	}
	vs, err := g.Vans(r.Context(), q.Get("route"), since)
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, apiError{err.Error()})
		return
	}
	writeVans(w, r, vs, false)
}

// writeVans answers van manifests as JSON (one object for a departure, a
// list otherwise) or, with ?format=csv, as CSV.
func writeVans(w http.ResponseWriter, r *http.Request, vs []VanManifest, one bool) {
	switch r.URL.Query().Get("format") {
	case "csv":
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", `attachment; filename="vans.csv"`)
		_ = WriteVansCSV(w, vs)
	case "", "json":
		if one {
			writeJSON(w, http.StatusOK, vs[0])
			return
		}
		if vs == nil {
			vs = []VanManifest{}
		}
		writeJSON(w, http.StatusOK, vs)
	default:
		writeJSON(w, http.StatusBadRequest, apiError{"format: csv or json"})
	}
}

// WriteVansCSV writes van manifests as CSV, one row per parcel, with
// formula-like cells neutralised (csvCell).
func WriteVansCSV(w io.Writer, vs []VanManifest) error {
	cw := newCSVWriter(w)
	if err := cw.Write([]string{"route", "departure", "van", "departed", "container", "line", "chute", "tid", "codes", "dest"}); err != nil {
		return err
	}
	ts := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format(time.RFC3339)
	}
	for _, v := range vs {
		for _, c := range v.Containers {
			for _, it := range c.Items {
				if err := cw.Write([]string{v.Route, ts(v.Departure), v.Van, ts(v.Departed), c.Container, c.Line,
					strconv.Itoa(int(c.Chute)), strconv.FormatUint(uint64(it.TID), 10), strings.Join(it.Codes, " "), it.Dest}); err != nil {
					return err
				}
			}
		}
	}
	return cw.Flush()
}
