package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"

	"sortgw/devices"
	"sortgw/gateway/journal"
	"sortgw/gateway/operators"
)

// writeOperators writes an accounts file: alice technician (PIN 1234),
// lena lead (5678), vic viewer (0000), at the fewest iterations allowed
// so the tests stay fast.
func writeOperators(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "operators")
	for _, a := range []struct {
		name, pin string
		role      operators.Role
	}{{"alice", "1234", operators.Technician}, {"lena", "5678", operators.Lead}, {"vic", "0000", operators.Viewer}} {
		if _, err := operators.Add(path, a.name, a.role, a.pin, operators.MinIterations, nil); err != nil {
			t.Fatal(err)
		}
	}
	return path
}

// authClient is one browser-like client: a cookie jar, the CSRF token of
// its session, optionally a bearer token and a local address of its own
// (127.0.0.x) so that the per-address lockout can be told apart.
type authClient struct {
	t     *testing.T
	base  string
	hc    *http.Client
	csrf  string
	token string
	by    string // X-Sortgw-By: the name a request claims
}

func newAuthClient(t *testing.T, base, localIP string) *authClient {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	tr := &http.Transport{DisableKeepAlives: true}
	if localIP != "" {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(localIP)}}
		tr.DialContext = d.DialContext
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &authClient{t: t, base: base, hc: &http.Client{Jar: jar, Transport: tr}}
}

