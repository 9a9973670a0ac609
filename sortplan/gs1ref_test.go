package sortplan

import (
	"strings"
	"testing"
)

// The GS1 reader as it was before it was tuned for speed (commit 9d1d73d,
// strings instead of spans, specs by value, a switch on the AI digits),
// kept as the reference that the tuned reader must match byte for byte:
// same verdict, same failure position and AI, same kept values.

// refResult holds the fields the resolver cares about, as substrings of the
// input; fail/failPos/failAI describe the first error.
type refResult struct {
	fail    gs1Fail
	failPos int
	failAI  string
	ai420   string
	ai421   string
	ai403   string
	ai00    string
	impb    string // AI 92..95 value with its AI: a USPS IMpb tracking number
}

// refLookupAI reads an AI at the start of s.
func refLookupAI(s string) (aiSpec, int) {
	if len(s) < 2 || !isDigit(s[0]) || !isDigit(s[1]) {
		return aiSpec{}, 0
	}
	p := int(s[0]-'0')*10 + int(s[1]-'0')
	l := int(gs1AIs.aiLen[p])
	if l == 0 || len(s) < l {
		return aiSpec{}, 0
	}
	switch l {
	case 2:
		return gs1AIs.s2[p], 2
	case 3:
		if !isDigit(s[2]) {
			return aiSpec{}, 0
		}
		return gs1AIs.s3[p*10+int(s[2]-'0')], 3
	default:
		if !isDigit(s[2]) || !isDigit(s[3]) {
			return aiSpec{}, 0
		}
		return gs1AIs.s4[p*100+int(s[2]-'0')*10+int(s[3]-'0')], 4
	}
}

// refCheckValue validates one AI value against its spec.
func refCheckValue(sp aiSpec, v string) (gs1Fail, int) {
	if len(v) == 0 {
		return gs1EmptyField, 0
	}
	if len(v) < int(sp.min) {
		return gs1TooShort, len(v)
	}
	if len(v) > int(sp.max) {
		return gs1TooLong, int(sp.max)
	}
	for k := 0; k < len(v); k++ {
		c := csetOf[v[k]]
		if k < int(sp.numPrefix) {
			if c&csN == 0 {
				return gs1BadChar, k
			}
		} else if c&sp.cs == 0 {
			return gs1BadChar, k
		}
	}
	if sp.check > 0 && !gs1CheckOK(v[:sp.check]) {
		return gs1BadCheck, int(sp.check) - 1
	}
	if sp.lint != lintNone {
		if f, off := lintValue(sp.lint, v); f != gs1OK {
			return f, off
		}
	}
	return gs1OK, 0
}

// record keeps the value of an AI the resolver uses; an AI repeated with a
// different value is a syntax error (the GS1 rule for repeated AIs).
func refRecord(slot *string, v string) bool {
	if *slot != "" && *slot != v {
		return false
	}
	*slot = v
	return true
}

// note stores interesting values into r; returns false on a repeated AI conflict.
func (r *refResult) refNote(ai string, v string, whole string) bool {
	switch ai {
	case "420":
		return refRecord(&r.ai420, v)
	case "421":
		return refRecord(&r.ai421, v)
	case "403":
		return refRecord(&r.ai403, v)
	case "00":
		return refRecord(&r.ai00, v)
	case "92", "93", "94", "95":
		return refRecord(&r.impb, whole)
	}
	return true
}

