package sortplan

import "strings"

// dest is a destination key as substrings of the input: cc is set only for
// a postal code of another country (AI 421), whose key is "<cc>:<key>".
type dest struct {
	cc  string
	key string
}

// srcKind says where a destination came from (for Explain).
type srcKind uint8

const (
	srcNone srcKind = iota
	src420
	src421
	src403
	srcSSCC
	srcIMpbRouted
	srcIMpb
	srcUPS
	srcTBA
	srcRawID
	srcPattern
)

func (s srcKind) String() string {
	switch s {
	case src420:
		return "GS1 AI 420 (ship-to postal code)"
	case src421:
		return "GS1 AI 421 (country + postal code)"
	case src403:
		return "GS1 AI 403 (routing code)"
	case srcSSCC:
		return "GS1 AI 00 (SSCC) via manifest"
	case srcIMpbRouted:
		return "USPS IMpb routing ZIP"
	case srcIMpb:
		return "USPS IMpb tracking number via manifest"
	case srcUPS:
		return "UPS 1Z tracking number via manifest"
	case srcTBA:
		return "TBA package id via manifest"
	case srcRawID:
		return "package id via manifest"
	case srcPattern:
		return "configured pattern"
	}
	return "none"
}

// failKind says why a code gave no destination (for Explain).
type failKind uint8

const (
	failNone      failKind = iota
	failGS1                // GS1 syntax; see gs1Fail
	failUPSCheck           // UPS 1Z check digit
	failIMpbCheck          // IMpb check digit
	failUPSFormat          // "1Z..." not 18 characters
	failTBAFormat          // "TBA..." not TBA + 12 digits
	failNoManifest
	failNotInManifest
	failNothing // read fine, nothing in it names a destination
)

// resolution is what one code says about the destination.
type resolution struct {
	ok      bool
	dest    dest
	src     srcKind
	fail    failKind
	gs1     gs1Fail
	pos     int    // byte offset of a GS1 failure in the code
	ai      string // AI of a GS1 failure
	id      string // package id looked up
	pattern int    // index of the pattern that matched
}

// isGS1Symbology reports whether a symbology identifier (the two chars
// after ']') announces GS1 data.
func isGS1Symbology(s string) bool {
	switch s {
	case "C1", "d2", "Q3", "e0", "J1":
		return true
	}
	return false
}

// resolve reads one code. It never allocates, except when it tries the
// configured patterns (last).
func (t *Table) resolve(code string) (r resolution) {
	t.resolveInto(code, &r)
	return r
}

// resolveInto is resolve filling r, which must be zero on entry, in place:
// Decide keeps one resolution on its stack instead of copying ~100 bytes
// up through every return.
func (t *Table) resolveInto(code string, r *resolution) {
	data := code
	symOffset := 0
	if len(code) >= 3 && code[0] == ']' {
		data, symOffset = code[3:], 3
		if isGS1Symbology(code[1:3]) {
			var g gs1Result
			parseGS1(data, &g)
			t.fromGS1(&g, data, symOffset, r)
			return
		}
	} else if len(code) > 0 && code[0] == '(' {
		var g gs1Result
		parseGS1HRI(code, &g)
		t.fromGS1(&g, code, 0, r)
		return
	} else if strings.IndexByte(code, gs) >= 0 {
		var g gs1Result
		parseGS1(code, &g)
		t.fromGS1(&g, code, 0, r)
		return
	}
	if claim, ok, badLen := isUPS(data); claim {
		switch {
		case badLen:
			*r = resolution{fail: failUPSFormat, id: data}
		case !ok:
			*r = resolution{fail: failUPSCheck, id: data}
		default:
			t.viaManifest(data, srcUPS, data, r)
		}
		return
	}
	if zip, trk, sh, ok := impbRouted(data); sh {
		if !ok {
			*r = resolution{fail: failIMpbCheck, id: data}
			return
		}
		r.ok, r.dest.key, r.src, r.id = true, zip, srcIMpbRouted, trk
		return
	}
	if sh, ok := isIMpbTracking(data); sh {
		if !ok {
			*r = resolution{fail: failIMpbCheck, id: data}
			return
		}
		t.viaManifest(data, srcIMpb, data, r)
		return
	}
	if claim, ok := isTBA(data); claim {
		if !ok {
			*r = resolution{fail: failTBAFormat, id: data}
			return
		}
		t.viaManifest(data, srcTBA, data, r)
		return
	}
	if symOffset == 0 && !t.requireSymID && len(data) >= 2 && isDigit(data[0]) && isDigit(data[1]) {
		// GS1 data from a scanner that sends no symbology identifier. A
		// string that does not parse is simply not GS1 here.
		var g gs1Result
		if parseGS1(data, &g); g.fail == gs1OK {
			if t.fromGS1(&g, data, 0, r); r.ok {
				return
			}
			*r = resolution{}
		}
	}
	if t.man != nil {
		if t.viaManifest(data, srcRawID, data, r); r.ok {
			return
		}
		*r = resolution{}
	}
	t.byPattern(data, r)
}

