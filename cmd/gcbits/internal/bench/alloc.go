// Package bench measures bitmap allocators the way a garbage collector
// uses them: many goroutines asking for the mark bitmaps of spans of every
// small size class, with the epoch turning underneath them.
//
// Every allocator, gcbits' own and the references it is compared with, is
// driven through the same two interfaces, Allocator and Worker, so each
// allocation costs the harness exactly one interface call. Run measures the
// scenarios (see Scenarios) and returns a Report whose rows give the
// median throughput of several runs, its ratio to seed-after (the design
// gcbits started from) and, for gcbits, the memory wasted.
package bench

import (
	"errors"
	"fmt"
	"sync"
	"unsafe"

	"github.com/gcbits/gcbits"
	"github.com/gcbits/gcbits/internal/seed"
)

// Worker allocates on behalf of one goroutine. It need not be safe for
// concurrent use; each worker goroutine gets its own.
type Worker interface {
	// Alloc returns a zeroed bitmap of ceil(nbits/64) words.
	Alloc(nbits int) ([]uint64, error)
}

// Allocator is one allocator under test.
type Allocator interface {
	// NewWorker returns a Worker for one goroutine.
	NewWorker() Worker
	// Advance ends the current epoch. Whether it may run while workers
	// allocate is told by Factory.ConcurrentAdvance.
	Advance()
	// Close releases the allocator's memory; no bitmap may be used after.
	Close() error
}

// Flusher is implemented by workers that keep books privately (a
// gcbits.Cache); Run flushes every worker at the end of a run so that the
// allocator's statistics are complete.
type Flusher interface{ Flush() }

// Accounter is implemented by allocators that keep books of the memory
// they hand out and waste.
type Accounter interface {
	Account() (allocated, wasted uint64)
}

// Factory makes one kind of allocator.
type Factory struct {
	Name string
	Doc  string // one line for the usage message
	New  func() (Allocator, error)
	// ConcurrentAdvance reports whether Advance may run while workers
	// allocate. Rows of the concurrent scenario of an allocator without
	// it are marked unsafe.
	ConcurrentAdvance bool
	// Epochal reports whether the allocator keeps the lifetime rule:
	// every bitmap is disjoint from every other for at least two more
	// epochs. Every row of an allocator without it is marked unsafe.
	Epochal bool
}

// Factories lists the allocators, in the order tables show them.
var Factories = []Factory{
	{
		Name:    "seed-before",
		Doc:     "the runtime's mark-bit allocator before its lock-free path: one mutex per Alloc",
		New:     func() (Allocator, error) { return seedBefore{seed.NewBefore()}, nil },
		Epochal: true, ConcurrentAdvance: true,
	},
	{
		Name:    "seed-after",
		Doc:     "the runtime's design with its lock-free fast path; Advance needs stop-the-world",
		New:     func() (Allocator, error) { return seedAfter{seed.NewAfter()}, nil },
		Epochal: true, ConcurrentAdvance: false,
	},
	{
		Name:    "gcbits",
		Doc:     "gcbits.Arena.Alloc, shared by all workers",
		New:     newArena(false),
		Epochal: true, ConcurrentAdvance: true,
	},
	{
		Name:    "gcbits-cache",
		Doc:     "a gcbits.Cache per worker (Arena.NewCache)",
		New:     newArena(true),
		Epochal: true, ConcurrentAdvance: true,
	},
	{
		Name:    "make",
		Doc:     "make([]uint64, words) on the Go heap, dropped at once (the GC reclaims it)",
		New:     func() (Allocator, error) { return makeAlloc{}, nil },
		Epochal: true, ConcurrentAdvance: true,
	},
	{
		Name:    "sync.Pool",
		Doc:     "speed reference only: Get, clear, Put back at once; NOT an epoch allocator",
		New:     func() (Allocator, error) { return newPool(), nil },
		Epochal: false, ConcurrentAdvance: true,
	},
}

// Lookup returns the factory called name.
func Lookup(name string) (Factory, bool) {
	for _, f := range Factories {
		if f.Name == name {
			return f, true
		}
	}
	return Factory{}, false
}

// Names returns the names of all allocators, in table order.
func Names() []string {
	var s []string
	for _, f := range Factories {
		s = append(s, f.Name)
	}
	return s
}

// Each wrapper below turns one Worker.Alloc into one direct call of the
// allocator's own method, so that the harness adds the same overhead to
// every allocator: one interface call.

type seedBefore struct{ a *seed.Before }

func (s seedBefore) NewWorker() Worker { return seedBeforeWorker(s) }
func (s seedBefore) Advance()          { s.a.Advance() }
func (s seedBefore) Close() error      { return s.a.Close() }

type seedBeforeWorker struct{ a *seed.Before }

func (w seedBeforeWorker) Alloc(nbits int) ([]uint64, error) { return w.a.Alloc(nbits) }

type seedAfter struct{ a *seed.After }

