package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	stdpng "image/png"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"sortgw/devices/modbus"
	fieldbussim "sortgw/fieldbus-sim"
)

// pageSizes are the layouts the status page is made for: a 1280x800
// panel PC, a 1024x768 tablet and an 800x1280 portrait tablet.
var pageSizes = []struct {
	name string
	w, h int64
}{{"1280x800", 1280, 800}, {"1024x768", 1024, 768}, {"800x1280", 800, 1280}}

// startPageE2E is the emulator e2e with a link that notices a dead PLC
// quickly, chutes that stay full only when the test says so, and items
// flowing.
func startPageE2E(t *testing.T) *e2e { return startPageE2EWith(t, true) }

// startPageE2EWith: fastLink false keeps the link's default timeouts (a
// busy machine does not flap it: for the screenshots).
func startPageE2EWith(t *testing.T, fastLink bool) *e2e {
	t.Helper()
	c := e2eConfig{Protocol: "modbus", Chutes: 48, Sim: func(c *fieldbussim.Config) {
		c.Conveyor.EmptyAfter = 0
	}}
	if fastLink {
		c.Modbus = func(c *modbus.Config) {
			c.Timeout, c.BackoffMin, c.BackoffMax = 300*time.Millisecond, 20*time.Millisecond, 100*time.Millisecond
		}
	}
	e := startE2E(t, c, testToken)
	// The site's shifts, published to the line as Gateway.New does.
	shifts := []Shift{{"early", "06:00"}, {"late", "14:00"}, {"night", "22:00"}}
	e.line.shifts.Store(&shifts)
	e.sim.SetRate(20)
	return e
}

// openPage loads the page at a size and waits for its first live data.
func openPage(t *testing.T, ctx context.Context, addr string, w, h int64) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(w, h), chromedp.Navigate("http://"+addr+"/")); err != nil {
		t.Fatal(err)
	}
	evalUntil(t, ctx, "live updates", `document.querySelector("#live").textContent === "live"`)
}

// TestBrowserEStop: an e-stop on the emulated sorter shows the stopped
// condition in the header and on the line, in colour, the sorter state in
// colour, and the alarm on top with what to do; the tab title counts it.
func TestBrowserEStop(t *testing.T) {
	ctx := browser(t)
	e := startPageE2E(t)
	openPage(t, ctx, e.gw.Addr(), 1280, 800)
	evalUntil(t, ctx, "shift counters", `/(early|late|night) from \d\d:\d\d/.test(document.querySelector('[data-f="shift"]').textContent)`)
	evalUntil(t, ctx, "sorting, grey", `document.querySelector("#gw-cond").textContent === "sorting" && document.querySelector("#gw-cond").className === "badge big "`)
	e.sim.EmergencyStop(true)
	evalUntil(t, ctx, "header stopped in red", `(() => { const c = document.querySelector("#gw-cond"); return c.textContent === "stopped" && c.classList.contains("bad"); })()`)
	evalUntil(t, ctx, "line stopped in red with the reason", `(() => {
		const c = document.querySelector('[data-f="cond"]');
		return c.textContent === "stopped" && c.classList.contains("bad") && document.querySelector('[data-f="reasons"]').textContent.includes("emergency stop"); })()`)
	evalUntil(t, ctx, "sorter state in red", `[...document.querySelectorAll('[data-f="sorter"] .badge')].some((b) => b.textContent === "emergency stop" && b.classList.contains("bad"))`)
	evalUntil(t, ctx, "alarm on top with its action", `(() => {
		const a = document.querySelector("#alarms");
		return !a.hidden && a.textContent.includes("emergency stop") && a.textContent.includes("release the e-stop") &&
			a.getBoundingClientRect().top < document.querySelector("#lines").getBoundingClientRect().top; })()`)
	evalUntil(t, ctx, "alarm count in the title and header", `document.title.startsWith("(") && document.querySelector("#alarm-count").classList.contains("bad")`)
	// Acknowledge from the page: with the token, in the name typed in.
	if err := chromedp.Do(ctx,
		chromedp.Evaluate[chromedp.Void](`sessionStorage.setItem("sortgw-token", `+jsString(testToken)+`)`),
		chromedp.Click(chromedp.CSS(`#alarm-list [data-ack="L1/estop"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#ack-dialog`)),
		chromedp.SendKeys(chromedp.CSS(`#ack-by`), "ana"),
		chromedp.Click(chromedp.CSS(`#ack-dialog button[value="ok"]`)),
	); err != nil {
		t.Fatal(err)
	}
	evalUntil(t, ctx, "acked by ana on the page", `document.querySelector("#alarm-list").textContent.includes("acked by ana") && !document.querySelector('[data-ack="L1/estop"]')`)
	if a := findAlarm(getAlarms(t, e.gw).Active, "L1/estop"); a == nil || a.AckedBy != "ana" || a.State != "acked" {
		t.Errorf("/api/alarms: %+v, want L1/estop acked by ana", a)
	}
	e.sim.EmergencyStop(false)
	evalUntil(t, ctx, "sorting again", `document.querySelector("#gw-cond").textContent === "sorting"`)
}

