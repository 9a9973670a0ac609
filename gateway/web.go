package gateway

import (
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"

	"sortgw/gateway/journal"
)

//go:embed web
var webFS embed.FS

// pageTmpl is parsed once; a broken template fails the build's tests, not a
// technician's page load.
var pageTmpl = template.Must(template.New("index.html").Funcs(template.FuncMap{
	"chuteClass": chuteClass,
	"stateClass": stateClass,
	"condClass":  condClass,
	"alarmCount": alarmCount,
	"worstCond":  worstCondition,
	"sevClass":   sevClass,
	"chuteClassUp": func(c ChuteView, up bool) string {
		if !up && !c.TechDisabled {
			return "chute unknown" // the PLC's bits are not known while its link is down
		}
		return chuteClass(c)
	},
	"tilePct": tilePct,
	"pct":     func(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) + "%" },
	"fillPct": func(f float64) string { return strconv.Itoa(int(min(f, 1)*100)) + "%" },
	"hhmmss":  func(t time.Time) string { return t.Local().Format("15:04:05") },
	"codes": func(cs []string) string {
		return strings.ReplaceAll(strings.Join(cs, " "), "\x1d", "\u241d")
	},
}).ParseFS(webFS, "web/index.html"))

func chuteClass(c ChuteView) string {
	switch {
	case c.TechDisabled || c.PLCDisabled:
		return "chute disabled"
	case c.Full:
		return "chute full"
	}
	return "chute"
}

// sevClass is an alarm severity's colour: bad for critical, warn for
// warning, none (grey) otherwise.
func sevClass(sev string) string {
	switch sev {
	case SevCritical:
		return "bad"
	case SevWarning:
		return "warn"
	}
	return ""
}

// tilePct is a tile's share, or "–" when the window had no outcomes.
func tilePct(t OutcomeTile, total uint64) string {
	if total == 0 {
		return "–"
	}
	return strconv.FormatFloat(t.Pct, 'f', 1, 64) + "%"
}

// Handler returns the gateway's HTTP handler: the status page and its
// assets, /events (SSE), /status.json, /healthz, /readyz, /metrics, the
// item search, manifests and the token-protected actions.
func (g *Gateway) Handler() http.Handler {
	mux := http.NewServeMux()
	// Only the assets are static: the page template is served rendered,
	// never as its source.
	static, _ := fs.Sub(webFS, "web/static")
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	mux.HandleFunc("GET /{$}", g.handlePage)
	mux.HandleFunc("GET /status.json", g.handleStatus)
	mux.HandleFunc("GET /events", g.handleEvents)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", g.handleReady)
	mux.Handle("GET /metrics", promhttp.HandlerFor(g.met.Registry, promhttp.HandlerOpts{Registry: g.met.Registry}))
	mux.HandleFunc("GET /api/items", g.handleItems)
	mux.HandleFunc("GET /api/journal", g.handleJournal)
	mux.HandleFunc("GET /api/lines/{line}/manifests", g.handleManifests)
	mux.HandleFunc("POST /api/lines/{line}/chutes/{chute}/{action}", g.auth(g.handleChute))
	mux.HandleFunc("POST /api/lines/{line}/reload", g.auth(g.handleReload))
	mux.HandleFunc("POST /api/reload", g.auth(g.handleReload))
	mux.HandleFunc("GET /api/alarms", g.handleAlarms)
	mux.HandleFunc("POST /api/alarms/{path...}", g.auth(g.handleAlarmAction))
	g.authRoutes(mux) // POST /api/login, POST /api/logout, GET /api/session (session.go)
	mux.HandleFunc("GET /api/routes", g.handleRoutes)
	mux.HandleFunc("GET /api/lines/{line}/containers", g.handleContainers)
	mux.HandleFunc("POST /api/containers/{id}/{action}", g.auth(g.handleContainerAction))
	mux.HandleFunc("POST /api/routes/{route}/depart", g.auth(g.handleDepart))
	mux.HandleFunc("GET /api/vans", g.handleVans)
	mux.HandleFunc("GET /api/containers/{id}/label.zpl", g.handleLabelZPL)
	mux.HandleFunc("GET /containers/{id}/label", g.handleLabelHTML)
	mux.HandleFunc("GET /board", g.handleBoard)
	mux.HandleFunc("GET /api/training", g.handleTraining)
	mux.HandleFunc("POST /api/training/{id}", g.auth(g.handleTrainingSet))
	return g.common(mux)
}

