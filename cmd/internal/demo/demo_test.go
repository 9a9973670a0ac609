package demo

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.uber.org/goleak"
)

// TestMain checks that no test of the package leaks a goroutine.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// waitFor polls cond until it holds or d passes.
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
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

// TestDemo runs the demo for both protocols: the status page answers and
// items reach an outcome within seconds; a stop ends Run without error.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end demo: skipped with -short")
	}
	for _, proto := range []string{"modbus", "opcua"} {
		t.Run(proto, func(t *testing.T) {
			log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
			d, err := New(Config{HTTP: "127.0.0.1:0", Protocol: proto, Rate: 50, Chutes: 16, Seed: 3,
				Token: "demo-token-for-the-test", Dir: t.TempDir()}, log)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			urls := make(chan string, 1)
			done := make(chan error, 1)
			go func() { done <- d.Run(ctx, func(u string) { urls <- u }) }()
			var url string
			select {
			case url = <-urls:
			case err := <-done:
				t.Fatal(err)
			}
			res, err := http.Get(url)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != 200 {
				t.Fatalf("status page: %d", res.StatusCode)
			}
			waitFor(t, "items sorted", 30*time.Second, func() bool { return d.line.Snapshot().Totals.Sorted > 5 })
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"defaults", Config{}, ""},
		{"opcua", Config{Protocol: "opcua", Rate: 100, HTTP: "127.0.0.1:0"}, ""},
		{"bad protocol", Config{Protocol: "s7"}, `protocol "s7"`},
		{"negative rate", Config{Rate: -1}, "rate -1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(tc.cfg.Token) != 24 || tc.cfg.Rate <= 0 || tc.cfg.HTTP == "" {
				t.Errorf("defaults not filled: token %q, rate %v, http %q", tc.cfg.Token, tc.cfg.Rate, tc.cfg.HTTP)
			}
		})
	}
}
