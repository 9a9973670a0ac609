package sortplan

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

// RuleKind says what a plan row matches.
type RuleKind uint8

// Rule kinds. The four exception kinds name the exception chutes.
const (
	RuleExact       RuleKind = iota // one destination key, e.g. 90210, DSF4, 276:10115
	RulePrefix                      // every key starting with the stem, e.g. 902*, 276:*
	RuleNoRead                      // row NOREAD
	RuleUnknown                     // row UNKNOWN
	RuleMultiRead                   // row MULTIREAD
	RuleRecircLimit                 // row RECIRC_LIMIT
)

// String returns the kind's name.
func (k RuleKind) String() string {
	switch k {
	case RuleExact:
		return "exact"
	case RulePrefix:
		return "prefix"
	case RuleNoRead:
		return "NOREAD"
	case RuleUnknown:
		return "UNKNOWN"
	case RuleMultiRead:
		return "MULTIREAD"
	case RuleRecircLimit:
		return "RECIRC_LIMIT"
	}
	return "kind?"
}

// exceptionRows lists the exception rows every plan must have, with the
// reason each one is sent with.
var exceptionRows = [...]struct {
	name   string
	kind   RuleKind
	reason Reason
	what   string
}{
	{"NOREAD", RuleNoRead, ReasonNoRead, "no-read exception chute"},
	{"UNKNOWN", RuleUnknown, ReasonUnknown, "unknown-destination exception chute"},
	{"MULTIREAD", RuleMultiRead, ReasonMultiRead, "multi-read conflict exception chute"},
	{"RECIRC_LIMIT", RuleRecircLimit, ReasonRecircLimit, "recirculation-limit exception chute"},
}

// Rule is one row of a plan.
type Rule struct {
	Kind    RuleKind
	Pattern string   // as written (exception rows: the row name)
	Key     string   // the destination key, or the prefix stem without '*'
	Chutes  []uint16 // primary first, then alternates
	Route   string   // route or van the chutes feed; may be empty
	Line    int      // line in the plan file
}

// Plan is a parsed and validated sort plan.
type Plan struct {
	Name       string
	Version    uint64
	Effective  time.Time // zero if the file has no effective row
	File       string
	ChuteCount int
	Rules      []Rule // file order, exception rows included
	// Routes are the route rows (departures, capacities, late policy),
	// file order; empty for a plan without them.
	Routes []RouteSpec
}

// Exception returns the exception row of kind k (RuleNoRead … RuleRecircLimit).
func (p *Plan) Exception(k RuleKind) *Rule {
	for i := range p.Rules {
		if p.Rules[i].Kind == k {
			return &p.Rules[i]
		}
	}
	return nil
}

// PlanError is returned by ParsePlan when the plan has errors; it lists
// every error diagnostic and unwraps to ErrInvalidPlan.
type PlanError struct {
	File  string
	Diags []Diagnostic // errors only
}

func (e *PlanError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "sort plan %s: %d error(s):", e.File, len(e.Diags))
	for _, d := range e.Diags {
		b.WriteString("\n")
		b.WriteString(d.String())
	}
	return b.String()
}

// Unwrap lets errors.Is(err, ErrInvalidPlan) work.
func (e *PlanError) Unwrap() error { return ErrInvalidPlan }

// LoadPlan reads and validates a plan file. chuteCount is the sorter's
// chute count (0: take the file's chute_count row).
func LoadPlan(path string, chuteCount int) (*Plan, []Diagnostic, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("load plan: %w", err)
	}
	return parsePlan(path, b, chuteCount)
}

// ParsePlan reads and validates a plan. It reports every error and warning
// at once; the error is non-nil (a *PlanError) if any diagnostic is an
// error, and the plan is then nil.
func ParsePlan(name string, r io.Reader, chuteCount int) (*Plan, []Diagnostic, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, nil, fmt.Errorf("read plan %s: %w", name, err)
	}
	return parsePlan(name, b, chuteCount)
}

// MaxChutes is the largest chute number a plan may use.
const MaxChutes = 65535

