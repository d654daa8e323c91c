package seed

import (
	"testing"
	"unsafe"

	"github.com/gcbits/gcbits/internal/mem"
)

// What the tests, in package seed_test, see of the package's insides:
// its sizes, where a bitmap lies, and the block mapper to replace. These
// are kept out of the baselines themselves.

const (
	BlockBytes  = blockBytes
	UsableBytes = usableBytes
	MaxWords    = maxWords
)

// SetMapBlock replaces the block mapper until the test ends.
func SetMapBlock(tb testing.TB, f func() (mem.Region, error)) {
	old := mapBlock
	mapBlock = f
	tb.Cleanup(func() { mapBlock = old })
}

// blockOffset reports whether p lies in the usable part of r, and at which
// byte offset.
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

// OffsetOf returns the index in the mapping order of the block holding p
// and p's byte offset in it, or -1 if p is not in any block.
func (b *Before) OffsetOf(p []uint64) (int, uintptr) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return blockIndex(b.all, func(c *beforeBlock) mem.Region { return c.mem }, p)
}

// OffsetOf is Before.OffsetOf for After.
func (a *After) OffsetOf(p []uint64) (int, uintptr) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return blockIndex(a.all, func(c *afterBlock) mem.Region { return c.mem }, p)
}
