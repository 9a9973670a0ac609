package gateway

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"sortgw/gateway/journal"
	"sortgw/gateway/operators"
)

// Technician logins: named accounts (package operators) log in with a
// PIN and get a session cookie; every action then needs the session's
// CSRF token in a header. Machines keep the bearer token. This file holds
// the sessions, the login throttle, the action→role table and g.auth.

// SessionCookie is the session cookie's name.
const SessionCookie = "sortgw_session"

// CSRFHeader carries the session's CSRF token on every action.
const CSRFHeader = "X-CSRF-Token"

// Identity is who asked for an action: a technician by session, or a
// machine by the bearer token (Name "token", Role lead).
type Identity struct {
	Name string
	Role operators.Role
	// Via is "session" or "token".
	Via string
}

type identityKey struct{}

// IdentityFrom returns the identity g.auth put into an action's request
// context.
func IdentityFrom(ctx context.Context) (Identity, bool) {
	id, ok := ctx.Value(identityKey{}).(Identity)
	return id, ok
}

// actionRoles is the least role each action needs; the action is the
// last element of its path (/api/lines/L1/chutes/3/disable: disable). An
// action not listed needs a lead: a new action is closed until it is
// given a role here.
var actionRoles = map[string]operators.Role{
	"disable": operators.Technician,
	"enable":  operators.Technician,
	"ack":     operators.Technician,
	"shelve":  operators.Technician,
	"close":   operators.Lead,
	"load":    operators.Lead,
	"depart":  operators.Lead,
	"reload":  operators.Lead,
}

// requestAction names a request's action for the role table and the metric
// label: the path's last element, "other" when the table lacks it.
func requestAction(r *http.Request) string {
	p := strings.TrimSuffix(r.URL.Path, "/")
	a := p[strings.LastIndexByte(p, '/')+1:]
	if _, ok := actionRoles[a]; ok {
		return a
	}
	return "other"
}

func actionRole(action string) operators.Role {
	if r, ok := actionRoles[action]; ok {
		return r
	}
	return operators.Lead
}

// Defaults of the login settings.
const (
	defaultSessionIdle   = 12 * time.Hour // a shift
	defaultLoginFailures = 5
	defaultLoginLockout  = time.Minute
	maxSessions          = 1024
	maxThrottleEntries   = 4096
)

// validateAuth fills the login settings' defaults (Validate calls it).
func (c *Config) validateAuth() error {
	if c.SessionIdle == 0 {
		c.SessionIdle = defaultSessionIdle
	}
	if c.LoginFailures == 0 {
		c.LoginFailures = defaultLoginFailures
	}
	if c.LoginLockout == 0 {
		c.LoginLockout = defaultLoginLockout
	}
	if c.SessionIdle < 0 || c.LoginFailures < 0 || c.LoginLockout < 0 {
		return fmt.Errorf("gateway: negative session_idle %v, login_failures %d or login_lockout %v", c.SessionIdle, c.LoginFailures, c.LoginLockout)
	}
	return nil
}

// authMetrics are registered on the gateway's registry by the first
// gateway made on it (a second one reuses them).
type authMetrics struct {
	failures *prometheus.CounterVec
	actions  *prometheus.CounterVec
}

func registerCounterVec(reg *prometheus.Registry, c *prometheus.CounterVec) *prometheus.CounterVec {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if old, ok := are.ExistingCollector.(*prometheus.CounterVec); ok {
				return old
			}
		}
		panic(err)
	}
	return c
}

