package sortplan

import (
	"strings"
	"testing"
)

// TestGS1AIClasses: one case per kind of AI in the dictionary, read by the
// production reader, with the verdict it must give. The independent
// reader (gs1dict_test.go) must agree on accepted versus refused.
func TestGS1AIClasses(t *testing.T) {
	gdti := mod10("123456789012")
	grai := mod10("0123456789012")
	mudiDigits := ""
	for n := 10000000000; mudiDigits == ""; n++ { // a MUDI of digits only, check pair included
		b := itoa(n)
		if p := dictCheckPair(b); strings.Trim(p, "0123456789") == "" {
			mudiDigits = b + p
		}
	}
	tests := []struct {
		name string
		in   string
		want gs1Fail
	}{
		// Predefined length ("*"): no FNC1 after the field.
		{"SSCC then AI", "00" + sscc + "42090210", gs1OK},
		{"SSCC bad check digit", "00" + wrong(sscc), gs1BadCheck},
		{"SSCC cut short", "00" + sscc[:10], gs1Truncated},
		{"GTIN of a made-to-order item (03)", "03" + gtin + "42090210", gs1OK},
		{"date yymmd0 day 00", "17261100" + "42090210", gs1OK},
		{"date month 13", "17261301", gs1BadDate},
		{"date 30 February", "17260230", gs1BadDate},
		{"date 29 February, leap year", "17280229", gs1OK},
		{"date 29 February, common year", "17270229", gs1BadDate},
		{"measure 3105", "3105000125" + "42090210", gs1OK},
		{"measure 3106 is no AI", "3106000125", gs1UnknownAI},
		{"measure family 317n is no AI", "3170000125", gs1UnknownAI},
		// Fixed length, not predefined: FNC1 after it.
		{"4307 country then GS", "4307US" + GS + "42090210", gs1OK},
		{"4307 country without GS", "4307US42090210", gs1TooLong},
		{"4307 one char", "4307U", gs1TooShort},
		{"402 GSIN", "402" + mod10("1234567890123456") + GS + "42090210", gs1OK},
		{"402 GSIN bad check digit", "402" + wrong(mod10("1234567890123456")), gs1BadCheck},
		{"7040 UIC+EXT", "70401ABC" + GS + "42090210", gs1OK},
		{"7040 letter first", "7040AABC", gs1BadChar},
		{"4309 geo N20", "4309" + "01234567890123456789", gs1OK},
		// Variable length.
		{"30 count", "3012345678" + GS + "42090210", gs1OK},
		{"30 count letter", "301234A", gs1BadChar},
		{"30 count too long", "30123456789", gs1TooLong},
		{"4302 address 70 chars", "4302" + strings.Repeat("A", 70), gs1OK},
		{"4302 address 71 chars", "4302" + strings.Repeat("A", 71), gs1TooLong},
		{"4302 address control char", "4302MAIN\x7fST", gs1BadChar},
		{"4302 address space (not CSET 82)", "4302MAIN ST", gs1BadChar},
		{"4301 percent-encoded name", "4301J.%20Smith", gs1OK},
		{"4318 return-to postal", "431830301" + GS + "42090210", gs1OK},
		{"91 internal 90 chars", "91" + strings.Repeat("z", 90), gs1OK},
		{"90 internal 31 chars", "90" + strings.Repeat("z", 31), gs1TooLong},
		// Numeric prefix, then CSET 82.
		{"421 country + postal", "421276D-10115", gs1OK},
		{"421 letter in country", "42127A10115", gs1BadChar},
		{"7030 processor", "7030276ABC", gs1OK},
		{"4330 temperature with minus", "4330000250-", gs1OK},
		{"4330 temperature with plus", "4330000250+", gs1BadValue},
		{"4330 temperature letter in number", "433000025A", gs1BadChar},
		// CSET 39 and CSET 64.
		{"8010 CPID", "8010ABC#-/123", gs1OK},
		{"8010 CPID lower case", "8010abc", gs1BadChar},
		{"8030 digsig", "8030AbC-_0", gs1OK},
		{"8030 digsig padded", "8030AbC-_=", gs1OK},
		{"8030 digsig bad padding", "8030AbC=", gs1BadValue},
		{"8030 digsig = inside", "8030Ab=C-_", gs1BadChar},
		{"8030 digsig !", "8030AbC!", gs1BadChar},
		// Check digits and check pairs.
		{"253 GDTI with serial", "253" + gdti + "ABC", gs1OK},
		{"253 GDTI bad check digit", "253" + wrong(gdti) + "ABC", gs1BadCheck},
		{"8003 GRAI", "8003" + grai + "X1", gs1OK},
		{"8003 GRAI first digit not 0", "8003" + "1" + grai[1:], gs1BadValue},
		{"8013 GMN (General Specifications example)", "80131987654Ad4X4bL5ttr2310c2K", gs1OK},
		{"8013 GMN bad check pair", "80131987654Ad4X4bL5ttr2310cXK", gs1BadCheck},
		{"8014 MUDI", "80141987654Ad4X4bL5ttr2310c2K", gs1OK},
		{"8014 MUDI of digits only", "8014" + mudiDigits, gs1BadValue},
		// Other content rules.
		{"4321 yes", "43211", gs1OK},
		{"4321 neither 0 nor 1", "43212", gs1BadValue},
		{"4324 date and time", "43242611300800", gs1OK},
		{"4324 hour 24", "43242611302400", gs1BadDate},
		{"4324 minute 60", "43242611300860", gs1BadDate},
		{"423 two countries", "423276250", gs1OK},
		{"423 country and a half", "4232762", gs1BadValue},
		{"7007 two dates", "7007261101261130", gs1OK},
		{"7007 nine digits", "7007261101261", gs1BadValue},
		{"7011 date and time", "70112611301200", gs1OK},
		{"8008 date hour minute", "80082611301259", gs1OK},
		{"8008 hour 24", "800826113024", gs1BadDate},
		{"7250 birth date", "725019991231", gs1OK},
		{"7250 30 February", "725019990230", gs1BadDate},
		// Unknown AIs refuse the string.
		{"23 is no AI", "23ABC", gs1UnknownAI},
		{"4327 is no AI", "4327X", gs1UnknownAI},
		{"89 is no AI", "89ABC", gs1UnknownAI},
		{"7260 is no AI", "7260X", gs1UnknownAI},
	}
	d := loadDict(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var g gs1Result
			parseGS1(tc.in, &g)
			if g.fail != tc.want {
				t.Errorf("parseGS1(%q) = %v at %d, want %v", tc.in, g.fail, g.failPos, tc.want)
			}
			if ref := dictParse(d, tc.in); ref.ok != (tc.want == gs1OK) {
				t.Errorf("dictionary reader on %q: ok %v", tc.in, ref.ok)
			}
		})
	}
}

