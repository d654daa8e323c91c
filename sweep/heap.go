package sweep

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gcbits/gcbits"
)

// Heap is a mark-sweep heap of fixed-size slots in memory outside the Go
// heap, with mark bitmaps from a gcbits.Arena. See the package
// documentation for the model, the protocols and the lifetime argument.
type Heap struct {
	// Set by New; read-only afterwards.
	tag     uint8 // the heap's tag in its Refs, unique among open heaps
	classes *classTable
	arena   *gcbits.Arena
	retain  uint64 // the arena's Retain
	checked bool   // !Options.Unchecked
	trace   Tracer
	rootsFn func(visit func(Ref))
	minHeap int64
	nsweep  int  // background sweepers
	timing  bool // Options.Timing

	// types holds the span classes and interns the layouts of Types.
	types typeTable
	// untypedLarge is the layout of large objects from Mutator.Alloc.
	// Read-only.
	untypedLarge *layout

	// table maps span indexes to spans. Read atomically; the table and its
	// entries are replaced or stored only under mu. Entry 0 is never used.
	table atomic.Pointer[spanTable]

	// sweepgen is the heap's sweep generation, 2 more at every sweep
	// phase. Read atomically; written with sgLock held for writing, while
	// the world is stopped.
	sweepgen atomic.Uint32
	// sgLock keeps sweepers that are not Mutators (background sweepers,
	// collectors finishing a sweep, WaitSweep, the scavenger freeing idle
	// spans) from using a sweepgen that
	// is about to change: they hold it for reading around each span they
	// take and sweep. Mutators need not: sweepgen only changes while
	// they are stopped.
	sgLock sync.RWMutex
	// sweepLeft is the number of spans still to sweep in this cycle. Set
	// under sgLock (write) at the start of a sweep phase; decremented
	// atomically by whoever finishes sweeping a span; whoever takes it to
	// 0 ends the sweep phase (finishSweep).
	sweepLeft atomic.Int64
	// cycle is the number of collections whose sweep phase has started.
	// Written under sgLock (write); read atomically.
	cycle atomic.Uint64
	// sweepCursor indexes the unswept sets for background sweepers:
	// sets below it are empty for the rest of the sweep phase (nothing is
	// pushed onto an unswept set while sweeping). Reset under sgLock
	// (write); advanced by compare-and-swap.
	sweepCursor atomic.Int32

	smu        sync.Mutex // guards sweptCycle; leaf lock
	scond      sync.Cond  // signalled when sweptCycle changes
	sweptCycle uint64     // the last cycle whose sweep finished and advanced the arena; under smu

	// heapLive estimates the heap in use for pacing, as the runtime's
	// heapLive: the bytes marked by the last collection plus the free
	// slots of the spans Mutators took since (counted as used when taken)
	// and large objects. Atomic.
	heapLive atomic.Int64
	// goal is the heapLive a collection's mark should end at, GOGC's
	// goal; past it, Mutators that take spans join the mark. trigger is
	// the heapLive at which the next collection starts (pacer.go).
	// Atomic; stored by updateGoalLocked under pacerMu.
	goal, trigger atomic.Int64
	// gcPercent is GOGC: Options.GCPercent, changed by SetGCPercent.
	// Under pacerMu.
	gcPercent int
	// pacerMu guards the results of the last mark that the goal is
	// computed from, and orders the goal's updates.
	pacerMu                                             sync.Mutex
	lastMarked, lastRoots, lastAllocated, lastMarkAlloc int64 // under pacerMu

	// sweepFull is set for the sweep phase of a full collection (after
	// ErrLimit): place then frees every empty span at once. Stored at the
	// flip, under sgLock (write), so that every sweep of the phase, which
	// holds sgLock for reading, sees the phase's value; read atomically.
	sweepFull atomic.Bool

	mu      sync.Mutex    // guards the fields below
	pages   pageAlloc     // under mu
	freeIdx []freeSpanIdx // retired span indexes, oldest first; under mu
	nextIdx uint32        // indexes below it have been handed out (from 1); under mu
	inUse   int           // spans in the table; under mu
	// oldTables are the span tables that larger ones replaced, whose
	// slots freeSpan clears too (spanTable). Under mu.
	oldTables []*spanTable
	// retired holds the memory of spans freed by sweeps: a Mutator may
	// have resolved a Ref into such a span just before it was freed and
	// still be about to access it, so the pages are neither reused nor
	// unmapped until the next collection has stopped the world
	// (releaseRetired). The scavenger may return their pages to the OS
	// meanwhile: a stale access then reads zeros. Under mu.
	retired []*retiredSpan
	// retiredReleased is the bytes of retired spans returned to the OS.
	// Under mu.
	retiredReleased int64

	// The scavenger (scavenge.go): a goroutine that returns memory unused
	// for scavengeDelay to the OS.
	scavengeDelay time.Duration // read-only; negative: never in the background
	memoryLimit   int64         // Options.MemoryLimit; read-only
	scavWake      chan struct{} // buffered, one token: something may have become free

	// world holds the Mutators and stops them for collections.
	world world

	closed atomic.Bool    // set by Close; read atomically by every entry point
	wake   chan struct{}  // background sweepers wait on it; buffered, one token per sweeper
	quit   chan struct{}  // closed by Close
	wg     sync.WaitGroup // background sweepers, mark goroutines and the scavenger

	// phase is the collector's phase (gc.go): phaseMark from the start
	// of a mark to its end. Stored under cycMu, with the world stopped
	// but when the heap's Close ends a foreground mark; read atomically.
	phase atomic.Uint32
	// cycMu orders the changes of phase and of work.ending with the
	// goroutines waiting on cycCond for them.
	cycMu   sync.Mutex
	cycCond sync.Cond // on cycMu
	// cyc is the record of the collection in progress; written with the
	// world stopped.
	cyc cycle
	// work is the mark's shared state: its queue of grey objects, its
	// workers and their totals.
	work markQueue
	// markers are the mark workers' markers, one per mark goroutine:
	// markers[0] marks the roots, and is the controller's in a
	// foreground collection. The slice is read-only; each marker is
	// owned by the goroutine working as it in the mark in progress.
	markers []*marker

	st     counters // statistics; atomic
	pauses pauseLog // the stops of the world; under its own lock

	// noBarrier keeps the write barrier off during marks, for the test
	// that shows the barrier is needed; set by tests before any use,
	// read-only afterwards.
	noBarrier bool

	// onSweep, if set, is called by sweepSpan before each sweep; set by
	// tests before any use, read-only afterwards.
	onSweep func(s *span, sg uint32)
	// onFlip, if set, is called at each flip with the new sweepgen and
	// the number of spans to sweep; set by tests before any use.
	onFlip func(sg uint32, n int)
}

