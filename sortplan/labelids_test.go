package sortplan

import (
	"slices"
	"strings"
	"testing"
)

func TestReadLabel(t *testing.T) {
	routed := "420" + "90210" + impb
	cases := []struct {
		name    string
		code    string
		ids     []string
		postal  string
		country string
	}{
		{"ups raw", upsGood, []string{upsGood}, "", ""},
		{"ups with symbology id", "]C0" + upsGood, []string{upsGood}, "", ""},
		{"ups bad check digit still named", wrong(upsGood), []string{wrong(upsGood)}, "", ""},
		{"impb tracking", impb, []string{impb}, "", ""},
		{"impb bad check digit is not an id", wrong(impb), nil, "", ""},
		{"impb routed raw", routed, []string{impb}, "90210", ""},
		{"impb routed gs1-128", "]C1" + "42090210" + GS + impb, []string{impb}, "90210", ""},
		{"sscc gs1-128", "]C100" + sscc, []string{sscc}, "", ""},
		{"sscc hri", "(00)" + sscc, []string{sscc}, "", ""},
		{"sscc raw no symbology id", "00" + sscc, []string{sscc}, "", ""},
		{"sscc and zip+4", "]C1420902101234" + GS + "00" + sscc, []string{sscc}, "902101234", ""},
		{"tba", "TBA123456789012", []string{"TBA123456789012"}, "", ""},
		{"tba with symbology id", "]Q0TBA123456789012", []string{"TBA123456789012"}, "", ""},
		{"420 only", "]C142090210", nil, "90210", ""},
		{"420 leading FNC1", GS + "42090210", nil, "90210", ""},
		{"421 foreign", "]C142127610115", nil, "10115", "276"},
		{"gs1 syntax error names nothing", "]C100" + wrong(sscc) + "42090210", nil, "", ""},
		{"plain text", "HELLO", nil, "", ""},
		{"empty", "", nil, "", ""},
		{"symbology id only", "]C1", nil, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := ReadLabel(tc.code)
			if !slices.Equal(got.PackageIDs, tc.ids) || got.Postal != tc.postal || got.Country != tc.country {
				t.Fatalf("ReadLabel(%q) = %+v, want ids %v postal %q country %q", tc.code, got, tc.ids, tc.postal, tc.country)
			}
		})
	}
}

// FuzzReadLabel: any input reads without a panic, and every id and
// postal code it names is a piece of the input (nothing invented).
func FuzzReadLabel(f *testing.F) {
	for _, s := range []string{upsGood, "]C0" + upsGood, impb, "420" + "90210" + impb, "]C1" + "42090210" + GS + impb,
		"]C100" + sscc, "(00)" + sscc + "(420)90210", "00" + sscc, "TBA123456789012", "]C142127610115", "]d2", "(", GS} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l := ReadLabel(s)
		for _, v := range append([]string{l.Postal, l.Country}, l.PackageIDs...) {
			if !strings.Contains(s, v) {
				t.Fatalf("ReadLabel(%q) = %+v: %q is not in the input", s, l, v)
			}
		}
	})
}