func itoa(n int) string {
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

// TestCsumAlpha: the GS1 alphanumeric check pair on the examples of the
// General Specifications and of the dictionary's test suite.
func TestCsumAlpha(t *testing.T) {
	for _, v := range []string{"1987654Ad4X4bL5ttr2310c2K", "12345678901234567890123NT", "12345_ABCDEFGHIJKLMCP",
		"12345_!\"%&'()*+,-./LC", "12345_0123456789:;<=>?62", "7907665Bm8v2AB", "00000!HV", "22", "!!22"} {
		if !csumAlphaOK(v) {
			t.Errorf("csumAlphaOK(%q) = false", v)
		}
		if got := dictCheckPair(v[:len(v)-2]); got != v[len(v)-2:] {
			t.Errorf("reference check pair of %q = %s", v, got)
		}
	}
	for _, v := range []string{"1987654Ad4X4bL5ttr2310cXK", "1987654Ad4X4bL5ttr2310c2X", "33", "2", "", "12345 ABCDEFGHIJKLMCP"} {
		if csumAlphaOK(v) {
			t.Errorf("csumAlphaOK(%q) = true", v)
		}
	}
}

// TestCarrierIDs: one rule per carrier, the same treatment for all: a code
// that claims a carrier and misses its format is refused with a reason
// that names the format, and is never looked up as a plain package id.
func TestCarrierIDs(t *testing.T) {
	tb := labelTable(t, ResolverConfig{})
	tests := []struct {
		name, code string
		ok         bool
		problem    string // substring of Explain's problem when refused
	}{
		{"UPS 1Z", upsGood, true, ""},
		{"UPS 1Z bad check digit", wrong(upsGood), false, "bad check digit"},
		{"UPS 1Z 17 chars", upsGood[:17], false, "must be 18"},
		{"UPS 1Z 19 chars", upsGood + "4", false, "must be 18"},
		{"TBA 12 digits", "TBA123456789012", true, ""},
		{"TBA 11 digits", "TBA12345678901", false, "TBA id with 11 digits: must be TBA and 12 digits"},
		{"TBA 13 digits", "TBA1234567890123", false, "TBA id with 13 digits"},
		{"IMpb 22 digits", impb, true, ""},
		{"IMpb bad check digit", wrong(impb), false, "IMpb number with a bad check digit"},
		{"IMpb routed ZIP5", "42090211" + impb2, true, ""},
		{"IMpb routed ZIP+4+2", "42090210567801" + impb2, true, ""},
		{"IMpb routed bad check digit", "42090211" + wrong(impb2), false, "bad check digit"},
		{"SSCC", "]C100" + sscc, true, ""},
		{"SSCC bad check digit", "]C100" + wrong(sscc), false, "bad check digit in AI 00"},
		{"SSCC 17 digits", "]C100" + sscc[:17], false, "cut short in AI 00"},
		{"unknown AI quoted", "]C142090210" + GS + "4327X", false, `unknown application identifier "4327" at byte 12`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := tb.Explain([]string{tc.code}, nil)
			if (e.Reason == ReasonSorted) != tc.ok {
				t.Fatalf("Explain(%q) = %+v", tc.code, e)
			}
			if !tc.ok && !strings.Contains(e.Codes[0].Problem, tc.problem) {
				t.Errorf("problem %q, want it to say %q", e.Codes[0].Problem, tc.problem)
			}
		})
	}
	// The refusal holds even when the manifest lists the malformed id.
	m, err := ParseManifest("m.csv", strings.NewReader("package_id,destination\nTBA12345678901,90210\n1Z999AA1012345678,90210\nEND,2\n"))
	if err != nil {
		t.Fatal(err)
	}
	tb2, err := Compile(tb.plan, m, ResolverConfig{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"TBA12345678901", "1Z999AA1012345678"} {
		if d := tb2.Decide([]string{c}, nil); d.Reason != ReasonUnknown {
			t.Errorf("malformed %q in the manifest was routed: %+v", c, d)
		}
	}
}
