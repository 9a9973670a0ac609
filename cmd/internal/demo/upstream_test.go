package demo

import (
	"bufio"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"sortgw/cmd/internal/upstream"
	gwup "sortgw/gateway/upstream"
)

// TestDemoStreamsUpstream: the demo publishes its journal to its embedded
// NATS, and the command it prints watches item outcomes arrive live.
func TestDemoStreamsUpstream(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end demo: skipped with -short")
	}
	d, err := New(Config{HTTP: "127.0.0.1:0", Rate: 50, Chutes: 16, Seed: 3, Token: "t", Dir: t.TempDir()},
		zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx, func(string) { close(ready) }) }()
	select {
	case <-ready:
	case err := <-done:
		t.Fatal(err)
	}
	url, ok := strings.CutPrefix(d.Tail(), "sortgw tail -nats ")
	if !ok {
		t.Fatalf("demo printed tail command %q", d.Tail())
	}
	pr, pw := io.Pipe()
	tctx, stopTail := context.WithCancel(context.Background())
	tailDone := make(chan error, 1)
	go func() { tailDone <- upstream.Tail(tctx, upstream.TailConfig{URL: url, All: true}, pw); pw.Close() }()
	timeout := time.AfterFunc(30*time.Second, func() { pw.CloseWithError(io.ErrUnexpectedEOF) })
	defer timeout.Stop()
	sc := bufio.NewScanner(pr)
	outcomes := 0
	for outcomes < 5 && sc.Scan() {
		e, err := gwup.Decode(sc.Bytes())
		if err != nil {
			t.Fatalf("tail line %q: %v", sc.Text(), err)
		}
		if e.Site != "demo" {
			t.Fatalf("site %q", e.Site)
		}
		if e.Record.Kind.String() == "outcome" {
			outcomes++
		}
	}
	if outcomes < 5 {
		t.Fatalf("saw %d outcomes on the stream: %v", outcomes, sc.Err())
	}
	stopTail()
	go io.Copy(io.Discard, pr)
	if err := <-tailDone; err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