func newAuthMetrics(reg *prometheus.Registry) *authMetrics {
	m := &authMetrics{
		failures: registerCounterVec(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sortgw_login_failures_total",
			Help: "Failed technician logins: wrong (name or PIN wrong), locked (refused while the name or client address is locked out).",
		}, []string{"reason"})),
		actions: registerCounterVec(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sortgw_operator_actions_total",
			Help: "Actions asked for over HTTP by action (disable, enable, close, load, depart, reload, ack, shelve, other) and result (ok, failed: the action itself failed, refused: role, read-only mode or CSRF, unauthorized: no valid token or session).",
		}, []string{"action", "result"})),
	}
	for _, r := range []string{"wrong", "locked"} {
		m.failures.WithLabelValues(r)
	}
	for a := range actionRoles {
		for _, r := range []string{"ok", "failed", "refused", "unauthorized"} {
			m.actions.WithLabelValues(a, r)
		}
	}
	return m
}

// session is one logged-in technician.
type session struct {
	id, csrf string
	name     string // as the accounts file writes it
	last     time.Time
}

// failures counts failed logins of one name or one client address.
type failures struct {
	n      int
	last   time.Time
	locked time.Time // locked until
}

// opsStore holds the accounts and reloads them when the file changes
// (checked at most once a second): `sortgw operator add` takes effect
// without a restart. A file that no longer parses leaves the accounts
// loaded before in force, and says so in the log.
type opsStore struct {
	path string
	log  zerolog.Logger

	mu        sync.Mutex
	set       *operators.Set
	mod       time.Time
	size      int64
	checked   time.Time
	lastError string
}

func (o *opsStore) stat() (time.Time, int64) {
	fi, err := os.Stat(o.path)
	if err != nil {
		return time.Time{}, -1
	}
	return fi.ModTime(), fi.Size()
}

// get returns the accounts in force; nil when logins are off.
func (o *opsStore) get(now time.Time) *operators.Set {
	if o == nil {
		return nil
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.path == "" || now.Sub(o.checked) < time.Second {
		return o.set
	}
	o.checked = now
	mod, size := o.stat()
	if mod.Equal(o.mod) && size == o.size {
		return o.set
	}
	o.mod, o.size = mod, size
	s, err := operators.Load(o.path)
	if err != nil {
		if msg := err.Error(); msg != o.lastError {
			o.lastError = msg
			o.log.Error().Err(err).Str("file", o.path).Msg("operators file changed but does not load; the accounts loaded before stay in force")
		}
		return o.set
	}
	o.lastError = ""
	o.set = s
	o.log.Info().Str("file", o.path).Int("accounts", s.Len()).Msg("operators file reloaded")
	return o.set
}

// authState is the gateway's logins: accounts, sessions and the
// throttle. One mutex; no I/O under it (the PIN hash runs outside).
type authState struct {
	ops     *opsStore // nil: no accounts, token only
	idle    time.Duration
	maxFail int
	lockout time.Duration
	met     *authMetrics
	now     func() time.Time // tests move the clock
	hashes  chan struct{}    // at most this many PIN hashes at once

	mu       sync.Mutex
	sessions map[string]*session
	fails    map[string]*failures // "name:alice", "addr:10.0.0.7"
}

func newAuthState(cfg Config, m *Metrics, log zerolog.Logger) (*authState, error) {
	a := &authState{idle: cfg.SessionIdle, maxFail: cfg.LoginFailures, lockout: cfg.LoginLockout,
		met: newAuthMetrics(m.Registry), now: time.Now, hashes: make(chan struct{}, 2),
		sessions: map[string]*session{}, fails: map[string]*failures{}}
	if cfg.Operators == nil && cfg.OperatorsFile == "" {
		return a, nil
	}
	a.ops = &opsStore{path: cfg.OperatorsFile, set: cfg.Operators, log: log, checked: time.Now()}
	if a.ops.set == nil {
		s, err := operators.Load(cfg.OperatorsFile)
		if err != nil {
			return nil, fmt.Errorf("gateway: operators file: %w", err)
		}
		a.ops.set = s
	}
	if a.ops.path != "" {
		a.ops.mod, a.ops.size = a.ops.stat()
	}
	return a, nil
}

func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}