// TestBrowserPLCLinkDown: a PLC that stops answering gives a banner with
// the cause, since when and the next step; the sorter state and the chute
// tiles show unknown in grey; after the link recovers the banner goes and
// the link events stay listed.
func TestBrowserPLCLinkDown(t *testing.T) {
	ctx := browser(t)
	e := startPageE2E(t)
	openPage(t, ctx, e.gw.Addr(), 1024, 768)
	if err := e.sim.SetModbusFault(fieldbussim.FaultNeverAccept, true); err != nil {
		t.Fatal(err)
	}
	waitForLong(t, "link down with a cause", 10*time.Second, func() bool {
		s := e.line.Snapshot()
		return !s.Link.Up && s.PLC.LastError != ""
	})
	cause := e.line.Snapshot().PLC.LastError
	evalUntil(t, ctx, "banner with cause, since and next step", `(() => {
		const b = document.querySelector('[data-f="banner"]');
		return !b.hidden && b.textContent.includes(`+jsString(cause)+`) && b.textContent.includes(" since ") && b.textContent.includes("Next step:"); })()`)
	evalUntil(t, ctx, "sorter state unknown, grey", `(() => {
		const dd = document.querySelector('[data-f="sorter"] dd');
		const u = dd.querySelector(".unknown");
		return u !== null && u.textContent === "unknown" && dd.querySelector(".badge.bad") === null &&
			getComputedStyle(u).color === "rgb(89, 97, 107)"; })()`)
	evalUntil(t, ctx, "chute tiles unknown", `[...document.querySelectorAll('[data-f="chutes"] [data-chute]')].every((b) => b.classList.contains("unknown") || b.classList.contains("disabled"))`)
	if err := e.sim.SetModbusFault(fieldbussim.FaultNeverAccept, false); err != nil {
		t.Fatal(err)
	}
	evalUntil(t, ctx, "banner gone, events kept", `(() => {
		const ev = document.querySelector('[data-f="link-events"]').textContent;
		return document.querySelector('[data-f="banner"]').hidden && ev.includes("→ up") && ev.includes("down"); })()`)
	evalUntil(t, ctx, "chute tiles known again", `![...document.querySelectorAll('[data-f="chutes"] [data-chute]')].some((b) => b.classList.contains("unknown"))`)
}

// TestBrowserGatewayGone: when the page loses the gateway everything
// greys out with "no data since", and the tab title says so.
func TestBrowserGatewayGone(t *testing.T) {
	ctx := browser(t)
	e := startPageE2E(t)
	// The page reaches the gateway through a proxy the test can cut.
	u, _ := url.Parse("http://" + e.gw.Addr())
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.FlushInterval = -1
	cut := make(chan struct{})
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-cut:
			http.Error(w, "gone", http.StatusBadGateway)
			return
		default:
		}
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		go func() {
			select {
			case <-cut:
				cancel()
			case <-ctx.Done():
			}
		}()
		rp.ServeHTTP(w, r.WithContext(ctx))
	}))
	defer proxy.Close()
	openPage(t, ctx, strings.TrimPrefix(proxy.URL, "http://"), 1280, 800)
	close(cut)
	evalUntil(t, ctx, "greyed with no data since", `(() => {
		const g = document.querySelector("#gone");
		return document.body.classList.contains("stale") && !g.hidden && /\d\d:\d\d:\d\d/.test(g.textContent) &&
			document.title.startsWith("no data since ") && getComputedStyle(document.querySelector("main")).filter.includes("grayscale"); })()`)
}

