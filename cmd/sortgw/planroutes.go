package main

import (
	"fmt"
	"io"

	"sortgw/sortplan"
)

// printRoutes adds the route rows to `plan check`'s summary: per route
// its departures, capacities, late policy and chutes.
func printRoutes(w io.Writer, p *sortplan.Plan) {
	if len(p.Routes) == 0 {
		return
	}
	chutes := p.RouteChutes()
	fmt.Fprintf(w, "  departures:       %d route(s) with route rows\n", len(p.Routes))
	for _, r := range p.Routes {
		late := r.Late.String()
		if r.Late == sortplan.LateException {
			late = fmt.Sprintf("exception chute %d", r.LateChute)
		}
		fmt.Fprintf(w, "    %-10s %s; van %d containers; container %d parcels; late: %s; chutes %s\n",
			r.Name, r.DeparturesString(), r.VanCap, r.ContCap, late, joinChutes(chutes[r.Name]))
	}
}

// printRouteDiff adds the routes whose departures or terms changed to
// `plan diff`.
func printRouteDiff(w io.Writer, old, nw *sortplan.Plan) {
	ch := sortplan.DiffRoutes(old, nw)
	for _, c := range ch {
		o, n := c.Old, c.New
		if o == "" {
			o = "(none)"
		}
		if n == "" {
			n = "(none)"
		}
		fmt.Fprintf(w, "route %-10s %s -> %s\n", c.Route, o, n)
	}
	fmt.Fprintf(w, "%d route(s) change departures or terms\n", len(ch))
}
