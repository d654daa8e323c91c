package seed

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/gcbits/gcbits/internal/mem"
)

// After is the baseline allocator with a lock-free fast path: Alloc loads
// the head block of the "next" list atomically and claims bytes from it
// with an atomic add on its free offset. The mutex guards only the lists
// of blocks; it is taken when the head block is missing or full.
//
// Alloc is safe for concurrent use. Advance and Close are NOT safe to call
// while any Alloc is running, and unlike Before this is a real hazard: an
// Alloc that loaded the head block before Advance can add to that block's
// free offset after later Advances have recycled and zeroed it, handing
// out bytes that another Alloc also receives. The runtime rules this out
// by stopping the world around its epoch change; callers must quiesce
// every Alloc before calling Advance or Close (for example with a
// sync.WaitGroup barrier).
//
// A bitmap allocated between two Advances stays valid through the next two
// Advances; the third recycles its memory. Close unmaps all memory, after
// which no bitmap may be used.
//
// The zero After is an empty allocator, the same as NewAfter returns. A After
// must not be copied after first use.
type After struct {
	// next is the head of the list of blocks allocated from in this
	// epoch. Read atomically (also without mu); written atomically under
	// mu.
	next atomic.Pointer[afterBlock]

	mu sync.Mutex

	// All fields below are read and written under mu.

	free     *afterBlock   // blocks ready for reuse, contents stale; under mu
	current  *afterBlock   // blocks filled in the previous epoch; under mu
	previous *afterBlock   // blocks filled two epochs ago, freed by the next Advance; under mu
	all      []*afterBlock // every block mapped, in order, for Close and Blocks; under mu
	closed   bool          // set by Close; under mu
}

// afterBlock is the header of one block. The runtime keeps these fields
// inside the block; here they sit in a Go struct beside the mapped memory.
type afterBlock struct {
	// free is the offset of the next free byte in the usable part. Read
	// and written atomically, without mu. It may run past usableBytes when
	// concurrent adds overshoot; such adds fail.
	free atomic.Uintptr
	link *afterBlock // next block on whichever list holds this one; under After.mu
	mem  mem.Region  // immutable after the block is made
}

// NewAfter returns an empty allocator. It maps no memory until the first
// Alloc.
func NewAfter() *After { return &After{} }

// tryAlloc claims bytes from c, or reports false if c is nil or too full.
// It is safe to call concurrently with itself.
func (c *afterBlock) tryAlloc(bytes uintptr) (uintptr, bool) {
	// Check first, so that a full block is not pushed further past its
	// end by every goroutine that finds it full.
	if c == nil || c.free.Load()+bytes > usableBytes {
		return 0, false
	}
	end := c.free.Add(bytes)
	if end > usableBytes {
		return 0, false
	}
	return end - bytes, true
}

// Alloc returns a zeroed bitmap of ceil(nbits/64) 8-byte aligned words.
// It returns nil, nil for nbits == 0, an error wrapping ErrSize for a
// negative nbits or one above MaxBits, an error wrapping ErrClosed after
// Close, and the mapping error if memory cannot be obtained.
func (a *After) Alloc(nbits int) ([]uint64, error) {
	words, err := wordsFor(nbits)
	if err != nil || words == 0 {
		return nil, err
	}
	bytes := uintptr(words) * 8

	// Fast path: no lock.
	head := a.next.Load()
	if off, ok := head.tryAlloc(bytes); ok {
		return bitmap(head.mem, off, words), nil
	}

	// The head block is full (or there is none).
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return nil, ErrClosed
	}
	// The head may have changed before we took the lock. While we hold
	// it the head stays put, but its free offset can still move.
	head = a.next.Load()
	if off, ok := head.tryAlloc(bytes); ok {
		a.mu.Unlock()
		return bitmap(head.mem, off, words), nil
	}

	// Get another block. This drops the mutex while mapping memory from
	// the OS.
	fresh, err := a.newBlockMayUnlock()
	if err != nil {
		a.mu.Unlock()
		return nil, err
	}
	// If the mutex was dropped, another Alloc may have published a block
	// meanwhile. Use it, and keep ours for later.
	head = a.next.Load()
	if off, ok := head.tryAlloc(bytes); ok {
		fresh.link = a.free
		a.free = fresh
		a.mu.Unlock()
		return bitmap(head.mem, off, words), nil
	}
	// fresh is not published yet, so nothing races with this add and it
	// cannot fail: bytes fit in a block.
	off, _ := fresh.tryAlloc(bytes)
	fresh.link = head
	a.next.Store(fresh)
	a.mu.Unlock()
	return bitmap(fresh.mem, off, words), nil
}

// newBlockMayUnlock returns an empty, zeroed block: the head of the free
// list, cleared in full while holding mu, or else fresh memory from the OS,
// mapped with mu released. It is called and returns with mu held.
func (a *After) newBlockMayUnlock() (*afterBlock, error) {
	var c *afterBlock
	if a.free == nil {
		a.mu.Unlock()
		r, err := mapBlock()
		a.mu.Lock()
		if err != nil {
			return nil, fmt.Errorf("seed: map block: %w", err)
		}
		if a.closed {
			// Close ran while the mutex was free (a caller bug, but it
			// must not leak or crash).
			return nil, errors.Join(ErrClosed, r.Unmap())
		}
		c = &afterBlock{mem: r}
		a.all = append(a.all, c)
	} else {
		c = a.free
		a.free = c.link
		clear(c.mem.Words())
	}
	c.link = nil
	c.free.Store(0)
	return c, nil
}

// Advance starts a new epoch: blocks filled two epochs ago go to the free
// list (found by walking that list to its end), and next → current →
// previous. No Alloc may run concurrently with Advance.
func (a *After) Advance() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.previous != nil {
		if a.free == nil {
			a.free = a.previous
		} else {
			last := a.previous
			for last.link != nil {
				last = last.link
			}
			last.link = a.free
			a.free = a.previous
		}
	}
	a.previous = a.current
	a.current = a.next.Load()
	a.next.Store(nil) // the next Alloc maps or recycles a block
}

// Blocks returns how many blocks have been mapped from the OS. It stays
// bounded when memory is reused across epochs.
func (a *After) Blocks() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.all)
}

// Close unmaps all memory. Every bitmap returned by Alloc becomes invalid;
// later Allocs fail with ErrClosed. No Alloc may run concurrently with
// Close. Closing twice is a no-op.
func (a *After) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return nil
	}
	a.closed = true
	a.next.Store(nil) // fast paths fail from now on and find closed
	var errs []error
	for _, c := range a.all {
		errs = append(errs, c.mem.Unmap())
	}
	a.all = nil
	a.free, a.current, a.previous = nil, nil, nil
	return errors.Join(errs...)
}