type planParser struct {
	p      *Plan
	diags  []Diagnostic
	seen   map[string]int // pattern -> line
	header map[string]int // column name -> index
	meta   map[string]int // key -> line
	ccLine int
	excRow map[RuleKind]bool // exception rows present, even with errors
	// endLine is the line of the END row (0: none yet). A plan must end
	// with it, so that a file cut off mid-copy is refused instead of
	// installing its first rules, or a last row cut to a wrong chute.
	endLine int
	// routeLine: route row name -> line.
	routeLine map[string]int
}

// readEnd reads the END row: END alone, or END,<n> where n is the number
// of rule rows above it.
func (pp *planParser) readEnd(rec []string, line, rows int) {
	pp.endLine = line
	if len(rec) < 2 || strings.TrimSpace(rec[1]) == "" {
		return
	}
	n, err := strconv.Atoi(strings.TrimSpace(rec[1]))
	switch {
	case err != nil || n < 0:
		pp.errorf(line, 2, "END row: want the number of rule rows, got %q", strings.TrimSpace(rec[1]))
	case n != rows:
		pp.errorf(line, 2, "END row says %d rule rows, the file has %d: rows were lost or added (a partial copy?)", n, rows)
	}
}

func (pp *planParser) errorf(line, col int, format string, a ...any) {
	pp.diags = append(pp.diags, Diagnostic{File: pp.p.File, Line: line, Col: col, Msg: fmt.Sprintf(format, a...)})
}

func (pp *planParser) warnf(line, col int, format string, a ...any) {
	pp.diags = append(pp.diags, Diagnostic{File: pp.p.File, Line: line, Col: col, Warning: true, Msg: fmt.Sprintf(format, a...)})
}

func parsePlan(name string, data []byte, chuteCount int) (*Plan, []Diagnostic, error) {
	data = bytes.TrimPrefix(data, []byte("\ufeff")) // spreadsheets write a BOM
	pp := &planParser{
		p:      &Plan{File: name},
		seen:   map[string]int{},
		meta:   map[string]int{},
		excRow: map[RuleKind]bool{},

		routeLine: map[string]int{},
	}
	cr := csv.NewReader(bytes.NewReader(data))
	cr.FieldsPerRecord = -1
	cr.Comment = '#'
	cr.ReuseRecord = true
	cr.Comma = sniffComma(data)
	headerLine := 0
	rows, lastLine := 0, 0
	syntaxErr := false
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				pp.errorf(pe.Line, pe.Column, "csv: %v", pe.Err)
			} else {
				pp.errorf(0, 0, "csv: %v", err)
			}
			syntaxErr = true
			break // encoding/csv cannot resync after a syntax error
		}
		line, _ := cr.FieldPos(0)
		if blankRecord(rec) {
			continue
		}
		first := strings.TrimSpace(rec[0])
		if pp.header == nil {
			if strings.EqualFold(first, "pattern") {
				headerLine = line
				pp.readHeader(cr, rec, line)
				pp.resolveCount(chuteCount, line)
				continue
			}
			if strings.EqualFold(first, "route") {
				cols := make([]int, len(rec))
				for i := range rec {
					_, cols[i] = cr.FieldPos(i)
				}
				pp.readRoute(rec, cols, line)
				continue
			}
			pp.readMeta(cr, rec, line)
			continue
		}
		if pp.endLine > 0 {
			pp.errorf(line, 1, "row after the END row (line %d): END must be the plan's last row", pp.endLine)
			continue
		}
		if strings.EqualFold(first, "END") {
			pp.readEnd(rec, line, rows)
			continue
		}
		if _, ok := metaKeys[strings.ToLower(first)]; ok || first == "route" {
			pp.errorf(line, 1, "metadata row %q after the header row: move it above line %d", first, headerLine)
			continue
		}
		rows++
		pp.readRule(cr, rec, line, chuteCount)
		lastLine = line
	}
	if pp.header != nil && pp.endLine == 0 && !syntaxErr {
		at := max(lastLine, headerLine)
		pp.errorf(at, 1, "no END row after line %d: the file may be cut off (a partial copy?); a plan ends with the row END,%d (END and its rule count)", at, rows)
	}
	pp.finish(chuteCount, headerLine)
	sort.SliceStable(pp.diags, func(i, j int) bool {
		a, b := pp.diags[i], pp.diags[j]
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Col < b.Col
	})
	var errs []Diagnostic
	for _, d := range pp.diags {
		if !d.Warning {
			errs = append(errs, d)
		}
	}
	if len(errs) > 0 {
		return nil, pp.diags, &PlanError{File: name, Diags: errs}
	}
	return pp.p, pp.diags, nil
}

