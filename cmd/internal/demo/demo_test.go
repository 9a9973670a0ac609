package demo

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
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
			var logs syncBuffer
			log := zerolog.New(io.MultiWriter(&logs, zerolog.NewTestWriter(t))).Level(zerolog.InfoLevel)
			d, err := New(Config{HTTP: "127.0.0.1:0", Protocol: proto, Rate: 50, Chutes: 16, Seed: 3,
				Token: "demo-token-for-the-test", Dir: filepath.Join(t.TempDir(), "kept")}, log) // -dir need not exist yet
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
			checkUniqueKeys(t, logs.Bytes())
		})
	}
}

// syncBuffer is a bytes.Buffer the demo's goroutines can log into.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.b.Bytes())
}

// checkUniqueKeys fails on a JSON log line with a key twice (Elasticsearch
// rejects those).
func checkUniqueKeys(t *testing.T, logs []byte) {
	t.Helper()
	sc := bufio.NewScanner(bytes.NewReader(logs))
	sc.Buffer(nil, 1<<20)
	n := 0
	for sc.Scan() {
		n++
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		if _, err := dec.Token(); err != nil { // {
			t.Fatalf("log line %d is not JSON: %s", n, sc.Bytes())
		}
		seen := map[string]bool{}
		for dec.More() {
			k, err := dec.Token()
			if err != nil {
				t.Fatalf("log line %d: %v", n, err)
			}
			key := k.(string)
			if seen[key] {
				t.Errorf("log line %d has %q twice: %s", n, key, sc.Bytes())
			}
			seen[key] = true
			var v json.RawMessage
			if err := dec.Decode(&v); err != nil {
				t.Fatalf("log line %d: %v", n, err)
			}
		}
	}
	if n == 0 {
		t.Error("the demo logged nothing")
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