// parseGS1 reads into r (zero on entry) an element string whose symbology identifier (if any) was
// removed: AIs in a row, variable-length values ended by GS or the end.
func refParseGS1(s string, r *refResult) {
	i := 0
	if i < len(s) && s[i] == gs { // FNC1 in first position, as some scanners send it
		i++
	}
	if i >= len(s) {
		r.fail, r.failPos = gs1Empty, i
		return
	}
	for i < len(s) {
		if s[i] == gs {
			r.fail, r.failPos = gs1EmptyField, i
			return
		}
		sp, al := refLookupAI(s[i:])
		if !sp.valid {
			r.fail, r.failPos = gs1UnknownAI, i
			return
		}
		ai := s[i : i+al]
		vs := i + al
		var ve, next int
		if sp.fixed {
			ve = vs + int(sp.max)
			if ve > len(s) {
				r.fail, r.failPos, r.failAI = gs1Truncated, len(s), ai
				return
			}
			next = ve
			if next < len(s) && s[next] == gs { // tolerated: a separator after a predefined-length field
				next++
			}
		} else {
			ve = len(s)
			for k := vs; k < len(s); k++ {
				if s[k] == gs {
					ve = k
					break
				}
			}
			next = ve
			if ve < len(s) {
				next = ve + 1
			}
		}
		v := s[vs:ve]
		if f, off := refCheckValue(sp, v); f != gs1OK {
			r.fail, r.failPos, r.failAI = f, vs+off, ai
			return
		}
		if !r.refNote(ai, v, s[i:ve]) {
			r.fail, r.failPos, r.failAI = gs1Repeated, i, ai
			return
		}
		i = next
	}
	return
}

// refParseGS1HRI reads the human-readable form "(420)90210(00)…".
func refParseGS1HRI(s string, r *refResult) {
	i := 0
	if len(s) == 0 {
		r.fail = gs1Empty
		return
	}
	for i < len(s) {
		if s[i] != '(' {
			r.fail, r.failPos = gs1BadHRI, i
			return
		}
		close := -1
		for k := i + 1; k < len(s) && k <= i+5; k++ {
			if s[k] == ')' {
				close = k
				break
			}
		}
		if close < 0 {
			r.fail, r.failPos = gs1BadHRI, i
			return
		}
		ai := s[i+1 : close]
		sp, al := refLookupAI(ai)
		if !sp.valid || al != len(ai) {
			r.fail, r.failPos = gs1UnknownAI, i+1
			return
		}
		vs := close + 1
		ve := len(s)
		for k := vs; k < len(s); k++ {
			if s[k] == '(' {
				ve = k
				break
			}
		}
		v := s[vs:ve]
		if sp.fixed && len(v) != int(sp.max) {
			f := gs1TooShort
			if len(v) > int(sp.max) {
				f = gs1TooLong
			}
			r.fail, r.failPos, r.failAI = f, vs, ai
			return
		}
		if f, off := refCheckValue(sp, v); f != gs1OK {
			r.fail, r.failPos, r.failAI = f, vs+off, ai
			return
		}
		if !r.refNote(ai, v, "") {
			r.fail, r.failPos, r.failAI = gs1Repeated, i, ai
			return
		}
		if ai == "92" || ai == "93" || ai == "94" || ai == "95" {
			r.impb = "" // the HRI form has no contiguous "9x…" substring; IMpb is read from the barcode
		}
		i = ve
	}
	return
}

// refPostalOK is the domestic postal-code rule as it was at the same commit
// (resolve.go, Table.postalOK), frozen: at country 840 a ZIP5 or a ZIP+4
// written as nine digits; elsewhere any non-empty value.
func refPostalOK(country, v string) bool {
	if country != "840" {
		return v != ""
	}
	if len(v) != 5 && len(v) != 9 {
		return false
	}
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return false
		}
	}
	return true
}

// refShipTo is the reference verdict on the ship-to postal code of one
// code at a site in country: the AI 420 value, or the AI 421 value when it
// names the site's own country, and whether that is a destination. hri
// selects the human-readable reader. found is false when the code has
// neither AI or does not parse.
func refShipTo(country, code string, hri bool) (postal string, found, ok bool) {
	var r refResult
	if hri {
		refParseGS1HRI(code, &r)
	} else {
		refParseGS1(code, &r)
	}
	switch {
	case r.fail != gs1OK:
		return "", false, false
	case r.ai420 != "":
		return r.ai420, true, refPostalOK(country, r.ai420)
	case len(r.ai421) > 3 && r.ai421[:3] == country:
		return r.ai421[3:], true, refPostalOK(country, r.ai421[3:])
	}
	return "", false, false
}

