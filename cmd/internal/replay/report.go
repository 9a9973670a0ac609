package replay

import (
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"strings"
)

// WriteText prints the result for a person; top bounds the chute-change
// pairs listed.
func (res *Result) WriteText(w io.Writer, top int) error {
	var b strings.Builder
	fmt.Fprintf(&b, "replay of %d passes (%s .. %s) against plan %s version %d\n", res.Passes,
		res.From.Format("2006-01-02 15:04:05"), res.To.Format("2006-01-02 15:04:05"), res.Plan, res.Version)
	fmt.Fprintf(&b, "changed chute: %d (%.2f%%); not compared (recirculated for chute state or no plan): %d\n",
		res.Changed, pct(res.Changed, res.Passes), res.NotCompared)
	fmt.Fprintf(&b, "exception rate: recorded %.2f%% (%d), new plan %.2f%% (%d)\n",
		100*res.ExceptionRate(false), res.ExceptionsOld, 100*res.ExceptionRate(true), res.ExceptionsNew)
	fmt.Fprintf(&b, "recirculated (chute 0): recorded %d, new plan %d\n", res.RecircOld, res.RecircNew)
	if len(res.Changes) > 0 {
		fmt.Fprintf(&b, "\nchanges (from chute -> to chute: parcels)\n")
		for i, c := range res.Changes {
			if i == top {
				fmt.Fprintf(&b, "  … %d more pairs\n", len(res.Changes)-top)
				break
			}
			fmt.Fprintf(&b, "  %4d -> %-4d %d\n", c.From, c.To, c.Count)
		}
	}
	fmt.Fprintf(&b, "\nroutes (parcels and containers of %d, recorded -> new)\n", res.ContainerSize)
	for _, r := range res.Routes {
		name := r.Route
		if name == "" {
			name = "(none)"
		}
		fmt.Fprintf(&b, "  %-16s %8d -> %-8d containers %d -> %d\n", name, r.Old, r.New, r.ContainersOld, r.ContainersNew)
	}
	fmt.Fprintf(&b, "\nchutes (parcels, peak per minute; recorded -> new)\n")
	for _, c := range res.Chutes {
		if c.Old == c.New && c.PeakOld == c.PeakNew {
			continue
		}
		fmt.Fprintf(&b, "  %4d %8d -> %-8d peak %d -> %d\n", c.Chute, c.Old, c.New, c.PeakOld, c.PeakNew)
	}
	fmt.Fprintf(&b, "  (chutes without a change not listed: -json has them all)\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func pct(a, b uint64) float64 {
	if b == 0 {
		return 0
	}
	return 100 * float64(a) / float64(b)
}

// WriteJSON writes the result as one JSON document.
func (res *Result) WriteJSON(w io.Writer) error {
	e := json.NewEncoder(w)
	e.SetIndent("", "  ")
	return e.Encode(res)
}

// bar is one pair of bars of a chart.
type bar struct {
	Label    string
	Old, New float64
}

// svgBars draws paired bars (recorded grey, new plan dark) as inline
// SVG: no script, no external asset.
func svgBars(title string, bars []bar) template.HTML {
	const h, top, bottom, left = 180.0, 20.0, 30.0, 40.0
	w := 20.0 * float64(len(bars))
	if w < 200 {
		w = 200
	}
	peak := 1.0
	for _, b := range bars {
		peak = max(peak, b.Old, b.New)
	}
	var s strings.Builder
	fmt.Fprintf(&s, `<svg xmlns="http://www.w3.org/2000/svg" role="img" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f"><title>%s</title>`,
		w+left+10, h+top+bottom, w+left+10, h+top+bottom, template.HTMLEscapeString(title))
	fmt.Fprintf(&s, `<text x="%.0f" y="14" font-size="12">%s (max %.0f)</text>`, left, template.HTMLEscapeString(title), peak)
	fmt.Fprintf(&s, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="#888"/>`, left, top+h, left+w, top+h)
	step := w / float64(max(len(bars), 1))
	for i, b := range bars {
		x := left + float64(i)*step
		for k, v := range []float64{b.Old, b.New} {
			bh := h * v / peak
			fill := "#b0b0b0"
			if k == 1 {
				fill = "#2b4c7e"
			}
			fmt.Fprintf(&s, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s: %.0f</title></rect>`,
				x+float64(k)*step*0.4+step*0.1, top+h-bh, step*0.4, bh, fill, template.HTMLEscapeString(b.Label), v)
		}
		if len(bars) <= 40 || i%(len(bars)/40+1) == 0 {
			fmt.Fprintf(&s, `<text x="%.1f" y="%.0f" font-size="9" text-anchor="middle">%s</text>`, x+step/2, top+h+12, template.HTMLEscapeString(b.Label))
		}
	}
	s.WriteString(`</svg>`)
	return template.HTML(s.String()) //nolint:gosec // built from numbers and escaped labels only
}

