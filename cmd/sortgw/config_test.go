package main

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// wantLines returns the "# want: ..." substrings at the top of a bad file.
func wantLines(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var want []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if w, ok := strings.CutPrefix(sc.Text(), "# want: "); ok {
			want = append(want, w)
		}
	}
	return want
}

func TestConfigFiles(t *testing.T) {
	good, _ := filepath.Glob("testdata/*.good.yaml")
	bad, _ := filepath.Glob("testdata/*.bad.yaml")
	if len(good) == 0 || len(bad) == 0 {
		t.Fatal("no testdata")
	}
	for _, f := range good {
		t.Run(filepath.Base(f), func(t *testing.T) {
			cfg, err := LoadConfig(f)
			if err != nil {
				t.Fatal(err)
			}
			if len(cfg.Lines) == 0 || cfg.Lines[0].RecirculationLimit != 3 || cfg.Lines[0].Resolver.NoReadToken != "NoRead" {
				t.Fatalf("defaults not filled: %+v", cfg.Lines)
			}
			if !filepath.IsAbs(cfg.Lines[0].Plan) && filepath.Dir(cfg.Lines[0].Plan) != "testdata" {
				t.Fatalf("plan path not resolved against the config: %s", cfg.Lines[0].Plan)
			}
		})
	}
	for _, f := range bad {
		t.Run(filepath.Base(f), func(t *testing.T) {
			want := wantLines(t, f)
			if len(want) == 0 {
				t.Fatal("bad file without # want lines")
			}
			_, err := LoadConfig(f)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	cfg, err := LoadConfig("testdata/site.good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	a, b := cfg.Lines[0], cfg.Lines[1]
	if cfg.HTTP.Token != "s3cr3t-token-for-tests" {
		t.Errorf("token from file: %q", cfg.HTTP.Token)
	}
	if a.DecisionBudget.String() != "450ms" || b.DecisionBudget.String() != "500ms" {
		t.Errorf("budgets %v %v", a.DecisionBudget, b.DecisionBudget)
	}
	if b.Chutes != 256 || b.PLC.Name != "B-plc" || b.Scanners[0].Name != "B-S1" {
		t.Errorf("line B defaults: %+v", b)
	}
	if cfg.Journal.Retention.Hours() != 720 || cfg.DrainGrace.Seconds() != 15 {
		t.Errorf("journal %+v drain %v", cfg.Journal, cfg.DrainGrace)
	}
}

func TestCheckCommand(t *testing.T) {
	tests := []struct {
		name   string
		config string
		code   int
		want   string
	}{
		{"good", "testdata/site.good.yaml", 0, "plan SC-66204-256 version 1"},
		{"bad config", "testdata/fields.bad.yaml", 1, "fields.bad.yaml:"},
		{"bad plan", "testdata/badplan.yaml", 1, "badplan.csv:"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := cmdCheck(context.Background(), []string{"-config", tc.config}, &out, &errb)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, out.String(), errb.String())
			}
			if !strings.Contains(out.String()+errb.String(), tc.want) {
				t.Fatalf("output lacks %q:\n%s%s", tc.want, out.String(), errb.String())
			}
		})
	}
}

// FuzzParseConfig: no config text makes the loader panic; every rejection
// is an error with the file name in it.
func FuzzParseConfig(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.yaml")
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		_, err := ParseConfig("fuzz.yaml", data)
		if err != nil && !strings.Contains(err.Error(), "fuzz.yaml") {
			t.Fatalf("error without the file name: %v", err)
		}
	})
}
