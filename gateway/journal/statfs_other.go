//go:build !linux

package journal

import "errors"

// statfs is not implemented off Linux (sortgw runs on Linux); the disk
// state stays unknown.
func statfs(string) (free, total uint64, err error) {
	return 0, 0, errors.New("free space check not supported on this system")
}
