// Package leakcheck is goleak's VerifyTestMain for test binaries that run
// nats-server. One of the server's goroutines outlives Shutdown: a
// stream that sources another (the hub sourcing a site's stream) sends a
// consumer request and waits for the reply or 30 s, with no quit
// channel (server/stream.go, trySetupSourceConsumer). A test that stops
// the hub while the site is unreachable leaves it waiting. VerifyTestMain
// waits for those goroutines to end by themselves, then checks that no
// goroutine at all is left: nothing is ignored.
package leakcheck

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// lingering are frames of library goroutines that end on their own
// timer after the server is shut down, with that timer's bound.
var lingering = []string{
	"nats-server/v2/server.(*stream).trySetupSourceConsumer",
}

// libraryWait bounds the wait: the server's 30 s consumer wait and slack.
const libraryWait = 40 * time.Second

// VerifyTestMain runs the tests and, if they passed, fails the binary
// on any goroutine still running once the lingering ones have ended.
func VerifyTestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		waitLingering(libraryWait)
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: Errors on successful test run: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// waitLingering returns once no goroutine runs a lingering frame, or
// after d (goleak.Find then reports what is left).
func waitLingering(d time.Duration) {
	deadline := time.Now().Add(d)
	buf := make([]byte, 1<<20)
	for time.Now().Before(deadline) {
		n := runtime.Stack(buf, true)
		for n == len(buf) {
			buf = make([]byte, 2*len(buf))
			n = runtime.Stack(buf, true)
		}
		if !hasLingering(string(buf[:n])) {
			return
		}
		time.Sleep(50 * time.Millisecond) // polling a condition with a deadline
	}
}

func hasLingering(stacks string) bool {
	for _, f := range lingering {
		if strings.Contains(stacks, f) {
			return true
		}
	}
	return false
}
