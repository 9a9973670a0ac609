package sortplan

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// chuteCountFor gives some testdata files the sorter's chute count; the
// others take the file's chute_count row.
var chuteCountFor = map[string]int{"chutecount.bad.csv": 256}

func readWant(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// TestPlanFiles checks every testdata/*.good.csv parses without errors
// (and with exactly the warnings its .want lists) and every *.bad.csv is
// rejected with every error its .want lists, all at once.
func TestPlanFiles(t *testing.T) {
	files, err := filepath.Glob("testdata/*.csv")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		base := filepath.Base(f)
		good := strings.HasSuffix(base, ".good.csv")
		bad := strings.HasSuffix(base, ".bad.csv")
		if !good && !bad {
			continue
		}
		t.Run(base, func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			p, diags, err := ParsePlan(base, bytes.NewReader(b), chuteCountFor[base])
			var all []string
			nWarn := 0
			for _, d := range diags {
				all = append(all, d.String())
				if d.Warning {
					nWarn++
				}
			}
			joined := strings.Join(all, "\n")
			want := readWant(t, strings.TrimSuffix(f, ".csv")+".want")
			if good {
				if err != nil {
					t.Fatalf("good plan rejected: %v", err)
				}
				if p == nil || p.Name == "" || p.Version == 0 {
					t.Fatalf("plan %+v", p)
				}
				if nWarn != len(want) {
					t.Errorf("%d warnings, want %d:\n%s", nWarn, len(want), joined)
				}
			} else {
				if err == nil || p != nil {
					t.Fatalf("bad plan accepted")
				}
				if !errors.Is(err, ErrInvalidPlan) {
					t.Errorf("error %v does not wrap ErrInvalidPlan", err)
				}
				if len(want) == 0 {
					t.Fatalf("bad plan without a .want file")
				}
				if len(err.(*PlanError).Diags) < len(want) {
					t.Errorf("%d errors, want at least %d", len(err.(*PlanError).Diags), len(want))
				}
			}
			for _, w := range want {
				if !strings.Contains(joined, w) {
					t.Errorf("no diagnostic contains %q; got:\n%s", w, joined)
				}
			}
			if err != nil {
				for _, w := range want {
					if !strings.Contains(err.Error(), w) && !strings.Contains(w, "warning") {
						t.Errorf("error text lacks %q", w)
					}
				}
			}
		})
	}
}

func TestParseSmallPlan(t *testing.T) {
	p, diags, err := LoadPlan("testdata/small.good.csv", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range diags {
		t.Log(d)
	}
	if p.Name != "Test SC" || p.Version != 7 || p.ChuteCount != 32 {
		t.Errorf("metadata %q %d %d", p.Name, p.Version, p.ChuteCount)
	}
	if want := time.Date(2026, 11, 25, 22, 0, 0, 0, time.UTC); !p.Effective.Equal(want) {
		t.Errorf("effective %v", p.Effective)
	}
	r := p.Rules[len(p.Rules)-1]
	if r.Pattern != "01234" || r.Kind != RuleExact || r.Line != 19 || r.Route != "R003" || len(r.Chutes) != 1 || r.Chutes[0] != 12 {
		t.Errorf("last rule %+v", r)
	}
	if ex := p.Exception(RuleMultiRead); ex == nil || ex.Chutes[0] != 31 || ex.Chutes[1] != 30 {
		t.Errorf("MULTIREAD %+v", ex)
	}
}

func TestDiagnosticString(t *testing.T) {
	tests := []struct {
		d    Diagnostic
		want string
	}{
		{Diagnostic{File: "p.csv", Line: 3, Col: 7, Msg: "chute 0 means recirculate"}, "p.csv:3:7: chute 0 means recirculate"},
		{Diagnostic{File: "p.csv", Line: 9, Col: 1, Warning: true, Msg: "x"}, "p.csv:9:1: warning: x"},
	}
	for _, tt := range tests {
		if got := tt.d.String(); got != tt.want {
			t.Errorf("%q, want %q", got, tt.want)
		}
	}
}

func TestLoadPlanMissingFile(t *testing.T) {
	_, _, err := LoadPlan("testdata/does-not-exist.csv", 0)
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("err %v", err)
	}
}

