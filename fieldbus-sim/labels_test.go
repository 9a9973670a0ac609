package fieldbussim

import (
	"math/rand/v2"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// refMod10 is an independent GS1 mod-10 check: the check digit makes the
// weighted sum of all digits, weights 1,3,1,3,... counted from the right
// with the check digit itself at weight 1, a multiple of 10.
func refMod10Valid(s string) bool {
	if s == "" {
		return false
	}
	sum := 0
	w := 1
	for i := len(s) - 1; i >= 0; i-- {
		c := s[i]
		if c < '0' || c > '9' {
			return false
		}
		sum += int(c-'0') * w
		w = 4 - w // 1 -> 3 -> 1
	}
	return sum%10 == 0
}

// refUPSValid is an independent UPS 1Z check using the published letter
// table (A=2 ... H=9, I=0 ... R=9, S=0 ... Z=7).
func refUPSValid(s string) bool {
	if len(s) != 18 || !strings.HasPrefix(s, "1Z") {
		return false
	}
	table := map[byte]int{}
	for i, c := range "ABCDEFGH" {
		table[byte(c)] = 2 + i
	}
	for i, c := range "IJKLMNOPQR" {
		table[byte(c)] = i
	}
	for i, c := range "STUVWXYZ" {
		table[byte(c)] = i
	}
	odd, even := 0, 0
	for i := 2; i < 17; i++ {
		c := s[i]
		v, ok := table[c]
		if c >= '0' && c <= '9' {
			v, ok = int(c-'0'), true
		}
		if !ok {
			return false
		}
		if (i-2)%2 == 0 {
			odd += v
		} else {
			even += v
		}
	}
	total := odd + 2*even
	want := (10 - total%10) % 10
	return int(s[17]-'0') == want
}

func TestCheckDigitsRealExamples(t *testing.T) {
	tests := []struct {
		name  string
		code  string
		valid bool
		ref   func(string) bool
		impl  func(string) bool
	}{
		{"GS1 general spec SSCC", "106141411234567897", true, refMod10Valid, implMod10},
		{"EAN-13 as GTIN-14", "04006381333931", true, refMod10Valid, implMod10},
		{"SSCC wrong check", "106141411234567898", false, refMod10Valid, implMod10},
		{"UPS shipment number", "1Z2203480342495730", true, refUPSValid, implUPS},
		{"UPS developer example", "1Z12345E6605272234", true, refUPSValid, implUPS},
		// UPS's own documentation samples are known to carry bad check digits.
		{"UPS documentation sample", "1Z12345E0205271688", false, refUPSValid, implUPS},
		{"UPS wrong check", "1Z2203480342495731", false, refUPSValid, implUPS},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.ref(tc.code); got != tc.valid {
				t.Fatalf("reference(%q) = %v, want %v", tc.code, got, tc.valid)
			}
			if got := tc.impl(tc.code); got != tc.valid {
				t.Fatalf("implementation(%q) = %v, want %v", tc.code, got, tc.valid)
			}
		})
	}
}

func implMod10(s string) bool { return gs1Check(s[:len(s)-1]) == s[len(s)-1] }
func implUPS(s string) bool   { return upsCheck(s[2:17]) == s[17] }

// refGS1 is a strict, independent GS1 element-string reader for the AIs the
// generator uses. It returns the AI values or ok=false on any syntax error.
func refGS1(s string) (map[string]string, bool) {
	out := map[string]string{}
	fixed := map[string]int{"00": 18, "01": 14}
	for len(s) > 0 {
		if len(s) < 2 {
			return nil, false
		}
		ai := s[:2]
		if n, ok := fixed[ai]; ok {
			if len(s) < 2+n || !refMod10Valid(s[2:2+n]) {
				return nil, false
			}
			out[ai] = s[2 : 2+n]
			s = s[2+n:]
			continue
		}
		var max int
		switch {
		case ai >= "92" && ai <= "95":
			max = 90
		case len(s) >= 3 && (s[:3] == "420"):
			ai, max = "420", 20
		case len(s) >= 3 && s[:3] == "421":
			ai, max = "421", 12
		case len(s) >= 3 && s[:3] == "403":
			ai, max = "403", 30
		default:
			return nil, false
		}
		s = s[len(ai):]
		v := s
		if i := strings.IndexByte(s, 0x1d); i >= 0 {
			v, s = s[:i], s[i+1:]
		} else {
			s = ""
		}
		if len(v) == 0 || len(v) > max {
			return nil, false
		}
		for j := 0; j < len(v); j++ {
			if v[j] < '!' || v[j] > 'z' || v[j] == ';' {
				return nil, false
			}
		}
		if ai == "421" && (len(v) < 4 || !regexp.MustCompile(`^[0-9]{3}`).MatchString(v)) {
			return nil, false
		}
		out[ai] = v
	}
	return out, true
}