var page = template.Must(template.New("replay").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>sortgw replay: {{.R.Plan}} v{{.R.Version}}</title>
<style>body{font:14px sans-serif;margin:1.5em;color:#222}table{border-collapse:collapse}td,th{padding:2px 8px;text-align:right;border-bottom:1px solid #ddd}
th:first-child,td:first-child{text-align:left}.chart{overflow-x:auto}.key span{display:inline-block;width:12px;height:12px;margin:0 4px 0 12px}</style></head><body>
<h1>Replay against plan {{.R.Plan}} version {{.R.Version}}</h1>
<p>{{.R.Passes}} passes from {{.R.From.Format "2006-01-02 15:04:05"}} to {{.R.To.Format "2006-01-02 15:04:05"}} UTC.
{{.R.Changed}} would change chute; {{.R.NotCompared}} recirculated for chute state or want of a plan and are not compared.</p>
<p class="key"><span style="background:#b0b0b0"></span>recorded <span style="background:#2b4c7e"></span>new plan</p>
<table><tr><th></th><th>recorded</th><th>new plan</th></tr>
<tr><td>exception rate</td><td>{{printf "%.2f" .ExcOld}}% ({{.R.ExceptionsOld}})</td><td>{{printf "%.2f" .ExcNew}}% ({{.R.ExceptionsNew}})</td></tr>
<tr><td>recirculated (chute 0)</td><td>{{.R.RecircOld}}</td><td>{{.R.RecircNew}}</td></tr></table>
<h2>Parcels per chute</h2><div class="chart">{{.ChuteChart}}</div>
<h2>Peak per minute per chute</h2><div class="chart">{{.PeakChart}}</div>
<h2>Parcels per route</h2><div class="chart">{{.RouteChart}}</div>
<h2>Routes</h2><table><tr><th>route</th><th>parcels recorded</th><th>new</th><th>containers of {{.R.ContainerSize}} recorded</th><th>new</th></tr>
{{range .R.Routes}}<tr><td>{{if .Route}}{{.Route}}{{else}}(none){{end}}</td><td>{{.Old}}</td><td>{{.New}}</td><td>{{.ContainersOld}}</td><td>{{.ContainersNew}}</td></tr>
{{end}}</table>
<h2>Changes</h2><table><tr><th>from chute</th><th>to chute</th><th>parcels</th></tr>
{{range .Changes}}<tr><td>{{.From}}</td><td>{{.To}}</td><td>{{.Count}}</td></tr>
{{else}}<tr><td colspan="3">none</td></tr>{{end}}</table>
</body></html>
`))

// WriteHTML writes a self-contained report page: tables and inline SVG
// charts, no script and nothing fetched from the network.
func (res *Result) WriteHTML(w io.Writer) error {
	var chutes, peaks, routes []bar
	for _, c := range res.Chutes {
		l := fmt.Sprint(c.Chute)
		chutes = append(chutes, bar{l, float64(c.Old), float64(c.New)})
		peaks = append(peaks, bar{l, float64(c.PeakOld), float64(c.PeakNew)})
	}
	for _, r := range res.Routes {
		routes = append(routes, bar{r.Route, float64(r.Old), float64(r.New)})
	}
	changes := res.Changes
	if len(changes) > 200 {
		changes = changes[:200]
	}
	return page.Execute(w, map[string]any{
		"R": res, "ExcOld": 100 * res.ExceptionRate(false), "ExcNew": 100 * res.ExceptionRate(true),
		"ChuteChart": svgBars("parcels per chute", chutes), "PeakChart": svgBars("peak parcels per minute", peaks),
		"RouteChart": svgBars("parcels per route", routes), "Changes": changes,
	})
}
