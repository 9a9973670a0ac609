package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"sortgw/gateway"
	"sortgw/sortplan"
)

// TestDemoDay plays the demo's day fast: the board lists the routes with
// their departures, containers fill and close, and vans depart with them.
func TestDemoDay(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end demo: skipped with -short")
	}
	d, err := New(Config{HTTP: "127.0.0.1:0", Rate: 50, Chutes: 16, Seed: 3, Token: "t", Dir: t.TempDir(),
		DaySpeed: 1800, ParcelsPerContainer: 5, EmptyAfter: time.Second}, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel))
	if err != nil {
		t.Fatal(err)
	}
	if plan, _, err := sortplan.ParsePlan("demo-plan.csv", bytes.NewReader(d.planCSV), 16); err != nil || len(plan.Routes) == 0 {
		t.Fatalf("the demo plan has no route rows (%v)", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	urls := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx, func(u string) { urls <- u }) }()
	var base string
	select {
	case base = <-urls:
	case err := <-done:
		t.Fatal(err)
	}
	base = strings.TrimSuffix(base, "/")
	getJSON := func(path string, v any) {
		t.Helper()
		res, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		if err := json.NewDecoder(res.Body).Decode(v); err != nil {
			t.Fatal(err)
		}
	}
	var routes []gateway.RouteBoard
	waitFor(t, "the board", 30*time.Second, func() bool {
		getJSON("/api/routes", &routes)
		return len(routes) > 0 && !routes[0].Next.IsZero()
	})
	var vans []gateway.VanManifest
	waitFor(t, "a van departed", 60*time.Second, func() bool {
		getJSON("/api/vans", &vans)
		return len(vans) > 0 && vans[0].Parcels > 0
	})
	if !strings.HasPrefix(vans[0].Van, "V-"+vans[0].Route+"-") || vans[0].Count == 0 {
		t.Fatalf("van %+v", vans[0])
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestAddRoutes(t *testing.T) {
	csv, err := sortplan.Generate(sortplan.GenerateOptions{Chutes: 16, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	out, err := addRoutes(csv, 16, 30)
	if err != nil {
		t.Fatal(err)
	}
	p, diags, err := sortplan.ParsePlan("x.csv", bytes.NewReader(out), 16)
	if err != nil {
		t.Fatal(err)
	}
	for _, dg := range diags {
		t.Errorf("diagnostic: %s", dg)
	}
	if len(p.Routes) == 0 || p.Routes[0].ContCap != 30 {
		t.Fatalf("routes %+v", p.Routes)
	}
}
