package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"sortgw/cmd/internal/site"
	fieldbussim "sortgw/fieldbus-sim"
	"sortgw/sortplan"
)

// lockedBuffer is a log sink that several goroutines write to.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// jsonKeys returns the top-level keys of one JSON log line, in order,
// repeated ones included (a map would hide them).
func jsonKeys(t *testing.T, line string) []string {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(line))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("not a JSON object: %s", line)
	}
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatalf("%v: %s", err, line)
		}
		keys = append(keys, tok.(string))
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("%v: %s", err, line)
		}
	}
	return keys
}

func TestLoggerFormat(t *testing.T) {
	var b bytes.Buffer
	log := newLogger(&b, "json", "info")
	log.Info().Dur("took_ms", 1500*time.Microsecond).Msg("x")
	var rec map[string]any
	if err := json.Unmarshal(b.Bytes(), &rec); err != nil {
		t.Fatal(err)
	}
	// Milliseconds, always three digits: 2026-12-04T16:51:08.120Z.
	if ts, _ := rec["time"].(string); !regexp.MustCompile(`T\d\d:\d\d:\d\d\.\d{3}(Z|[+-]\d\d:\d\d)$`).MatchString(ts) {
		t.Errorf("time %q is not to the millisecond", rec["time"])
	}
	if d, _ := rec["took_ms"].(float64); d != 1.5 {
		t.Errorf("took_ms = %v, want 1.5 (float milliseconds)", rec["took_ms"])
	}

	// Console output to anything but a terminal carries no ANSI colour.
	b.Reset()
	clog := newLogger(&b, "console", "info")
	clog.Warn().Str("line", "A").Msg("plain")
	if strings.Contains(b.String(), "\x1b[") {
		t.Errorf("colour codes in non-terminal output: %q", b.String())
	}
	if !strings.Contains(b.String(), "line=A") {
		t.Errorf("console line: %q", b.String())
	}
	// A pipe (journald, a log shipper) is not a terminal either.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if isTerminal(w) {
		t.Error("a pipe taken for a terminal")
	}
}

// TestSiteLogKeysUnique runs a site built from a site file with the
// process logger against the emulated sorter, and checks that every JSON
// line has unique keys (Elasticsearch refuses a document with a repeated
// key) and that the PLC link's lines name their line and PLC once.
func TestSiteLogKeysUnique(t *testing.T) {
	sim, err := fieldbussim.New(fieldbussim.Config{
		Chutes: 32, PLCCycle: 2 * time.Millisecond, Seed: 7,
		Modbus:   fieldbussim.ModbusConfig{Addr: "127.0.0.1:0"},
		Scanners: fieldbussim.ScannerConfig{Count: 1},
		Conveyor: fieldbussim.ConveyorConfig{Rate: 50, BeltSpeed: 10, ScannerToFirstChute: 4, ChutePitch: 0.5},
	}, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel))
	if err != nil {
		t.Fatal(err)
	}
	simCtx, stopSim := context.WithCancel(context.Background())
	simDone := make(chan error, 1)
	go func() { simDone <- sim.Run(simCtx) }()
	defer func() { stopSim(); <-simDone }()
	<-sim.Ready()

	dir := t.TempDir()
	plan, err := sortplan.Generate(sortplan.GenerateOptions{Chutes: 32, Seed: 5, Version: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "plan.csv"), plan, 0o644); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "site.yaml")
	if err := os.WriteFile(cfgPath, fmt.Appendf(nil, `
gateway: {listen: "127.0.0.1:0", drain_grace: 2s}
journal: {path: journal.db}
log: {level: debug}
lines:
  - name: L1
    plan: plan.csv
    chutes: 32
    plc:
      protocol: modbus
      modbus: {name: sorter-1, addr: %q}
    scanners:
      - {name: S1, addr: %q}
`, sim.ModbusAddr(), sim.ScannerAddrs()[0]), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := site.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	var out lockedBuffer
	log := newLogger(&out, cfg.Log.Format, cfg.Log.Level)
	s, err := site.Build(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, nil) }()
	line := s.Gateway().Lines()[0]
	siteWait(t, "items sorted", 20*time.Second, func() bool { return line.Snapshot().Totals.Sorted > 5 })
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	plcLines := 0
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		count := map[string]int{}
		for _, k := range jsonKeys(t, l) {
			count[k]++
		}
		for k, n := range count {
			if n != 1 {
				t.Errorf("key %q %d times: %s", k, n, l)
			}
		}
		if count["plc"] > 0 {
			plcLines++
			if count["line"] != 1 {
				t.Errorf("PLC line without its line: %s", l)
			}
		}
	}
	if plcLines == 0 {
		t.Fatalf("no line from the PLC link:\n%s", out.String())
	}
}
