package gateway

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"sortgw/gateway/journal"
)

const testToken = "test-token-0123456789abcdef"

// browser starts headless chromium with a fresh profile.
func browser(t *testing.T) context.Context {
	t.Helper()
	const exe = "/usr/bin/chromium"
	if _, err := os.Stat(exe); err != nil {
		// CI sets SORTGW_REQUIRE_BROWSER after installing chromium, so a
		// failed install fails the run instead of skipping this test.
		if os.Getenv("SORTGW_REQUIRE_BROWSER") != "" {
			t.Fatalf("chromium required (SORTGW_REQUIRE_BROWSER) but %s: %v", exe, err)
		}
		t.Skip("chromium not installed")
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 1000),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelB := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancelB()
		cancelA()
	})
	return ctx
}

// evalUntil evaluates js until it returns true (bounded).
func evalUntil(t *testing.T, ctx context.Context, what, js string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](js))
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

func TestStatusPageInBrowser(t *testing.T) {
	ctx := browser(t)
	e := startE2E(t, e2eConfig{Protocol: "modbus", Rate: 40, Chutes: 64}, testToken)
	e.sim.SetRate(40)
	url := "http://" + e.gw.Addr() + "/"

	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		t.Fatal(err)
	}
	title, err := chromedp.Run(ctx, chromedp.Title())
	if err != nil {
		t.Fatal(err)
	}
	// "(1) sortgw status" is right too when an alarm is up: a busy
	// machine can raise one at start (the page's own test of the count
	// is in webpage_test.go).
	if !regexp.MustCompile(`^(\([0-9]+\) )?sortgw status$`).MatchString(title) {
		t.Fatalf("title %q", title)
	}
	evalUntil(t, ctx, "live updates", `document.querySelector("#live").textContent === "live"`)
	// Live counters move: the reads tile changes under our eyes.
	// Read through JS: the page replaces these nodes every second, so a
	// DOM node id from a query may be stale by the time it is used.
	first, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('section.line [data-f="window"]').textContent`))
	if err != nil {
		t.Fatal(err)
	}
	evalUntil(t, ctx, "reads counter to move",
		`document.querySelector('section.line [data-f="window"]').textContent !== `+jsString(first))
	evalUntil(t, ctx, "recent items", `document.querySelectorAll('[data-i="rows"] tr[data-seq]').length > 3`)

	// Without the token the action is refused.
	disable := func() {
		t.Helper()
		if err := chromedp.Do(ctx,
			chromedp.Click(chromedp.CSS(`[data-f="chutes"] [data-chute="1"]`)),
			chromedp.WaitVisible(chromedp.CSS(`#chute-dialog`)),
			chromedp.Click(chromedp.CSS(`#chute-dialog button[value="disable"]`)),
		); err != nil {
			t.Fatal(err)
		}
	}
	disable()
	evalUntil(t, ctx, "refusal shown", `document.querySelector("#msg").textContent.includes("refused")`)
	if e.line.Snapshot().Chutes[0].TechDisabled {
		t.Fatal("chute disabled without a token")
	}

	// With the token the chute is disabled, and the page shows it.
	if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.CSS(`#token`), testToken)); err != nil {
		t.Fatal(err)
	}
	evalUntil(t, ctx, "token stored", `document.querySelector("#token").dispatchEvent(new Event("change")) && sessionStorage.getItem("sortgw-token") !== null`)
	disable()
	evalUntil(t, ctx, "action done", `document.querySelector("#msg").textContent.includes("disable done")`)
	disabledAt := time.Now()
	if !e.line.Snapshot().Chutes[0].TechDisabled {
		t.Fatal("chute 1 not disabled")
	}
	evalUntil(t, ctx, "chute tile disabled", `document.querySelector('[data-chute="1"]').classList.contains("disabled")`)

	// The next decisions avoid chute 1.
	var after []journal.Record
	waitForLong(t, "decisions after the disable", 30*time.Second, func() bool {
		if err := e.journal.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		recs, err := e.journal.Range(disabledAt, time.Now().Add(time.Hour), 0)
		if err != nil {
			t.Fatal(err)
		}
		after = after[:0]
		for _, r := range recs {
			if r.Kind == journal.KindDecision {
				after = append(after, r)
			}
		}
		return len(after) >= 30
	})
	for _, r := range after {
		if r.Chute == 1 {
			t.Fatalf("tid %d decided to the disabled chute 1", r.TID)
		}
	}
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func TestHTTPEndpoints(t *testing.T) {
	e := startE2E(t, e2eConfig{Protocol: "modbus", Rate: 20, Chutes: 32}, testToken)
	e.sim.SetRate(20)
	base := "http://" + e.gw.Addr()
	get := func(path string) (int, string) {
		t.Helper()
		res, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	post := func(path, token string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, base+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	tests := []struct {
		name string
		do   func() int
		code int
	}{
		{"healthz", func() int { c, _ := get("/healthz"); return c }, 200},
		{"readyz", func() int { c, _ := get("/readyz"); return c }, 200},
		{"status.json", func() int { c, _ := get("/status.json"); return c }, 200},
		{"no training panel in production", func() int { c, _ := get("/api/training"); return c }, 404},
		{"no training fault in production", func() int { return post("/api/training/estop", testToken) }, 404},
		{"training fault needs the token", func() int { return post("/api/training/estop", "") }, 401},
		{"page", func() int { c, _ := get("/"); return c }, 200},
		{"static", func() int { c, _ := get("/static/app.js"); return c }, 200},
		{"action without token", func() int { return post("/api/lines/L1/chutes/3/disable", "") }, 401},
		{"action with a wrong token", func() int { return post("/api/lines/L1/chutes/3/disable", "nope") }, 401},
		{"action with the token", func() int { return post("/api/lines/L1/chutes/3/disable", testToken) }, 200},
		{"close container", func() int { return post("/api/lines/L1/chutes/3/close", testToken) }, 200},
		{"no such chute", func() int { return post("/api/lines/L1/chutes/999/disable", testToken) }, 404},
		{"no such line", func() int { return post("/api/lines/X/chutes/1/disable", testToken) }, 404},
		{"reload without plan file", func() int { return post("/api/lines/L1/reload", testToken) }, 422},
		{"manifests csv", func() int { c, _ := get("/api/lines/L1/manifests?format=csv&container=L1-C3-1"); return c }, 200},
		{"items without q: the recent list", func() int { c, _ := get("/api/items"); return c }, 200},
		{"items with a bad cursor", func() int { c, _ := get("/api/items?before=x"); return c }, 400},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.do(); got != tc.code {
				t.Fatalf("status %d, want %d", got, tc.code)
			}
		})
	}
	// The JSON and the page render the same snapshot type.
	_, body := get("/status.json")
	var s Snapshot
	if err := json.Unmarshal([]byte(body), &s); err != nil || len(s.Lines) != 1 || !s.Lines[0].Chutes[2].TechDisabled {
		t.Fatalf("status.json: %v %+v", err, s.Lines)
	}
	// Search by TID finds the item's records.
	waitFor(t, "an outcome", func() bool { return len(e.line.Snapshot().Recent) > 0 })
	tid := e.line.Snapshot().Recent[0].TID
	if err := e.journal.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, body = get("/api/items?q=" + strconvU(tid))
	var items ItemsPage
	if err := json.Unmarshal([]byte(body), &items); err != nil || len(items.Items) == 0 || items.Items[0].TID != tid {
		t.Fatalf("search %d: %v %s", tid, err, body)
	}
	// Metrics are clean for promtool's linter.
	probs, err := testutil.GatherAndLint(e.gw.met.Registry)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range probs {
		t.Errorf("metric %s: %s", p.Metric, p.Text)
	}
	_, metrics := get("/metrics")
	for _, name := range []string{"sortgw_decisions_total", "sortgw_read_to_confirmation_seconds_bucket", "sortgw_link_up", "sortgw_plc_ring_outstanding"} {
		if !strings.Contains(metrics, name) {
			t.Errorf("metrics lack %s", name)
		}
	}
}

func strconvU(v uint32) string {
	b, _ := json.Marshal(v)
	return string(b)
}