// do sends a request; body is JSON-encoded unless nil. It returns the
// status, the decoded JSON object and the response.
func (c *authClient) do(method, path string, body any) (int, map[string]any, *http.Response) {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.csrf != "" {
		req.Header.Set(CSRFHeader, c.csrf)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if c.by != "" {
		req.Header.Set("X-Sortgw-By", c.by)
	}
	res, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer res.Body.Close()
	out := map[string]any{}
	b, _ := io.ReadAll(res.Body)
	_ = json.Unmarshal(b, &out)
	return res.StatusCode, out, res
}

func (c *authClient) login(name, pin string) (int, map[string]any) {
	c.t.Helper()
	code, body, _ := c.do("POST", "/api/login", LoginRequest{Name: name, PIN: pin})
	if code == http.StatusOK {
		c.csrf, _ = body["csrf"].(string)
	}
	return code, body
}

// kindRecords returns the journal's records of kind since from.
func kindRecords(t *testing.T, j *journal.Journal, kind journal.Kind, from time.Time) []journal.Record {
	t.Helper()
	if err := j.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	recs, err := j.Range(from, time.Now().Add(time.Hour), 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []journal.Record
	for _, r := range recs {
		if r.Kind == kind {
			out = append(out, r)
		}
	}
	return out
}

// TestLoginSessionsAndRoles: the whole login path against a running
// gateway and the emulated sorter.
func TestLoginSessionsAndRoles(t *testing.T) {
	ops := writeOperators(t)
	start := time.Now()
	e := startE2E(t, e2eConfig{Protocol: "modbus", Chutes: 16,
		Gateway: func(g *Config) { g.OperatorsFile = ops }}, testToken)
	base := "http://" + e.gw.Addr()
	alice := newAuthClient(t, base, "")

	// Wrong PIN, unknown name: the same answer.
	for _, tc := range [][2]string{{"alice", "4321"}, {"mallory", "1234"}} {
		if code, body := alice.login(tc[0], tc[1]); code != 401 || body["error"] != "wrong name or PIN" {
			t.Fatalf("login %v: %d %v", tc, code, body)
		}
	}
	// Not JSON: refused before any PIN is tried.
	res, err := http.Post(base+"/api/login", "application/x-www-form-urlencoded", strings.NewReader("name=alice&pin=1234"))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusUnsupportedMediaType {
		t.Errorf("form login: %d", res.StatusCode)
	}

	code, lr, res := alice.do("POST", "/api/login", LoginRequest{Name: "Alice", PIN: "1234"})
	if code != 200 || lr["name"] != "alice" || lr["role"] != "technician" || lr["csrf"] == "" || lr["expires"] == nil {
		t.Fatalf("login: %d %v", code, lr)
	}
	csrf := lr["csrf"].(string)
	if _, body, _ := alice.do("GET", "/api/session", nil); body["auth"] != "session" || body["name"] != "alice" ||
		body["role"] != "technician" || body["csrf"] != csrf || body["login_enabled"] != true {
		t.Fatalf("session after login: %v", body)
	}
	sc := res.Header.Get("Set-Cookie")
	for _, want := range []string{SessionCookie + "=", "Path=/", "HttpOnly", "SameSite=Strict"} {
		if !strings.Contains(sc, want) {
			t.Errorf("Set-Cookie %q lacks %q", sc, want)
		}
	}
	if strings.Contains(sc, "Secure") {
		t.Errorf("Set-Cookie %q: Secure over plain HTTP", sc)
	}

	disable := "/api/lines/L1/chutes/3/disable"
	// CSRF header missing or wrong: refused, nothing changes.
	for _, csrf := range []string{"", "wrong"} {
		alice.csrf = csrf
		if code, body, _ := alice.do("POST", disable, nil); code != 403 || !strings.Contains(body["error"].(string), "CSRF") {
			t.Fatalf("csrf %q: %d %v", csrf, code, body)
		}
	}
	if e.line.Snapshot().Chutes[2].TechDisabled {
		t.Fatal("chute disabled without the CSRF token")
	}
	alice.csrf = csrf
	// The name a request claims does not override the session's.
	alice.by = "mallory"
	if code, body, _ := alice.do("POST", disable, nil); code != 200 {
		t.Fatalf("disable as alice: %d %v", code, body)
	}
	alice.by = ""
	if c := e.line.Snapshot().Chutes[2]; !c.TechDisabled {
		t.Fatal("chute 3 not disabled")
	} else if c.DisabledBy != "alice" {
		t.Fatalf("chute 3 disabled by %q, want the session's alice", c.DisabledBy)
	}
	// A technician may not close containers or reload plans.
	if code, body, _ := alice.do("POST", "/api/lines/L1/chutes/3/close", nil); code != 403 || !strings.Contains(body["error"].(string), "needs a lead") {
		t.Fatalf("close as technician: %d %v", code, body)
	}
	// A viewer may do nothing.
	vic := newAuthClient(t, base, "")
	if code, _ := vic.login("vic", "0000"); code != 200 {
		t.Fatal("vic login")
	}
	if code, _, _ := vic.do("POST", "/api/lines/L1/chutes/4/disable", nil); code != 403 {
		t.Fatalf("disable as viewer: %d", code)
	}
	// A lead may close.
	lena := newAuthClient(t, base, "")
	if code, _ := lena.login("lena", "5678"); code != 200 {
		t.Fatal("lena login")
	}
	if code, body, _ := lena.do("POST", "/api/lines/L1/chutes/3/close", nil); code != 200 {
		t.Fatalf("close as lead: %d %v", code, body)
	}
	// No session, no token: 401. The token still works for machines.
	anon := newAuthClient(t, base, "")
	if code, _, _ := anon.do("POST", disable, nil); code != 401 {
		t.Fatalf("anonymous: %d", code)
	}
	anon.token = "wrong-token"
	if code, body, _ := anon.do("GET", "/api/session", nil); code != 401 || body["error"] != "wrong token" {
		t.Fatalf("session with a wrong token: %d %v", code, body)
	}
	anon.token = testToken
	if _, body, _ := anon.do("GET", "/api/session", nil); body["auth"] != "token" {
		t.Fatalf("session with the token: %v", body)
	}
	if code, _, _ := anon.do("POST", "/api/lines/L1/chutes/4/disable", nil); code != 200 {
		t.Fatalf("token action: %d", code)
	}

	// Acknowledge an alarm: the session's name is who, whatever the body says.
	e.sim.EmergencyStop(true)
	defer e.sim.EmergencyStop(false)
	waitForLong(t, "e-stop alarm", 10*time.Second, func() bool { return findAlarm(e.line.Snapshot().Alarms, "L1/estop") != nil })
	if code, body, _ := anon.do("POST", "/api/alarms/L1/estop/ack", map[string]string{}); code != 400 {
		t.Fatalf("token ack without a name: %d %v", code, body)
	}
	if code, body, _ := alice.do("POST", "/api/alarms/L1/estop/ack", map[string]string{"by": "mallory"}); code != 200 || body["acked_by"] != "alice" {
		t.Fatalf("ack as alice: %d %v", code, body)
	}
	if a := findAlarm(getAlarms(t, e.gw).Active, "L1/estop"); a == nil || a.AckedBy != "alice" {
		t.Fatalf("/api/alarms after the ack: %+v", a)
	}

	// Logout: the cookie is cleared and the session is gone for good.
	oldCSRF := alice.csrf
	oldCookies := alice.hc.Jar.Cookies(res.Request.URL)
	if code, _, res := alice.do("POST", "/api/logout", nil); code != 200 || !strings.Contains(res.Header.Get("Set-Cookie"), "Max-Age=0") {
		t.Fatalf("logout: %d %q", code, res.Header.Get("Set-Cookie"))
	}
	replay := newAuthClient(t, base, "")
	replay.hc.Jar.SetCookies(res.Request.URL, oldCookies)
	replay.csrf = oldCSRF
	if code, _, _ := replay.do("POST", "/api/lines/L1/chutes/5/disable", nil); code != 401 {
		t.Fatalf("action with a logged-out session: %d", code)
	}

	// The journal has every action with its name and result, and the logins.
	var got []string
	for _, r := range kindRecords(t, e.journal, journal.KindOperatorAction, start) {
		got = append(got, r.By+" "+r.Cause+" "+r.Detail)
		if r.Detail == "" || r.By == "" {
			t.Errorf("operator record without detail or who: %+v", r)
		}
	}
	for _, want := range []string{
		"alice refused action=disable target=lines/L1/chutes/3 result=refused (missing or wrong CSRF token (X-CSRF-Token)) who=alice",
		"alice ok action=disable target=lines/L1/chutes/3 result=ok who=alice",
		"alice refused action=close target=lines/L1/chutes/3",
		"vic refused action=disable",
		"lena ok action=close target=lines/L1/chutes/3 result=ok who=lena",
		"token ok action=disable target=lines/L1/chutes/4",
		"token failed action=ack target=alarms/L1/estop result=failed (status 400)",
		"alice ok action=ack target=alarms/L1/estop result=ok who=alice",
	} {
		if !containsPrefix(got, want) {
			t.Errorf("journal lacks %q; has:\n%s", want, strings.Join(got, "\n"))
		}
	}
	var logins []string
	for _, r := range kindRecords(t, e.journal, journal.KindLogin, start) {
		logins = append(logins, r.Cause+" "+r.By)
	}
	for _, want := range []string{"failed alice", "failed mallory", "login alice", "login vic", "login lena", "logout alice"} {
		if !containsPrefix(logins, want) {
			t.Errorf("journal lacks login record %q; has %v", want, logins)
		}
	}
	for _, r := range kindRecords(t, e.journal, journal.KindOperatorAction, start) {
		if strings.Contains(r.Detail, "chutes/3") && (r.Line != "L1" || r.Chute != 3) {
			t.Errorf("record without line and chute: %+v", r)
		}
	}
	m := e.gw.authn.met
	if v := testutil.ToFloat64(m.actions.WithLabelValues("disable", "ok")); v != 2 {
		t.Errorf("disable ok = %v, want 2", v)
	}
	if v := testutil.ToFloat64(m.actions.WithLabelValues("close", "refused")); v != 1 {
		t.Errorf("close refused = %v, want 1", v)
	}
	if v := testutil.ToFloat64(m.failures.WithLabelValues("wrong")); v != 2 {
		t.Errorf("login failures = %v, want 2", v)
	}
}

func containsPrefix(list []string, prefix string) bool {
	for _, s := range list {
		if strings.HasPrefix(s, prefix) {
			return true
		}
	}
	return false
}

// lightGateway is a gateway over one line with an in-memory PLC link,
// served by httptest: for the refusals that never reach the sorter.
func lightGateway(t *testing.T, cfg Config) (*Gateway, string) {
	t.Helper()
	gw, srv := lightGatewayServer(t, cfg, httptest.NewServer)
	return gw, srv.URL
}

func lightGatewayServer(t *testing.T, cfg Config, serve func(http.Handler) *httptest.Server) (*Gateway, *httptest.Server) {
	t.Helper()
	link := newFakeLink()
	sc := &fixedScanners{st: []devices.ScannerStatus{{Name: "S1", State: devices.LinkUp, Online: true}}}
	m := NewMetrics()
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
	l, err := NewLine(LineConfig{Name: "L1", Chutes: 16}, link, sc, nil, m, log)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Listen = "127.0.0.1:0"
	gw, err := New(cfg, []*Line{l}, nil, m, log)
	if err != nil {
		t.Fatal(err)
	}
	srv := serve(gw.Handler())
	t.Cleanup(srv.Close)
	return gw, srv
}

// TestSessionCookieSecureOverTLS: over TLS the session cookie is Secure.
func TestSessionCookieSecureOverTLS(t *testing.T) {
	_, srv := lightGatewayServer(t, Config{OperatorsFile: writeOperators(t)}, httptest.NewTLSServer)
	c := newAuthClient(t, srv.URL, "")
	c.hc.Transport = srv.Client().Transport
	code, _, res := c.do("POST", "/api/login", LoginRequest{Name: "alice", PIN: "1234"})
	if sc := res.Header.Get("Set-Cookie"); code != 200 || !strings.Contains(sc, "; Secure") || !strings.Contains(sc, "HttpOnly") {
		t.Fatalf("login over TLS: %d, Set-Cookie %q", code, sc)
	}
}

// TestReadOnlyMode: read_only refuses every action, session and token
// alike; logins still work and /api/session says read_only.
func TestReadOnlyMode(t *testing.T) {
	_, base := lightGateway(t, Config{OperatorsFile: writeOperators(t), Token: testToken, ReadOnly: true})
	lena := newAuthClient(t, base, "")
	if code, _ := lena.login("lena", "5678"); code != 200 {
		t.Fatal("login")
	}
	if _, body, _ := lena.do("GET", "/api/session", nil); body["read_only"] != true || body["auth"] != "session" {
		t.Fatalf("session: %v", body)
	}
	tok := newAuthClient(t, base, "")
	tok.token = testToken
	anon := newAuthClient(t, base, "")
	for _, c := range []*authClient{lena, tok, anon} {
		for _, path := range []string{"/api/lines/L1/chutes/1/disable", "/api/reload", "/api/alarms/L1/estop/ack"} {
			if code, body, _ := c.do("POST", path, nil); code != 403 || body["error"] != "read-only mode" {
				t.Errorf("%s: %d %v, want 403 read-only mode", path, code, body)
			}
		}
	}
}

// TestNoAccountsConfigured: without an operators file the login is off
// and the page is told so; the token works as before.
func TestNoAccountsConfigured(t *testing.T) {
	_, base := lightGateway(t, Config{Token: testToken})
	c := newAuthClient(t, base, "")
	if code, _ := c.login("alice", "1234"); code != 403 {
		t.Fatalf("login without accounts: %d", code)
	}
	if _, body, _ := c.do("GET", "/api/session", nil); body["login_enabled"] != false || body["auth"] != "none" || body["token_enabled"] != true {
		t.Fatalf("session: %v", body)
	}
}

// TestLoginLockout: five failures lock the name (from any address) and
// the client address (for any name), with a 429 that says until when;
// the lock ends by itself.
func TestLoginLockout(t *testing.T) {
	gw, base := lightGateway(t, Config{OperatorsFile: writeOperators(t), LoginLockout: 500 * time.Millisecond})
	a := newAuthClient(t, base, "127.0.0.2")
	b := newAuthClient(t, base, "127.0.0.3")
	for i := range 5 {
		if code, _ := a.login("alice", "0000"); code != 401 {
			t.Fatalf("failure %d: %d", i+1, code)
		}
	}
	// The right PIN, locked: by name from another address…
	code, body := b.login("alice", "1234")
	if code != 429 || !strings.Contains(body["error"].(string), "locked until") || body["until"] == nil {
		t.Fatalf("locked name: %d %v", code, body)
	}
	// …and any name from the guessing address.
	if code, _ := a.login("lena", "5678"); code != 429 {
		t.Fatalf("locked address: %d", code)
	}
	// Another name from another address is not concerned.
	if code, _ := b.login("lena", "5678"); code != 200 {
		t.Fatalf("lena from b: %d", code)
	}
	if v := testutil.ToFloat64(gw.authn.met.failures.WithLabelValues("locked")); v != 2 {
		t.Errorf("locked failures = %v, want 2", v)
	}
	// The lock ends by itself.
	waitForLong(t, "lock to end", 5*time.Second, func() bool {
		code, _ := b.login("alice", "1234")
		return code == 200
	})
}

// TestSessionIdleExpiry: a session unused for longer than session_idle
// is gone.
func TestSessionIdleExpiry(t *testing.T) {
	gw, base := lightGateway(t, Config{OperatorsFile: writeOperators(t), SessionIdle: time.Hour})
	c := newAuthClient(t, base, "")
	if code, _ := c.login("alice", "1234"); code != 200 {
		t.Fatal("login")
	}
	// Age the session instead of moving the clock.
	gw.authn.mu.Lock()
	for _, s := range gw.authn.sessions {
		s.last = s.last.Add(-2 * time.Hour)
	}
	gw.authn.mu.Unlock()
	if _, body, _ := c.do("GET", "/api/session", nil); body["auth"] != "none" {
		t.Fatalf("expired session still known: %v", body)
	}
	if code, _, _ := c.do("POST", "/api/lines/L1/chutes/1/disable", nil); code != 401 {
		t.Fatalf("action with an expired session: %d", code)
	}
}

// TestActionRoles: the role table; an action it lacks needs a lead.
func TestActionRoles(t *testing.T) {
	for path, want := range map[string]operators.Role{
		"/api/lines/L1/chutes/3/disable":    operators.Technician,
		"/api/lines/L1/chutes/3/enable":     operators.Technician,
		"/api/alarms/L1/estop/ack":          operators.Technician,
		"/api/alarms/L1/scanner/S1/shelve":  operators.Technician,
		"/api/lines/L1/chutes/3/close":      operators.Lead,
		"/api/lines/L1/reload":              operators.Lead,
		"/api/reload":                       operators.Lead,
		"/api/lines/L1/containers/x/depart": operators.Lead,
		"/api/lines/L1/chutes/3/explode":    operators.Lead,
	} {
		r := httptest.NewRequest("POST", path, nil)
		if got := actionRole(requestAction(r)); got != want {
			t.Errorf("%s needs %v, want %v", path, got, want)
		}
	}
}

// TestLoginAndAckInBrowser: a technician logs in through the page's
// dialog and acknowledges an alarm with the page's fetch helper; the
// alarm then says who.
func TestLoginAndAckInBrowser(t *testing.T) {
	ctx := browser(t)
	ops := writeOperators(t)
	e := startE2E(t, e2eConfig{Protocol: "modbus", Chutes: 16,
		Gateway: func(g *Config) { g.OperatorsFile = ops }}, testToken)
	e.sim.EmergencyStop(true)
	defer e.sim.EmergencyStop(false)
	waitForLong(t, "e-stop alarm", 10*time.Second, func() bool { return findAlarm(e.line.Snapshot().Alarms, "L1/estop") != nil })

	if err := chromedp.Do(ctx, chromedp.Navigate("http://"+e.gw.Addr()+"/")); err != nil {
		t.Fatal(err)
	}
	evalUntil(t, ctx, "not logged in", `document.querySelector("#auth-state").textContent === "not logged in"`)
	evalUntil(t, ctx, "login offered", `document.querySelector("#login-btn").textContent === "Log in"`)
	// A data-action button, as the page renders them, is off while nobody is logged in.
	probe := `(document.querySelector("#probe") || (() => { const b = document.createElement("button"); b.id = "probe"; b.dataset.action = "disable"; document.body.append(b); return b; })())`
	evalUntil(t, ctx, "action button off", probe+`.disabled === true`)
	// A wrong PIN is said in the dialog.
	login := func(pin string) {
		t.Helper()
		if err := chromedp.Do(ctx,
			chromedp.Click(chromedp.CSS(`#login-btn`)),
			chromedp.WaitVisible(chromedp.CSS(`#login-dialog`)),
		); err != nil {
			t.Fatal(err)
		}
		if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.querySelector("#login-name").value = ""; document.querySelector("#login-pin").value = ""; true`)); err != nil {
			t.Fatal(err)
		}
		if err := chromedp.Do(ctx,
			chromedp.SendKeys(chromedp.CSS(`#login-name`), "alice"),
			chromedp.SendKeys(chromedp.CSS(`#login-pin`), pin),
			chromedp.Click(chromedp.CSS(`#login-dialog button[type="submit"]`)),
		); err != nil {
			t.Fatal(err)
		}
	}
	login("9999")
	evalUntil(t, ctx, "wrong PIN shown", `document.querySelector("#login-error").textContent.includes("wrong name or PIN")`)
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#login-cancel`))); err != nil {
		t.Fatal(err)
	}
	login("1234")
	evalUntil(t, ctx, "logged in", `document.querySelector("#auth-state").textContent === "alice (technician)"`)
	evalUntil(t, ctx, "session exposed", `window.sortgwSession && window.sortgwSession.name === "alice" && window.sortgwSession.csrf.length > 20`)
	evalUntil(t, ctx, "cookie not readable by scripts", `!document.cookie.includes("sortgw_session")`)
	evalUntil(t, ctx, "action button on", probe+`.disabled === false`)
	// The page's helper acknowledges with the session's headers.
	evalUntil(t, ctx, "ack sent", `(window.ackStarted || (window.ackStarted = true, window.sortgwFetch("/api/alarms/L1/estop/ack", {method: "POST", body: "{}"}).then(r => window.ackStatus = r.status)), window.ackStatus === 200)`)
	a := findAlarm(getAlarms(t, e.gw).Active, "L1/estop")
	if a == nil || a.AckedBy != "alice" {
		t.Fatalf("alarm after the ack in the browser: %+v", a)
	}
	// Logging out turns the page back.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#login-btn`))); err != nil {
		t.Fatal(err)
	}
	evalUntil(t, ctx, "logged out", `document.querySelector("#auth-state").textContent === "not logged in"`)
	evalUntil(t, ctx, "action button off again", probe+`.disabled === true`)
	// A token is checked as soon as it is entered.
	enter := func(tok string) {
		t.Helper()
		if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.querySelector("#token").value = `+jsString(tok)+`; document.querySelector("#token").dispatchEvent(new Event("change")); true`)); err != nil {
			t.Fatal(err)
		}
	}
	enter("not-the-token")
	evalUntil(t, ctx, "token rejected", `document.querySelector("#auth-state").textContent === "token rejected"`)
	enter(testToken)
	evalUntil(t, ctx, "token accepted", `document.querySelector("#auth-state").textContent === "token" && `+probe+`.disabled === false`)
}

// TestOperatorsFileReload: an account added while the gateway runs can
// log in; a role taken away applies to the open session; a file broken
// while running leaves the accounts loaded before in force.
func TestOperatorsFileReload(t *testing.T) {
	ops := writeOperators(t)
	gw, base := lightGateway(t, Config{OperatorsFile: ops})
	alice := newAuthClient(t, base, "")
	if code, _ := alice.login("alice", "1234"); code != 200 {
		t.Fatal("alice login")
	}
	if _, err := operators.Add(ops, "bob", operators.Technician, "2468", operators.MinIterations, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := operators.Add(ops, "alice", operators.Viewer, "1234", operators.MinIterations, nil); err != nil {
		t.Fatal(err)
	}
	// Polled through alice's session: failed logins would lock bob out.
	waitForLong(t, "the changed file to be read", 5*time.Second, func() bool {
		_, body, _ := alice.do("GET", "/api/session", nil)
		return body["role"] == "viewer"
	})
	if code, _ := newAuthClient(t, base, "").login("bob", "2468"); code != 200 {
		t.Fatalf("bob's login: %d", code)
	}
	if code, _, _ := alice.do("POST", "/api/lines/L1/chutes/1/disable", nil); code != 403 {
		t.Fatalf("alice acts as a viewer: %d", code)
	}
	b, err := os.ReadFile(ops)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ops, append(b, "broken line\n"...), 0o600); err != nil {
		t.Fatal(err)
	}
	// The broken file is noticed and ignored: bob stays.
	waitForLong(t, "the broken file to be noticed", 5*time.Second, func() bool {
		alice.do("GET", "/api/session", nil)
		gw.authn.ops.mu.Lock()
		defer gw.authn.ops.mu.Unlock()
		return strings.Contains(gw.authn.ops.lastError, ":6: line: want name:role:hash")
	})
	if code, _ := newAuthClient(t, base, "").login("bob", "2468"); code != 200 {
		t.Fatalf("bob refused after the file broke: %d", code)
	}
}
