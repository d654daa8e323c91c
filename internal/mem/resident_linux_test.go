package mem

import (
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// resident returns how many pages of r are in memory (mincore), and true.
func resident(t *testing.T, r Region) (int, bool) {
	t.Helper()
	vec := make([]byte, (r.Size()+uintptr(PageSize())-1)/uintptr(PageSize()))
	if _, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(r.base), r.size, uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
		t.Fatalf("mincore: %v", errno)
	}
	n := 0
	for _, v := range vec {
		n += int(v & 1)
	}
	return n, true
}
