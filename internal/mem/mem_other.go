//go:build !unix

package mem

import (
	"errors"
	"fmt"
	"runtime"
	"unsafe"
)

// OffHeap reports whether Map returns memory outside the Go heap.
const OffHeap = false

// keeper is the Go memory behind a Region.
type keeper = []uint64

// PageSize returns the granule Map rounds to.
func PageSize() int { return 4096 }

// Map returns size bytes of zeroed memory from the Go heap, rounded up to
// whole pages.
func Map(size uintptr) (Region, error) {
	if size == 0 {
		return Region{}, fmt.Errorf("mem: map of 0 bytes")
	}
	size = RoundUp(size)
	keep := make([]uint64, size/8)
	return Region{base: unsafe.Pointer(unsafe.SliceData(keep)), size: size, keep: keep}, nil
}

// Unmap drops r; the garbage collector frees it once nothing refers to it.
func (r Region) Unmap() error { return nil }

// Protect is not available without mprotect: its error wraps
// errors.ErrUnsupported.
func (r Region) Protect(readWrite bool) error {
	return fmt.Errorf("mem: no mprotect on %s: %w", runtime.GOOS, errors.ErrUnsupported)
}

// Guard is not available without mmap: its error wraps
// errors.ErrUnsupported.
func (r Region) Guard() error {
	return fmt.Errorf("mem: no mmap on %s: %w", runtime.GOOS, errors.ErrUnsupported)
}

// Release zeroes r, the observable effect of giving its pages back.
func (r Region) Release() error {
	clear(r.Words())
	return nil
}
