//go:build linux

package journal

import "syscall"

// statfs returns the bytes an unprivileged writer may still use in dir's
// filesystem and the filesystem's size.
func statfs(dir string) (free, total uint64, err error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, 0, err
	}
	bs := uint64(st.Bsize)
	return st.Bavail * bs, st.Blocks * bs, nil
}
