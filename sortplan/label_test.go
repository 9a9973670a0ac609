package sortplan

import (
	"strings"
	"testing"
)

const labelPlan = `plan_name,Labels
plan_version,5
chute_count,64
pattern,chutes,route
NOREAD,60|61,EXC
UNKNOWN,61|60,EXC
MULTIREAD,62,EXC
RECIRC_LIMIT,63|64,EXC
90210,1|2,R1
902101234,3,R2
90211,4,R3
902*,5|6,LH-902
276:*,7,DE
276:10115,8,BERLIN
DSF4,9,DSF
10001,10|11,NYC
DSF5,20|21|22|23|24,LONG
END
`

// mod10 is an independent GS1/USPS mod-10 check digit (weights 3 and 1
// counted from the left by the parity of the body length), so the tests
// do not trust the code under test to build their inputs.
func mod10(body string) string {
	sum := 0
	for i := 0; i < len(body); i++ {
		d := int(body[i] - '0')
		if (len(body)-i)%2 == 1 {
			d *= 3
		}
		sum += d
	}
	return body + string(byte('0'+(10-sum%10)%10))
}

// wrong replaces the last (check) digit by another digit.
func wrong(s string) string {
	c := s[len(s)-1]
	return s[:len(s)-1] + string(byte('0'+(c-'0'+1)%10))
}

var (
	sscc     = mod10("00061414100000001") // 18 digits
	gtin     = mod10("0061414199996")     // 14 digits
	impb     = mod10("920559012345678901234")
	impb2    = mod10("920559012345678901239") // 22 digits, another one, not in the manifest
	upsGood  = "1Z999AA10123456784"           // the UPS developer-guide example, check digit 4
	labelMan = "package_id,destination\n" + sscc + ",10001\n" + upsGood + ",90211\nTBA123456789012,90210\n" + impb + ",90211\nPKG-42,276:10115\nEND,5\n"
)

const GS = "\x1d"

