package main

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// TestDemo runs `sortgw demo` in process for both protocols: the status
// page answers and items reach an outcome within seconds.
func TestDemo(t *testing.T) {
	for _, proto := range []string{"modbus", "opcua"} {
		t.Run(proto, func(t *testing.T) {
			log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
			d, err := newDemo(demoConfig{HTTP: "127.0.0.1:0", Protocol: proto, Rate: 50, Chutes: 16, Seed: 3,
				Token: "demo-token-for-the-test", Dir: t.TempDir()}, log)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
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
			siteWait(t, "items sorted", 30*time.Second, func() bool { return d.line.Snapshot().Totals.Sorted > 5 })
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		})
	}
}
