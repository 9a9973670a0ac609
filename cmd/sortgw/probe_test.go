package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	fieldbussim "sortgw/fieldbus-sim"
)

// TestProbeCommand: `sortgw probe` on a site file whose line points at
// an emulated PLC: exit 0 and a JSON report when every check passes,
// exit 1 and the failing check when the PLC keeps the block one register
// off, exit 2 for a line the site does not have.
func TestProbeCommand(t *testing.T) {
	for _, tc := range []struct {
		name  string
		shift int
		line  string
		code  int
		want  string
	}{
		{"contract PLC", 0, "A", 0, `"status": "pass"`},
		{"shifted block", 1, "A", 1, "block base off by +1"},
		{"no such line", 0, "B", 2, `line "B": no such line`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sim, err := fieldbussim.New(fieldbussim.Config{Chutes: 32, DisableScanners: true,
				Modbus: fieldbussim.ModbusConfig{Addr: "127.0.0.1:0"}, Quirks: fieldbussim.Quirks{ShiftPLCBlock: tc.shift}}, zerolog.Nop())
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- sim.Run(ctx) }()
			defer func() { cancel(); <-done }()
			<-sim.Ready()
			dir := t.TempDir()
			cfg := filepath.Join(dir, "site.yaml")
			site := "journal:\n  path: j.db\nlines:\n  - name: A\n    chutes: 32\n    plan: none.csv\n    plc:\n      protocol: modbus\n      modbus:\n        addr: " +
				sim.ModbusAddr() + "\n    scanners:\n      - addr: 127.0.0.1:2001\n"
			if err := os.WriteFile(cfg, []byte(site), 0o600); err != nil {
				t.Fatal(err)
			}
			var out, errb bytes.Buffer
			code := cmdProbe(context.Background(), []string{"-config", cfg, "-line", tc.line, "-json", "-sample", "500ms"}, &out, &errb)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, out.String(), errb.String())
			}
			if got := out.String() + errb.String(); !strings.Contains(got, tc.want) {
				t.Errorf("output lacks %q:\n%s", tc.want, got)
			}
			if tc.code != 2 {
				var rep struct{ Checks []struct{ ID, Status string } }
				if err := json.Unmarshal(out.Bytes(), &rep); err != nil || len(rep.Checks) < 5 {
					t.Errorf("JSON report: %v, %d checks", err, len(rep.Checks))
				}
			}
		})
	}
}
