package gateway

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"sortgw/gateway/journal"
	"sortgw/sortplan"
)

// Item list limits: rows per page unless asked, and the most one page
// may hold.
const (
	itemsDefaultLimit = 50
	itemsMaxLimit     = 200
)

// ItemRow is one pass of an item as GET /api/items lists it: the read
// and the decision, and the outcome once there is one.
type ItemRow struct {
	// Seq is the journal seq of the row's first record; rows are listed
	// by it, newest first.
	Seq     uint64    `json:"seq"`
	TID     uint32    `json:"tid"`
	Line    string    `json:"line"`
	Pass    uint16    `json:"pass"`
	ReadAt  time.Time `json:"read_at"`
	Scanner string    `json:"scanner,omitempty"`
	Codes   []string  `json:"codes"`
	NoRead  bool      `json:"noread,omitempty"`
	// PackageID is the first package id on the label (1Z, IMpb, SSCC,
	// TBA), "" if none; Postal its postal code, else the destination's
	// when that is a ZIP.
	PackageID   string `json:"package_id"`
	Postal      string `json:"postal"`
	Destination string `json:"destination"`
	Route       string `json:"route"`
	// Chute is the chute the item entered once sorted, else the one
	// commanded (a recirculated item shows where it was meant to go).
	Chute  uint16 `json:"chute"`
	Reason string `json:"reason"`
	// Outcome is the outcome's name, "open" while the pass has none.
	Outcome     string     `json:"outcome"`
	OutcomeAt   *time.Time `json:"outcome_at"`
	Result      uint16     `json:"result,omitempty"`
	Container   string     `json:"container,omitempty"`
	Detail      string     `json:"detail,omitempty"`
	PlanVersion uint64     `json:"plan_version,omitempty"`
	// At and Dest repeat ReadAt and Destination under the names the page's
	// older item rows used.
	At   time.Time `json:"at"`
	Dest string    `json:"dest"`
}

// ItemsPage answers GET /api/items. Next is the before= of the next
// (older) page, null when the journal holds no more.
type ItemsPage struct {
	Items []ItemRow `json:"items"`
	Next  *string   `json:"next"`
}

// ItemRowOf renders one pass.
func ItemRowOf(p *journal.Pass) ItemRow {
	f := p.First()
	row := ItemRow{Seq: p.Seq, TID: f.TID, Line: f.Line, Pass: f.Pass, ReadAt: f.Time, Scanner: f.Scanner,
		Codes: f.Codes, NoRead: f.NoRead, Destination: f.Dest, Route: f.Route, Chute: f.Chute,
		PlanVersion: f.PlanVersion, Outcome: "open"}
	if p.Decision != nil {
		row.Reason = sortplan.Reason(p.Decision.Reason).String()
	}
	if o := p.Outcome; o != nil {
		at := o.Time
		row.Outcome, row.OutcomeAt, row.Result, row.Container, row.Detail = o.Outcome.String(), &at, o.Result, o.Container, o.Detail
		if o.Outcome.Sorted() {
			row.Chute = o.Chute
		}
	}
	if row.Codes == nil {
		row.Codes = []string{}
	}
	for _, c := range row.Codes {
		l := sortplan.ReadLabel(c)
		if row.PackageID == "" && len(l.PackageIDs) > 0 {
			row.PackageID = l.PackageIDs[0]
		}
		if row.Postal == "" && l.Postal != "" && (l.Country == "" || l.Country == "840") {
			row.Postal = l.Postal
		}
	}
	if row.Postal == "" && (len(row.Destination) == 5 || len(row.Destination) == 9) && digits(row.Destination) {
		row.Postal = row.Destination
	}
	row.At, row.Dest = row.ReadAt, row.Destination
	return row
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// handleItems serves the item list: GET /api/items?q=&line=&exceptions=1
// &before=&limit=. q is a TID, a code as read or without its symbology
// identifier, a package id or a ZIP5/ZIP+4; without q the newest passes
// (the live list). One row per pass, newest first.
func (g *Gateway) handleItems(w http.ResponseWriter, r *http.Request) {
	if g.search == nil {
		writeJSON(w, http.StatusServiceUnavailable, apiError{"no journal"})
		return
	}
	v := r.URL.Query()
	q := journal.ItemQuery{Q: strings.TrimSpace(v.Get("q")), Line: v.Get("line"), Limit: itemsDefaultLimit}
	if q.Line != "" && g.byName[q.Line] == nil {
		writeJSON(w, http.StatusNotFound, apiError{"no such line " + strconv.Quote(q.Line)})
		return
	}
	switch e := v.Get("exceptions"); e {
	case "", "0", "false":
	case "1", "true":
		q.Exceptions = true
	default:
		writeJSON(w, http.StatusBadRequest, apiError{"exceptions: 1 or 0, got " + strconv.Quote(e)})
		return
	}
	if s := v.Get("before"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil || n == 0 {
			writeJSON(w, http.StatusBadRequest, apiError{"before: a cursor from next, got " + strconv.Quote(s)})
			return
		}
		q.Before = n
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			writeJSON(w, http.StatusBadRequest, apiError{"limit: a positive number, got " + strconv.Quote(s)})
			return
		}
		q.Limit = min(n, itemsMaxLimit)
	}
	if len(q.Q) > 4096 {
		writeJSON(w, http.StatusBadRequest, apiError{"q: longer than any barcode"})
		return
	}
	page, err := g.search.Items(q)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, apiError{err.Error()})
		return
	}
	out := ItemsPage{Items: make([]ItemRow, 0, len(page.Passes))}
	for i := range page.Passes {
		out.Items = append(out.Items, ItemRowOf(&page.Passes[i]))
	}
	if page.Next != 0 {
		s := strconv.FormatUint(page.Next, 10)
		out.Next = &s
	}
	writeJSON(w, http.StatusOK, out)
}