func (s seedAfter) NewWorker() Worker { return seedAfterWorker(s) }
func (s seedAfter) Advance()          { s.a.Advance() }
func (s seedAfter) Close() error      { return s.a.Close() }

type seedAfterWorker struct{ a *seed.After }

func (w seedAfterWorker) Alloc(nbits int) ([]uint64, error) { return w.a.Alloc(nbits) }

// arena is gcbits with either the shared path or a Cache per worker.
type arena struct {
	a     *gcbits.Arena
	cache bool
}

func newArena(cache bool) func() (Allocator, error) {
	return func() (Allocator, error) {
		a, err := gcbits.New(gcbits.Options{})
		if err != nil {
			return nil, err
		}
		return arena{a, cache}, nil
	}
}

func (a arena) NewWorker() Worker {
	if a.cache {
		return cacheWorker{a.a.NewCache()}
	}
	return arenaWorker{a.a}
}
func (a arena) Advance()     { a.a.Advance() }
func (a arena) Close() error { return a.a.Close() }
func (a arena) Account() (allocated, wasted uint64) {
	s := a.a.Stats()
	return s.AllocatedBytes, s.WastedBytes
}

type arenaWorker struct{ a *gcbits.Arena }

func (w arenaWorker) Alloc(nbits int) ([]uint64, error) { return w.a.Alloc(nbits) }

type cacheWorker struct{ c *gcbits.Cache }

func (w cacheWorker) Alloc(nbits int) ([]uint64, error) { return w.c.Alloc(nbits) }
func (w cacheWorker) Flush()                            { w.c.Flush() }

// errSize is returned by the Go-heap references for a negative size.
var errSize = errors.New("bench: negative bit count")

// words converts a bit count to whole 64-bit words.
func words(nbits int) (int, error) {
	if nbits < 0 {
		return 0, fmt.Errorf("%w: %d", errSize, nbits)
	}
	return (nbits + 63) >> 6, nil
}

// makeAlloc allocates every bitmap on the Go heap and drops it: the
// garbage collector reclaims it, so Advance has nothing to do.
type makeAlloc struct{}

func (makeAlloc) NewWorker() Worker { return makeWorker{} }
func (makeAlloc) Advance()          {}
func (makeAlloc) Close() error      { return nil }

type makeWorker struct{}

func (makeWorker) Alloc(nbits int) ([]uint64, error) {
	n, err := words(nbits)
	if err != nil || n == 0 {
		return nil, err
	}
	return make([]uint64, n), nil
}

// poolAlloc is a speed reference, not an allocator one could use: Alloc
// gets a buffer from a sync.Pool, clears the words asked for and puts the
// buffer straight back, so it measures the cost of a per-P pool round trip
// and a clear. The bitmap it returns is already back in the pool and the
// next Alloc on the same P returns the same memory: bitmaps are neither
// disjoint nor kept for any epoch. Its rows are marked unsafe.
type poolAlloc struct{ p *sync.Pool }

// poolWords is the size of a pooled buffer: the largest bitmap of the mix.
const poolWords = 16

func newPool() poolAlloc {
	return poolAlloc{&sync.Pool{New: func() any {
		b := make([]uint64, poolWords)
		return &b
	}}}
}

func (p poolAlloc) NewWorker() Worker { return poolWorker(p) }
func (poolAlloc) Advance()            {}
func (poolAlloc) Close() error        { return nil }

type poolWorker struct{ p *sync.Pool }

func (w poolWorker) Alloc(nbits int) ([]uint64, error) {
	n, err := words(nbits)
	if err != nil || n == 0 {
		return nil, err
	}
	bp := w.p.Get().(*[]uint64)
	if cap(*bp) < n {
		*bp = make([]uint64, n)
	}
	b := (*bp)[:n:n]
	clear(b)
	w.p.Put(bp)
	return b, nil
}

// noopWorker is the sweep scenario's baseline, not an allocator: it hands
// out consecutive slices of a preallocated, all-zero region that nobody
// writes, wrapping round at its end. It costs a bounds check and a bump,
// and its bitmaps are spread over as much memory as real ones would be, so
// the sweep's reads of old bitmaps miss the caches as they would.
//
// Each worker's pos is written on every Alloc, so a noopWorker fills a
// cache line: two of them must not share one, or the baseline pays for
// the sharing that the allocators' alloc % is measured against.
type noopWorker struct {
	noopFields
	_ [cacheLine - unsafe.Sizeof(noopFields{})%cacheLine]byte
}

// noopFields are the fields of a noopWorker.
type noopFields struct {
	buf []uint64
	pos int
}

func (w *noopWorker) Alloc(nbits int) ([]uint64, error) {
	n, err := words(nbits)
	if err != nil {
		return nil, err
	}
	if w.pos+n > len(w.buf) {
		w.pos = 0
	}
	b := w.buf[w.pos : w.pos+n : w.pos+n]
	w.pos += n
	return b, nil
}