// New returns a Heap configured by opts and starts its background
// sweepers and scavenger; Close stops them. Options outside their ranges give an error
// wrapping ErrOption.
func New(opts Options) (*Heap, error) { return newHeap(opts, false) }

// newHeap is New; anyRetain lets a test build a heap with Retain 1 to
// check that the lifetime checks catch it.
func newHeap(opts Options, anyRetain bool) (*Heap, error) {
	o, err := opts.resolve(anyRetain)
	if err != nil {
		return nil, err
	}
	ct, err := newClassTable(o.Classes)
	if err != nil {
		return nil, err
	}
	arena, err := gcbits.New(o.Arena)
	if err != nil {
		return nil, err
	}
	tag, err := takeHeapTag()
	if err != nil {
		arena.Close()
		return nil, err
	}
	h := &Heap{
		tag:     tag,
		classes: ct,
		arena:   arena,
		retain:  uint64(o.Arena.Retain),
		checked: !o.Unchecked,
		trace:   o.Trace,
		rootsFn: o.Roots,
		minHeap: o.MinHeapBytes,
		nsweep:  o.Sweepers,
		timing:  o.Timing,
		quit:    make(chan struct{}),
	}
	h.pages.init(o.RegionBytes, o.RegionBytes/4, o.MaxBytes, o.MemoryLimit)
	h.scavengeDelay = o.ScavengeDelay
	h.memoryLimit = o.MemoryLimit
	h.scavWake = make(chan struct{}, 1)
	h.initTypes(o.Trace != nil)
	h.world.init()
	h.scond.L = &h.smu
	h.cycCond.L = &h.cycMu
	h.work.cond.L = &h.work.mu
	h.markers = make([]*marker, o.MarkWorkers)
	for i := range h.markers {
		h.markers[i] = newMarker(h)
	}
	h.table.Store(&spanTable{spans: make([]atomic.Pointer[span], 64)})
	h.gcPercent = o.GCPercent
	h.setGoal(0, 0, 0, 0)
	h.nextIdx = 1
	h.wake = make(chan struct{}, h.nsweep)
	h.wg.Add(h.nsweep + 1)
	for range h.nsweep {
		go h.bgSweep()
	}
	go h.bgScavenge()
	return h, nil
}

// Close stops the background goroutines and returns all memory, objects and
// bitmaps, to the operating system. Every Ref becomes invalid: Heap and
// Mutator methods return ErrClosed afterwards. Close must not run
// concurrently with any other use of the heap or its Mutators. A second
// Close returns ErrClosed.
func (h *Heap) Close() error {
	if h == nil || h.arena == nil {
		return fmt.Errorf("%w: Close of a Heap not made by New", ErrClosed)
	}
	if !h.world.close(func(m *Mutator) {
		clear(m.spans)
		m.state = mutatorClosed
		m.expire()
	}) {
		return fmt.Errorf("%w: Close", ErrClosed)
	}
	h.closed.Store(true)
	close(h.quit)
	h.work.fail(errClosed) // mark goroutines waiting for work leave
	h.wg.Wait()
	h.mu.Lock()
	regions := h.pages.unmapAll()
	h.retired = nil
	h.mu.Unlock()
	var errs []error
	for _, r := range regions {
		if err := r.Unmap(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := h.arena.Close(); err != nil {
		errs = append(errs, err)
	}
	dropHeapTag(h.tag)
	if len(errs) > 0 {
		return fmt.Errorf("sweep: Close: %v", errs)
	}
	return nil
}

// SizeClass returns the class of an object of size bytes (0 for a large
// object, which gets a span of its own) and its slot size, or an error
// wrapping ErrSize for size < 1.
func (h *Heap) SizeClass(size int) (class, slotSize int, err error) {
	if h == nil || h.classes == nil {
		return 0, 0, errClosed
	}
	if size < 1 || size > maxObjectBytes {
		return 0, 0, fmt.Errorf("%w: %d bytes", ErrSize, size)
	}
	c := h.classes.classOf(size)
	if c == 0 {
		return 0, (size + PageSize - 1) / PageSize * PageSize, nil
	}
	return c, h.classes.classes[c].Size, nil
}

// usable returns nil for a Heap made by New and not closed, and an
// error wrapping ErrClosed for a closed, nil or zero Heap.
func (h *Heap) usable() error {
	if h == nil || h.arena == nil || h.closed.Load() {
		return errClosed
	}
	return nil
}
