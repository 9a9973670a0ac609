package site

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"

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
	s, cfgPath := simSite(t, log, "5s")
	plan := filepath.Join(filepath.Dir(cfgPath), "plan.csv")
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
	j, err := journal.Open(journal.Config{Path: filepath.Join(filepath.Dir(cfgPath), "journal.db")}, log)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if n := j.LostAtRestart(); n != 0 {
		t.Fatalf("%d items were open after the drain", n)
	}
}
