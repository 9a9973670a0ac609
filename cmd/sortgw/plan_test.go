package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const testPlan = "../../sortplan/testdata/plan-256.csv"

func runCmd(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var o, e bytes.Buffer
	code = dispatch(context.Background(), args, &o, &e)
	return code, o.String(), e.String()
}

func TestPlanCommands(t *testing.T) {
	dir := t.TempDir()
	gen := filepath.Join(dir, "gen.csv")
	gen2 := filepath.Join(dir, "gen2.csv")
	labels := filepath.Join(dir, "labels.txt")
	man := filepath.Join(dir, "manifest.csv")
	tests := []struct {
		name      string
		args      []string
		code      int
		stdout    []string
		stderr    []string
		notStdout []string
	}{
		{"no args", nil, 2, nil, []string{"usage: sortgw"}, nil},
		{"help", []string{"help"}, 0, []string{"plan check|diff"}, nil, nil},
		{"unknown", []string{"frobnicate"}, 2, nil, []string{`unknown command "frobnicate"`}, nil},
		{"plan no sub", []string{"plan"}, 2, nil, []string{"sortgw plan check FILE"}, nil},
		{"plan unknown sub", []string{"plan", "zap"}, 2, nil, []string{`unknown subcommand "zap"`}, nil},
		{"check good", []string{"plan", "check", testPlan}, 0,
			[]string{`plan "SC-66204-256" version 1`, "rules:            1404 (504 exact, 896 prefixes, 4 exception rows)",
				"chutes used:      256 of 256", "routes:           126", "NOREAD 253|254", "RECIRC_LIMIT 255|256",
				"33791 of 33791 US ZIPs", "warnings:         0"}, nil, nil},
		{"check flag after file", []string{"plan", "check", testPlan, "-chutes", "256"}, 0, []string{"OK"}, nil, nil},
		{"check wrong chute count", []string{"plan", "check", testPlan, "-chutes", "128"}, 1, nil,
			[]string{"plan is for 256 chutes but the sorter has 128", "plan rejected"}, []string{"OK"}},
		{"check bad: every error", []string{"plan", "check", "../../sortplan/testdata/errors.bad.csv"}, 1, nil,
			[]string{"errors.bad.csv:1:11: plan_name is empty", "errors.bad.csv:21:4: bad pattern", "19 error(s)"}, nil},
		{"check warnings", []string{"plan", "check", "../../sortplan/testdata/warnings.good.csv"}, 0,
			[]string{"warnings:         4"}, []string{"warning: prefix 3* is never used"}, nil},
		{"check strict", []string{"plan", "check", "-strict", "../../sortplan/testdata/warnings.good.csv"}, 1, nil,
			[]string{"-strict: plan rejected"}, nil},
		{"check missing file", []string{"plan", "check", "nope.csv"}, 1, nil, []string{"no such file"}, nil},
		{"check no file", []string{"plan", "check"}, 2, nil, []string{"want one FILE"}, nil},
		{"explain gs1", []string{"plan", "explain", testPlan, "]C142064001"}, 0,
			[]string{"destination 64001 (GS1 AI 420", "row:     64001 at ../../sortplan/testdata/plan-256.csv:12, chutes 55|56, route R028",
				"decision: chute 55, reason 0 (sorted)"}, nil, nil},
		{"explain GS escape and unavailable", []string{"plan", "explain", "-unavailable", "55", testPlan, `]C100106141412345678908\x1d42064001`}, 0,
			[]string{`"]C100106141412345678908<GS>42064001": destination 64001`, "decision: chute 56, reason 4 (alternate)"}, nil, nil},
		{"explain strict failure", []string{"plan", "explain", testPlan, "]C100106141412345678909<GS>42064001"}, 0,
			[]string{"bad check digit in AI 00", "decision: chute 253, reason 2 (unknown)"}, nil, nil},
		{"explain noread", []string{"plan", "explain", testPlan, "NoRead"}, 0, []string{"no-read", "reason 1 (no-read)"}, nil, nil},
		{"explain pattern", []string{"plan", "explain", "-pattern", `^X(?P<dest>\d{5})$`, testPlan, "X64001"}, 0,
			[]string{"configured pattern 1", "chute 55"}, nil, nil},
		{"explain bad pattern", []string{"plan", "explain", "-pattern", `^X\d{5}$`, testPlan, "X64001"}, 1, nil, []string{"no named group"}, nil},
		{"gen", []string{"plan", "gen", "-chutes", "64", "-seed", "5", "-o", gen}, 0, nil, nil, nil},
		{"check generated", []string{"plan", "check", gen}, 0, []string{"chutes used:      64 of 64", "warnings:         0"}, nil, nil},
		{"gen other version", []string{"plan", "gen", "-chutes", "64", "-seed", "6", "-version", "2", "-o", gen2}, 0, nil, nil, nil},
		{"diff", []string{"plan", "diff", gen, gen2}, 0, []string{"version 1 ->", "version 2", "destination(s) change"}, nil, nil},
		{"diff same", []string{"plan", "diff", gen, gen}, 0, []string{"not higher", "0 destination(s) change"}, nil, nil},
		{"diff bad", []string{"plan", "diff", gen, "../../sortplan/testdata/errors.bad.csv"}, 1, nil, []string{"is not a valid plan"}, nil},
		{"gen bad", []string{"plan", "gen", "-chutes", "3"}, 1, nil, []string{"want 8.."}, nil},
		{"labels", []string{"plan", "labels", "-n", "50", "-plan", testPlan, "-o", labels, "-manifest", man}, 0, nil, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, o, e := runCmd(t, tt.args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.code, o, e)
			}
			for _, w := range tt.stdout {
				if !strings.Contains(o, w) {
					t.Errorf("stdout lacks %q:\n%s", w, o)
				}
			}
			for _, w := range tt.stderr {
				if !strings.Contains(e, w) {
					t.Errorf("stderr lacks %q:\n%s", w, e)
				}
			}
			for _, w := range tt.notStdout {
				if strings.Contains(o, w) {
					t.Errorf("stdout has %q:\n%s", w, o)
				}
			}
		})
	}
	// The sample labels decide to their own destinations through the manifest.
	b, err := os.ReadFile(labels)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 50 {
		t.Fatalf("%d label lines", len(lines))
	}
	for _, l := range lines[:10] {
		args := append([]string{"plan", "explain", "-json", "-manifest", man, testPlan}, strings.Split(l, ";")...)
		code, o, e := runCmd(t, args...)
		if code != 0 {
			t.Fatalf("explain %q: %d %s", l, code, e)
		}
		var ex struct {
			Reason int    `json:"reason"`
			Chute  int    `json:"chute"`
			Dest   string `json:"dest"`
		}
		if err := json.Unmarshal([]byte(o), &ex); err != nil {
			t.Fatal(err)
		}
		if ex.Reason == 2 || ex.Reason == 3 {
			t.Errorf("label %q: %s", l, o)
		}
	}
}
