package demo

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"sortgw/gateway"
)

// startDemo runs a small modbus demo in t.TempDir() until the test ends
// and returns it with its status page URL.
func startDemo(t *testing.T, token string) (*Demo, string) {
	t.Helper()
	return startDemoProto(t, token, "modbus")
}

// startDemoProto is startDemo with the PLC protocol named.
func startDemoProto(t *testing.T, token, proto string) (*Demo, string) {
	t.Helper()
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
	d, err := New(Config{HTTP: "127.0.0.1:0", Protocol: proto, Rate: 20, Chutes: 16, Seed: 3, Token: token, Dir: t.TempDir()}, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	urls := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx, func(u string) { urls <- u }) }()
	select {
	case u := <-urls:
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("demo run: %v", err)
			}
		})
		return d, strings.TrimSuffix(u, "/")
	case err := <-done:
		cancel()
		t.Fatalf("demo run: %v", err)
	}
	return nil, ""
}

// postJSON posts body with the bearer token and decodes the answer into out.
func postJSON(t *testing.T, url, token, body string, out any) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatalf("POST %s: decode: %v", url, err)
		}
	}
	return resp.StatusCode
}

func getJSON(t *testing.T, url string, out any) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil && resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatalf("GET %s: decode: %v", url, err)
		}
	}
	return resp.StatusCode
}

func hasAlarm(as []gateway.Alarm, id string) bool {
	for _, a := range as {
		if a.ID == id && a.Cleared == nil {
			return true
		}
	}
	return false
}

// TestDemoPlanReload: the demo's plan is a file in its state directory;
// Reload plan reads it again, a broken edit is refused with the old plan
// kept and the plan-refused alarm raised, and a fixed one (with a higher
// plan_version) is installed and clears the alarm.
func TestDemoPlanReload(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end demo: skipped with -short")
	}
	const tok = "demo-reload-token"
	d, url := startDemo(t, tok)
	pf := d.PlanFile()
	if filepath.Dir(pf) != d.Config().Dir {
		t.Fatalf("plan file %q not in the state directory %q", pf, d.Config().Dir)
	}
	orig, err := os.ReadFile(pf)
	if err != nil {
		t.Fatal(err)
	}
	before := d.line.PlanInfo()
	if before.Version != 1 || before.Name == "" {
		t.Fatalf("plan at start %+v", before)
	}
	var res gateway.ReloadResult
	if code := postJSON(t, url+"/api/reload", tok, "", &res); code != http.StatusOK || res.Error != "" {
		t.Fatalf("reload of the unchanged plan: %d %+v", code, res)
	}

	// A broken edit: refused, the old plan stays, the alarm is raised.
	broken := strings.Replace(string(orig), "plan_version,1", "plan_version,2", 1) + "99999,no-such-chute,R,9999\n"
	if err := os.WriteFile(pf, []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	res = gateway.ReloadResult{}
	if code := postJSON(t, url+"/api/reload", tok, "", &res); code != http.StatusUnprocessableEntity ||
		!strings.Contains(res.Error, "plan.csv") {
		t.Fatalf("reload of a broken plan: %d %+v, want 422 naming the file", code, res)
	}
	if pi := d.line.PlanInfo(); pi.Version != before.Version || pi.Name != before.Name || pi.LastError == "" {
		t.Fatalf("after a refused plan %+v, want version %d kept with the error", pi, before.Version)
	}
	waitFor(t, "plan-refused alarm", 10*time.Second, func() bool {
		var l gateway.AlarmList
		getJSON(t, url+"/api/alarms", &l)
		return hasAlarm(l.Active, "L1/plan-refused")
	})

	// Fixed, with a new version: installed, the alarm clears.
	fixed := strings.Replace(string(orig), "plan_version,1", "plan_version,2", 1)
	if err := os.WriteFile(pf, []byte(fixed), 0o644); err != nil {
		t.Fatal(err)
	}
	res = gateway.ReloadResult{}
	if code := postJSON(t, url+"/api/reload", tok, "", &res); code != http.StatusOK || len(res.Lines) != 1 || res.Lines[0].Version != 2 {
		t.Fatalf("reload of the fixed plan: %d %+v", code, res)
	}
	waitFor(t, "plan-refused alarm cleared", 10*time.Second, func() bool {
		var l gateway.AlarmList
		getJSON(t, url+"/api/alarms", &l)
		return !hasAlarm(l.Active, "L1/plan-refused")
	})
}
