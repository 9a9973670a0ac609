package opcua

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that no goroutine outlives the tests. gopcua ends its
// secure channel's dispatcher after Close only once the socket read
// returns; goleak's retries wait for that.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
