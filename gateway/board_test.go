package gateway

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestBoardInBrowser drives the departures board in chromium: the route
// shows its open container and countdown; Close, Load (as a dock scan
// would type it) and Depart work through the API with the token.
func TestBoardInBrowser(t *testing.T) {
	ctx := browser(t)
	j, _ := openJournal(t, filepath.Join(t.TempDir(), "j.db"))
	clock := &dockClock{}
	clock.set(time.Date(2026, 12, 4, 11, 30, 0, 0, time.UTC))
	c := newConsolLine(t, j, clock, nil)
	c.sort(1, "10115", 1)
	c.sort(2, "10115", 1)
	srv := consolServer(t, c, "")

	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/board")); err != nil {
		t.Fatal(err)
	}
	r1 := `document.querySelector('section.route[data-route="R1"]')`
	evalUntil(t, ctx, "R1 with its open container", r1+` !== null && `+r1+`.querySelector('ul.open [data-container="L1-C1-1"]') !== null`)
	evalUntil(t, ctx, "countdown", r1+`.querySelector('.countdown').textContent.trim() === "30:00" && `+r1+`.classList.contains("filling")`)

	// Without the token, Close is refused.
	click := func(sel string) {
		t.Helper()
		if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(sel))); err != nil {
			t.Fatal(err)
		}
	}
	click(`section.route[data-route="R1"] ul.open [data-container="L1-C1-1"] button.close`)
	evalUntil(t, ctx, "refusal", `document.querySelector("#msg").textContent.includes("bearer")`)
	evalUntil(t, ctx, "token stored", `(()=>{const i=document.querySelector("#token"); i.value=`+jsString(testToken)+
		`; i.dispatchEvent(new Event("change")); return sessionStorage.getItem("sortgw-token") === `+jsString(testToken)+`})()`)
	click(`section.route[data-route="R1"] ul.open [data-container="L1-C1-1"] button.close`)
	evalUntil(t, ctx, "closed on the board", r1+`.querySelector('ul.closed [data-container="L1-C1-1"]') !== null`)

	// Load it as a scanner types into the Load form.
	if err := chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS(`#load-id`), "L1-C1-1"),
		chromedp.SendKeys(chromedp.CSS(`#load-van`), "V-12"),
		chromedp.Click(chromedp.CSS(`#load button`)),
	); err != nil {
		t.Fatal(err)
	}
	evalUntil(t, ctx, "loaded on the board", r1+`.querySelector('ul.loaded [data-container="L1-C1-1"]') !== null && `+r1+`.classList.contains("ready")`)
	if err := chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS(`section.route[data-route="R1"] form.depart input`), "V-12"),
		chromedp.Click(chromedp.CSS(`section.route[data-route="R1"] form.depart button`)),
	); err != nil {
		t.Fatal(err)
	}
	evalUntil(t, ctx, "departed", `document.querySelector("#msg").textContent.includes("van V-12 departed: 1 containers, 2 parcels")`)
	vans, err := c.l.Vans(t.Context(), "R1", time.Time{})
	if err != nil || len(vans) != 1 || vans[0].Van != "V-12" || vans[0].Containers[0].LoadedBy != "" {
		t.Fatalf("vans %+v %v", vans, err)
	}
}
