package demo

import (
	"bytes"
	"fmt"
	"strconv"
	"time"

	"sortgw/sortplan"
	"sortgw/sortplan/zcta"
)

// The demo's conveyor: a brisk belt with close chutes (see New). Its lap
// sizes how long the line remembers a finished pass and so its item table.
const (
	demoBeltSpeed  = 4.0 // m/s
	demoChutePitch = 0.8 // m
)

// demoLap is one lap of the demo's loop: the sim's default geometry (3 m
// from the scanner to chute 1, the sort zone, 20 m back) at the demo's belt
// speed; 57 s for 256 chutes.
func demoLap(chutes int) time.Duration {
	m := 3 + float64(chutes)*demoChutePitch + 20
	return time.Duration(m / demoBeltSpeed * float64(time.Second))
}

// demoRemember is how long the demo's line remembers a finished pass: two
// laps, so that a recirculating item's next sighting (one lap after its
// last) always finds its pass count. The line's default, 10 minutes, is
// for a site's long loops; at the demo's 200 items/s it kept 150,000
// passes (60 MB of item table) for nothing.
func demoRemember(chutes int) time.Duration { return 2 * demoLap(chutes) }

// demoCapacity sizes the line's item table for the demo's rate: the items
// open on the belt (at most a lap's worth) plus the finished passes
// remembered, with a quarter to spare, at least 1,024. Past it the line
// forgets its oldest finished passes early and counts them (Totals.
// ForgottenEarly); the journal keeps every record regardless.
func demoCapacity(rate float64, chutes int) int {
	span := (demoLap(chutes) + demoRemember(chutes)).Seconds()
	return max(1024, int(rate*span*1.25))
}

// demoTruthLimit is the default bound of the emulator's per-item ground
// truth in the demo (Config.TruthLimit): about 5 MB of records, the last
// minute at 200 items/s (8 minutes at the default 20). The counts cover
// every item; `sortgw demo -check` compares item by item what is kept.
const demoTruthLimit = 12_000

// The demo's consolidation memory: a demo day (12 minutes at DaySpeed 120)
// at 20 items/s closes about 580 containers; the line's defaults (5,000
// manifests, 500 vans) would fill over hours and hold 15 MB.
const (
	demoKeepManifests = 1000
	demoKeepVans      = 100
)

// demoPlan generates the demo's sort plan from the embedded ZIP list and
// the destinations its parcels carry: half of them for the sort center's
// own delivery routes (the plan's exact ZIP rules), half from anywhere in
// the country (linehaul), so both kinds of chute fill on the page. It
// returns the plan's CSV, with the day's route rows: the demo writes it
// to its plan file.
func demoPlan(chutes int, seed int64, containerParcels int) ([]byte, []string, error) {
	planCSV, err := sortplan.Generate(sortplan.GenerateOptions{Chutes: chutes, Seed: seed + 1, Name: "DEMO-" + strconv.Itoa(chutes)})
	if err != nil {
		return nil, nil, fmt.Errorf("demo: generate plan: %w", err)
	}
	// The day: every route gets departures (routes, vans, containers).
	planCSV, err = addRoutes(planCSV, chutes, containerParcels)
	if err != nil {
		return nil, nil, fmt.Errorf("demo: routes: %w", err)
	}
	plan, _, err := sortplan.ParsePlan("demo-plan.csv", bytes.NewReader(planCSV), chutes)
	if err != nil {
		return nil, nil, fmt.Errorf("demo: plan: %w", err)
	}
	var local []string
	for _, r := range plan.Rules {
		if r.Kind == sortplan.RuleExact {
			local = append(local, r.Pattern)
		}
	}
	all := zcta.Codes()
	dests := make([]string, 0, 2*len(all))
	dests = append(dests, all...)
	if len(local) > 0 {
		for rep := len(all) / len(local); rep > 0; rep-- {
			dests = append(dests, local...)
		}
	}
	return planCSV, dests, nil
}
