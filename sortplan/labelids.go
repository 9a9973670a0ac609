package sortplan

// LabelIDs is what one code names by itself, with no plan and no
// manifest: the package ids printed in it and the postal code it
// carries. The journal indexes them so that a technician finds an item by
// its tracking number or its ZIP (ReadLabel).
type LabelIDs struct {
	// PackageIDs in the order found: a UPS 1Z number, a USPS IMpb
	// tracking number (92..95 and the rest, without a 420+ZIP routing
	// prefix), an SSCC (the 18 digits after AI 00), an Amazon-style TBA
	// id. Shapes as the resolver reads them; a GS1 string must parse.
	PackageIDs []string
	// Postal is the ship-to postal code: AI 420's value, AI 421's after
	// the country, or an IMpb's routing ZIP; "" when the code has none.
	Postal string
	// Country is AI 421's ISO country code (three digits), "" otherwise.
	Country string
}

// ReadLabel reads a code as scanned (with or without its AIM symbology
// identifier, GS as FNC1, or the human-readable "(00)…" form) for its
// package ids and postal code. A code it cannot read gives a zero
// LabelIDs; it never fails. It allocates only the PackageIDs slice.
func ReadLabel(code string) LabelIDs {
	var out LabelIDs
	data := code
	gs1 := false
	switch {
	case len(code) >= 3 && code[0] == ']':
		data = code[3:]
		gs1 = isGS1Symbology(code[1:3])
	case len(code) > 0 && code[0] == '(':
		var g gs1Result
		parseGS1HRI(code, &g)
		out.fromGS1(&g, code)
		return out
	}
	for i := 0; i < len(data) && !gs1; i++ {
		gs1 = data[i] == gs
	}
	if gs1 {
		var g gs1Result
		parseGS1(data, &g)
		out.fromGS1(&g, data)
		return out
	}
	if labelUPS(data) {
		out.PackageIDs = []string{data}
		return out
	}
	if zip, trk, _, ok := impbRouted(data); ok {
		out.PackageIDs, out.Postal = []string{trk}, zip
		return out
	}
	if _, ok := isIMpbTracking(data); ok {
		out.PackageIDs = []string{data}
		return out
	}
	if labelTBA(data) {
		out.PackageIDs = []string{data}
		return out
	}
	if len(data) >= 2 && isDigit(data[0]) && isDigit(data[1]) {
		// GS1 data from a scanner that sends no symbology identifier; a
		// string that does not parse is simply not GS1.
		var g gs1Result
		if parseGS1(data, &g); g.fail == gs1OK {
			out.fromGS1(&g, data)
		}
	}
	return out
}

// fromGS1 takes the kept fields of a parsed element string; nothing when
// it did not parse.
func (out *LabelIDs) fromGS1(g *gs1Result, data string) {
	if g.fail != gs1OK {
		return
	}
	if v := g.kept[role420].in(data); v != "" {
		out.Postal = v
	} else if v := g.kept[role421].in(data); len(v) > 3 {
		out.Country, out.Postal = v[:3], v[3:]
	}
	if v := g.kept[role00].in(data); v != "" {
		out.PackageIDs = append(out.PackageIDs, v)
	}
	if v := g.kept[roleIMpb].in(data); v != "" {
		if sh, ok := isIMpbTracking(v); ok || !sh {
			out.PackageIDs = append(out.PackageIDs, v)
		}
	}
}

// labelUPS reports whether s has a UPS 1Z number's shape: "1Z" and 16
// capitals or digits. The check digit is not asked for: a misprinted
// label is still the label a technician reads off the parcel.
func labelUPS(s string) bool {
	if len(s) != 18 || s[0] != '1' || s[1] != 'Z' {
		return false
	}
	for i := 2; i < len(s); i++ {
		if c := s[i]; !isDigit(c) && (c < 'A' || c > 'Z') {
			return false
		}
	}
	return true
}

// labelTBA reports whether s is an Amazon-style TBA id: "TBA" and 12
// digits.
func labelTBA(s string) bool {
	return len(s) == 15 && s[0] == 'T' && s[1] == 'B' && s[2] == 'A' && allDigits(s[3:])
}