// newSession makes a session for name, evicting the expired and, past
// maxSessions, the least recently used.
func (a *authState) newSession(name string, now time.Time) *session {
	s := &session{id: randomToken(), csrf: randomToken(), name: name, last: now}
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.sessions) >= maxSessions {
		var oldest *session
		for id, o := range a.sessions {
			if now.Sub(o.last) > a.idle {
				delete(a.sessions, id)
			} else if oldest == nil || o.last.Before(oldest.last) {
				oldest = o
			}
		}
		if len(a.sessions) >= maxSessions && oldest != nil {
			delete(a.sessions, oldest.id)
		}
	}
	a.sessions[s.id] = s
	return s
}

// session returns the live session of r's cookie and the account's
// current role (so a role changed or an account removed in the file
// takes effect at once), touching it; nil when there is none.
func (a *authState) session(r *http.Request, now time.Time) (*session, operators.Role) {
	c, err := r.Cookie(SessionCookie)
	if err != nil || c.Value == "" {
		return nil, operators.RoleNone
	}
	set := a.ops.get(now)
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.sessions[c.Value]
	if s == nil {
		return nil, operators.RoleNone
	}
	var op operators.Operator
	ok := false
	if set != nil {
		op, ok = set.Lookup(s.name)
	}
	if now.Sub(s.last) > a.idle || !ok {
		delete(a.sessions, s.id)
		return nil, operators.RoleNone
	}
	s.last = now
	v := *s
	return &v, op.Role
}

func (a *authState) endSession(id string) {
	a.mu.Lock()
	delete(a.sessions, id)
	a.mu.Unlock()
}

// lockedUntil returns when the lock on name or addr ends, if one is on.
func (a *authState) lockedUntil(name, addr string, now time.Time) (time.Time, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	var until time.Time
	for _, k := range []string{"name:" + strings.ToLower(name), "addr:" + addr} {
		if f := a.fails[k]; f != nil && f.locked.After(now) && f.locked.After(until) {
			until = f.locked
		}
	}
	return until, !until.IsZero()
}

// failed counts a failed login of name from addr and returns when a lock
// it starts ends (zero: no new lock).
func (a *authState) failed(name, addr string, now time.Time) time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.fails) >= maxThrottleEntries {
		for k, f := range a.fails {
			if now.Sub(f.last) > 15*time.Minute && !f.locked.After(now) {
				delete(a.fails, k)
			}
		}
	}
	var until time.Time
	for _, k := range []string{"name:" + strings.ToLower(name), "addr:" + addr} {
		f := a.fails[k]
		if f == nil {
			if len(a.fails) >= maxThrottleEntries {
				continue // full of live entries: the other key still counts
			}
			f = &failures{}
			a.fails[k] = f
		}
		if now.Sub(f.last) > 15*time.Minute {
			f.n = 0 // failures long ago are forgiven
		}
		f.n++
		f.last = now
		if f.n >= a.maxFail {
			f.n, f.locked = 0, now.Add(a.lockout)
			until = f.locked
		}
	}
	return until
}

// succeeded clears name's failures (the address keeps its count: one
// good login must not open a client to guessing other names).
func (a *authState) succeeded(name string) {
	a.mu.Lock()
	delete(a.fails, "name:"+strings.ToLower(name))
	a.mu.Unlock()
}

// clientAddr is the request's peer address without the port. Behind a
// reverse proxy every client has the proxy's address (docs).
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// authRoutes adds the login routes to the page's mux. Login and logout
// refuse cross-origin browser requests (Sec-Fetch-Site, Origin).
func (g *Gateway) authRoutes(mux *http.ServeMux) {
	xo := http.NewCrossOriginProtection()
	mux.Handle("POST /api/login", xo.Handler(http.HandlerFunc(g.handleLogin)))
	mux.Handle("POST /api/logout", xo.Handler(http.HandlerFunc(g.handleLogout)))
	mux.HandleFunc("GET /api/session", g.handleSession)
}

