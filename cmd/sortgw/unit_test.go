package main

import (
	"bufio"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const unitFile = "../../docs/examples/sortgw.service"

// unitSettings reads a systemd unit's [Service] section: every value of
// every key, in order.
func unitSettings(t *testing.T) map[string][]string {
	t.Helper()
	f, err := os.Open(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string][]string{}
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if strings.HasPrefix(line, "[") {
			section = line
			continue
		}
		if k, v, ok := strings.Cut(line, "="); ok && section == "[Service]" {
			out[k] = append(out[k], v)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestUnitHardened: the example unit keeps its sandbox and the notify
// wiring, whether or not systemd-analyze is there to score it.
func TestUnitHardened(t *testing.T) {
	s := unitSettings(t)
	want := map[string]string{
		"Type": "notify", "NotifyAccess": "main", "WatchdogSec": "30s",
		"ExecReload":     "/usr/local/bin/sortgw reload -config /etc/sortgw/site.yaml",
		"StateDirectory": "sortgw", "ConfigurationDirectory": "sortgw",
		"ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes", "PrivateDevices": "yes",
		"NoNewPrivileges": "yes", "CapabilityBoundingSet": "", "AmbientCapabilities": "",
		"RestrictSUIDSGID": "yes", "LockPersonality": "yes", "MemoryDenyWriteExecute": "yes",
		"RestrictRealtime": "yes", "RestrictNamespaces": "yes", "PrivateUsers": "yes",
		"ProtectKernelTunables": "yes", "ProtectKernelModules": "yes", "ProtectKernelLogs": "yes",
		"ProtectControlGroups": "yes", "ProtectClock": "yes", "ProtectHostname": "yes", "ProtectProc": "invisible",
		"RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX", "SystemCallArchitectures": "native",
		"UMask": "0027", "DevicePolicy": "closed",
	}
	for k, v := range want {
		got, ok := s[k]
		if !ok || got[len(got)-1] != v {
			t.Errorf("%s=%q, want %q", k, got, v)
		}
	}
	if f := s["SystemCallFilter"]; !slices.Contains(f, "@system-service") || !slices.Contains(f, "~@privileged") {
		t.Errorf("SystemCallFilter=%q: want @system-service without @privileged", f)
	}
	// The sandbox must leave the gateway its journal directory.
	for _, k := range []string{"ReadOnlyPaths", "InaccessiblePaths", "TemporaryFileSystem"} {
		for _, v := range s[k] {
			if strings.Contains(v, "/var/lib/sortgw") {
				t.Errorf("%s=%s hides the journal directory", k, v)
			}
		}
	}
}

// TestUnitExposure scores the unit with systemd-analyze where it is
// installed: at most 2.5 ("OK").
func TestUnitExposure(t *testing.T) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		if os.Getenv("SORTGW_REQUIRE_SYSTEMD_ANALYZE") != "" {
			t.Fatal("systemd-analyze not installed, and CI requires it (Debian package systemd)")
		}
		t.Skip("systemd-analyze not installed; TestUnitHardened checks the directives")
	}
	out, err := exec.Command("systemd-analyze", "security", "--offline=true", "--no-pager", unitFile).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no exposure level in:\n%s", out)
	}
	score, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("exposure %.1f", score)
	if score > 2.5 {
		t.Errorf("exposure %.1f above 2.5:\n%s", score, out)
	}
}
