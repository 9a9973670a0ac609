package demo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"sortgw/gateway"
	"sortgw/sortplan"
)

// dayClock is the demo's virtual day: it starts at 05:00 today (local) and
// runs speed times faster than the wall clock, so the routes' departures
// come by within minutes.
type dayClock struct {
	start time.Time
	base  time.Time
	speed float64
}

func newDayClock(speed float64) *dayClock {
	now := time.Now()
	y, m, d := now.Date()
	return &dayClock{start: now, base: time.Date(y, m, d, 5, 0, 0, 0, now.Location()), speed: speed}
}

// Now is the virtual time.
func (c *dayClock) Now() time.Time {
	return c.base.Add(time.Duration(float64(time.Since(c.start)) * c.speed))
}

// addRoutes puts a route row above the header for every route of the
// generated plan: departures spread over the day (each route twice, eight
// hours apart), small containers and vans so that they fill and leave
// within the demo.
func addRoutes(planCSV []byte, chutes int, containerParcels int) ([]byte, error) {
	plan, _, err := sortplan.ParsePlan("demo-plan.csv", bytes.NewReader(planCSV), chutes)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var names []string
	for _, r := range plan.Rules {
		if r.Route != "" && r.Kind < sortplan.RuleNoRead && !seen[r.Route] {
			seen[r.Route] = true
			names = append(names, r.Route)
		}
	}
	sort.Strings(names)
	var rows bytes.Buffer
	for i, n := range names {
		first := 6*60 + (i*37)%(8*60) // 06:00 .. 13:59
		fmt.Fprintf(&rows, "route,%s,daily %02d:%02d %02d:%02d,6,%d,hold\n", n, first/60, first%60, (first+480)/60, (first+480)%60, containerParcels)
	}
	i := bytes.Index(planCSV, []byte("\npattern,"))
	if i < 0 {
		return nil, errors.New("demo: generated plan has no header row")
	}
	out := append([]byte{}, planCSV[:i+1]...)
	out = append(out, rows.Bytes()...)
	return append(out, planCSV[i+1:]...), nil
}

// runDock plays the dock lead: 8 minutes (virtual) before a route's
// departure it closes the route's open containers and loads every closed
// one onto the departure's van; within 2 minutes of the departure it
// departs the van. It runs until ctx is done.
func (d *Demo) runDock(ctx context.Context, gw *gateway.Gateway, line *gateway.Line) {
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		s := line.Snapshot()
		if s == nil {
			continue
		}
		for _, r := range s.Routes {
			if r.Next.IsZero() || r.Countdown > 8*60 {
				continue
			}
			van := "V-" + r.Route + "-" + r.Next.Format("1504")
			for _, c := range r.Open {
				if _, err := line.CloseContainerID(ctx, c.Container); err != nil && ctx.Err() == nil {
					d.log.Debug().Err(err).Str("container", c.Container).Msg("demo dock: close")
				}
			}
			closed := append([]gateway.ContainerView{}, r.Closed...)
			for _, c := range r.Open {
				closed = append(closed, c)
			}
			for _, c := range closed {
				if _, err := line.LoadContainer(ctx, c.Container, van, "demo dock", "dock-scan"); err != nil && ctx.Err() == nil {
					d.log.Debug().Err(err).Str("container", c.Container).Msg("demo dock: load")
				}
			}
			if r.Countdown <= 2*60 {
				if vm, err := gw.Depart(ctx, r.Route, van, "demo dock", "page"); err == nil {
					d.log.Info().Str("route", r.Route).Str("van", van).Int("containers", vm.Count).Int("parcels", vm.Parcels).Msg("demo: van departed")
				}
			}
		}
	}
}