// LoginRequest is the body of POST /api/login.
type LoginRequest struct {
	Name string `json:"name"`
	PIN  string `json:"pin"`
}

// LoginResult answers a successful login.
type LoginResult struct {
	Name    string         `json:"name"`
	Role    operators.Role `json:"role"`
	CSRF    string         `json:"csrf"`
	Expires time.Time      `json:"expires"`
}

// LoginLocked answers a login refused while locked out (429).
type LoginLocked struct {
	Error string    `json:"error"`
	Until time.Time `json:"until"`
}

// SessionView answers GET /api/session: who this client is to the
// gateway.
type SessionView struct {
	Name string `json:"name"`
	Role string `json:"role"`
	CSRF string `json:"csrf"`
	// ReadOnly: the gateway is in read-only mode (http read_only): no
	// action is taken from anyone.
	ReadOnly bool `json:"read_only"`
	// Auth is how this request is known: session, token or none.
	Auth string `json:"auth"`
	// LoginEnabled: technician accounts are configured.
	LoginEnabled bool `json:"login_enabled"`
	// TokenEnabled: a bearer token is configured.
	TokenEnabled bool       `json:"token_enabled"`
	Expires      *time.Time `json:"expires,omitempty"`
}

func (g *Gateway) sessionCookie(w http.ResponseWriter, r *http.Request, value string) {
	c := &http.Cookie{Name: SessionCookie, Value: value, Path: "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil}
	if value == "" {
		c.MaxAge = -1
	}
	http.SetCookie(w, c)
}

func (g *Gateway) handleLogin(w http.ResponseWriter, r *http.Request) {
	a := g.authn
	now := a.now()
	set := a.ops.get(now)
	if set == nil {
		writeJSON(w, http.StatusForbidden, apiError{"no technician accounts are configured (gateway.operators_file)"})
		return
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		writeJSON(w, http.StatusUnsupportedMediaType, apiError{"want Content-Type: application/json"})
		return
	}
	var req LoginRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 4096)).Decode(&req); err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{`body must be JSON {"name":"…","pin":"…"}`})
		return
	}
	name, addr := clip(strings.TrimSpace(req.Name)), clientAddr(r)
	if until, locked := a.lockedUntil(name, addr, now); locked {
		a.met.failures.WithLabelValues("locked").Inc()
		w.Header().Set("Retry-After", strconv.Itoa(int(until.Sub(now)/time.Second)+1))
		writeJSON(w, http.StatusTooManyRequests, LoginLocked{
			Error: "too many failed logins: locked until " + until.Local().Format("15:04:05"), Until: until})
		return
	}
	select {
	case a.hashes <- struct{}{}:
	case <-r.Context().Done():
		return
	}
	op, ok := set.Verify(name, req.PIN)
	<-a.hashes
	if !ok {
		a.met.failures.WithLabelValues("wrong").Inc()
		until := a.failed(name, addr, now)
		detail := "wrong name or PIN from " + addr
		cause := "failed"
		if !until.IsZero() {
			detail += "; locked until " + until.UTC().Format(time.RFC3339)
			cause = "locked"
		}
		g.audit(journal.Record{Kind: journal.KindLogin, Cause: cause, By: name, Detail: detail})
		g.refusals.Log(func(e *zerolog.Event) { e.Str("remote", r.RemoteAddr).Str("name", name) }, "login failed: wrong name or PIN")
		writeJSON(w, http.StatusUnauthorized, apiError{"wrong name or PIN"})
		return
	}
	a.succeeded(name)
	s := a.newSession(op.Name, now)
	g.sessionCookie(w, r, s.id)
	g.audit(journal.Record{Kind: journal.KindLogin, Cause: "login", By: op.Name, Detail: op.Role.String() + " from " + addr})
	g.log.Info().Str("name", op.Name).Str("role", op.Role.String()).Str("remote", r.RemoteAddr).Msg("technician logged in")
	writeJSON(w, http.StatusOK, LoginResult{Name: op.Name, Role: op.Role, CSRF: s.csrf, Expires: now.Add(a.idle)})
}