var reHRI = regexp.MustCompile(`^\(420\)([0-9]{5})$`)
var reTBA = regexp.MustCompile(`^TBA[0-9]{12}$`)

// refDest derives the destination of one code as the contract says.
func refDest(code string, manifest map[string]string) string {
	switch {
	case strings.HasPrefix(code, "]C1"):
		f, ok := refGS1(code[3:])
		if !ok {
			return ""
		}
		if v, ok := f["420"]; ok {
			return v
		}
		if v, ok := f["421"]; ok {
			if v[:3] == "840" {
				return v[3:]
			}
			return v[:3] + ":" + v[3:]
		}
		if v, ok := f["403"]; ok {
			return v
		}
		if v, ok := f["00"]; ok {
			return manifest[v]
		}
	case reHRI.MatchString(code):
		return reHRI.FindStringSubmatch(code)[1]
	case strings.HasPrefix(code, "1Z"):
		if refUPSValid(code) {
			return manifest[code]
		}
	case reTBA.MatchString(code):
		return manifest[code]
	}
	return ""
}

func TestLabelsMatchReferenceDerivation(t *testing.T) {
	tests := []struct {
		name string
		cfg  LabelConfig
	}{
		{"defaults clean", LabelConfig{}},
		{"faulty mix", LabelConfig{NoReadRate: 0.05, MultiReadRate: 0.1, ConflictRate: 0.5, GarbageRate: 0.1}},
		{"routing codes and foreign", LabelConfig{
			Destinations:  []string{"R-NORTH", "VAN.07", "276:10115", "840:90210", "606011234"},
			MultiReadRate: 0.2, ConflictRate: 0.5, GarbageRate: 0.05}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := newLabelGen(tc.cfg, rand.New(rand.NewPCG(1, 2)))
			manifest := map[string]string{}
			for _, row := range g.Manifest() {
				if _, dup := manifest[row[0]]; dup {
					t.Fatalf("duplicate package id %q", row[0])
				}
				manifest[row[0]] = row[1]
			}
			kinds := map[string]int{}
			for i := range 5000 {
				l := g.Next()
				kinds[l.Kind]++
				if l.NoRead {
					if l.Codes != nil || l.Destination != "" {
						t.Fatalf("label %d: no-read with codes %q dest %q", i, l.Codes, l.Destination)
					}
					continue
				}
				var dests []string
				for _, c := range l.Codes {
					if strings.ContainsAny(c, "\x02\x03\r\n;") {
						t.Fatalf("label %d: code %q holds a framing or separator byte", i, c)
					}
					dests = append(dests, refDest(c, manifest))
				}
				want := dests[0]
				for _, d := range dests[1:] {
					if d != want {
						want = ""
					}
				}
				if l.Garbage && want != "" {
					t.Fatalf("label %d: garbage %q resolves to %q", i, l.Codes, want)
				}
				if l.Destination != want {
					t.Fatalf("label %d (%s): %q: generator says %q, reference derives %q (%q)", i, l.Kind, l.Codes, l.Destination, want, dests)
				}
				if l.Conflict != (l.MultiRead && want == "") {
					t.Fatalf("label %d: conflict flag %v for %q", i, l.Conflict, dests)
				}
			}
			t.Logf("kinds: %v", kinds)
		})
	}
}