// common sets the security headers and the response's write deadline:
// a client that stops reading is dropped after WriteTimeout instead of
// pinning a goroutine and a descriptor (the status stream moves its own
// deadline forward with every message).
func (g *Gateway) common(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(g.cfg.WriteTimeout))
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("X-Frame-Options", "DENY")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'")
		h.ServeHTTP(w, r)
	})
}

// pageData is the template's input: the snapshot plus page-only bits.
type pageData struct {
	Snapshot
	HasToken bool
}

func (g *Gateway) handlePage(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err := pageTmpl.Execute(w, pageData{Snapshot: g.Snapshot(), HasToken: g.cfg.Token != ""}); err != nil {
		g.log.Error().Err(err).Msg("render status page")
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", " ")
	_ = enc.Encode(v)
}

type apiError struct {
	Error string `json:"error"`
}

func (g *Gateway) handleStatus(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, g.Snapshot())
}

func (g *Gateway) handleReady(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if g.Ready() {
		fmt.Fprintln(w, "ready")
		return
	}
	w.WriteHeader(http.StatusServiceUnavailable)
	switch {
	case g.draining.Load():
		fmt.Fprintln(w, "draining")
	default:
		if why := g.journalUnready(); why != "" {
			fmt.Fprintln(w, why)
		}
		for _, l := range g.lines {
			if l.Table() == nil {
				fmt.Fprintf(w, "line %s: no plan loaded\n", l.Name())
			}
			if st := l.plc.Status(); st.State.String() != "up" {
				fmt.Fprintf(w, "line %s: plc link %s\n", l.Name(), st.State)
			}
			if !l.scannerOnline() {
				fmt.Fprintf(w, "line %s: no scanner online\n", l.Name())
			}
			if l.held.Load() {
				fmt.Fprintf(w, "line %s: new reads not commanded: journal full (when_full stop-reads)\n", l.Name())
			}
		}
	}
}

// handleEvents streams the snapshot as Server-Sent Events.
func (g *Gateway) handleEvents(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	if n := g.sse.Add(1); n > int64(g.cfg.MaxSSEClients) {
		g.sse.Add(-1)
		g.met.httpRefused.WithLabelValues("sse-clients").Inc()
		g.refusals.Log(func(e *zerolog.Event) { e.Str("remote", r.RemoteAddr).Int("limit", g.cfg.MaxSSEClients) }, "status stream refused: too many clients")
		w.Header().Set("Retry-After", "10")
		http.Error(w, "too many live status streams; try again later", http.StatusServiceUnavailable)
		return
	}
	g.met.sseClients.Inc()
	defer func() { g.sse.Add(-1); g.met.sseClients.Dec() }()
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	tick := time.NewTicker(g.cfg.SSEInterval)
	defer tick.Stop()
	send := func() bool {
		_ = rc.SetWriteDeadline(time.Now().Add(g.cfg.WriteTimeout))
		b, err := json.Marshal(g.Snapshot())
		if err != nil {
			return false
		}
		if _, err := fmt.Fprintf(w, "event: snapshot\ndata: %s\n\n", b); err != nil {
			return false
		}
		fl.Flush()
		return true
	}
	fmt.Fprint(w, "retry: 2000\n\n")
	if !send() {
		return
	}
	for {
		select {
		case <-r.Context().Done():
			return
		case <-g.stopping:
			return
		case <-tick.C:
			if !send() {
				return
			}
		}
	}
}

// bearer returns the token of an Authorization header. The scheme is
// case-insensitive (RFC 9110 section 11.1): "bearer x" is "Bearer x".
func bearer(r *http.Request) string {
	scheme, tok, ok := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(tok)
}