func (g *Gateway) handleLogout(w http.ResponseWriter, r *http.Request) {
	a := g.authn
	s, _ := a.session(r, a.now())
	if s != nil {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get(CSRFHeader)), []byte(s.csrf)) != 1 {
			writeJSON(w, http.StatusForbidden, apiError{"missing or wrong CSRF token (" + CSRFHeader + ")"})
			return
		}
		a.endSession(s.id)
		g.audit(journal.Record{Kind: journal.KindLogin, Cause: "logout", By: s.name, Detail: "from " + clientAddr(r)})
	}
	g.sessionCookie(w, r, "")
	writeJSON(w, http.StatusOK, SessionView{Auth: "none", ReadOnly: g.cfg.ReadOnly, LoginEnabled: a.ops != nil, TokenEnabled: g.cfg.Token != ""})
}

// handleSession tells the page who it is. A wrong bearer token is a 401
// here, so the page can say so as soon as the token is entered.
func (g *Gateway) handleSession(w http.ResponseWriter, r *http.Request) {
	a := g.authn
	now := a.now()
	v := SessionView{Auth: "none", ReadOnly: g.cfg.ReadOnly, LoginEnabled: a.ops.get(now) != nil, TokenEnabled: g.cfg.Token != ""}
	if r.Header.Get("Authorization") != "" {
		if !g.tokenOK(r) {
			g.met.httpRefused.WithLabelValues("unauthorized").Inc()
			writeJSON(w, http.StatusUnauthorized, apiError{"wrong token"})
			return
		}
		v.Auth, v.Name, v.Role = "token", "token", operators.Lead.String()
		writeJSON(w, http.StatusOK, v)
		return
	}
	if s, role := a.session(r, now); s != nil {
		exp := now.Add(a.idle)
		v.Auth, v.Name, v.Role, v.CSRF, v.Expires = "session", s.name, role.String(), s.csrf, &exp
	} else if _, err := r.Cookie(SessionCookie); err == nil {
		g.sessionCookie(w, r, "") // expired or unknown: let go of it
	}
	writeJSON(w, http.StatusOK, v)
}

// tokenOK reports whether r carries the configured bearer token.
func (g *Gateway) tokenOK(r *http.Request) bool {
	return g.cfg.Token != "" && subtle.ConstantTimeCompare([]byte(bearer(r)), []byte(g.cfg.Token)) == 1
}

// identify finds who r is: the bearer token, or a session with its CSRF
// header. code is the refusal's status when it is neither (id then
// names the session's technician if the CSRF header was what failed).
func (g *Gateway) identify(r *http.Request) (id Identity, code int, msg string) {
	a := g.authn
	if r.Header.Get("Authorization") != "" {
		if g.cfg.Token == "" && a.ops == nil {
			return Identity{}, http.StatusForbidden, "actions are disabled: no token configured"
		}
		if !g.tokenOK(r) {
			return Identity{}, http.StatusUnauthorized, "a valid bearer token is required"
		}
		return Identity{Name: "token", Role: operators.Lead, Via: "token"}, 0, ""
	}
	s, role := a.session(r, a.now())
	if s == nil {
		if g.cfg.Token == "" && a.ops == nil {
			return Identity{}, http.StatusForbidden, "actions are disabled: no token configured"
		}
		if a.ops == nil {
			return Identity{}, http.StatusUnauthorized, "a valid bearer token is required"
		}
		return Identity{}, http.StatusUnauthorized, "log in (or give a bearer token) first"
	}
	id = Identity{Name: s.name, Role: role, Via: "session"}
	if subtle.ConstantTimeCompare([]byte(r.Header.Get(CSRFHeader)), []byte(s.csrf)) != 1 {
		return id, http.StatusForbidden, "missing or wrong CSRF token (" + CSRFHeader + ")"
	}
	return id, 0, ""
}

