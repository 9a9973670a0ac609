package gateway

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// itemsGet asks the running gateway for a page of items.
func itemsGet(t *testing.T, base, query string) ItemsPage {
	t.Helper()
	res, err := http.Get(base + "/api/items?" + query)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var p ItemsPage
	if err := json.NewDecoder(res.Body).Decode(&p); err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("items %s: %d %v", query, res.StatusCode, err)
	}
	return p
}

// sortedWithLabel waits for a sorted pass whose label carries a package
// id and a ZIP (the emulator prints 1Z, IMpb, SSCC and TBA labels).
func sortedWithLabel(t *testing.T, e *e2e, base string) ItemRow {
	t.Helper()
	var found ItemRow
	waitForLong(t, "a sorted pass with a package id and a ZIP", 60*time.Second, func() bool {
		if err := e.journal.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		for _, r := range itemsGet(t, base, "line=L1&limit=200").Items {
			if r.PackageID != "" && len(r.Postal) >= 5 && (r.Outcome == "diverted" || r.Outcome == "diverted-other") {
				found = r
				return true
			}
		}
		return false
	})
	return found
}

// TestItemsEndToEnd: items sorted by the gateway against the emulated
// sorter are found over HTTP by their tracking number, their ZIP and
// their code without its symbology identifier, as one row with the
// decision and the outcome.
func TestItemsEndToEnd(t *testing.T) {
	e := startE2E(t, e2eConfig{Protocol: "modbus", Rate: 60, Chutes: 32}, testToken)
	e.sim.SetRate(60)
	base := "http://" + e.gw.Addr()
	want := sortedWithLabel(t, e, base)
	code := want.Codes[0]
	if len(code) > 3 && code[0] == ']' {
		code = code[3:]
	}
	for _, q := range []string{want.PackageID, strings.ToLower(want.PackageID), want.Postal[:5], strings.ReplaceAll(code, "\x1d", "")} {
		// A ZIP finds many passes: follow next until the one wanted shows.
		var before string
		seen := false
		for page := 0; page < 50 && !seen; page++ {
			query := "q=" + url.QueryEscape(q) + "&limit=200"
			if before != "" {
				query += "&before=" + before
			}
			p := itemsGet(t, base, query)
			for _, r := range p.Items {
				if r.Seq == want.Seq {
					seen = true
					if r.TID != want.TID || r.Outcome != want.Outcome || r.OutcomeAt == nil || r.Chute != want.Chute {
						t.Fatalf("q %q: row %+v, want %+v", q, r, want)
					}
				}
			}
			if p.Next == nil {
				break
			}
			before = *p.Next
		}
		if !seen {
			t.Fatalf("q %q did not find pass %d (tid %d, codes %q)", q, want.Seq, want.TID, want.Codes)
		}
	}
}

// TestItemsInBrowser: on an 800x1280 portrait tablet the item list finds
// an item by its tracking number, pauses, filters to exceptions, pages
// to older passes, and nothing on the page overflows sideways.
func TestItemsInBrowser(t *testing.T) {
	ctx := browser(t)
	e := startE2E(t, e2eConfig{Protocol: "modbus", Rate: 60, Chutes: 32}, testToken)
	e.sim.SetRate(60)
	base := "http://" + e.gw.Addr()
	want := sortedWithLabel(t, e, base)
	// Enough passes for a second page.
	waitForLong(t, "60 passes", 60*time.Second, func() bool {
		return itemsGet(t, base, "line=L1&limit=60").Next != nil
	})
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(800, 1280), chromedp.Navigate(base+"/")); err != nil {
		t.Fatal(err)
	}
	// Neither the page nor the table scrolls sideways: the list takes the
	// row's width and drops its optional columns.
	noOverflow := `document.documentElement.scrollWidth <= document.documentElement.clientWidth &&
		[...document.querySelectorAll(".items-scroll")].every(s => s.scrollWidth <= s.clientWidth)`
	evalUntil(t, ctx, "live rows", `document.querySelectorAll('[data-i="rows"] tr[data-seq]').length >= 50`)
	evalUntil(t, ctx, "no horizontal overflow with the live list", noOverflow)

	// Pause: the list stops changing while items keep coming.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`[data-i="pause"]`))); err != nil {
		t.Fatal(err)
	}
	evalUntil(t, ctx, "paused", `document.querySelector('[data-i="pause"]').textContent === "Resume"`)
	top, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('[data-i="rows"] tr[data-seq]').dataset.seq`))
	if err != nil {
		t.Fatal(err)
	}
	waitForLong(t, "newer passes in the journal", 30*time.Second, func() bool {
		p := itemsGet(t, base, "line=L1&limit=1")
		return len(p.Items) == 1 && itoa(p.Items[0].Seq) != top
	})
	// Past two poll periods the paused list still starts with the same
	// row (checked on a ticker until then).
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for deadline := time.Now().Add(2*POLL + 500*time.Millisecond); time.Now().Before(deadline); <-tick.C {
		got, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('[data-i="rows"] tr[data-seq]').dataset.seq`))
		if err != nil {
			t.Fatal(err)
		}
		if got != top {
			t.Fatalf("paused list changed from %s to %s", top, got)
		}
	}

	// Older appends the next page below.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`[data-i="older"]`))); err != nil {
		t.Fatal(err)
	}
	evalUntil(t, ctx, "older rows", `document.querySelectorAll('[data-i="rows"] tr[data-seq]').length > 50`)
	evalUntil(t, ctx, "older rows in order", `(() => { const s = [...document.querySelectorAll('[data-i="rows"] tr[data-seq]')].map(r => +r.dataset.seq); return s.every((v, i) => i === 0 || s[i-1] > v); })()`)

	// Exceptions only: every row shown ended other than sorted. The
	// emulator's 2 % no-reads make one about every second; wait for one
	// in the window the page asks for, or an empty list would pass for
	// "no exceptions" and this step would prove nothing.
	waitForLong(t, "an exception among the latest passes", 60*time.Second, func() bool {
		return len(itemsGet(t, base, "line=L1&exceptions=1&limit=50").Items) > 0
	})
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`[data-i="exceptions"]`))); err != nil {
		t.Fatal(err)
	}
	evalUntil(t, ctx, "exceptions only", `(() => { const rs = [...document.querySelectorAll('[data-i="rows"] tr[data-seq]')]; return rs.length > 0 && rs.every(r => r.classList.contains("exception")); })()`)
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`[data-i="exceptions"]`))); err != nil {
		t.Fatal(err)
	}

	// Search by tracking number, typed as a person would.
	if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.CSS(`[data-i="form"] input`), strings.ToLower(want.PackageID)+"\n")); err != nil {
		t.Fatal(err)
	}
	evalUntil(t, ctx, "the item found", `!!document.querySelector('[data-i="rows"] tr[data-seq="`+itoa(want.Seq)+`"]')`)
	evalUntil(t, ctx, "search status", `document.querySelector('[data-i="status"]').textContent.includes("passes for")`)
	evalUntil(t, ctx, "no horizontal overflow with a search", noOverflow)
	// Back to the live list.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`[data-i="live"]`))); err != nil {
		t.Fatal(err)
	}
	evalUntil(t, ctx, "live list again", `document.querySelector('[data-i="live"]').hidden && document.querySelectorAll('[data-i="rows"] tr[data-seq]').length >= 50`)
}

// POLL is items.js's POLL_MS.
const POLL = 2 * time.Second

func itoa(v uint64) string {
	b, _ := json.Marshal(v)
	return string(b)
}
