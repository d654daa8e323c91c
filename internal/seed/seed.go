// Package seed holds two baseline mark-bit allocators that follow the
// design gcbits started from: the Go runtime's gcBits arenas, which hand out
// a span's mark and allocation bitmaps from 64 KiB blocks that are recycled
// wholesale every GC cycle.
//
//   - Before is that allocator with one global mutex around every
//     allocation.
//   - After adds the lock-free fast path: the head block of the "next" list
//     is read with an atomic load and its free offset is bumped with an
//     atomic add, so the mutex only guards the lists of blocks.
//
// Both exist so that gcbits can be tested against them (differential tests)
// and measured against them (benchmarks). They are kept deliberately close
// to the original algorithm, including its weaknesses:
//
//   - Advance must not run concurrently with Alloc. The runtime calls its
//     epoch function with the world stopped; here the caller must quiesce
//     every Alloc first (for example with a sync.WaitGroup barrier).
//     After in particular is NOT safe otherwise: a goroutine that loaded the
//     head block before Advance can bump the free offset of that block after
//     it has been recycled and zeroed, and so hand out bytes that another
//     goroutine also owns.
//   - Advance appends the retired list to the free list by walking to its
//     end, which costs time proportional to the number of blocks.
//   - A recycled block is zeroed as a whole under the mutex.
//   - Memory goes back to the operating system only on Close.
//
// Lifetime: a bitmap returned by Alloc between two Advances (epoch e) stays
// valid through the next two Advances and is recycled by the third, which
// is the runtime's next → current → previous → free rotation.
package seed

import (
	"errors"
	"fmt"
	"unsafe"

	"github.com/gcbits/gcbits/internal/mem"
)

// Sentinel errors; returned errors wrap them, so test with errors.Is.
var (
	// ErrSize reports a negative bit count, or one whose bitmap does not
	// fit in a single block (the runtime throws in that case).
	ErrSize = errors.New("seed: bad size")
	// ErrClosed reports use of an allocator after Close.
	ErrClosed = errors.New("seed: allocator closed")
)

const (
	// blockBytes is the size of one block (a runtime gcBits arena), as
	// mapped from the OS.
	blockBytes = 64 << 10
	// headerBytes is the size of the runtime's in-block header (a free
	// offset and a next pointer, 8 bytes each on 64-bit platforms). The
	// header lives in a Go struct here, but its bytes are still left
	// unused at the start of the block so that layout and capacity match.
	headerBytes = 16
	// usableBytes is how many bitmap bytes one block holds.
	usableBytes = blockBytes - headerBytes
	// maxWords is the largest bitmap, in 64-bit words, one Alloc returns.
	maxWords = usableBytes / 8
)

// MaxBits is the largest bit count Alloc accepts: one block's worth, 64 KiB
// less the runtime's 16-byte block header.
const MaxBits = maxWords * 64

// mapBlock maps the memory for one block. Tests replace it to inject
// failures; nothing else writes it.
var mapBlock = func() (mem.Region, error) { return mem.Map(blockBytes) }

// wordsFor converts a bit count to a number of 64-bit words, rejecting
// negative counts and bitmaps larger than a block.
func wordsFor(nbits int) (int, error) {
	if nbits < 0 {
		return 0, fmt.Errorf("%w: negative bit count %d", ErrSize, nbits)
	}
	words := nbits / 64
	if nbits%64 != 0 {
		words++
	}
	if words > maxWords {
		return 0, fmt.Errorf("%w: %d bits need %d bytes, a block holds %d",
			ErrSize, nbits, words*8, usableBytes)
	}
	return words, nil
}

// bitmap returns the words bytes [off, off+8*words) of the usable part of
// the block r, which must lie within it.
func bitmap(r mem.Region, off uintptr, words int) []uint64 {
	p := unsafe.Add(r.Base(), headerBytes+off)
	return unsafe.Slice((*uint64)(p), words)
}
