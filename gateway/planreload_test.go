package gateway

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"sortgw/sortplan"
)

// TestManifestSizeCap: a reload whose manifest is over MaxManifestBytes
// is refused and counted, and the running plan and manifest stay.
func TestManifestSizeCap(t *testing.T) {
	dir := t.TempDir()
	plan, man := filepath.Join(dir, "plan.csv"), filepath.Join(dir, "manifest.csv")
	if err := os.WriteFile(plan, []byte(testPlan), 0o644); err != nil {
		t.Fatal(err)
	}
	small := "package_id,destination\nTBA000000000042,90299\nEND,1\n"
	if err := os.WriteFile(man, []byte(small), 0o644); err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, false, func(c *LineConfig) {
		c.PlanFile, c.ManifestFile, c.MaxManifestBytes = plan, man, 200
	})
	defer h.stop()
	if _, err := h.l.ReloadPlan(); err != nil {
		t.Fatalf("first load: %v", err)
	}
	big := "package_id,destination\n" + strings.Repeat("TBA000000000043,90299\n", 20) + "END,20\n"
	if err := os.WriteFile(man, []byte(big), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := h.l.ReloadPlan(); !errors.Is(err, sortplan.ErrManifestTooLarge) {
		t.Fatalf("reload with a %d-byte manifest over a 200-byte cap: %v", len(big), err)
	}
	if d := h.l.Table().Decide([]string{"TBA000000000042"}, nil); d.Reason != sortplan.ReasonSorted {
		t.Fatalf("the old manifest was dropped: %+v", d)
	}
	if pi := h.l.PlanInfo(); !strings.Contains(pi.LastError, "max_manifest_bytes") {
		t.Errorf("plan card error %q does not name the setting", pi.LastError)
	}
	if n := testutil.ToFloat64(h.l.met.planRefused); n != 1 {
		t.Errorf("refused reloads counted %v, want 1", n)
	}
	if n := testutil.ToFloat64(h.l.met.planOK); n != 1 {
		t.Errorf("installed reloads counted %v, want 1", n)
	}
}