func TestLabelsDeterministic(t *testing.T) {
	cfg := LabelConfig{NoReadRate: 0.1, MultiReadRate: 0.1, ConflictRate: 0.5, GarbageRate: 0.1}
	a := newLabelGen(cfg, rand.New(rand.NewPCG(7, 7)))
	b := newLabelGen(cfg, rand.New(rand.NewPCG(7, 7)))
	if !reflect.DeepEqual(a.Manifest(), b.Manifest()) {
		t.Fatal("manifests differ for the same seed")
	}
	for i := range 1000 {
		if la, lb := a.Next(), b.Next(); !reflect.DeepEqual(la, lb) {
			t.Fatalf("label %d differs: %+v vs %+v", i, la, lb)
		}
	}
}

func TestLabelRates(t *testing.T) {
	cfg := LabelConfig{NoReadRate: 0.1, MultiReadRate: 0.2, ConflictRate: 0.5, GarbageRate: 0.05}
	g := newLabelGen(cfg, rand.New(rand.NewPCG(3, 4)))
	const n = 20000
	var noread, multi, conflict, garbage int
	for range n {
		l := g.Next()
		switch {
		case l.NoRead:
			noread++
		case l.Garbage:
			garbage++
		case l.MultiRead:
			multi++
			if l.Conflict {
				conflict++
			}
		}
	}
	near := func(name string, got int, of int, want float64) {
		t.Helper()
		f := float64(got) / float64(of)
		if f < want*0.85 || f > want*1.15 {
			t.Errorf("%s rate %.4f, want about %.3f", name, f, want)
		}
	}
	near("no-read", noread, n, 0.1)
	near("garbage", garbage, n, 0.05)
	near("multi-read", multi, n, 0.2)
	near("conflict", conflict, multi, 0.5)
}

func TestLabelFormats(t *testing.T) {
	g := newLabelGen(LabelConfig{}, rand.New(rand.NewPCG(5, 6)))
	shapes := map[string]*regexp.Regexp{
		KindUPS:    regexp.MustCompile(`^1Z[0-9A-Z]{6}[0-9]{2}[0-9]{7}[0-9]$`),
		KindAmazon: regexp.MustCompile(`^TBA[0-9]{12}$`),
		KindSSCC:   regexp.MustCompile(`^\]C100[0-9]{18}$`),
		KindUSPS:   regexp.MustCompile(`^\]C1420[0-9]{5}([0-9]{4})?\x1d9[2-5][0-9]{20}$`),
	}
	seen := map[string]bool{}
	for range 3000 {
		l := g.Next()
		re, ok := shapes[l.Kind]
		if !ok {
			continue
		}
		seen[l.Kind] = true
		if !re.MatchString(l.Codes[0]) {
			t.Fatalf("%s label %q does not have the expected shape", l.Kind, l.Codes[0])
		}
		if l.Kind == KindUSPS {
			trk := l.Codes[0][strings.IndexByte(l.Codes[0], 0x1d)+1:]
			if len(trk) != 22 || !refMod10Valid(trk) {
				t.Fatalf("IMpb tracking %q: bad length or check digit", trk)
			}
		}
	}
	for k := range shapes {
		if !seen[k] {
			t.Errorf("no %s label in 3000", k)
		}
	}
}

func TestLabelConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     LabelConfig
		wantErr string
	}{
		{"defaults", LabelConfig{}, ""},
		{"empty destinations", LabelConfig{Destinations: []string{}}, "empty list"},
		{"bad destination", LabelConfig{Destinations: []string{"a;b"}}, "destination 0"},
		{"rate above one", LabelConfig{NoReadRate: 1.5}, "no-read rate"},
		{"rates sum", LabelConfig{NoReadRate: 0.6, GarbageRate: 0.6}, "at most 1"},
		{"negative conflict", LabelConfig{ConflictRate: -0.1}, "conflict rate"},
		{"bad country", LabelConfig{CountryCode: "US"}, "country code"},
		{"negative weight", LabelConfig{Kinds: LabelMix{UPS: -1, GS1Postal: 2}}, "negative weight"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

func BenchmarkLabelNext(b *testing.B) {
	g := newLabelGen(LabelConfig{MultiReadRate: 0.05, GarbageRate: 0.01, NoReadRate: 0.01}, rand.New(rand.NewPCG(1, 1)))
	b.ReportAllocs()
	for b.Loop() {
		g.Next()
	}
}
