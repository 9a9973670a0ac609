package sortplan

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzResolve feeds arbitrary codes to Decide and Explain: no panic, a
// chute from the plan (or 0), and the two always agree.
func FuzzResolve(f *testing.F) {
	for _, tc := range labelCases() {
		f.Add(strings.Join(tc.codes, "\n"))
	}
	for _, l := range SampleLabels(SampleOptions{N: 40, Seed: 1}).Labels {
		f.Add(strings.Join(l.Codes, "\n"))
	}
	f.Add("(421)")
	f.Add("]C1421")
	f.Add("(")
	f.Add("]")
	tb := labelTable(f, ResolverConfig{Patterns: []string{`^ZZ(?P<dest>\d{5})$`}})
	chutes := map[uint16]bool{0: true}
	for _, r := range tb.plan.Rules {
		for _, c := range r.Chutes {
			chutes[c] = true
		}
	}
	f.Fuzz(func(t *testing.T, in string) {
		codes := strings.Split(in, "\n")
		d := tb.Decide(codes, nil)
		if !chutes[d.Chute] || d.Version != 5 {
			t.Fatalf("decision %+v", d)
		}
		e := tb.Explain(codes, nil)
		if e.Chute != d.Chute || e.Reason != d.Reason {
			t.Fatalf("explain %+v vs decide %+v", e, d)
		}
		if d.Reason == ReasonSorted && d.Dest == "" {
			t.Fatalf("sorted without a destination: %+v", d)
		}
		// A destination read from the label itself is part of the label.
		for _, c := range codes {
			r := tb.resolve(c)
			if r.ok && (r.src == src420 || r.src == src403 || r.src == srcIMpbRouted) && !strings.Contains(c, r.dest.key) {
				t.Fatalf("dest %q not in code %q", r.dest.key, c)
			}
		}
	})
}

// FuzzParsePlan: arbitrary plan files never panic; an accepted plan has
// no error diagnostics, only chutes in range, and compiles.
func FuzzParsePlan(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.csv")
	for _, fn := range files {
		if strings.Contains(fn, "plan-256") {
			continue
		}
		b, err := os.ReadFile(fn)
		if err == nil {
			f.Add(b, 0)
		}
	}
	f.Add([]byte(labelPlan), 64)
	f.Fuzz(func(t *testing.T, data []byte, chutes int) {
		if chutes < 0 || chutes > 4096 {
			chutes = 0
		}
		p, diags, err := ParsePlan("fuzz.csv", bytes.NewReader(data), chutes)
		nerr := 0
		for _, d := range diags {
			if !d.Warning {
				nerr++
			}
			_ = d.String()
		}
		if (err != nil) != (nerr > 0) {
			t.Fatalf("err %v with %d error diagnostics", err, nerr)
		}
		if err != nil {
			if p != nil {
				t.Fatal("plan returned with errors")
			}
			return
		}
		for _, r := range p.Rules {
			if len(r.Chutes) == 0 {
				t.Fatalf("rule without chutes: %+v", r)
			}
			for _, c := range r.Chutes {
				if c == 0 || int(c) > p.ChuteCount {
					t.Fatalf("chute %d out of 1..%d", c, p.ChuteCount)
				}
			}
		}
		tb, err := Compile(p, nil, ResolverConfig{})
		if err != nil {
			t.Fatalf("accepted plan does not compile: %v", err)
		}
		for _, k := range []string{"90210", "902101234", "276:10115", "DSF4", ""} {
			tb.DecideKey(k, nil)
		}
		Diff(p, p)
	})
}