// statusWriter remembers an action's status code for the journal.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.code == 0 {
		s.code = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// auth lets an action through for the bearer token (machines) or a
// technician's session with its CSRF header, when the role allows the
// action (actionRoles) and the gateway is not read-only. It puts the
// Identity into the request's context and journals the action with the
// name and the result.
func (g *Gateway) auth(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		action := requestAction(r)
		id, code, msg := g.identify(r)
		switch {
		case code == 0 && g.cfg.ReadOnly:
			code, msg = http.StatusForbidden, "read-only mode"
		case code == 0 && id.Role < actionRole(action):
			code, msg = http.StatusForbidden, fmt.Sprintf("%s (%s) may not %s: that needs a %s", id.Name, id.Role, action, actionRole(action))
		case code != 0 && g.cfg.ReadOnly:
			msg = "read-only mode"
			if code == http.StatusUnauthorized {
				code = http.StatusForbidden
			}
		}
		if code != 0 {
			result := "refused"
			if code == http.StatusUnauthorized {
				result = "unauthorized"
				w.Header().Set("WWW-Authenticate", `Bearer realm="sortgw"`)
				g.met.httpRefused.WithLabelValues("unauthorized").Inc()
			}
			g.authn.met.actions.WithLabelValues(action, result).Inc()
			if id.Name != "" {
				g.auditAction(r, id, action, result, msg)
			}
			g.refusals.Log(func(e *zerolog.Event) {
				e.Str("remote", r.RemoteAddr).Str("path", r.URL.Path).Str("who", id.Name).Str("why", msg)
			}, "action refused")
			writeJSON(w, code, apiError{msg})
			return
		}
		sw := &statusWriter{ResponseWriter: w}
		h(sw, r.WithContext(context.WithValue(r.Context(), identityKey{}, id)))
		result, why := "ok", ""
		if sw.code >= 400 {
			result, why = "failed", "status "+strconv.Itoa(sw.code)
		}
		g.authn.met.actions.WithLabelValues(action, result).Inc()
		g.auditAction(r, id, action, result, why)
	}
}

// auditAction journals one action: who asked for what, and how it went.
func (g *Gateway) auditAction(r *http.Request, id Identity, action, result, why string) {
	rec := journal.Record{Kind: journal.KindOperatorAction, By: id.Name, Cause: result}
	if l := g.byName[r.PathValue("line")]; l != nil {
		rec.Line = l.Name()
	}
	if n, err := strconv.ParseUint(r.PathValue("chute"), 10, 16); err == nil {
		rec.Chute = uint16(n)
	}
	target := strings.TrimPrefix(r.URL.Path, "/api/")
	if strings.HasPrefix(target, "alarms/") {
		rec.Alarm = clip(strings.TrimSuffix(strings.TrimPrefix(target, "alarms/"), "/"+action))
	}
	if action != "other" {
		target = strings.TrimSuffix(target, "/"+action)
	}
	if target == "reload" {
		target = "all lines"
	}
	res := result
	if why != "" {
		res += " (" + why + ")"
	}
	rec.Detail = clip(fmt.Sprintf("action=%s target=%s result=%s who=%s", action, target, res, id.Name))
	g.audit(rec)
}

// audit appends an operator or login record to the journal: the
// gateway's own when it runs one, else its first line's (in a site they
// are the same journal).
func (g *Gateway) audit(rec journal.Record) {
	var j Journal
	switch {
	case g.cfg.Journal != nil:
		j = g.cfg.Journal
	case len(g.lines) > 0 && g.lines[0].journal != nil:
		j = g.lines[0].journal
	default:
		return
	}
	if _, err := j.Append(rec); err != nil {
		g.log.Error().Err(err).Str("kind", rec.Kind.String()).Str("by", rec.By).Str("detail", rec.Detail).Msg("journal refused an operator record")
	}
}
