package gateway

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"sortgw/devices/scanner"
	"sortgw/sortplan"
)

// TestReadyNeedsAScanner (issue 10, item 1): a line none of whose scanners
// is online cannot sort, so it is not ready, and /readyz says why; it is
// ready while a scanner sends heartbeats and not once it falls silent.
func TestReadyNeedsAScanner(t *testing.T) {
	log := zerolog.New(zerolog.NewTestWriter(t))
	src, err := scanner.New([]scanner.Config{{Name: "S1", Mode: scanner.ModeServer, Addr: "127.0.0.1:0", Peer: "127.0.0.1",
		HeartbeatTimeout: time.Second}}, log)
	if err != nil {
		t.Fatal(err)
	}
	m := NewMetrics()
	l, err := NewLine(LineConfig{Name: "L1", Chutes: 16}, newFakeLink(), src, nil, m, log)
	if err != nil {
		t.Fatal(err)
	}
	p, _, err := sortplan.ParsePlan("test.csv", strings.NewReader(testPlan), 16)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.InstallPlan(p, nil); err != nil {
		t.Fatal(err)
	}
	gw, err := New(Config{Listen: "127.0.0.1:0", Token: testToken}, []*Line{l}, nil, m, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- gw.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	<-gw.Started()
	readyz := func() (int, string) {
		res, err := http.Get("http://" + gw.Addr() + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	waitFor(t, "line running", func() bool { return l.running.Load() })
	<-src.Ready()
	if code, body := readyz(); code != http.StatusServiceUnavailable || body != "line L1: no scanner online\n" {
		t.Fatalf("readyz before any scanner: %d %q", code, body)
	}

	conn, err := net.Dial("tcp", src.ListenAddr("S1"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "\x02HB\x03"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "ready with the scanner online", func() bool { c, _ := readyz(); return c == http.StatusOK })
	waitFor(t, "not ready with the scanner silent", func() bool {
		c, body := readyz()
		return c == http.StatusServiceUnavailable && strings.Contains(body, "line L1: no scanner online")
	})
}
