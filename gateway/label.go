package gateway

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Container finds a container by id: the open one at its chute or a
// closed one still kept.
func (l *Line) Container(ctx context.Context, id string) (Manifest, error) {
	var m Manifest
	found := false
	err := l.do(ctx, func() {
		for n := 1; n <= l.cfg.Chutes; n++ {
			if containerID(l.cfg.Name, uint16(n), l.conts[n].n) == id {
				m, found = l.conts[n].manifest(l.cfg.Name, uint16(n)), true
				return
			}
		}
		if c := l.findClosed(id); c != nil {
			m, found = *c, true
		}
	})
	if err != nil {
		return m, err
	}
	if !found {
		return m, fmt.Errorf("container %s: %w", id, ErrNoContainer)
	}
	return m, nil
}

// zplField escapes a ZPL field: ^ and ~ would start commands, so they
// (and _, the ^FH escape) are written as _XX hex.
func zplField(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '^' || c == '~' || c == '_' || c < 32 || c > 126 {
			fmt.Fprintf(&b, "_%02X", c)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// ContainerZPL is the container's label for a Zebra printer (4x6 in at
// 203 dpi): route, departure, line and chute, parcel count, and the
// container id as a Code 128 barcode with its text.
func ContainerZPL(m Manifest) string {
	dep := "-"
	if !m.Due.IsZero() {
		dep = m.Due.Format("Mon 2006-01-02 15:04")
	}
	route := m.Route
	if route == "" {
		route = "(no route)"
	}
	var b strings.Builder
	b.WriteString("^XA\n^CI28\n")
	fmt.Fprintf(&b, "^FO40,40^A0N,70,70^FH^FD%s^FS\n", zplField(route))
	fmt.Fprintf(&b, "^FO40,130^A0N,40,40^FH^FDDeparts %s^FS\n", zplField(dep))
	fmt.Fprintf(&b, "^FO40,190^A0N,40,40^FH^FDLine %s chute %d^FS\n", zplField(m.Line), m.Chute)
	fmt.Fprintf(&b, "^FO40,250^A0N,40,40^FDParcels %d^FS\n", len(m.Items))
	fmt.Fprintf(&b, "^FO40,320^BY3^BCN,160,Y,N,N^FH^FD%s^FS\n", zplField(m.Container))
	b.WriteString("^XZ\n")
	return b.String()
}

// PrintZPL sends a label to a network printer's raw port (TCP 9100).
func PrintZPL(ctx context.Context, addr, zpl string) error {
	d := net.Dialer{Timeout: 5 * time.Second}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("label printer %s: %w", addr, err)
	}
	_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, werr := c.Write([]byte(zpl))
	cerr := c.Close()
	if err := errors.Join(werr, cerr); err != nil {
		return fmt.Errorf("label printer %s: %w", addr, err)
	}
	return nil
}

func (g *Gateway) containerOf(w http.ResponseWriter, r *http.Request) (Manifest, bool) {
	id := r.PathValue("id")
	l := g.lineOfContainer(id)
	if l == nil {
		writeJSON(w, http.StatusNotFound, apiError{"no such container: " + id})
		return Manifest{}, false
	}
	m, err := l.Container(r.Context(), id)
	if err != nil {
		writeJSON(w, consolStatus(err), apiError{err.Error()})
		return m, false
	}
	return m, true
}

func (g *Gateway) handleLabelZPL(w http.ResponseWriter, r *http.Request) {
	m, ok := g.containerOf(w, r)
	if !ok {
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="`+safeName(m.Container)+`.zpl"`)
	_, _ = w.Write([]byte(ContainerZPL(m)))
}

// handlePrint sends the container's label to the configured printer.
func (g *Gateway) handlePrint(w http.ResponseWriter, r *http.Request) {
	if g.cfg.LabelPrinter == "" {
		writeJSON(w, http.StatusConflict, apiError{"no label printer configured (label_printer)"})
		return
	}
	m, ok := g.containerOf(w, r)
	if !ok {
		return
	}
	if err := PrintZPL(r.Context(), g.cfg.LabelPrinter, ContainerZPL(m)); err != nil {
		writeJSON(w, http.StatusBadGateway, apiError{err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"container": m.Container, "printer": g.cfg.LabelPrinter})
}

func safeName(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '-' || r == '_' || r == '.' || (r >= '0' && r <= '9') || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') {
			return r
		}
		return '_'
	}, s)
}

var labelTmpl = template.Must(template.New("label").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Container {{.M.Container}}</title>
<link rel="stylesheet" href="/static/board.css"></head>
<body class="label-page">
<div class="label">
<div class="label-route">{{if .M.Route}}{{.M.Route}}{{else}}(no route){{end}}</div>
<div class="label-row">Departs {{if .M.Due.IsZero}}-{{else}}{{.M.Due.Format "Mon 2006-01-02 15:04"}}{{end}}</div>
<div class="label-row">Line {{.M.Line}} · chute {{.M.Chute}} · {{.M.State}}</div>
<div class="label-row">Parcels <b class="label-count">{{len .M.Items}}</b></div>
<div class="label-bar">{{.SVG}}</div>
<div class="label-id">{{.M.Container}}</div>
</div>
<p class="noprint"><a href="/api/containers/{{.M.Container}}/label.zpl">ZPL</a> · <a href="/board">board</a></p>
</body></html>
`))

// handleLabelHTML is the container's print view with its Code 128 barcode.
func (g *Gateway) handleLabelHTML(w http.ResponseWriter, r *http.Request) {
	m, ok := g.containerOf(w, r)
	if !ok {
		return
	}
	svg, err := Code128SVG(m.Container, 2, 80)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, apiError{err.Error()})
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	// The SVG is built from the id's printable ASCII by Code128SVG: numbers
	// and fixed markup only.
	_ = labelTmpl.Execute(w, struct {
		M   Manifest
		SVG template.HTML
	}{m, template.HTML(svg)}) //nolint:gosec // see above
}

var boardTmpl = template.Must(template.New("board").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Departures · sortgw</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/static/board.css">
<script src="/static/board.js" defer></script></head>
<body class="board-page">
<header><h1>Departures</h1><a href="/">status page</a>
<form id="tok"><input id="token" type="password" placeholder="bearer token" autocomplete="off"><input id="by" placeholder="your name"></form>
<span id="msg" role="status"></span></header>
<form id="load" class="dock"><input id="load-id" placeholder="container (scan)" required><input id="load-van" placeholder="van" required><button>Load</button></form>
<main id="board" data-refresh="{{.}}"><p>loading…</p></main>
</body></html>
`))

// handleBoard serves the dock's departures board (filled by board.js
// from /api/routes).
func (g *Gateway) handleBoard(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = boardTmpl.Execute(w, strconv.Itoa(int(g.cfg.SSEInterval/time.Millisecond)))
}