// fromGS1 turns a parsed element string into a destination, in the
// contract's order: 420, 421, 403, then package ids via the manifest. r
// must be zero on entry.
func (t *Table) fromGS1(g *gs1Result, data string, symOffset int, r *resolution) {
	if g.fail != gs1OK {
		r.fail, r.gs1, r.pos, r.ai = failGS1, g.fail, g.failPos+symOffset, g.failAI.in(data)
		return
	}
	impb := g.kept[roleIMpb].in(data)
	if impb != "" {
		if sh, ok := isIMpbTracking(impb); sh && !ok {
			r.fail, r.gs1, r.ai, r.id = failGS1, gs1BadIMpb, impb[:2], impb
			return
		}
	}
	if g.kept[role420] != 0 {
		v, ok := t.postal(g.kept[role420].in(data))
		if !ok {
			r.fail, r.gs1, r.ai = failGS1, gs1BadPostal, "420"
			return
		}
		r.ok, r.dest.key, r.src = true, v, src420
		return
	}
	if g.kept[role421] != 0 {
		v := g.kept[role421].in(data)
		cc, postal := v[:3], v[3:]
		if cc == t.country {
			v, ok := t.postal(postal)
			if !ok {
				r.fail, r.gs1, r.ai = failGS1, gs1BadPostal, "421"
				return
			}
			r.ok, r.dest.key, r.src = true, v, src421
			return
		}
		r.ok, r.dest, r.src = true, dest{cc: cc, key: postal}, src421
		return
	}
	if g.kept[role403] != 0 {
		r.ok, r.dest.key, r.src = true, g.kept[role403].in(data), src403
		return
	}
	r.fail = failNothing
	if ai00 := g.kept[role00].in(data); ai00 != "" {
		if t.viaManifest(ai00, srcSSCC, ai00, r); r.ok {
			return
		}
	}
	if impb != "" {
		var res resolution
		if t.viaManifest(impb, srcIMpb, impb, &res); res.ok || g.kept[role00] == 0 {
			*r = res
			if res.ok {
				return
			}
		}
	}
	var p resolution
	if t.byPattern(data, &p); p.ok {
		*r = p
	}
}

// postal checks a domestic postal code and gives its routing key: for the
// US (840) a ZIP5, a ZIP+4 written as nine digits, or a ZIP+4+2 (eleven
// digits, with the delivery point) read as its ZIP+4, which the plan
// lookup takes to the ZIP5 row when there is no ZIP+4 row.
func (t *Table) postal(v string) (string, bool) {
	if t.country == "840" {
		switch len(v) {
		case 5, 9:
		case 11:
			v = v[:9]
		default:
			return "", false
		}
		return v, allDigits(v)
	}
	return v, v != ""
}

// viaManifest looks a package id up in the manifest into r (set whole).
func (t *Table) viaManifest(id string, src srcKind, shown string, r *resolution) {
	if t.man == nil {
		*r = resolution{fail: failNoManifest, src: src, id: shown}
		return
	}
	v, ok := t.man.Lookup(id)
	if !ok {
		*r = resolution{fail: failNotInManifest, src: src, id: shown}
		return
	}
	*r = resolution{ok: true, dest: t.splitDest(v), src: src, id: shown}
}

// splitDest reads a destination key as written in a manifest or given by
// an operator: "276:10115" is a foreign postal code; the site's own
// country prefix is dropped.
func (t *Table) splitDest(v string) dest {
	if len(v) > 4 && v[3] == ':' && isDigit(v[0]) && isDigit(v[1]) && isDigit(v[2]) {
		if v[:3] == t.country {
			return dest{key: v[4:]}
		}
		return dest{cc: v[:3], key: v[4:]}
	}
	return dest{key: v}
}

// byPattern tries the configured patterns in order into r (set whole).
func (t *Table) byPattern(data string, r *resolution) {
	for i, re := range t.pats {
		m := re.FindStringSubmatchIndex(data)
		if m == nil {
			continue
		}
		g := t.patDest[i]
		if m[2*g] < 0 || m[2*g+1] <= m[2*g] {
			continue
		}
		*r = resolution{ok: true, dest: dest{key: data[m[2*g]:m[2*g+1]]}, src: srcPattern, pattern: i}
		return
	}
	*r = resolution{fail: failNothing}
}

// agree merges two destinations read off one parcel: equal keys agree, and
// a ZIP5 agrees with a ZIP+4 of the same ZIP5 (the ZIP+4 is kept).
func agree(a, b dest) (dest, bool) {
	if a == b {
		return a, true
	}
	if a.cc != "" || b.cc != "" {
		return a, false
	}
	if len(a.key) == 5 && len(b.key) == 9 && b.key[:5] == a.key && allDigits(b.key) && allDigits(a.key) {
		return b, true
	}
	if len(a.key) == 9 && len(b.key) == 5 && a.key[:5] == b.key && allDigits(b.key) && allDigits(a.key) {
		return a, true
	}
	return a, false
}
