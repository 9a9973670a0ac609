//go:build !linux

package journal

// dropMapped is Linux only (madvise on bbolt's mapping); elsewhere the
// kernel's own reclaim decides.
func dropMapped(addr uintptr, n int64) (int64, error) { return 0, nil }