func labelTable(t testing.TB, rc ResolverConfig) *Table {
	t.Helper()
	p, _, err := ParsePlan("labels.csv", strings.NewReader(labelPlan), 0)
	if err != nil {
		t.Fatal(err)
	}
	m, err := ParseManifest("man.csv", strings.NewReader(labelMan))
	if err != nil {
		t.Fatal(err)
	}
	tb, err := Compile(p, m, rc)
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

type labelCase struct {
	name    string
	codes   []string
	chute   uint16
	reason  Reason
	dest    string // DestKey()
	route   string
	noAlloc bool // false for cases that reach the regexp patterns
}

func labelCases() []labelCase {
	u := ReasonUnknown
	return []labelCase{
		// GS1 AI 420 in every form.
		{"gs1-128 420", []string{"]C142090210"}, 1, 0, "90210", "R1", true},
		{"gs1 datamatrix 420", []string{"]d242090210"}, 1, 0, "90210", "R1", true},
		{"gs1 qr 420", []string{"]Q342090210"}, 1, 0, "90210", "R1", true},
		{"raw 420 no symbology id", []string{"42090210"}, 1, 0, "90210", "R1", true},
		{"human readable 420", []string{"(420)90210"}, 1, 0, "90210", "R1", true},
		{"leading FNC1 as GS", []string{GS + "42090210"}, 1, 0, "90210", "R1", true},
		{"zip+4 exact rule", []string{"]C1420902101234"}, 3, 0, "902101234", "R2", true},
		{"zip+4 covered by its zip5 rule", []string{"]C1420902105678"}, 1, 0, "902105678", "R1", true},
		{"zip5 by prefix", []string{"]C142090299"}, 5, 0, "90299", "LH-902", true},
		{"zip+4 by prefix", []string{"]C1420902995678"}, 5, 0, "902995678", "LH-902", true},
		{"zip without rule", []string{"]C142030301"}, 61, u, "30301", "EXC", true},
		{"420 behind GTIN and lot", []string{"]C101" + gtin + "10ABC" + GS + "42090210"}, 1, 0, "90210", "R1", true},
		{"420 behind SSCC (fixed, no GS)", []string{"]C100" + sscc + "42090210"}, 1, 0, "90210", "R1", true},
		{"420 behind SSCC with a spare GS", []string{"]C100" + sscc + GS + "42090210"}, 1, 0, "90210", "R1", true},
		{"420 behind a date", []string{"]d217261130" + "42090210"}, 1, 0, "90210", "R1", true},
		{"420 behind a 4-digit weight AI", []string{"]C13103000125" + "42090210"}, 1, 0, "90210", "R1", true},
		{"420 between variable fields", []string{"]C121SER1" + GS + "42090210" + GS + "10LOT"}, 1, 0, "90210", "R1", true},
		{"420 before SSCC in HRI", []string{"(420)90210(00)" + sscc}, 1, 0, "90210", "R1", true},
		{"420 wins over SSCC", []string{"]C1420902101234" + GS + "00" + sscc}, 3, 0, "902101234", "R2", true},
		// AI 421 and 403.
		{"421 site country", []string{"]C142184090210"}, 1, 0, "90210", "R1", true},
		{"421 foreign exact", []string{"]C142127610115"}, 8, 0, "276:10115", "BERLIN", true},
		{"421 foreign prefix", []string{"]C142127680331"}, 7, 0, "276:80331", "DE", true},
		{"421 foreign without rule", []string{"]C142125075001"}, 61, u, "250:75001", "EXC", true},
		{"403 routing code", []string{"]C1403DSF4"}, 9, 0, "DSF4", "DSF", true},
		{"403 human readable", []string{"(403)DSF4"}, 9, 0, "DSF4", "DSF", true},
		// Strict GS1: a syntax error voids a good 420.
		{"bad GTIN check digit", []string{"]C101" + wrong(gtin) + "42090210"}, 61, u, "", "EXC", true},
		{"bad SSCC check digit", []string{"]C100" + wrong(sscc) + "42090210"}, 61, u, "", "EXC", true},
		{"missing separator after 420", []string{"]C142090210" + "00" + sscc}, 61, u, "", "EXC", true},
		{"missing separator after lot", []string{"]C110ABC42090210"}, 61, u, "", "EXC", true},
		{"missing separator makes a bad postal code", []string{"]C14209021010ABC"}, 61, u, "", "EXC", true},
		{"value too long", []string{"]C110" + strings.Repeat("A", 21) + GS + "42090210"}, 61, u, "", "EXC", true},
		{"letter in numeric AI", []string{"]C101" + "0061414199996A" + "42090210"}, 61, u, "", "EXC", true},
		{"control char in lot", []string{"]C110AB\x7f" + GS + "42090210"}, 61, u, "", "EXC", true},
		{"unknown AI", []string{"]C142090210" + GS + "89ABC"}, 61, u, "", "EXC", true},
		{"bad date", []string{"]C117261399" + "42090210"}, 61, u, "", "EXC", true},
		{"420 repeated with another value", []string{"]C142090210" + GS + "42090211"}, 61, u, "", "EXC", true},
		{"truncated SSCC", []string{"]C142090210" + GS + "00123"}, 61, u, "", "EXC", true},
		{"two separators", []string{"]C142090210" + GS + GS + "10A"}, 61, u, "", "EXC", true},
		{"4-digit postal code", []string{"]C14209021"}, 61, u, "", "EXC", true},
		// At country 840 a postal code is 5 or 9 digits: 6..8 would reach
		// the 902* prefix row if they were read.
		{"6-digit postal code", []string{"]C1420902101"}, 61, u, "", "EXC", true},
		{"7-digit postal code", []string{"]C14209021012"}, 61, u, "", "EXC", true},
		{"8-digit postal code", []string{"]C142090210123"}, 61, u, "", "EXC", true},
		{"HRI fixed field too short", []string{"(420)90210(01)123"}, 61, u, "", "EXC", true},
		{"HRI without parentheses closing", []string{"(42090210"}, 61, u, "", "EXC", true},
		{"symbology id only", []string{"]C1"}, 61, u, "", "EXC", true},
		{"gs1 with bad IMpb part", []string{"]C142090210" + GS + wrong(impb)}, 61, u, "", "EXC", true},
		{"non-GS1 symbology (EAN-8) is not a 420", []string{"]E442090210"}, 61, u, "", "EXC", false},
		// Ship-to and return-to AIs (4300 series), variable length, ended by GS.
		{"420 with ship-to name and address", []string{"]C14301J.%20Smith" + GS + "4302MAIN%20ST%201" + GS + "4307US" + GS + "42090210"}, 1, 0, "90210", "R1", true},
		{"4307 country then 420 (FNC1 after a 2-char AI)", []string{"]C14307US" + GS + "42090210"}, 1, 0, "90210", "R1", true},
		{"4307 without FNC1 swallows the 420", []string{"]C14307US42090210"}, 61, u, "", "EXC", true},
		{"420 then 4300-series to the end", []string{"]C142090210" + GS + "4308+15551234567" + GS + "4321" + "1" + GS + "4309" + "0123456789" + "0123456789"}, 1, 0, "90210", "R1", true},
		{"ship-to block with SSCC and 420", []string{"]C100" + sscc + "4300ACME%20INC" + GS + "4305BEVERLY%20HILLS" + GS + "4306CA" + GS + "420902101234"}, 3, 0, "902101234", "R2", true},
		{"return-to block before 420", []string{"]C14310RETURNS" + GS + "4318" + "30301" + GS + "4317US" + GS + "42090211"}, 4, 0, "90211", "R3", true},
		{"4324 delivery window and temperature", []string{"]C14324261130" + "0800" + GS + "4330000250-" + GS + "42090210"}, 1, 0, "90210", "R1", true},
		{"4321 dangerous goods flag not 0/1", []string{"]C14321" + "2" + GS + "42090210"}, 61, u, "", "EXC", true},
		{"4307 of 3 chars", []string{"]C14307USA" + GS + "42090210"}, 61, u, "", "EXC", true},
		{"4327 is no AI", []string{"]C14327X" + GS + "42090210"}, 61, u, "", "EXC", true},
		{"human readable ship-to", []string{"(4301)J.%20Smith(4307)US(420)90211"}, 4, 0, "90211", "R3", true},
		// ZIP+4+2 (delivery point) reads as its ZIP+4, and so its ZIP5 row.
		{"zip+4+2 to its zip5 row", []string{"]C142090210567801"}, 1, 0, "902105678", "R1", true},
		{"zip+4+2 to its zip+4 row", []string{"]C142090210123401"}, 3, 0, "902101234", "R2", true},
		{"zip+4+2 does not fit AI 421 (9 chars)", []string{"]C142184090210567801"}, 61, u, "", "EXC", true},
		{"human readable zip+4+2", []string{"(420)90210567801"}, 1, 0, "902105678", "R1", true},
		{"zip+4+2 agrees with its zip5", []string{"]C142090210567801", "]C142090210"}, 1, 0, "902105678", "R1", true},
		{"10-digit postal code", []string{"]C14209021012345"}, 61, u, "", "EXC", true},
		{"12-digit postal code", []string{"]C1420902101234567"}, 61, u, "", "EXC", true},
		// USPS IMpb.
		{"impb raw zip5", []string{"42090211" + impb2}, 4, 0, "90211", "R3", true},
		{"impb raw zip9", []string{"420902101234" + impb2}, 3, 0, "902101234", "R2", true},
		{"impb gs1-128 with GS", []string{"]C142090211" + GS + impb2}, 4, 0, "90211", "R3", true},
		{"impb bad check digit", []string{"42090211" + wrong(impb2)}, 61, u, "", "EXC", true},
		{"impb without routing via manifest", []string{impb}, 4, 0, "90211", "R3", true},
		{"impb without routing not in manifest", []string{impb2}, 61, u, "", "EXC", true},
		{"impb raw zip+4+2", []string{"42090210567801" + impb2}, 1, 0, "902105678", "R1", true},
		{"impb raw zip+4+2 bad check digit", []string{"42090210567801" + wrong(impb2)}, 61, u, "", "EXC", true},
		{"AI 92 not shaped like an IMpb is company-internal data", []string{"]C1" + "92" + impb2[2:] + "1" + GS + "42090210"}, 1, 0, "90210", "R1", true},
		// Package ids through the manifest.
		{"sscc via manifest", []string{"]C100" + sscc}, 10, 0, "10001", "NYC", true},
		{"raw sscc via manifest", []string{"00" + sscc}, 10, 0, "10001", "NYC", false},
		{"ups 1Z via manifest", []string{upsGood}, 4, 0, "90211", "R3", true},
		{"ups 1Z in code 128 via manifest", []string{"]C0" + upsGood}, 4, 0, "90211", "R3", true},
		{"ups 1Z bad check digit", []string{wrong(upsGood)}, 61, u, "", "EXC", true},
		{"ups 1Z not in manifest", []string{"1Z999AA1" + "012345679" + string(UPSCheckDigit("999AA1012345679"))}, 61, u, "", "EXC", true},
		{"tba via manifest", []string{"TBA123456789012"}, 1, 0, "90210", "R1", true},
		{"tba with 11 digits", []string{"TBA12345678901"}, 61, u, "", "EXC", true},
		{"tba with 13 digits", []string{"TBA1234567890123"}, 61, u, "", "EXC", true},
		{"ups 1Z of 17 chars", []string{upsGood[:17]}, 61, u, "", "EXC", true},
		{"ups 1Z of 19 chars", []string{upsGood + "0"}, 61, u, "", "EXC", true},

		{"tba not in manifest", []string{"TBA000000000000"}, 61, u, "", "EXC", true},
		{"package id via manifest, foreign dest", []string{"PKG-42"}, 8, 0, "276:10115", "BERLIN", true},
		// Configured pattern, tried last.
		{"pattern", []string{"ZZ90210"}, 1, 0, "90210", "R1", false},
		{"garbage", []string{"hello world"}, 61, u, "", "EXC", false},
		// No-reads and several codes.
		{"no codes", nil, 60, ReasonNoRead, "", "EXC", true},
		{"NoRead token", []string{"NoRead"}, 60, ReasonNoRead, "", "EXC", true},
		{"empty code", []string{""}, 60, ReasonNoRead, "", "EXC", true},
		{"NoRead token and a code", []string{"NoRead", "]C142090210"}, 1, 0, "90210", "R1", true},
		{"two codes agree", []string{"]C142090210", "TBA123456789012"}, 1, 0, "90210", "R1", true},
		{"zip5 and its zip+4 agree", []string{"]C142090210", "]C1420902101234"}, 3, 0, "902101234", "R2", true},
		{"zip+4 and its zip5 agree", []string{"]C1420902101234", "]C142090210"}, 3, 0, "902101234", "R2", true},
		{"two codes differ", []string{"]C142090210", "]C142090211"}, 62, ReasonMultiRead, "", "EXC", true},
		{"two zip+4 differ", []string{"]C1420902101234", "]C1420902105678"}, 62, ReasonMultiRead, "", "EXC", true},
		{"foreign and domestic differ", []string{"]C142127610115", "]C142010115"}, 62, ReasonMultiRead, "", "EXC", true},
		{"a code without destination is ignored", []string{"]C101" + gtin, "]C142090210"}, 1, 0, "90210", "R1", true},
		{"only codes without destination", []string{"]C101" + gtin, "]C10112345678901231"}, 61, u, "", "EXC", false},
	}
}

func TestDecideLabels(t *testing.T) {
	tb := labelTable(t, ResolverConfig{Patterns: []string{`^ZZ(?P<dest>\d{5})$`}})
	for _, tc := range labelCases() {
		t.Run(tc.name, func(t *testing.T) {
			d := tb.Decide(tc.codes, nil)
			if d.Chute != tc.chute || d.Reason != tc.reason || d.DestKey() != tc.dest || d.Route != tc.route || d.Version != 5 {
				t.Errorf("Decide(%q) = %+v (dest %q), want chute %d reason %v dest %q route %q\n%+v",
					tc.codes, d, d.DestKey(), tc.chute, tc.reason, tc.dest, tc.route, tb.Explain(tc.codes, nil))
			}
			if d.Line == 0 {
				t.Errorf("no plan line in %+v", d)
			}
			e := tb.Explain(tc.codes, nil)
			if e.Chute != d.Chute || e.Reason != d.Reason || e.RuleLine != d.Line {
				t.Errorf("Explain disagrees with Decide: %+v vs %+v", e, d)
			}
			if tc.noAlloc {
				if n := testing.AllocsPerRun(50, func() { tb.Decide(tc.codes, nil) }); n != 0 {
					t.Errorf("Decide allocates %.0f times", n)
				}
			}
		})
	}
}

// TestAI420LengthAtCountry840: at a US site the ship-to postal code of AI
// 420 (and of AI 421 with country 840) is a ZIP5 or a ZIP+4 written as
// nine digits; every other length is refused in every form the code can
// arrive in, and the frozen reference reader (gs1ref_test.go) gives the
// same verdict. The plan's 902* prefix row would take 6, 7 and 8 digits
// if the length rule let them through.
func TestAI420LengthAtCountry840(t *testing.T) {
	tb := labelTable(t, ResolverConfig{})
	lengths := []struct {
		name   string
		postal string
		ok     bool
		chute  uint16 // when ok
	}{
		{"4 digits", "9021", false, 0},
		{"5 digits (ZIP5)", "90210", true, 1},
		{"6 digits", "902101", false, 0},
		{"7 digits", "9021012", false, 0},
		{"8 digits", "90210123", false, 0},
		{"9 digits (ZIP+4)", "902101234", true, 3},
		{"10 digits", "9021012345", false, 0},
		{"5 with a letter", "9021A", false, 0},
	}
	forms := []struct {
		name string
		code func(postal string) string
		hri  bool // the reference reads it as the human-readable form
		sym  int  // bytes of symbology identifier the reference skips
	}{
		{"gs1-128", func(p string) string { return "]C1420" + p }, false, 3},
		{"datamatrix", func(p string) string { return "]d2420" + p }, false, 3},
		{"human readable", func(p string) string { return "(420)" + p }, true, 0},
		{"leading FNC1", func(p string) string { return GS + "420" + p }, false, 0},
		{"raw without symbology id", func(p string) string { return "420" + p }, false, 0},
		{"421 site country", func(p string) string { return "]C1421840" + p }, false, 3},
		{"420 after a lot", func(p string) string { return "]C110LOT" + GS + "420" + p }, false, 3},
	}
	for _, f := range forms {
		for _, l := range lengths {
			t.Run(f.name+"/"+l.name, func(t *testing.T) {
				code := f.code(l.postal)
				d := tb.Decide([]string{code}, nil)
				if l.ok {
					if d.Reason != ReasonSorted || d.Chute != l.chute || d.DestKey() != l.postal {
						t.Errorf("Decide(%q) = %+v, want chute %d dest %s", code, d, l.chute, l.postal)
					}
				} else if d.Reason != ReasonUnknown || d.Chute != 61 || d.DestKey() != "" {
					t.Errorf("Decide(%q) = %+v (dest %q), want refused: unknown, chute 61, no destination\n%+v",
						code, d, d.DestKey(), tb.Explain([]string{code}, nil))
				}
				// The reference may refuse earlier, on syntax (AI 421 holds
				// at most 9 postal digits), but never reads another value.
				postal, found, ok := refShipTo("840", code[f.sym:], f.hri)
				if ok != l.ok || (found && postal != l.postal) {
					t.Errorf("reference reader on %q: postal %q found %v ok %v, want %q ok %v",
						code, postal, found, ok, l.postal, l.ok)
				}
			})
		}
	}
}

func TestRequireSymbologyID(t *testing.T) {
	tb := labelTable(t, ResolverConfig{RequireSymbologyID: true})
	if d := tb.Decide([]string{"42090210"}, nil); d.Reason != ReasonUnknown {
		t.Errorf("raw 420 read with RequireSymbologyID: %+v", d)
	}
	if d := tb.Decide([]string{"]C142090210"}, nil); d.Chute != 1 {
		t.Errorf("]C1 420 not read: %+v", d)
	}
}

func TestCheckDigits(t *testing.T) {
	tests := []struct{ body, want string }{
		{"400638133393", "1"},      // EAN-13 4006381333931
		{"0061414199999", "6"},     // GTIN-14 00614141999996 (GS1 General Specifications example)
		{"10614141234567890", "8"}, // SSCC 106141412345678908 (GS1 example)
		{"920559012345678901234", mod10("920559012345678901234")[21:]},
	}
	for _, tt := range tests {
		if got := string(GS1CheckDigit(tt.body)); got != tt.want {
			t.Errorf("GS1CheckDigit(%s) = %s, want %s", tt.body, got, tt.want)
		}
		if got := mod10(tt.body)[len(tt.body):]; got != tt.want {
			t.Errorf("test mod10(%s) = %s, want %s", tt.body, got, tt.want)
		}
	}
	if c := UPSCheckDigit("999AA1012345678"); c != '4' {
		t.Errorf("UPS check digit %c, want 4", c)
	}
	if c := GS1CheckDigit("12A"); c != 0xFF {
		t.Errorf("non-digit gave %q", c)
	}
}

func TestAITableConsistent(t *testing.T) {
	// Every AI the resolver relies on is present with the right shape.
	tests := []struct {
		ai    string
		fixed bool
		min   uint8
		max   uint8
	}{
		{"00", true, 18, 18}, {"01", true, 14, 14}, {"02", true, 14, 14}, {"11", true, 6, 6}, {"17", true, 6, 6},
		{"20", true, 2, 2}, {"3103", true, 6, 6}, {"410", true, 13, 13}, {"420", false, 1, 20},
		{"421", false, 4, 12}, {"403", false, 1, 30}, {"10", false, 1, 20}, {"92", false, 1, 90},
	}
	for _, tt := range tests {
		sp, n := lookupAI(tt.ai + "0000000000000000000000")
		if !sp.valid || n != len(tt.ai) || sp.fixed != tt.fixed || sp.min != tt.min || sp.max != tt.max {
			t.Errorf("AI %s: %+v len %d", tt.ai, sp, n)
		}
	}
	for _, ai := range []string{"89", "23", "05", "4A"} {
		if sp, _ := lookupAI(ai + "000000"); sp.valid {
			t.Errorf("AI %s should be unknown", ai)
		}
	}
}