// sniffComma picks ';' for files from spreadsheets set to a European
// locale: when the first data line has a ';' and no ','.
func sniffComma(data []byte) rune {
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		l := data
		if i >= 0 {
			l, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		l = bytes.TrimSpace(l)
		if len(l) == 0 || l[0] == '#' {
			continue
		}
		if bytes.IndexByte(l, ',') < 0 && bytes.IndexByte(l, ';') >= 0 {
			return ';'
		}
		return ','
	}
	return ','
}

func blankRecord(rec []string) bool {
	for _, f := range rec {
		if strings.TrimSpace(f) != "" {
			return false
		}
	}
	return true
}

var metaKeys = map[string]bool{"plan_name": true, "plan_version": true, "effective": true, "chute_count": true}

func (pp *planParser) readMeta(cr *csv.Reader, rec []string, line int) {
	key := strings.ToLower(strings.TrimSpace(rec[0]))
	if !metaKeys[key] {
		pp.errorf(line, 1, "unknown metadata key %q before the header row (want plan_name, plan_version, effective, chute_count, then the header pattern,chutes,route)", strings.TrimSpace(rec[0]))
		return
	}
	if prev, dup := pp.meta[key]; dup {
		pp.errorf(line, 1, "%s given twice (first on line %d)", key, prev)
		return
	}
	pp.meta[key] = line
	val := ""
	col := 1
	if len(rec) > 1 {
		val = strings.TrimSpace(rec[1])
		_, col = cr.FieldPos(1)
	}
	for i := 2; i < len(rec); i++ {
		if strings.TrimSpace(rec[i]) != "" {
			_, c := cr.FieldPos(i)
			pp.errorf(line, c, "%s takes one value", key)
			break
		}
	}
	switch key {
	case "plan_name":
		if val == "" {
			pp.errorf(line, col, "plan_name is empty")
		}
		pp.p.Name = val
	case "plan_version":
		v, err := strconv.ParseUint(val, 10, 64)
		if err != nil || v == 0 {
			pp.errorf(line, col, "plan_version %q: want a whole number >= 1 (raise it with every edit)", val)
		}
		pp.p.Version = v
	case "effective":
		t, ok := parseEffective(val)
		if !ok {
			pp.errorf(line, col, "effective %q: want a date/time like 2026-11-25T22:00:00Z, 2026-11-25 22:00 or 2026-11-25", val)
		}
		pp.p.Effective = t
	case "chute_count":
		n, err := strconv.Atoi(val)
		if err != nil || n < 1 || n > MaxChutes {
			pp.errorf(line, col, "chute_count %q: want a number 1..%d", val, MaxChutes)
			return
		}
		pp.p.ChuteCount = n
		pp.ccLine = line
	}
}

