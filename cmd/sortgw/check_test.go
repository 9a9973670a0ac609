package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

const siteTestdata = "../internal/site/testdata/"

// TestCheckCommand: `sortgw check` prints the site's notes and ok, or
// every problem at its position and the count, with exit status 1; `run`
// refuses the same file before it starts anything.
func TestCheckCommand(t *testing.T) {
	tests := []struct {
		name   string
		config string
		code   int
		want   []string
	}{
		{"good", "site.good.yaml", 0, []string{"line A: plan SC-66204-256 version 1", "site.good.yaml: ok"}},
		{"separator", "separator.bad.yaml", 1, []string{
			"separator.bad.yaml:14:9: lines[0].scanners[0].separator: scanner \"L1-S1\": separator \"7\" holds a digit",
			"separator.bad.yaml: 1 error(s)"}},
		{"bad plan", "badplan.bad.yaml", 1, []string{"badplan.csv:6:7: chute 999 out of range", "4 error(s)"}},
		{"unknown key", "unknown-key.bad.yaml", 1, []string{"did you mean decision_budget?", "4 error(s)"}},
		{"no file", "no-such.yaml", 1, []string{"read site file"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := cmdCheck(context.Background(), []string{"-config", siteTestdata + tc.config}, &out, &errb)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, out.String(), errb.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(out.String()+errb.String(), w) {
					t.Errorf("output lacks %q:\n%s%s", w, out.String(), errb.String())
				}
			}
			if tc.code == 0 {
				return
			}
			var rout, rerr bytes.Buffer
			if code := cmdRun(context.Background(), []string{"-config", siteTestdata + tc.config}, &rout, &rerr); code != 1 {
				t.Fatalf("run: exit %d, want 1\n%s", code, rerr.String())
			}
			if !strings.Contains(rerr.String(), tc.want[0]) {
				t.Errorf("run's error lacks %q:\n%s", tc.want[0], rerr.String())
			}
		})
	}
}
