package gateway

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"
)

// AlarmList answers GET /api/alarms: every line's alarms.
type AlarmList struct {
	// Active: raised and not yet cleared, or cleared but not yet
	// acknowledged; most severe first. Shelved alarms are left out.
	Active  []Alarm `json:"active"`
	Shelved []Alarm `json:"shelved"`
	// History: cleared alarms, newest first.
	History []Alarm `json:"history"`
}

// AlarmRequest is the body of an acknowledgement or a shelve.
type AlarmRequest struct {
	By      string `json:"by"`
	Minutes int    `json:"minutes,omitempty"`
}

func (g *Gateway) handleAlarms(w http.ResponseWriter, r *http.Request) {
	res := AlarmList{Active: []Alarm{}, Shelved: []Alarm{}, History: []Alarm{}}
	for _, l := range g.lines {
		a, s, h := l.Alarms()
		res.Active = append(res.Active, a...)
		res.Shelved = append(res.Shelved, s...)
		res.History = append(res.History, h...)
	}
	sortAlarms(res.Active)
	sortAlarms(res.Shelved)
	if len(g.lines) > 1 {
		sortByClear(res.History)
	}
	writeJSON(w, http.StatusOK, res)
}

func sortByClear(as []Alarm) {
	for i := 1; i < len(as); i++ {
		for j := i; j > 0 && as[j].Cleared.After(*as[j-1].Cleared); j-- {
			as[j], as[j-1] = as[j-1], as[j]
		}
	}
}

// handleAlarmAction serves POST /api/alarms/{id}/ack and
// /api/alarms/{id}/shelve; ids hold slashes ("L1/scanner/S1").
func (g *Gateway) handleAlarmAction(w http.ResponseWriter, r *http.Request) {
	path := r.PathValue("path")
	i := strings.LastIndexByte(path, '/')
	if i < 0 {
		writeJSON(w, http.StatusNotFound, apiError{"want /api/alarms/{id}/ack or /shelve"})
		return
	}
	id, action := path[:i], path[i+1:]
	line, _, _ := strings.Cut(id, "/")
	l := g.byName[line]
	if l == nil {
		writeJSON(w, http.StatusNotFound, apiError{"no such alarm: " + id})
		return
	}
	var req AlarmRequest
	// A logged-in technician is who acts (an empty body will do); with the
	// token, the body names the person.
	who, _ := IdentityFrom(r.Context())
	if err := json.NewDecoder(io.LimitReader(r.Body, 4096)).Decode(&req); err != nil && !(who.Via == "session" && errors.Is(err, io.EOF)) {
		writeJSON(w, http.StatusBadRequest, apiError{`body must be JSON {"by":"name"}: ` + err.Error()})
		return
	}
	req.By = strings.TrimSpace(req.By)
	if who.Via == "session" {
		req.By = who.Name
	}
	var a Alarm
	var err error
	switch action {
	case "ack":
		a, err = l.AckAlarm(id, req.By)
	case "shelve":
		if req.Minutes <= 0 {
			writeJSON(w, http.StatusBadRequest, apiError{"minutes must be above 0"})
			return
		}
		a, err = l.ShelveAlarm(id, req.By, time.Duration(req.Minutes)*time.Minute)
	default:
		writeJSON(w, http.StatusNotFound, apiError{"unknown action " + action})
		return
	}
	switch {
	case errors.Is(err, ErrNoAlarm):
		writeJSON(w, http.StatusNotFound, apiError{err.Error()})
		return
	case err != nil:
		writeJSON(w, http.StatusBadRequest, apiError{err.Error()})
		return
	}
	g.log.Info().Str("line", l.Name()).Str("alarm", id).Str("action", action).Str("by", req.By).Str("remote", r.RemoteAddr).Msg("technician action")
	writeJSON(w, http.StatusOK, a)
}