// TestGeneratedPlan: the committed plan is what `plan gen -seed 1` makes,
// and it validates without a single warning.
func TestGeneratedPlan(t *testing.T) {
	b, err := Generate(GenerateOptions{Chutes: 256, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	committed, err := os.ReadFile("testdata/plan-256.csv")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, committed) {
		t.Errorf("testdata/plan-256.csv differs from Generate(seed 1): regenerate with go run ./cmd/sortgw plan gen -seed 1 -o sortplan/testdata/plan-256.csv")
	}
	for _, tc := range []GenerateOptions{{Chutes: 256, Seed: 1}, {Chutes: 64, Seed: 7}, {Chutes: 8, Seed: 2}, {Chutes: 1024, Seed: 3, Center: "10001"}} {
		b, err := Generate(tc)
		if err != nil {
			t.Fatal(err)
		}
		p, diags, err := ParsePlan("gen", bytes.NewReader(b), tc.Chutes)
		if err != nil {
			t.Fatalf("%+v: %v", tc, err)
		}
		if len(diags) != 0 {
			t.Errorf("%+v: warnings %v", tc, diags)
		}
		tb, err := Compile(p, nil, ResolverConfig{})
		if err != nil {
			t.Fatal(err)
		}
		// Every known ZIP reaches a row; a local ZIP goes to a route with an alternate.
		s := tb.Summary()
		if s.ChutesUsed > tc.Chutes || s.Routes == 0 || s.Exact == 0 || s.Prefixes == 0 {
			t.Errorf("%+v: summary %+v", tc, s)
		}
	}
	if _, err := Generate(GenerateOptions{Chutes: 4}); err == nil {
		t.Error("4 chutes accepted")
	}
	if _, err := Generate(GenerateOptions{Center: "00000"}); err == nil {
		t.Error("unknown center accepted")
	}
}

// TestPlanCutOffIsRefused: a plan file cut off anywhere before its END row
// (a partial copy, a full disk) is refused; before the END row existed a
// cut installed the first rules and could turn "524*,195|196" into
// "524*,1".
func TestPlanCutOffIsRefused(t *testing.T) {
	data, err := os.ReadFile("testdata/plan-256.csv")
	if err != nil {
		t.Fatal(err)
	}
	end := bytes.LastIndex(data, []byte("\nEND,")) + 1
	if end <= 0 {
		t.Fatal("plan-256.csv has no END row")
	}
	var cuts []int
	for i := 0; i < end; i += 53 {
		cuts = append(cuts, i)
	}
	for i := max(0, end-300); i < end; i++ { // every byte of the last rows
		cuts = append(cuts, i)
	}
	for _, n := range []int{end + 5, end + 6} { // "END,1", "END,14": a cut count
		cuts = append(cuts, n)
	}
	for _, n := range cuts {
		if _, _, err := ParsePlan("cut.csv", bytes.NewReader(data[:n]), 256); err == nil {
			t.Fatalf("plan cut at byte %d of %d accepted (ends %q)", n, len(data), data[max(0, n-20):n])
		}
	}
	// The whole file, with or without its last newline, is fine.
	for _, n := range []int{len(data), len(data) - 1} {
		if _, _, err := ParsePlan("whole.csv", bytes.NewReader(data[:n]), 256); err != nil {
			t.Fatalf("whole plan (%d bytes): %v", n, err)
		}
	}
}

func TestPlanEndRow(t *testing.T) {
	head := "plan_name,T\nplan_version,1\nchute_count,16\npattern,chutes,route\nNOREAD,15\nUNKNOWN,15\nMULTIREAD,15\nRECIRC_LIMIT,16\n902*,3,R\n"
	for _, tc := range []struct{ name, tail, want string }{
		{"END alone", "END\n", ""},
		{"END with count", "END,5\n", ""},
		{"end lower case, comment after", "end,5\n# trailer comment\n\n", ""},
		{"no END", "", "t.csv:9:1: no END row after line 9"},
		{"wrong count", "END,6\n", "t.csv:10:2: END row says 6 rule rows, the file has 5"},
		{"bad count", "END,five\n", "t.csv:10:2: END row: want the number of rule rows"},
		{"row after END", "END\n903*,4,R\n", "t.csv:11:1: row after the END row (line 10)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := ParsePlan("t.csv", strings.NewReader(head+tc.tail), 16)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
}
