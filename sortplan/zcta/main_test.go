package zcta

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that no test leaves a goroutine behind, as in every
// package of the module. goleak is a test-only import.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
