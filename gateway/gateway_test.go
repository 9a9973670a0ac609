package gateway

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"sortgw/sortplan"
)

// TestGatewayTwoLines: one process, two lines; actions reach only the
// named line, readiness needs both, a stop drains both.
func TestGatewayTwoLines(t *testing.T) {
	log := zerolog.New(zerolog.NewTestWriter(t))
	m := NewMetrics()
	var lines []*Line
	var links []*fakeLink
	for _, name := range []string{"L1", "L2"} {
		link := newFakeLink()
		l, err := NewLine(LineConfig{Name: name, Chutes: 16}, link, nil, nil, m, log)
		if err != nil {
			t.Fatal(err)
		}
		lines, links = append(lines, l), append(links, link)
	}
	p, _, err := sortplan.ParsePlan("test.csv", strings.NewReader(testPlan), 16)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lines[0].InstallPlan(p, nil); err != nil {
		t.Fatal(err)
	}
	gw, err := New(Config{Listen: "127.0.0.1:0", Token: testToken}, lines, nil, m, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- gw.Run(ctx) }()
	<-gw.Started()
	base := "http://" + gw.Addr()

	status := func(path string) int {
		res, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	waitFor(t, "both lines running", func() bool { return lines[0].running.Load() && lines[1].running.Load() })
	if c := status("/readyz"); c != http.StatusServiceUnavailable {
		t.Fatalf("readyz with L2 planless: %d", c)
	}
	if _, err := lines[1].InstallPlan(p, nil); err != nil {
		t.Fatal(err)
	}
	if c := status("/readyz"); c != http.StatusOK {
		t.Fatalf("readyz: %d", c)
	}
	req, _ := http.NewRequest(http.MethodPost, base+"/api/lines/L2/chutes/2/disable", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("disable: %d", res.StatusCode)
	}
	waitFor(t, "snapshots", func() bool { return len(gw.Snapshot().Lines[1].Chutes) == 16 })
	s := gw.Snapshot()
	if s.Lines[0].Chutes[1].TechDisabled || !s.Lines[1].Chutes[1].TechDisabled {
		t.Fatalf("disable reached the wrong line: L1 %v L2 %v", s.Lines[0].Chutes[1].TechDisabled, s.Lines[1].Chutes[1].TechDisabled)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for i, link := range links {
		if link.host != 3 {
			t.Errorf("line %d: host state %d after the stop, want 3 (draining)", i, link.host)
		}
	}
}
