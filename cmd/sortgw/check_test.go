package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
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
			// -bind=false: the test files name fixed ports and 0.0.0.0;
			// TestCheckBindsListeners probes on loopback.
			code := cmdCheck(context.Background(), []string{"-bind=false", "-config", siteTestdata + tc.config}, &out, &errb)
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

// TestCheckBindsListeners: a port another program holds fails check, at
// the key that names it; the same site passes once the port is free.
func TestCheckBindsListeners(t *testing.T) {
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, f := range []string{"plan-small.csv"} {
		b, err := os.ReadFile(siteTestdata + f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg := filepath.Join(dir, "site.yaml")
	src := "gateway:\n  listen: " + held.Addr().String() + "\njournal:\n  path: journal.db\nlines:\n  - name: L1\n    plan: plan-small.csv\n" +
		"    plc:\n      protocol: modbus\n      modbus:\n        addr: 127.0.0.1:502\n    scanners:\n      - addr: 127.0.0.1:2001\n"
	if err := os.WriteFile(cfg, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := cmdCheck(context.Background(), []string{"-config", cfg}, &out, &errb); code != 1 {
		t.Fatalf("check with the status page's port held: exit %d\n%s%s", code, out.String(), errb.String())
	}
	if want := "site.yaml:2:3: gateway.listen: the status page cannot listen on " + held.Addr().String(); !strings.Contains(errb.String(), want) {
		t.Fatalf("output lacks %q:\n%s", want, errb.String())
	}
	if code := cmdCheck(context.Background(), []string{"-bind=false", "-config", cfg}, &out, &errb); code != 0 {
		t.Fatalf("-bind=false: exit %d\n%s", code, errb.String())
	}
	held.Close()
	errb.Reset()
	if code := cmdCheck(context.Background(), []string{"-config", cfg}, &out, &errb); code != 0 {
		t.Fatalf("port free again: exit %d\n%s", code, errb.String())
	}
}