// TestBrowserNoOverflow: at the three sizes no page is wider than the
// viewport, and below 900 px the cards are one column.
func TestBrowserNoOverflow(t *testing.T) {
	ctx := browser(t)
	e := startPageE2E(t)
	// The tiles of the real line cover every outcome of their window.
	waitForLong(t, "outcomes", 20*time.Second, func() bool { return e.line.Snapshot().PerMinute.Outcomes > 50 })
	s := e.line.Snapshot()
	var sum uint64
	for _, ti := range s.Tiles.Tiles {
		sum += ti.Count
	}
	if sum != s.Tiles.Total || s.Tiles.Total != s.PerMinute.Outcomes {
		t.Errorf("tiles %d, total %d, outcomes in the window %d: want all equal", sum, s.Tiles.Total, s.PerMinute.Outcomes)
	}
	for _, sz := range pageSizes {
		t.Run(sz.name, func(t *testing.T) {
			openPage(t, ctx, e.gw.Addr(), sz.w, sz.h)
			evalUntil(t, ctx, "recent items", `document.querySelectorAll('[data-i="rows"] tr[data-seq]').length > 3`)
			type layout struct {
				Scroll int      `json:"scroll"`
				Inner  int      `json:"inner"`
				Cols   int      `json:"cols"`
				Wide   []string `json:"wide"`
			}
			res, err := chromedp.Run(ctx, chromedp.Evaluate[layout](`(() => {
				const wide = [...document.querySelectorAll("body *")].filter((e) => e.getBoundingClientRect().right > innerWidth + 1 &&
					!e.closest(".scroll") && getComputedStyle(e).position !== "fixed").slice(0, 5).map((e) => e.tagName + "." + e.className);
				return {scroll: document.documentElement.scrollWidth, inner: innerWidth,
					cols: getComputedStyle(document.querySelector(".cards")).gridTemplateColumns.split(" ").length, wide}; })()`))
			if err != nil {
				t.Fatal(err)
			}
			if res.Scroll > res.Inner {
				t.Errorf("horizontal overflow: scrollWidth %d > innerWidth %d (wide: %v)", res.Scroll, res.Inner, res.Wide)
			}
			if want := sz.w < 900; want != (res.Cols == 1) {
				t.Errorf("%d card columns at %d px", res.Cols, sz.w)
			}
		})
	}
}

