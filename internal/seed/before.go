package seed

import (
	"errors"
	"fmt"
	"sync"

	"github.com/gcbits/gcbits/internal/mem"
)

// Before is the baseline allocator without a lock-free path: every Alloc
// takes one global mutex, and the mutex guards the lists of blocks as well
// as the free offset of each block. The only time an Alloc lets go of the
// mutex before returning is while it maps a brand-new block from the OS,
// after which it retries the head block, as the runtime's allocator already
// did before it gained its lock-free path. Recycled blocks are cleared
// with the mutex held.
//
// Alloc is safe for concurrent use, and so is Advance: since everything
// is under the mutex, an Alloc that overlaps an Advance is ordered before
// or after it, and the lifetime rule below holds counted from when the
// Alloc began (the benchmark's concurrent scenario relies on this). The
// runtime still stops the world around it. Close must not run while an
// Alloc is running.
//
// A bitmap allocated between two Advances stays valid through the next two
// Advances; the third recycles its memory. Close unmaps all memory, after
// which no bitmap may be used.
//
// The zero Before is an empty allocator, the same as NewBefore returns. A Before
// must not be copied after first use.
type Before struct {
	mu sync.Mutex

	// All fields below are read and written under mu.

	free     *beforeBlock   // blocks ready for reuse, contents stale; under mu
	next     *beforeBlock   // blocks of this epoch, head serves Alloc; under mu
	current  *beforeBlock   // blocks filled in the previous epoch; under mu
	previous *beforeBlock   // blocks filled two epochs ago, freed by the next Advance; under mu
	all      []*beforeBlock // every block mapped, in order, for Close and Blocks; under mu
	closed   bool           // set by Close; under mu
}

// beforeBlock is the header of one block. The runtime keeps these fields
// inside the block; here they sit in a Go struct beside the mapped memory.
type beforeBlock struct {
	free uintptr      // offset of the next free byte in the usable part; under Before.mu
	link *beforeBlock // next block on whichever list holds this one; under Before.mu
	mem  mem.Region   // immutable after the block is made
}

// NewBefore returns an empty allocator. It maps no memory until the first
// Alloc.
func NewBefore() *Before { return &Before{} }

// tryAlloc carves bytes from c, or reports false if c is nil or too full.
// The caller must hold Before.mu.
func (c *beforeBlock) tryAlloc(bytes uintptr) (uintptr, bool) {
	if c == nil || c.free+bytes > usableBytes {
		return 0, false
	}
	off := c.free
	c.free += bytes
	return off, true
}

// Alloc returns a zeroed bitmap of ceil(nbits/64) 8-byte aligned words.
// It returns nil, nil for nbits == 0, an error wrapping ErrSize for a
// negative nbits or one above MaxBits, an error wrapping ErrClosed after
// Close, and the mapping error if memory cannot be obtained.
func (b *Before) Alloc(nbits int) ([]uint64, error) {
	words, err := wordsFor(nbits)
	if err != nil || words == 0 {
		return nil, err
	}
	bytes := uintptr(words) * 8

	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil, ErrClosed
	}
	if off, ok := b.next.tryAlloc(bytes); ok {
		p := bitmap(b.next.mem, off, words)
		b.mu.Unlock()
		return p, nil
	}

	// The head block is full (or there is none): get another one. This
	// drops the mutex while mapping memory from the OS.
	fresh, err := b.newBlockMayUnlock()
	if err != nil {
		b.mu.Unlock()
		return nil, err
	}
	// If the mutex was dropped, another Alloc may have published a block
	// meanwhile. Use it, and keep ours for later.
	if off, ok := b.next.tryAlloc(bytes); ok {
		fresh.link = b.free
		b.free = fresh
		p := bitmap(b.next.mem, off, words)
		b.mu.Unlock()
		return p, nil
	}
	// fresh is private and empty, so this cannot fail: bytes fit in a
	// block.
	off, _ := fresh.tryAlloc(bytes)
	fresh.link = b.next
	b.next = fresh
	p := bitmap(fresh.mem, off, words)
	b.mu.Unlock()
	return p, nil
}

// newBlockMayUnlock returns an empty, zeroed block: the head of the free
// list, cleared in full while holding mu, or else fresh memory from the OS,
// mapped with mu released. It is called and returns with mu held.
func (b *Before) newBlockMayUnlock() (*beforeBlock, error) {
	var c *beforeBlock
	if b.free == nil {
		b.mu.Unlock()
		r, err := mapBlock()
		b.mu.Lock()
		if err != nil {
			return nil, fmt.Errorf("seed: map block: %w", err)
		}
		if b.closed {
			// Close ran while the mutex was free (a caller bug, but it
			// must not leak or crash).
			return nil, errors.Join(ErrClosed, r.Unmap())
		}
		c = &beforeBlock{mem: r}
		b.all = append(b.all, c)
	} else {
		c = b.free
		b.free = c.link
		clear(c.mem.Words())
	}
	c.link = nil
	c.free = 0
	return c, nil
}

// Advance starts a new epoch: blocks filled two epochs ago go to the free
// list (found by walking that list to its end), and next → current →
// previous. No Alloc may run concurrently with Advance.
func (b *Before) Advance() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.previous != nil {
		if b.free == nil {
			b.free = b.previous
		} else {
			last := b.previous
			for last.link != nil {
				last = last.link
			}
			last.link = b.free
			b.free = b.previous
		}
	}
	b.previous = b.current
	b.current = b.next
	b.next = nil
}

// Blocks returns how many blocks have been mapped from the OS. It stays
// bounded when memory is reused across epochs.
func (b *Before) Blocks() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.all)
}

// Close unmaps all memory. Every bitmap returned by Alloc becomes invalid;
// later Allocs fail with ErrClosed. No Alloc may run concurrently with
// Close. Closing twice is a no-op.
func (b *Before) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	b.closed = true
	var errs []error
	for _, c := range b.all {
		errs = append(errs, c.mem.Unmap())
	}
	b.all = nil
	b.free, b.next, b.current, b.previous = nil, nil, nil, nil
	return errors.Join(errs...)
}
