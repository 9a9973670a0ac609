package site

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"

	fieldbussim "sortgw/fieldbus-sim"
	"sortgw/gateway/journal"
	"sortgw/sortplan"
)

func siteWait(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

func writePlan(t *testing.T, path string, version uint64) {
	t.Helper()
	b, err := sortplan.Generate(sortplan.GenerateOptions{Chutes: 32, Seed: 5, Version: version})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestSiteReloadAndDrain runs a configured site against fieldbus-sim: a
// reload signal swaps in a newer plan, a broken plan is refused and the old
// one kept, and stopping drains so that no item is left open.
func TestSiteReloadAndDrain(t *testing.T) {
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
	sim, err := fieldbussim.New(fieldbussim.Config{
		Chutes: 32, PLCCycle: 2 * time.Millisecond, Seed: 11,
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
	plan := filepath.Join(dir, "plan.csv")
	writePlan(t, plan, 1)
	cfgText := fmt.Sprintf(`
gateway:
  listen: 127.0.0.1:0
  token: a-long-enough-test-token
  drain_grace: 5s
journal:
  path: journal.db
lines:
  - name: L1
    plan: plan.csv
    chutes: 32
    decision_budget: 360ms
    confirm_timeout: 5s
    plc:
      protocol: modbus
      modbus:
        addr: %s
    scanners:
      - name: S1
        addr: %s
`, sim.ModbusAddr(), sim.ScannerAddrs()[0])
	cfgPath := filepath.Join(dir, "site.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Build(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	reload := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, reload) }()
	line := s.Gateway().Lines()[0]
	siteWait(t, "ready", 10*time.Second, s.Gateway().Ready)
	siteWait(t, "items flowing", 10*time.Second, func() bool { return line.Snapshot().Totals.Outcomes > 20 })

	writePlan(t, plan, 2)
	reload <- struct{}{}
	siteWait(t, "plan v2", 10*time.Second, func() bool { return line.PlanInfo().Version == 2 })

	if err := os.WriteFile(plan, []byte("plan_name,X\nplan_version,3\nchute_count,32\npattern,chutes,route,comment\n90210,99,R,\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	reload <- struct{}{}
	siteWait(t, "reload error", 10*time.Second, func() bool { return line.PlanInfo().LastError != "" })
	if v := line.PlanInfo().Version; v != 2 {
		t.Fatalf("broken plan replaced v2: version %d", v)
	}
	if line.Table().Version() != 2 {
		t.Fatal("active table changed")
	}

	// Stop: drain, then close the journal. Nothing stays open.
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	j, err := journal.Open(journal.Config{Path: cfg.Journal.Path}, log)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if n := j.LostAtRestart(); n != 0 {
		t.Fatalf("%d items were open after the drain", n)
	}
}