// TestBrowserRefusedAction: a refused action shows its message inside
// the viewport, even scrolled to the bottom of a tall page, without
// moving the layout; a chute disabled at the PLC is not offered "Enable"
// and the server refuses such an enable with 409.
func TestBrowserRefusedAction(t *testing.T) {
	ctx := browser(t)
	e := startPageE2E(t)
	e.sim.SetChuteDisabled(5, true)
	waitForLong(t, "chute 5 disabled at the PLC", 10*time.Second, func() bool { return e.line.Snapshot().Chutes[4].PLCDisabled })
	openPage(t, ctx, e.gw.Addr(), 800, 1280)

	// Without a token: refused, in view.
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`document.querySelector('[data-chute="1"]').scrollIntoView({block: "end"})`)); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`[data-f="chutes"] [data-chute="1"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#chute-dialog`)),
		chromedp.Click(chromedp.CSS(`#chute-dialog button[value="disable"]`)),
	); err != nil {
		t.Fatal(err)
	}
	evalUntil(t, ctx, "refusal in the viewport", `(() => {
		const m = document.querySelector("#msg"), r = m.getBoundingClientRect();
		// Fixed: out of the flow, so showing it moves nothing on the page.
		return !m.hidden && m.textContent.startsWith("refused") && getComputedStyle(m).position === "fixed" &&
			r.top >= 0 && r.bottom <= innerHeight && r.left >= 0 && r.right <= innerWidth; })()`)
	// A wrong token: refused, and the header never says actions enabled.
	if err := chromedp.Do(ctx,
		chromedp.Evaluate[chromedp.Void](`(() => { const i = document.querySelector("#token"); i.value = "wrong-token-0123456789"; i.dispatchEvent(new Event("change")); })()`),
		chromedp.Evaluate[chromedp.Void](`document.querySelector("#msg").hidden = true`),
		chromedp.Click(chromedp.CSS(`[data-f="chutes"] [data-chute="1"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#chute-dialog`)),
		chromedp.Click(chromedp.CSS(`#chute-dialog button[value="disable"]`)),
	); err != nil {
		t.Fatal(err)
	}
	evalUntil(t, ctx, "wrong token refused, header not claiming actions", `(() => {
		const m = document.querySelector("#msg");
		return !m.hidden && m.textContent.includes("refused") && !document.querySelector("#who").textContent.includes("actions enabled"); })()`)
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`(() => { const i = document.querySelector("#token"); i.value = ""; i.dispatchEvent(new Event("change")); })()`)); err != nil {
		t.Fatal(err)
	}

	// Chute 5, disabled at the PLC: the dialog says so, offers no Enable.
	if err := chromedp.Do(ctx,
		chromedp.Evaluate[chromedp.Void](`document.querySelector('[data-chute="5"]').click()`),
		chromedp.WaitVisible(chromedp.CSS(`#chute-dialog`)),
	); err != nil {
		t.Fatal(err)
	}
	evalUntil(t, ctx, "dialog says disabled at the PLC", `(() => {
		const d = document.querySelector("#chute-dialog");
		return !document.querySelector("#cd-plc").hidden && document.querySelector("#cd-plc").textContent.includes("Disabled at the PLC") &&
			d.querySelector('button[value="enable"]').hidden && d.querySelector('button[value="disable"]').hidden; })()`)
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`document.querySelector("#chute-dialog").close("cancel")`)); err != nil {
		t.Fatal(err)
	}
	// The server refuses that enable clearly, whatever the page offers.
	code, msg := postAction(t, e.gw.Addr(), "/api/lines/L1/chutes/5/enable")
	if code != http.StatusConflict || !strings.Contains(msg, "disabled at the PLC") {
		t.Errorf("enable a PLC-disabled chute: %d %q, want 409 naming the PLC", code, msg)
	}
	code, msg = postAction(t, e.gw.Addr(), "/api/lines/L1/chutes/6/enable")
	if code != http.StatusConflict || !strings.Contains(msg, "not disabled") {
		t.Errorf("enable a chute nobody disabled: %d %q, want 409", code, msg)
	}
	// A technician's disable is listed with who and since when.
	req, _ := http.NewRequest(http.MethodPost, "http://"+e.gw.Addr()+"/api/lines/L1/chutes/7/disable", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	req.Header.Set("X-Sortgw-By", "ana")
	if res, err := http.DefaultClient.Do(req); err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("disable 7: %v %v", res, err)
	} else {
		res.Body.Close()
	}
	evalUntil(t, ctx, "disabled list with who and since", `(() => {
		const t = document.querySelector('[data-f="chute-lists"]').textContent;
		return /chute 7( \([^)]*\))? since \d\d:\d\d:\d\d, by ana/.test(t) && /chute 5( \([^)]*\))? since \d\d:\d\d:\d\d, by PLC/.test(t); })()`)
	if code, _ := postAction(t, e.gw.Addr(), "/api/lines/L1/chutes/7/enable"); code != http.StatusOK {
		t.Errorf("enable a chute a technician disabled: %d", code)
	}
}

