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
	data := code
	symOffset := 0
	if len(code) >= 3 && code[0] == ']' {
		data, symOffset = code[3:], 3
		if isGS1Symbology(code[1:3]) {
			var g gs1Result
			parseGS1(data, &g)
			return t.fromGS1(&g, data, symOffset)
		}
	} else if len(code) > 0 && code[0] == '(' {
		var g gs1Result
		parseGS1HRI(code, &g)
		return t.fromGS1(&g, code, 0)
	} else if strings.IndexByte(code, gs) >= 0 {
		var g gs1Result
		parseGS1(code, &g)
		return t.fromGS1(&g, code, 0)
	}
	if sh, ok := isUPS(data); sh {
		if !ok {
			return resolution{fail: failUPSCheck, id: data}
		}
		return t.viaManifest(data, srcUPS, data)
	}
	if zip, trk, sh, ok := impbRouted(data); sh {
		if !ok {
			return resolution{fail: failIMpbCheck, id: data}
		}
		return resolution{ok: true, dest: dest{key: zip}, src: srcIMpbRouted, id: trk}
	}
	if sh, ok := isIMpbTracking(data); sh {
		if !ok {
			return resolution{fail: failIMpbCheck, id: data}
		}
		return t.viaManifest(data, srcIMpb, data)
	}
	if isTBA(data) {
		return t.viaManifest(data, srcTBA, data)
	}
	if symOffset == 0 && !t.requireSymID && len(data) >= 2 && isDigit(data[0]) && isDigit(data[1]) {
		// GS1 data from a scanner that sends no symbology identifier. A
		// string that does not parse is simply not GS1 here.
		var g gs1Result
		if parseGS1(data, &g); g.fail == gs1OK {
			if res := t.fromGS1(&g, data, 0); res.ok {
				return res
			}
		}
	}
	if t.man != nil {
		if res := t.viaManifest(data, srcRawID, data); res.ok {
			return res
		}
	}
	return t.byPattern(data)
}

// fromGS1 turns a parsed element string into a destination, in the
// contract's order: 420, 421, 403, then package ids via the manifest.
func (t *Table) fromGS1(g *gs1Result, data string, symOffset int) resolution {
	if g.fail != gs1OK {
		return resolution{fail: failGS1, gs1: g.fail, pos: g.failPos + symOffset, ai: g.failAI}
	}
	if g.impb != "" {
		if sh, ok := isIMpbTracking(g.impb); sh && !ok {
			return resolution{fail: failGS1, gs1: gs1BadIMpb, ai: g.impb[:2], id: g.impb}
		}
	}
	if g.ai420 != "" {
		if !t.postalOK(g.ai420) {
			return resolution{fail: failGS1, gs1: gs1BadPostal, ai: "420"}
		}
		return resolution{ok: true, dest: dest{key: g.ai420}, src: src420}
	}
	if v := g.ai421; v != "" {
		cc, postal := v[:3], v[3:]
		if cc == t.country {
			if !t.postalOK(postal) {
				return resolution{fail: failGS1, gs1: gs1BadPostal, ai: "421"}
			}
			return resolution{ok: true, dest: dest{key: postal}, src: src421}
		}
		return resolution{ok: true, dest: dest{cc: cc, key: postal}, src: src421}
	}
	if g.ai403 != "" {
		return resolution{ok: true, dest: dest{key: g.ai403}, src: src403}
	}
	miss := resolution{fail: failNothing}
	if g.ai00 != "" {
		if miss = t.viaManifest(g.ai00, srcSSCC, g.ai00); miss.ok {
			return miss
		}
	}
	if g.impb != "" {
		if res := t.viaManifest(g.impb, srcIMpb, g.impb); res.ok {
			return res
		} else if g.ai00 == "" {
			miss = res
		}
	}
	if p := t.byPattern(data); p.ok {
		return p
	}
	return miss
}

// postalOK checks a domestic postal code: for the US (840) a ZIP5 or a
// ZIP+4 written as nine digits.
func (t *Table) postalOK(v string) bool {
	if t.country == "840" {
		return (len(v) == 5 || len(v) == 9) && allDigits(v)
	}
	return v != ""
}

func (t *Table) viaManifest(id string, src srcKind, shown string) resolution {
	if t.man == nil {
		return resolution{fail: failNoManifest, src: src, id: shown}
	}
	v, ok := t.man.Lookup(id)
	if !ok {
		return resolution{fail: failNotInManifest, src: src, id: shown}
	}
	return resolution{ok: true, dest: t.splitDest(v), src: src, id: shown}
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

func (t *Table) byPattern(data string) resolution {
	for i, re := range t.pats {
		m := re.FindStringSubmatchIndex(data)
		if m == nil {
			continue
		}
		g := t.patDest[i]
		if m[2*g] < 0 || m[2*g+1] <= m[2*g] {
			continue
		}
		return resolution{ok: true, dest: dest{key: data[m[2*g]:m[2*g+1]]}, src: srcPattern, pattern: i}
	}
	return resolution{fail: failNothing}
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
