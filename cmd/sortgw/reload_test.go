package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"sortgw/cmd/internal/site"
	fieldbussim "sortgw/fieldbus-sim"
	"sortgw/sortplan"
)

// TestReloadCommand runs a real gateway against the emulated sorter and
// reloads it with `sortgw reload`: a newer plan succeeds (exit 0), a
// broken one fails with its file:line:col error (exit 1) and the old plan
// stays, a wrong token fails.
func TestReloadCommand(t *testing.T) {
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
	sim, err := fieldbussim.New(fieldbussim.Config{
		Chutes: 32, PLCCycle: 2 * time.Millisecond, Seed: 7,
		Modbus:   fieldbussim.ModbusConfig{Addr: "127.0.0.1:0"},
		Scanners: fieldbussim.ScannerConfig{Count: 1},
		Conveyor: fieldbussim.ConveyorConfig{Rate: 50, BeltSpeed: 10, ScannerToFirstChute: 4, ChutePitch: 0.5},
	}, log)
	if err != nil {
		t.Fatal(err)
	}
	simCtx, stopSim := context.WithCancel(context.Background())
	simDone := make(chan error, 1)
	go func() { simDone <- sim.Run(simCtx) }()
	defer func() { stopSim(); <-simDone }()
	<-sim.Ready()

	dir := t.TempDir()
	planPath := filepath.Join(dir, "plan.csv")
	writePlan := func(version uint64) {
		t.Helper()
		b, err := sortplan.Generate(sortplan.GenerateOptions{Chutes: 32, Seed: 5, Version: version})
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(planPath, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writePlan(1)
	tokenPath := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenPath, []byte("a-long-enough-test-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "site.yaml")
	if err := os.WriteFile(cfgPath, fmt.Appendf(nil, `
gateway: {listen: "127.0.0.1:0", drain_grace: 2s, token_file: token}
journal: {path: journal.db}
lines:
  - name: L1
    plan: plan.csv
    chutes: 32
    plc:
      protocol: modbus
      modbus: {addr: %q}
    scanners:
      - {name: S1, addr: %q}
`, sim.ModbusAddr(), sim.ScannerAddrs()[0]), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := site.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	s, err := site.Build(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, nil) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	<-s.Gateway().Started()
	addr := s.Gateway().Addr()
	line := s.Gateway().Lines()[0]
	siteWait(t, "line running", 10*time.Second, func() bool { return line.Snapshot() != nil })

	writePlan(2)
	code, out, errOut := runCmd(t, "reload", "-config", cfgPath, "-addr", addr)
	if code != 0 || !strings.Contains(out, "version 2") {
		t.Fatalf("reload v2: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	if v := line.PlanInfo().Version; v != 2 {
		t.Fatalf("plan version %d after the reload", v)
	}

	if err := os.WriteFile(planPath, []byte("plan_name,X\nplan_version,3\nchute_count,32\npattern,chutes,route,comment\n90210,99,R,\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut = runCmd(t, "reload", "-config", cfgPath, "-addr", addr)
	if code != 1 || !strings.Contains(errOut, "plan refused") || !strings.Contains(errOut, "plan.csv:5:") {
		t.Fatalf("broken plan: exit %d, stderr:\n%s", code, errOut)
	}
	if v := line.PlanInfo().Version; v != 2 {
		t.Fatalf("broken plan replaced v2: version %d", v)
	}

	if err := os.WriteFile(tokenPath, []byte("not-the-gateways-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	writePlan(4)
	code, _, errOut = runCmd(t, "reload", "-config", cfgPath, "-addr", addr)
	if code != 1 || !strings.Contains(errOut, "401") {
		t.Fatalf("wrong token: exit %d, stderr:\n%s", code, errOut)
	}
	if v := line.PlanInfo().Version; v != 2 {
		t.Fatalf("reload with a wrong token installed version %d", v)
	}
}

func TestDialAddr(t *testing.T) {
	for _, tc := range []struct{ listen, want string }{
		{":8080", "127.0.0.1:8080"},
		{"0.0.0.0:8080", "127.0.0.1:8080"},
		{"[::]:8080", "[::1]:8080"},
		{"10.1.2.3:9000", "10.1.2.3:9000"},
	} {
		if got, err := dialAddr(tc.listen); err != nil || got != tc.want {
			t.Errorf("dialAddr(%q) = %q, %v; want %q", tc.listen, got, err, tc.want)
		}
	}
	if _, err := dialAddr("8080"); err == nil {
		t.Error("dialAddr(8080) accepted")
	}
}

// TestUsageAndVersion: help goes to stdout and succeeds; a usage error goes
// to stderr with exit 2; version names the Go version and the revision.
func TestUsageAndVersion(t *testing.T) {
	for _, tc := range []struct {
		name             string
		args             []string
		code             int
		stdout, stderr   string
		noStdout, noErrs bool
	}{
		{"help", []string{"help"}, 0, "usage: sortgw", "", false, true},
		{"-h", []string{"-h"}, 0, "reload -config", "", false, true},
		{"--help", []string{"--help"}, 0, "version ", "", false, true},
		{"none", nil, 2, "", "usage: sortgw", true, false},
		{"unknown", []string{"frob"}, 2, "", `unknown command "frob"`, true, false},
		{"version", []string{"version"}, 0, "go " + runtime.Version(), "", false, true},
		{"version arg", []string{"version", "x"}, 2, "", "unexpected argument", true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runCmd(t, tc.args...)
			if code != tc.code || !strings.Contains(out, tc.stdout) || !strings.Contains(errOut, tc.stderr) ||
				(tc.noStdout && out != "") || (tc.noErrs && errOut != "") {
				t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
			}
		})
	}
}

func TestVersionText(t *testing.T) {
	bi := &debug.BuildInfo{Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "e796edc0123"}, {Key: "vcs.time", Value: "2026-12-04T17:00:00Z"}, {Key: "vcs.modified", Value: "true"}}}
	want := "sortgw 1.4.0\ngo go1.26.8\nrevision e796edc0123 (modified) 2026-12-04T17:00:00Z\n"
	if got := versionText("1.4.0", "go1.26.8", bi); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got := versionText("dev", "go1.26.8", nil); got != "sortgw dev\ngo go1.26.8\nrevision unknown\n" {
		t.Errorf("no build info: %q", got)
	}
	bi.Main.Version = "v1.5.0"
	if got := versionText("dev", "go1.26.8", bi); !strings.HasPrefix(got, "sortgw v1.5.0\n") {
		t.Errorf("module version: %q", got)
	}
}
