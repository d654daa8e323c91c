//go:build unix

package mem

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// OffHeap reports whether Map returns memory outside the Go heap.
const OffHeap = true

// keeper holds nothing: a mapping needs nothing to keep it alive.
type keeper struct{}

// PageSize returns the operating system's page size.
func PageSize() int { return unix.Getpagesize() }

// Map returns size bytes of zeroed, readable and writable memory, rounded
// up to whole pages.
func Map(size uintptr) (Region, error) {
	if size == 0 {
		return Region{}, fmt.Errorf("mem: map of 0 bytes")
	}
	size = RoundUp(size)
	b, err := unix.Mmap(-1, 0, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		return Region{}, fmt.Errorf("mem: mmap %d bytes: %w", size, err)
	}
	return Region{base: unsafe.Pointer(unsafe.SliceData(b)), size: size}, nil
}

func (r Region) bytes() []byte { return unsafe.Slice((*byte)(r.base), r.size) }

// Unmap returns r to the operating system. r must not be used afterwards.
func (r Region) Unmap() error {
	if r.base == nil {
		return nil
	}
	if err := unix.Munmap(r.bytes()); err != nil {
		return fmt.Errorf("mem: munmap: %w", err)
	}
	return nil
}

// Protect makes r inaccessible (readWrite false), so that any load or store
// faults, or readable and writable again (readWrite true).
func (r Region) Protect(readWrite bool) error {
	prot := unix.PROT_NONE
	if readWrite {
		prot = unix.PROT_READ | unix.PROT_WRITE
	}
	if err := unix.Mprotect(r.bytes(), prot); err != nil {
		return fmt.Errorf("mem: mprotect: %w", err)
	}
	return nil
}

// Guard makes r inaccessible and gives its pages back to the operating
// system, in one system call: it maps fresh PROT_NONE memory over r. Any
// load or store then faults, at its own address, until Protect(true);
// afterwards r reads as zero.
func (r Region) Guard() error {
	return r.remap(unix.PROT_NONE, "PROT_NONE")
}

// Release gives r's pages back to the operating system and leaves r
// readable and writable, reading as zero: it maps fresh memory over r, in
// one system call. (madvise(MADV_DONTNEED) does not zero pages on every
// Unix.)
func (r Region) Release() error {
	return r.remap(unix.PROT_READ|unix.PROT_WRITE, "read-write")
}

// remap maps fresh anonymous memory with protection prot over r.
func (r Region) remap(prot int, what string) error {
	if r.base == nil {
		return nil
	}
	if _, err := unix.MmapPtr(-1, 0, r.base, r.size, prot, unix.MAP_ANON|unix.MAP_PRIVATE|unix.MAP_FIXED); err != nil {
		return fmt.Errorf("mem: mmap %s over %d bytes: %w", what, r.size, err)
	}
	return nil
}