func (g *Gateway) lineOf(w http.ResponseWriter, r *http.Request) *Line {
	l := g.byName[r.PathValue("line")]
	if l == nil {
		writeJSON(w, http.StatusNotFound, apiError{"no such line"})
	}
	return l
}

// ChuteActionResult answers a chute action.
type ChuteActionResult struct {
	Line     string    `json:"line"`
	Chute    uint16    `json:"chute"`
	Action   string    `json:"action"`
	Manifest *Manifest `json:"manifest,omitempty"`
}

func (g *Gateway) handleChute(w http.ResponseWriter, r *http.Request) {
	l := g.lineOf(w, r)
	if l == nil {
		return
	}
	n, err := strconv.ParseUint(r.PathValue("chute"), 10, 16)
	if err != nil || n < 1 || int(n) > l.cfg.Chutes {
		writeJSON(w, http.StatusNotFound, apiError{"no such chute"})
		return
	}
	chute, action := uint16(n), r.PathValue("action")
	by := actorOf(r)
	res := ChuteActionResult{Line: l.Name(), Chute: chute, Action: action}
	switch action {
	case "disable", "enable":
		err = l.SetChuteDisabledBy(r.Context(), chute, action == "disable", by)
	case "close":
		var m Manifest
		m, err = l.CloseContainer(r.Context(), chute)
		res.Manifest = &m
	default:
		writeJSON(w, http.StatusNotFound, apiError{"unknown action " + strconv.Quote(action)})
		return
	}
	switch {
	case errors.Is(err, ErrChuteAtPLC):
		// Answering "done" would change nothing: say where it is done.
		writeJSON(w, http.StatusConflict, apiError{fmt.Sprintf("chute %d is disabled at the PLC: the gateway cannot enable it; enable it at the sorter's control panel", chute)})
		return
	case errors.Is(err, ErrNotDisabled):
		writeJSON(w, http.StatusConflict, apiError{fmt.Sprintf("chute %d is not disabled by a technician: nothing to enable", chute)})
		return
	case err != nil:
		writeJSON(w, http.StatusServiceUnavailable, apiError{err.Error()})
		return
	}
	g.log.Info().Str("line", l.Name()).Uint16("chute", chute).Str("action", action).Str("by", by).Str("remote", r.RemoteAddr).Msg("technician action")
	writeJSON(w, http.StatusOK, res)
}

// actorOf is who asks for an action: a logged-in technician's name
// (the session wins over anything the request claims); with the bearer
// token, the optional name the caller sends in X-Sortgw-By (as alarm
// acknowledgements take "by"), else "" (journaled as "technician").
func actorOf(r *http.Request) string {
	if id, ok := IdentityFrom(r.Context()); ok && id.Via == "session" {
		return id.Name
	}
	by := strings.TrimSpace(r.Header.Get("X-Sortgw-By"))
	if len(by) > 64 {
		by = by[:64]
	}
	return strings.Map(func(c rune) rune {
		if c < ' ' || c == 0x7f {
			return -1
		}
		return c
	}, by)
}

// ReloadResult answers a plan reload.
type ReloadResult struct {
	Lines []PlanInfo `json:"lines"`
	Error string     `json:"error,omitempty"`
}

func (g *Gateway) handleReload(w http.ResponseWriter, r *http.Request) {
	lines := g.lines
	if r.PathValue("line") != "" {
		l := g.lineOf(w, r)
		if l == nil {
			return
		}
		lines = []*Line{l}
	}
	g.reloadMu.Lock()
	var errs []error
	for _, l := range lines {
		if _, err := l.ReloadPlanFor(PlanByButton); err != nil {
			errs = append(errs, err)
		}
	}
	g.reloadMu.Unlock()
	var res ReloadResult
	for _, l := range lines {
		res.Lines = append(res.Lines, l.PlanInfo())
	}
	code := http.StatusOK
	if err := errors.Join(errs...); err != nil {
		res.Error, code = err.Error(), http.StatusUnprocessableEntity
		g.log.Error().Err(err).Msg("plan reload failed; old plan kept")
	}
	writeJSON(w, code, res)
}

