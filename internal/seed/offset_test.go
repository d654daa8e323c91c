package seed

import (
	"unsafe"

	"github.com/gcbits/gcbits/internal/mem"
)

// Where a bitmap lies, for the tests that check placement: test helpers,
// kept out of the baselines themselves.

// chunkOffset reports whether p lies in the usable part of r, and at which
// byte offset. It is used by tests to compare layouts.
func chunkOffset(r mem.Region, p []uint64) (uintptr, bool) {
	if len(p) == 0 {
		return 0, false
	}
	start := uintptr(r.Base()) + headerBytes
	addr := uintptr(unsafe.Pointer(unsafe.SliceData(p)))
	if addr < start || addr >= start+usableBytes {
		return 0, false
	}
	return addr - start, true
}

// chunkIndex returns the index in all of the chunk holding p and p's byte
// offset in it, or -1 if p is not in any chunk. region gives a chunk's
// memory.
func chunkIndex[C any](all []C, region func(C) mem.Region, p []uint64) (int, uintptr) {
	for i, c := range all {
		if off, ok := chunkOffset(region(c), p); ok {
			return i, off
		}
	}
	return -1, 0
}

// offsetOf returns the index in the mapping order of the chunk holding p
// and p's byte offset in it, or -1 if p is not in any chunk.
func (b *Before) offsetOf(p []uint64) (int, uintptr) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return chunkIndex(b.all, func(c *beforeChunk) mem.Region { return c.mem }, p)
}

// offsetOf is Before.offsetOf for After.
func (a *After) offsetOf(p []uint64) (int, uintptr) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return chunkIndex(a.all, func(c *afterChunk) mem.Region { return c.mem }, p)
}
