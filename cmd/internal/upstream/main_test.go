package upstream

import (
	"testing"

	"sortgw/cmd/internal/leakcheck"
)

// TestMain checks for leaked goroutines. Every nats-server the tests
// start is Shutdown and WaitForShutdown'd and every client closed; the
// one library goroutine that outlives a hub's shutdown (a source
// consumer's 30 s wait) is waited for, not ignored (leakcheck).
func TestMain(m *testing.M) { leakcheck.VerifyTestMain(m) }
