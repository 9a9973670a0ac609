package gateway

import (
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

func TestCode128CheckDigit(t *testing.T) {
	cases := []struct {
		text  string
		check int
	}{
		// Worked example of the standard's check: start B 104, "PJJ123C"
		// 48 42 42 17 18 19 35: 104 + 48 + 84 + 126 + 68 + 90 + 114 + 245
		// = 879; 879 mod 103 = 55.
		{"PJJ123C", 55},
		// "L1-C12-3": 44 17 13 35 17 18 13 19, weighted 44 + 34 + 39 +
		// 140 + 85 + 108 + 91 + 152 = 693; 104 + 693 = 797 mod 103 = 76.
		{"L1-C12-3", 76},
		{"", 104 % 103},
	}
	for _, c := range cases {
		s, err := code128Symbols(c.text)
		if err != nil {
			t.Fatal(err)
		}
		if s[0] != code128StartB || s[len(s)-1] != code128Stop || s[len(s)-2] != c.check {
			t.Errorf("%q: symbols %v, want check %d", c.text, s, c.check)
		}
	}
	if _, err := code128Symbols("é"); err == nil {
		t.Errorf("non-ASCII accepted")
	}
}

func TestCode128Table(t *testing.T) {
	seen := map[string]bool{}
	for i, p := range code128Widths {
		sum, want := 0, 11
		if i == code128Stop {
			want = 13
		}
		for _, r := range p {
			sum += int(r - '0')
		}
		if sum != want || seen[p] {
			t.Errorf("symbol %d %s: %d modules (want %d) or duplicate", i, p, sum, want)
		}
		seen[p] = true
	}
}

// svgWidths reads the element widths back from the SVG's bars.
func svgWidths(t *testing.T, svg string) []int {
	t.Helper()
	re := regexp.MustCompile(`<rect x="(\d+)" width="(\d+)"`)
	var w []int
	end := 10
	for _, m := range re.FindAllStringSubmatch(svg, -1) {
		x, _ := strconv.Atoi(m[1])
		bw, _ := strconv.Atoi(m[2])
		if len(w) > 0 {
			w = append(w, x-end) // the space before this bar
		}
		w = append(w, bw)
		end = x + bw
	}
	return w
}

func TestCode128RoundTrip(t *testing.T) {
	for _, text := range []string{"L1-C12-3", "LINE_A-C256-10042", " !~", "PJJ123C"} {
		svg, err := Code128SVG(text, 2, 80)
		if err != nil {
			t.Fatal(err)
		}
		got, err := code128Decode(svgWidths(t, svg))
		if err != nil || got != text {
			t.Errorf("%q: decoded %q, %v", text, got, err)
		}
		syms, _ := code128Symbols(text)
		if w := code128Modules(syms); !reflect.DeepEqual(w, svgWidths(t, svg)) {
			t.Errorf("%q: svg widths differ from the modules", text)
		}
	}
	// A wrong check symbol is caught.
	syms, _ := code128Symbols("L1-C1-1")
	syms[len(syms)-2] = (syms[len(syms)-2] + 1) % 103
	if _, err := code128Decode(code128Modules(syms)); err == nil || !strings.Contains(err.Error(), "check") {
		t.Errorf("bad check accepted: %v", err)
	}
}

func FuzzCode128(f *testing.F) {
	for _, s := range []string{"L1-C12-3", "", "~~~", "a b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		syms, err := code128Symbols(s)
		if err != nil {
			return
		}
		got, err := code128Decode(code128Modules(syms))
		if err != nil || got != s {
			t.Fatalf("%q: %q %v", s, got, err)
		}
	})
}

func TestZPLFieldEscapes(t *testing.T) {
	if got := zplField("R^1~_x"); got != "R_5E1_7E_5Fx" {
		t.Fatalf("zplField %q", got)
	}
	z := ContainerZPL(Manifest{Line: "L1", Container: "L1-C1-1", Chute: 1, Route: "^XZ"})
	if strings.Count(z, "^XZ") != 1 || !strings.Contains(z, "^FH^FD_5EXZ^FS") {
		t.Fatalf("route injected a command: %q", z)
	}
}
