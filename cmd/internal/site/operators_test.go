package site

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestOperatorsFile: the accounts reach the gateway's config, and a file
// every user may read is warned about.
func TestOperatorsFile(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"operators.good.yaml", "operators.txt", "plan-small.csv"} {
		b, err := os.ReadFile(filepath.Join("testdata", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := loadAndCheck(filepath.Join(dir, "operators.good.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ops == nil || cfg.ops.Len() != 1 {
		t.Fatalf("accounts not loaded: %+v", cfg.ops)
	}
	if _, ok := cfg.ops.Verify("alice", "1234"); !ok {
		t.Error("alice's PIN refused")
	}
	if cfg.Gateway.OperatorsFile != filepath.Join(dir, "operators.txt") || cfg.Gateway.LoginFailures != 3 {
		t.Errorf("gateway config: %+v", cfg.Gateway.Config)
	}
	for _, n := range cfg.Notes {
		if strings.Contains(n, "readable") || strings.Contains(n, "no gateway token") {
			t.Errorf("unexpected note: %s", n)
		}
	}
	if err := os.Chmod(filepath.Join(dir, "operators.txt"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Check(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(cfg.Notes, "\n"), "readable by every user") {
		t.Errorf("no warning for a world-readable file: %v", cfg.Notes)
	}
}