// TestBrowserConfirmDialog: closing a container asks in an in-page
// dialog; cancelled, nothing is closed.
func TestBrowserConfirmDialog(t *testing.T) {
	ctx := browser(t)
	e := startPageE2E(t)
	openPage(t, ctx, e.gw.Addr(), 1280, 800)
	if err := chromedp.Do(ctx,
		chromedp.Evaluate[chromedp.Void](`sessionStorage.setItem("sortgw-token", `+jsString(testToken)+`)`),
		chromedp.Evaluate[chromedp.Void](`document.querySelector('[data-chute="2"]').click()`),
		chromedp.WaitVisible(chromedp.CSS(`#chute-dialog`)),
		chromedp.Evaluate[chromedp.Void](`document.querySelector('#chute-dialog button[value="close"]').click()`),
	); err != nil {
		t.Fatal(err)
	}
	evalUntil(t, ctx, "confirmation asked", `document.querySelector("#confirm-dialog").open && document.querySelector("#cf-title").textContent.includes("L1-C2-")`)
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`document.querySelector('#confirm-dialog button[value="cancel"]').click()`)); err != nil {
		t.Fatal(err)
	}
	evalUntil(t, ctx, "cancel said", `document.querySelector("#msg").textContent.includes("cancelled")`)
	ms, err := e.line.Manifests(context.Background(), "", "")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if m.Chute == 2 && m.Cause == "technician" {
			t.Fatalf("container closed without confirmation: %+v", m)
		}
	}
	if err := chromedp.Do(ctx,
		chromedp.Evaluate[chromedp.Void](`document.querySelector('[data-chute="2"]').click()`),
		chromedp.WaitVisible(chromedp.CSS(`#chute-dialog`)),
		chromedp.Evaluate[chromedp.Void](`document.querySelector('#chute-dialog button[value="close"]').click()`),
	); err != nil {
		t.Fatal(err)
	}
	evalUntil(t, ctx, "confirmation asked again", `document.querySelector("#confirm-dialog").open`)
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`document.querySelector('#cf-ok').click()`)); err != nil {
		t.Fatal(err)
	}
	evalUntil(t, ctx, "closed", `document.querySelector("#msg").textContent.includes("close") && document.querySelector("#msg").textContent.includes("done")`)
}

func postAction(t *testing.T, addr, path string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+path, nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var e apiError
	_ = json.NewDecoder(res.Body).Decode(&e)
	return res.StatusCode, e.Error
}

// TestPageScreenshots writes the page at the three sizes, in normal
// operation and in an e-stop, into $SORTGW_SCREENSHOTS (docs/screenshots
// in the repository). Not run unless the variable is set.
func TestPageScreenshots(t *testing.T) {
	dir := os.Getenv("SORTGW_SCREENSHOTS")
	if dir == "" {
		// In CI: the same shots into a scratch folder, checked below, so
		// the command that refreshes docs/screenshots keeps working.
		dir = t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx := browser(t)
	e := startPageE2EWith(t, false)
	e.sim.SetChuteFull(3, true)
	e.sim.SetChuteDisabled(9, true)
	if code, _ := postAction(t, e.gw.Addr(), "/api/lines/L1/chutes/12/disable"); code != http.StatusOK {
		t.Fatalf("disable 12: %d", code)
	}
	waitForLong(t, "a minute's worth of outcomes", 30*time.Second, func() bool { return e.line.Snapshot().Tiles.Total > 100 })
	for _, state := range []string{"normal", "estop"} {
		if state == "estop" {
			e.sim.EmergencyStop(true)
			waitForLong(t, "stopped", 10*time.Second, func() bool { return e.line.Snapshot().Condition == CondStopped })
		}
		for _, sz := range pageSizes {
			openPage(t, ctx, e.gw.Addr(), sz.w, sz.h)
			if state == "estop" {
				evalUntil(t, ctx, "alarm shown", `!document.querySelector("#alarms").hidden`)
			}
			png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
			if err != nil {
				t.Fatal(err)
			}
			name := filepath.Join(dir, "status-"+state+"-"+strconv.FormatInt(sz.w, 10)+"x"+strconv.FormatInt(sz.h, 10)+".png")
			if img, err := stdpng.DecodeConfig(bytes.NewReader(png)); err != nil || int64(img.Width) != sz.w || int64(img.Height) != sz.h {
				t.Fatalf("%s: screenshot %dx%d (%v), want %dx%d", name, img.Width, img.Height, err, sz.w, sz.h)
			}
			if err := os.WriteFile(name, png, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	e.sim.EmergencyStop(false)
}