// JournalView answers GET /api/journal: the records in a time window,
// oldest first, filtered by kind and line.
type JournalView struct {
	From    time.Time        `json:"from"`
	To      time.Time        `json:"to"`
	Records []journal.Record `json:"records"`
	// Truncated: the window held more records than one query reads (the
	// journal's QueryLimit, counting every kind); narrow it (from, to) to
	// see the rest.
	Truncated bool `json:"truncated,omitempty"`
}

// handleJournal serves the journal's records of a time window: from and
// to are RFC 3339 times or durations back from now (default the last
// hour); kind is a comma-separated list of kinds (default every kind but
// the item records decision, outcome and duplicate); line filters by line
// (gateway records, which have none, always pass).
func (g *Gateway) handleJournal(w http.ResponseWriter, r *http.Request) {
	if g.search == nil {
		writeJSON(w, http.StatusServiceUnavailable, apiError{"no journal"})
		return
	}
	q := r.URL.Query()
	now := time.Now()
	when := func(key string, def time.Time) (time.Time, error) {
		v := q.Get(key)
		if v == "" {
			return def, nil
		}
		if d, err := time.ParseDuration(v); err == nil {
			return now.Add(-d), nil
		}
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return time.Time{}, fmt.Errorf("%s: want an RFC 3339 time or a duration back from now (1h), got %q", key, v)
		}
		return t, nil
	}
	from, err := when("from", now.Add(-time.Hour))
	if err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{err.Error()})
		return
	}
	to, err := when("to", now.Add(time.Second))
	if err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{err.Error()})
		return
	}
	want := map[journal.Kind]bool{}
	if ks := q.Get("kind"); ks != "" {
		for _, name := range strings.Split(ks, ",") {
			k, err := journal.ParseKind(strings.TrimSpace(name))
			if err != nil {
				writeJSON(w, http.StatusBadRequest, apiError{err.Error()})
				return
			}
			want[k] = true
		}
	}
	keep := func(rec *journal.Record) bool {
		if len(want) > 0 {
			return want[rec.Kind]
		}
		switch rec.Kind {
		case journal.KindDecision, journal.KindOutcome, journal.KindDuplicate:
			return false
		}
		return true
	}
	line := q.Get("line")
	recs, err := g.search.Range(from, to, 0)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, apiError{err.Error()})
		return
	}
	v := JournalView{From: from, To: to, Records: []journal.Record{}, Truncated: len(recs) >= g.search.QueryLimit()}
	for i := range recs {
		if keep(&recs[i]) && (line == "" || recs[i].Line == "" || recs[i].Line == line) {
			v.Records = append(v.Records, recs[i])
		}
	}
	writeJSON(w, http.StatusOK, v)
}

// handleManifests serves manifests as CSV or JSON, filtered by container
// or route (van).
func (g *Gateway) handleManifests(w http.ResponseWriter, r *http.Request) {
	l := g.lineOf(w, r)
	if l == nil {
		return
	}
	q := r.URL.Query()
	ms, err := l.Manifests(r.Context(), q.Get("container"), q.Get("route"))
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, apiError{err.Error()})
		return
	}
	name := l.Name()
	if c := q.Get("container"); c != "" {
		name = c
	} else if rt := q.Get("route"); rt != "" {
		name += "-route-" + rt
	}
	name = strings.Map(func(r rune) rune {
		if r == '-' || r == '_' || r == '.' || (r >= '0' && r <= '9') || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') {
			return r
		}
		return '_'
	}, name)
	switch q.Get("format") {
	case "csv":
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", `attachment; filename="`+name+`.csv"`)
		_ = WriteManifestsCSV(w, ms)
	case "", "json":
		w.Header().Set("Content-Type", "application/json")
		if q.Get("download") != "" {
			w.Header().Set("Content-Disposition", `attachment; filename="`+name+`.json"`)
		}
		_ = WriteManifestsJSON(w, ms)
	default:
		writeJSON(w, http.StatusBadRequest, apiError{"format: csv or json"})
	}
}