// gs1Corpus is every GS1-ish code of the label tests and a sample label
// set, each also cut short and with one byte changed at every position:
// the syntax failures of the strict reader, reached in every field.
func gs1Corpus() []string {
	var base []string
	for _, tc := range labelCases() {
		base = append(base, tc.codes...)
	}
	for _, l := range SampleLabels(SampleOptions{N: 60, Seed: 7}).Labels {
		base = append(base, l.Codes...)
	}
	base = append(base, "(420)90210(92)"+impb, "(92)"+impb+"(92)"+impb2, "]C192"+impb+GS+"92"+impb2,
		"]C100"+sscc+GS+"00"+sscc, "]C100"+sscc+"00"+wrong(sscc), "(421)276(421)2761",
		"]C1253"+mod10("123456789012")+"ABC", "]C17006261131", "]C1391012345", "]C180061234567890123"+"1234")
	var out []string
	for _, c := range base {
		out = append(out, c)
		for i := 0; i < len(c); i++ {
			out = append(out, c[:i])
			for _, b := range []byte{'0', '9', 'A', 'a', '(', ')', '#', 0x1D, 0x7F} {
				out = append(out, c[:i]+string(b)+c[i+1:])
			}
		}
	}
	return out
}

// sameAsReference compares the tuned readers with the reference on one
// input, in the element-string and the human-readable form.
func sameAsReference(t *testing.T, in string) {
	t.Helper()
	var g gs1Result
	var w refResult
	parseGS1(in, &g)
	refParseGS1(in, &w)
	if got := (refResult{fail: g.fail, failPos: g.failPos, failAI: g.failAI.in(in), ai420: g.kept[role420].in(in),
		ai421: g.kept[role421].in(in), ai403: g.kept[role403].in(in), ai00: g.kept[role00].in(in),
		impb: g.kept[roleIMpb].in(in)}); got != w {
		t.Fatalf("parseGS1(%q) = %+v, reference %+v", in, got, w)
	}
	g, w = gs1Result{}, refResult{}
	parseGS1HRI(in, &g)
	refParseGS1HRI(in, &w)
	if got := (refResult{fail: g.fail, failPos: g.failPos, failAI: g.failAI.in(in), ai420: g.kept[role420].in(in),
		ai421: g.kept[role421].in(in), ai403: g.kept[role403].in(in), ai00: g.kept[role00].in(in),
		impb: g.kept[roleIMpb].in(in)}); got != w {
		t.Fatalf("parseGS1HRI(%q) = %+v, reference %+v", in, got, w)
	}
	for _, ai := range []string{in, in + "00000000"} {
		sp, n := lookupAI(ai)
		wsp, wn := refLookupAI(ai)
		wsp.role = sp.role // the role tag is new; everything else must match
		if sp != wsp || n != wn {
			t.Fatalf("lookupAI(%q) = %+v %d, reference %+v %d", ai, sp, n, wsp, wn)
		}
	}
}

func TestGS1MatchesReference(t *testing.T) {
	corpus := gs1Corpus()
	for _, in := range corpus {
		for _, s := range []string{in, strings.TrimPrefix(in, "]C1"), strings.TrimPrefix(in, "]d2")} {
			sameAsReference(t, s)
		}
	}
	t.Logf("%d inputs", len(corpus))
}

// FuzzGS1Reference: the tuned GS1 readers agree with the reference on
// any input.
func FuzzGS1Reference(f *testing.F) {
	for _, c := range gs1Corpus() {
		if len(c) > 3 && c[0] == ']' {
			c = c[3:]
		}
		f.Add(c)
	}
	f.Fuzz(sameAsReference)
}
