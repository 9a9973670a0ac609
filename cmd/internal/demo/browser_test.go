package demo

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// browser starts headless chromium with a fresh profile (as
// gateway/web_test.go's helper of the same name).
func browser(t *testing.T) context.Context {
	t.Helper()
	const exe = "/usr/bin/chromium"
	if _, err := os.Stat(exe); err != nil {
		if os.Getenv("SORTGW_REQUIRE_BROWSER") != "" {
			t.Fatalf("chromium required (SORTGW_REQUIRE_BROWSER) but %s: %v", exe, err)
		}
		t.Skip("chromium not installed")
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe), chromedp.Flag("headless", true), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true), chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 1000),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelB := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelB(); cancelA() })
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

// TestTrainingPanelInBrowser: the demo's page shows the labelled, hatched
// training panel with a switch and a help line per fault; a switch
// without the token is refused in view and springs back; with the token
// it switches the emulated scanner off and on.
func TestTrainingPanelInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end demo in a browser: skipped with -short")
	}
	const tok = "demo-browser-token"
	d, url := startDemo(t, tok)
	ctx := browser(t)
	if err := chromedp.Do(ctx, chromedp.Navigate(url+"/")); err != nil {
		t.Fatal(err)
	}
	evalUntil(t, ctx, "training panel shown", `(() => { const s = document.getElementById("training");
		return !!s && !s.hidden && s.querySelector("h3").textContent.includes("TRAINING — emulated sorter only") &&
			document.querySelectorAll("#training-faults li input[role=switch]").length === 5 &&
			document.querySelectorAll("#training-faults .training-help").length === 5 &&
			getComputedStyle(s).backgroundImage.includes("repeating-linear-gradient"); })()`)
	const sw = `document.querySelector('#training-faults input[data-tid="scanner-off"]')`
	// No token: refused, in view, and the switch springs back, even when
	// the page grew above the panel meanwhile (an alarm banner: the first
	// CI run that failed here had its PLC link go down under load).
	const grow = `document.body.prepend(Object.assign(document.createElement("div"), {id: "pushdown", style: "height: 3000px"}));`
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[any](grow+sw+`.click(); true`)); err != nil {
		t.Fatal(err)
	}
	evalUntil(t, ctx, "refusal shown in the panel", `document.getElementById("training-msg").textContent.includes("token")`)
	// Checked at once, not after the panel's next poll redraws it.
	state, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(() => { const r = document.getElementById("training-msg").getBoundingClientRect();
		if (`+sw+`.checked) return "the switch did not spring back";
		if (r.top < 0 || r.bottom > innerHeight) return "the message is out of view: top " + r.top + ", bottom " + r.bottom + ", viewport " + innerHeight;
		return ""; })()`))
	if err != nil || state != "" {
		t.Fatalf("after a refusal: %s (%v)", state, err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[any](`document.getElementById("pushdown").remove(); scrollTo(0, 0); true`)); err != nil {
		t.Fatal(err)
	}
	if d.sim.ScannerStats()[0].Drops != 0 {
		t.Fatal("refused switch took the scanner off")
	}
	// With the token (as the page's token field stores it).
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[any](`sessionStorage.setItem("sortgw-token", `+strconv.Quote(tok)+`); `+sw+`.click(); true`)); err != nil {
		t.Fatal(err)
	}
	evalUntil(t, ctx, "scanner-off on", sw+`.checked && document.getElementById("training-msg").textContent.includes("scanner-off on")`)
	waitFor(t, "scanner S1 off", 10*time.Second, func() bool { return d.sim.ScannerStats()[0].Connections == 0 })
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[any](sw+`.click(); true`)); err != nil {
		t.Fatal(err)
	}
	evalUntil(t, ctx, "scanner-off off", `!`+sw+`.checked && document.getElementById("training-msg").textContent.includes("scanner-off off")`)
	waitFor(t, "scanner S1 back", 15*time.Second, func() bool { return d.sim.ScannerStats()[0].Connections > 0 })
}
