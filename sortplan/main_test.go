package sortplan

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that no test leaves a goroutine behind (the holder test
// runs concurrent readers and writers). goleak is a test-only import: the
// package itself stays standard-library only.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
