package gateway

import (
	"testing"

	"github.com/chromedp/chromedp"
)

// TestTrainingPanelHiddenWithoutTrainer: in production (no Trainer) the
// page asks /api/training, gets 404 and keeps the panel hidden.
func TestTrainingPanelHiddenWithoutTrainer(t *testing.T) {
	if testing.Short() {
		t.Skip("browser")
	}
	e := startE2E(t, e2eConfig{Protocol: "modbus", Chutes: 8}, testToken)
	ctx := browser(t)
	if err := chromedp.Do(ctx, chromedp.Navigate("http://"+e.gw.Addr()+"/")); err != nil {
		t.Fatal(err)
	}
	evalUntil(t, ctx, "the panel asked /api/training", `document.getElementById("training").dataset.status === "404"`)
	hidden, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(() => { const s = document.getElementById("training");
		return s.hidden && s.getBoundingClientRect().height === 0; })()`))
	if err != nil || !hidden {
		t.Fatalf("training panel visible without a trainer (%v)", err)
	}
}
