package upstream

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks for leaked goroutines. Every nats-server the tests
// start is Shutdown and WaitForShutdown'd and every client closed, so no
// library goroutine needs ignoring.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
