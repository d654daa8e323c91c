package seed

import (
	"unsafe"

	"github.com/gcbits/gcbits/internal/mem"
)

// Where a bitmap lies, for the tests that check placement: test helpers,
// kept out of the baselines themselves.

// blockOffset reports whether p lies in the usable part of r, and at which
// byte offset. It is used by tests to compare layouts.
func blockOffset(r mem.Region, p []uint64) (uintptr, bool) {
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

// blockIndex returns the index in all of the block holding p and p's byte
// offset in it, or -1 if p is not in any block. region gives a block's
// memory.
func blockIndex[C any](all []C, region func(C) mem.Region, p []uint64) (int, uintptr) {
	for i, c := range all {
		if off, ok := blockOffset(region(c), p); ok {
			return i, off
		}
	}
	return -1, 0
}

// offsetOf returns the index in the mapping order of the block holding p
// and p's byte offset in it, or -1 if p is not in any block.
func (b *Before) offsetOf(p []uint64) (int, uintptr) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return blockIndex(b.all, func(c *beforeBlock) mem.Region { return c.mem }, p)
}

// offsetOf is Before.offsetOf for After.
func (a *After) offsetOf(p []uint64) (int, uintptr) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return blockIndex(a.all, func(c *afterBlock) mem.Region { return c.mem }, p)
}
