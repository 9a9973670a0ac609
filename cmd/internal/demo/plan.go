package demo

import (
	"bytes"
	"fmt"
	"strconv"

	"sortgw/sortplan"
	"sortgw/sortplan/zcta"
)

// demoCapacity sizes the line's item table for the demo's rate: every item
// seen in the last 10 minutes (the line's default memory of finished passes)
// with a quarter to spare, at least 8,192.
func demoCapacity(rate float64) int {
	need := int(rate * 600 * 1.25)
	c := 8192
	for c < need {
		c *= 2
	}
	return c
}

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
