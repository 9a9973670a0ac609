package leakcheck

import (
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestLingering: only the listed library frames are waited for; any
// other goroutine is left to goleak, and the wait ends at once when none
// lingers.
func TestLingering(t *testing.T) {
	stack := "goroutine 7 [select]:\ngithub.com/nats-io/nats-server/v2/server.(*stream).trySetupSourceConsumer.func3()\n"
	if !hasLingering(stack) {
		t.Error("the source-consumer wait is not recognised")
	}
	if hasLingering("goroutine 8 [select]:\nsortgw/gateway.(*Line).Run()\n") {
		t.Error("a project goroutine would be waited for")
	}
	done := make(chan struct{})
	go func() { waitLingering(time.Hour); close(done) }()
	<-done // returns without waiting: nothing lingers in this binary
}
