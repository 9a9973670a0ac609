package upstream

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)// The nats.go client starts one global timer-pool/"flusher"-free
	// goroutine per process? None is known immortal: keep the list
	// empty unless a library goroutine outlives Shutdown by design.

}