func parseEffective(s string) (time.Time, bool) {
	for _, f := range []string{time.RFC3339, "2006-01-02T15:04", "2006-01-02 15:04:05", "2006-01-02 15:04", "2006-01-02"} {
		if t, err := time.Parse(f, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// resolveCount settles the chute count once the metadata is read: the
// sorter's count wins, the file's chute_count row must agree with it.
func (pp *planParser) resolveCount(chuteCount, headerLine int) {
	p := pp.p
	switch {
	case chuteCount > MaxChutes:
		pp.errorf(headerLine, 1, "chute count %d above %d", chuteCount, MaxChutes)
	case chuteCount > 0 && p.ChuteCount > 0 && chuteCount != p.ChuteCount:
		pp.errorf(pp.ccLine, 1, "plan is for %d chutes but the sorter has %d", p.ChuteCount, chuteCount)
	case chuteCount > 0:
		p.ChuteCount = chuteCount
	case p.ChuteCount == 0:
		pp.errorf(headerLine, 1, "chute count unknown: add a chute_count row or give the sorter's chute count")
	}
}

func (pp *planParser) readHeader(cr *csv.Reader, rec []string, line int) {
	pp.header = map[string]int{}
	for i, f := range rec {
		n := strings.ToLower(strings.TrimSpace(f))
		if n == "" {
			continue
		}
		_, col := cr.FieldPos(i)
		if _, dup := pp.header[n]; dup {
			pp.errorf(line, col, "column %q twice in the header", n)
			continue
		}
		pp.header[n] = i
		switch n {
		case "pattern", "chutes", "route", "comment", "notes", "note", "description":
		default:
			pp.warnf(line, col, "unknown column %q is ignored (known: pattern, chutes, route, comment)", n)
		}
	}
	if _, ok := pp.header["chutes"]; !ok {
		pp.errorf(line, 1, "header has no chutes column (want pattern,chutes,route)")
		pp.header["chutes"] = -1
	}
	if _, ok := pp.header["route"]; !ok {
		pp.header["route"] = -1
	}
}

func cell(rec []string, i int) string {
	if i < 0 || i >= len(rec) {
		return ""
	}
	return strings.TrimSpace(rec[i])
}

func (pp *planParser) readRule(cr *csv.Reader, rec []string, line int, chuteCount int) {
	pat := cell(rec, pp.header["pattern"])
	ci := pp.header["chutes"]
	_, pcol := cr.FieldPos(pp.header["pattern"])
	ccol := 1
	if ci >= 0 && ci < len(rec) {
		_, ccol = cr.FieldPos(ci)
	}
	r := Rule{Pattern: pat, Line: line, Route: cell(rec, pp.header["route"])}
	okPat := pp.readPattern(&r, line, pcol)
	if okPat {
		if prev, dup := pp.seen[r.Pattern]; dup {
			pp.errorf(line, pcol, "duplicate pattern %q (first on line %d)", r.Pattern, prev)
			okPat = false
		} else {
			pp.seen[r.Pattern] = line
		}
	}
	if ci < 0 {
		return
	}
	chutes, okCh := pp.readChutes(cell(rec, ci), rawCell(rec, ci), line, ccol)
	r.Chutes = chutes
	if len(r.Route) > 64 {
		_, col := cr.FieldPos(pp.header["route"])
		pp.errorf(line, col, "route longer than 64 characters")
	}
	if okPat && okCh {
		pp.p.Rules = append(pp.p.Rules, r)
	}
}

func rawCell(rec []string, i int) string {
	if i < 0 || i >= len(rec) {
		return ""
	}
	return rec[i]
}

func (pp *planParser) readPattern(r *Rule, line, col int) bool {
	pat := r.Pattern
	if pat == "" {
		pp.errorf(line, col, "empty pattern")
		return false
	}
	for _, ex := range exceptionRows {
		if strings.EqualFold(pat, ex.name) {
			r.Kind, r.Pattern, r.Key = ex.kind, ex.name, ex.name
			pp.excRow[ex.kind] = true
			return true
		}
	}
	key := pat
	if strings.HasSuffix(pat, "*") {
		r.Kind = RulePrefix
		key = pat[:len(pat)-1]
		if key == "" {
			pp.errorf(line, col, "pattern \"*\" matches everything: use the UNKNOWN row for the catch-all chute")
			return false
		}
	}
	r.Key = key
	for i := 0; i < len(key); i++ {
		c := key[i]
		switch {
		case c == '*':
			pp.errorf(line, col+i, "bad pattern %q: '*' is allowed only at the end (a prefix like 902*)", pat)
			return false
		case c == ' ' || c == '\t':
			pp.errorf(line, col+i, "bad pattern %q: space inside a pattern", pat)
			return false
		case csetOf[c]&cs82 == 0:
			pp.errorf(line, col+i, "bad pattern %q: character %q not allowed in a destination key", pat, c)
			return false
		}
	}
	if len(key) > 40 {
		pp.errorf(line, col, "bad pattern %q: longer than 40 characters", pat)
		return false
	}
	if len(key) == 10 && allDigits(key[:5]) && key[5] == '-' && allDigits(key[6:]) {
		pp.errorf(line, col, "bad pattern %q: write a ZIP+4 as nine digits (%s%s)", pat, key[:5], key[6:])
		return false
	}
	if c := strings.IndexByte(key, ':'); c >= 0 {
		if c != 3 || !allDigits(key[:3]) || strings.IndexByte(key[4:], ':') >= 0 || (r.Kind == RuleExact && len(key) == 4) {
			pp.errorf(line, col, "bad pattern %q: a foreign postal code is <3-digit ISO country>:<postal code>, e.g. 276:10115 or 276:*", pat)
			return false
		}
	}
	if r.Kind == RuleExact && allDigits(key) && (len(key) == 4 || len(key) == 8) {
		pp.warnf(line, col, "pattern %q has %d digits: did a spreadsheet drop a leading zero (0%s)?", pat, len(key), key)
	}
	return true
}

func (pp *planParser) readChutes(s, raw string, line, col int) ([]uint16, bool) {
	if s == "" {
		pp.errorf(line, col, "empty chute list (want e.g. 12 or 12|13)")
		return nil, false
	}
	off := strings.Index(raw, s)
	if off < 0 {
		off = 0
	}
	var out []uint16
	ok := true
	pos := 0
	for _, part := range strings.Split(s, "|") {
		c := col + off + pos + (len(part) - len(strings.TrimLeft(part, " ")))
		pos += len(part) + 1
		f := strings.TrimSpace(part)
		if f == "" {
			pp.errorf(line, c, "empty entry in chute list %q", s)
			ok = false
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil {
			pp.errorf(line, c, "chute %q is not a number (separate alternates with |, e.g. 12|13)", f)
			ok = false
			continue
		}
		if n == 0 {
			pp.errorf(line, c, "chute 0 means recirculate, not a chute: leave it out")
			ok = false
			continue
		}
		if n < 0 || n > MaxChutes {
			pp.errorf(line, c, "chute %d out of range 1..%d", n, MaxChutes)
			ok = false
			continue
		}
		if cc := pp.p.ChuteCount; cc > 0 && n > cc {
			pp.errorf(line, c, "chute %d out of range: the sorter has chutes 1..%d", n, cc)
			ok = false
			continue
		}
		dup := false
		for _, o := range out {
			if o == uint16(n) {
				dup = true
			}
		}
		if dup {
			pp.errorf(line, c, "chute %d listed twice", n)
			ok = false
			continue
		}
		out = append(out, uint16(n))
	}
	return out, ok
}

// finish checks what needs the whole file: metadata, chute count, exception
// rows, shadowed and redundant rules, chutes shared by routes.
func (pp *planParser) finish(chuteCount, headerLine int) {
	if _, ok := pp.meta["plan_name"]; !ok {
		pp.errorf(1, 1, "missing plan_name row (plan_name,<name>) above the header")
	}
	if _, ok := pp.meta["plan_version"]; !ok {
		pp.errorf(1, 1, "missing plan_version row (plan_version,<number>) above the header")
	}
	if pp.header == nil {
		pp.errorf(1, 1, "missing header row pattern,chutes,route")
		return
	}
	for _, ex := range exceptionRows {
		if !pp.excRow[ex.kind] {
			pp.errorf(headerLine, 1, "missing %s row (the %s)", ex.name, ex.what)
		}
	}
	pp.checkShared()
	pp.checkShadowed()
	pp.checkRoutes(chuteCount)
}

func routeLabel(r string) string {
	if r == "" {
		return "(no route)"
	}
	return r
}

func (pp *planParser) checkShared() {
	type use struct {
		route string
		line  int
	}
	first := map[uint16]use{}
	warned := map[uint16]bool{}
	for _, r := range pp.p.Rules {
		route := r.Route
		if r.Kind >= RuleNoRead && route == "" {
			route = "(exceptions)"
		}
		for _, c := range r.Chutes {
			u, ok := first[c]
			if !ok {
				first[c] = use{route, r.Line}
				continue
			}
			if u.route != route && !warned[c] {
				warned[c] = true
				pp.warnf(r.Line, 1, "chute %d feeds route %s here and route %s on line %d: one container would mix two routes", c, routeLabel(route), routeLabel(u.route), u.line)
			}
		}
	}
}

// checkShadowed warns about prefix rules no 5-digit ZIP can reach and
// rules whose chutes and route equal those of the rule they would fall
// back to.
func (pp *planParser) checkShadowed() {
	p := pp.p
	ix := newPlanIndex(p)
	// Reachability over the 5-digit key space: walk the completions of
	// each short numeric prefix until one of them reaches it.
	var buf [5]byte
	for i, r := range p.Rules {
		if r.Kind != RulePrefix || len(r.Key) > 5 || !allDigits(r.Key) {
			continue
		}
		span := 1
		for l := len(r.Key); l < 5; l++ {
			span *= 10
		}
		base := 0
		for k := 0; k < len(r.Key); k++ {
			base = base*10 + int(r.Key[k]-'0')
		}
		base *= span
		used := false
		for z := base; z < base+span && !used; z++ {
			zipDigits(&buf, z)
			used = ix.match(string(buf[:]), false) == i
		}
		if !used {
			pp.warnf(r.Line, 1, "prefix %s is never used: every 5-digit ZIP it covers has a more specific rule", r.Pattern)
		}
	}
	for i, r := range p.Rules {
		if r.Kind != RuleExact && r.Kind != RulePrefix {
			continue
		}
		par := ix.parent(i)
		if par < 0 {
			continue
		}
		q := p.Rules[par]
		if q.Route == r.Route && equalChutes(q.Chutes, r.Chutes) {
			pp.warnf(r.Line, 1, "rule %s is redundant: %s (line %d) already sends it to the same chutes and route", r.Pattern, q.Pattern, q.Line)
		}
	}
}

func equalChutes(a, b []uint16) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func zipDigits(b *[5]byte, z int) {
	for i := 4; i >= 0; i-- {
		b[i] = byte('0' + z%10)
		z /= 10
	}
}

// planIndex answers "which rule matches this key" on an uncompiled plan,
// for validation, Diff and Explain. The compiled Table gives the same
// answers faster.
type planIndex struct {
	p      *Plan
	exact  map[string]int
	prefix map[string]int
	lens   []int // prefix stem lengths, longest first
}

func newPlanIndex(p *Plan) *planIndex {
	ix := &planIndex{p: p, exact: map[string]int{}, prefix: map[string]int{}}
	seenLen := map[int]bool{}
	for i, r := range p.Rules {
		switch r.Kind {
		case RuleExact:
			ix.exact[r.Key] = i
		case RulePrefix:
			ix.prefix[r.Key] = i
			if !seenLen[len(r.Key)] {
				seenLen[len(r.Key)] = true
				ix.lens = append(ix.lens, len(r.Key))
			}
		}
	}
	sort.Sort(sort.Reverse(sort.IntSlice(ix.lens)))
	return ix
}

// match returns the rule index for key, or -1 (UNKNOWN). With
// stemOnly, key is a prefix stem: only prefix rules of at most its length
// and exact rules are not considered for it.
func (ix *planIndex) match(key string, stemOnly bool) int {
	if !stemOnly {
		if i, ok := ix.exact[key]; ok {
			return i
		}
	}
	zip9 := len(key) == 9 && allDigits(key)
	for _, l := range ix.lens {
		if l > len(key) || (stemOnly && l == len(key)) {
			continue
		}
		if zip9 && l <= 5 {
			// A ZIP+4 is covered by its ZIP5's exact rule before any shorter prefix.
			if i, ok := ix.exact[key[:5]]; ok {
				return i
			}
			zip9 = false
		}
		if i, ok := ix.prefix[key[:l]]; ok {
			return i
		}
	}
	if zip9 {
		if i, ok := ix.exact[key[:5]]; ok {
			return i
		}
	}
	return -1
}

// parent returns the rule that rule i's keys would fall back to without it.
func (ix *planIndex) parent(i int) int {
	r := ix.p.Rules[i]
	if r.Kind == RulePrefix {
		return ix.match(r.Key, true)
	}
	return ix.matchWithout(r.Key, i)
}

// matchWithout matches key as if rule i did not exist.
func (ix *planIndex) matchWithout(key string, i int) int {
	r := ix.p.Rules[i]
	if r.Kind == RuleExact {
		delete(ix.exact, r.Key)
		defer func() { ix.exact[r.Key] = i }()
	}
	return ix.match(key, false)
}

// lookupRule returns the rule the plan applies to a destination key.
func (p *Plan) lookupRule(ix *planIndex, key string) *Rule {
	i := ix.match(key, false)
	if i < 0 {
		return p.Exception(RuleUnknown)
	}
	return &p.Rules[i]
}
