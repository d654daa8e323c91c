package sweep

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/gcbits/gcbits"
	"github.com/gcbits/gcbits/internal/mem"
)

// Tracer reports the references held by obj: it calls visit once for each
// Ref field (Nil fields may be skipped or passed; both are fine). The heap
// calls it once for every object it marks, from several goroutines at
// once, while the world is stopped. It must not call methods of the Heap
// or of a Mutator; it may only read obj.
type Tracer func(obj Object, visit func(Ref))

// Options configure a Heap. Trace is required; every other zero field
// gives a default.
type Options struct {
	// Trace enumerates the references of an object during marking.
	Trace Tracer
	// Roots, if set, reports global roots at the start of every
	// collection, in addition to the root stacks of the Mutators. It runs
	// while the world is stopped, on the collecting goroutine.
	Roots func(visit func(Ref))
	// Classes is the table of small size classes, sizes increasing;
	// nil means GoClasses(). Larger objects get a span of their own.
	Classes []Class
	// GCPercent sets the collection trigger as GOGC does: a collection
	// starts when the heap reaches the bytes marked by the last one plus
	// GCPercent percent. 0 means 100; negative turns automatic collection
	// off (Heap.GC and Mutator.GC still collect).
	GCPercent int
	// MinHeapBytes is the heap size below which no automatic collection
	// starts; 0 means 4 MiB.
	MinHeapBytes int64
	// MarkWorkers is the number of goroutines that mark; 0 means
	// GOMAXPROCS.
	MarkWorkers int
	// Sweepers is the number of background sweeper goroutines; 0 means
	// GOMAXPROCS/2 (at least 1), negative means none: spans are then swept
	// by allocating Mutators and by the next collection.
	Sweepers int
	// RegionBytes is the size of the regions the heap maps for spans: 0
	// means 4 MiB; otherwise a multiple of PageSize from 64 KiB to 1 GiB.
	RegionBytes int
	// MaxBytes caps the heap memory mapped for objects (bitmaps are
	// counted by the arena, see Arena.MaxBytes); 0 means no cap.
	MaxBytes int64
	// Unchecked turns off sequence numbers: a stale Ref is then not
	// detected and reaches whatever object occupies its slot. Bad span or
	// slot numbers and out-of-range fields are still reported. It saves 4
	// bytes per slot and a store per allocation.
	Unchecked bool
	// Arena configures the arena of mark bitmaps. Retain must be 0 (the
	// default, 2) or at least 2: see the lifetime argument in the package
	// documentation.
	Arena gcbits.Options
	// Timing measures the time spent sweeping and allocating bitmaps, per
	// span, for Stats. It costs two clock reads per span swept.
	Timing bool
}

// Heap is a mark-sweep heap of fixed-size slots in memory outside the Go
// heap, with mark bitmaps from a gcbits.Arena. See the package
// documentation for the model, the protocols and the lifetime argument.
type Heap struct {
	// Set by New; read-only afterwards.
	classes   *classTable
	arena     *gcbits.Arena
	retain    uint64 // the arena's Retain
	checked   bool   // !Options.Unchecked
	trace     Tracer
	rootsFn   func(visit func(Ref))
	gcPercent int
	minHeap   int64
	nmark     int       // mark workers
	nsweep    int       // background sweepers
	timing    bool      // Options.Timing
	central   []central // per class, index 0 for large spans; each set has its own lock

	// table maps span indexes to spans. Read atomically; the table and its
	// entries are replaced or stored only under mu. Entry 0 is never used.
	table atomic.Pointer[spanTable]

	// sweepgen is the heap's sweep generation, 2 more at every sweep
	// phase. Read atomically; written with sgLock held for writing, while
	// the world is stopped.
	sweepgen atomic.Uint32
	// sgLock keeps sweepers that are not Mutators (background sweepers,
	// collectors finishing a sweep, WaitSweep) from using a sweepgen that
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

	// liveBytes estimates the heap in use for pacing: the bytes marked by
	// the last collection plus the free slots of the spans Mutators took
	// since (counted as used when taken) and large objects. Atomic.
	liveBytes atomic.Int64
	// goal is the liveBytes at which the next collection starts. Atomic;
	// stored by the collector while the world is stopped.
	goal atomic.Int64

	// pressure is set while a full collection (after ErrLimit) sweeps:
	// place then frees every empty span at once. Atomic.
	pressure atomic.Bool

	mu      sync.Mutex    // guards the fields below
	pages   pageHeap      // under mu
	freeIdx []freeSpanIdx // retired span indexes; under mu
	nextIdx uint32        // indexes below it have been handed out (from 1); under mu
	inUse   int           // spans in the table; under mu
	// retired holds the memory of spans freed by sweeps: a Mutator may
	// have resolved a Ref into such a span just before it was freed and
	// still be about to access it, so the pages are neither reused nor
	// unmapped until the next collection has stopped the world
	// (releaseRetired). Under mu.
	retired []retiredSpan

	// The world: Mutators run until a collection stops them at a
	// safepoint. All fields under wmu, except stopReq.
	wmu      sync.Mutex
	wcond    sync.Cond
	mutators map[*Mutator]struct{} // every open Mutator; under wmu
	running  int                   // Mutators not released; under wmu
	parked   int                   // running Mutators parked at a safepoint; under wmu
	stopping bool                  // a collection holds or is stopping the world; under wmu
	worldGen uint64                // incremented when a collection restarts the world; under wmu
	wclosed  bool                  // Close has begun; under wmu
	// stopReq is 1 while stopping is true: Alloc loads it to decide
	// whether to park. Stored under wmu.
	stopReq atomic.Uint32

	closed atomic.Bool    // set by Close; read atomically by every entry point
	wake   chan struct{}  // background sweepers wait on it; buffered, one token per sweeper
	quit   chan struct{}  // closed by Close
	wg     sync.WaitGroup // background sweepers

	st counters // statistics; atomic

	// onSweep, if set, is called by sweepSpan before each sweep; set by
	// tests before any use, read-only afterwards.
	onSweep func(s *Span, sg uint32)
	// onFlip, if set, is called at each flip with the new sweepgen and
	// the number of spans to sweep; set by tests before any use.
	onFlip func(sg uint32, n int)
}

// spanTable is an immutable-length array of span slots.
type spanTable struct {
	spans []atomic.Pointer[Span]
}

// freeSpanIdx is a retired span index with the last sequence number its
// span handed out, so that its next span goes on counting from there and
// Refs to the old span stay stale.
type freeSpanIdx struct {
	idx uint32
	seq uint32
}

// retiredSpan is the memory of a freed span awaiting release: its pages
// and, for a dedicated region, the region.
type retiredSpan struct {
	base   unsafe.Pointer
	npages int
	region *regionInfo
}

// counters are the heap's statistics, all updated atomically. peakSlots
// and peakBytes are raised by a load and then a store, not a
// compare-and-swap: that is correct only because one collector at a time
// updates them (countAllocated, with the world stopped).
type counters struct {
	allocs, spansSwept, slotsFreed, badRefs, bitsFallbacks      atomic.Uint64
	lifetimeViolations, unsweptTaken, doubleCached, acquireLost atomic.Uint64
	markNs, pauseNs, sweepWallNs, sweepNs, bitsNs               atomic.Int64
	liveSlots, liveBytes, peakSlots, peakBytes                  atomic.Int64
	sweepStart                                                  atomic.Int64 // unix nanos of the current sweep phase's start
}

// New returns a Heap configured by opts and starts its background
// sweepers; Close stops them. Options outside their ranges give an error
// wrapping ErrOption.
func New(opts Options) (*Heap, error) { return newHeap(opts, false) }

// newHeap is New; anyRetain lets a test build a heap with Retain 1 to
// check that the lifetime checks catch it.
func newHeap(opts Options, anyRetain bool) (*Heap, error) {
	if opts.Trace == nil {
		return nil, fmt.Errorf("%w: Trace is required", ErrOption)
	}
	ct, err := newClassTable(opts.Classes)
	if err != nil {
		return nil, err
	}
	retain := opts.Arena.Retain
	if retain == 0 {
		retain = gcbits.DefaultRetain
	}
	if retain < 2 && !anyRetain {
		return nil, fmt.Errorf("%w: Arena.Retain %d: allocation bits live for two epochs after their own, so Retain must be at least 2", ErrOption, retain)
	}
	rb := opts.RegionBytes
	switch {
	case rb == 0:
		rb = 4 << 20
	case rb%PageSize != 0 || rb < 64<<10 || rb > 1<<30:
		return nil, fmt.Errorf("%w: RegionBytes %d is not a multiple of %d from 64 KiB to 1 GiB", ErrOption, rb, PageSize)
	}
	if opts.MaxBytes < 0 {
		return nil, fmt.Errorf("%w: MaxBytes %d is negative", ErrOption, opts.MaxBytes)
	}
	if opts.MinHeapBytes < 0 || opts.MarkWorkers < 0 {
		return nil, fmt.Errorf("%w: MinHeapBytes %d or MarkWorkers %d is negative", ErrOption, opts.MinHeapBytes, opts.MarkWorkers)
	}
	arena, err := gcbits.New(opts.Arena)
	if err != nil {
		return nil, err
	}
	h := &Heap{
		classes:   ct,
		arena:     arena,
		retain:    uint64(retain),
		checked:   !opts.Unchecked,
		trace:     opts.Trace,
		rootsFn:   opts.Roots,
		gcPercent: opts.GCPercent,
		minHeap:   opts.MinHeapBytes,
		nmark:     opts.MarkWorkers,
		nsweep:    opts.Sweepers,
		timing:    opts.Timing,
		central:   make([]central, len(ct.classes)),
		mutators:  make(map[*Mutator]struct{}),
		quit:      make(chan struct{}),
	}
	if h.gcPercent == 0 {
		h.gcPercent = 100
	}
	if h.minHeap == 0 {
		h.minHeap = 4 << 20
	}
	if h.nmark == 0 {
		h.nmark = runtime.GOMAXPROCS(0)
	}
	if h.nsweep == 0 {
		h.nsweep = max(1, runtime.GOMAXPROCS(0)/2)
	}
	h.nsweep = max(h.nsweep, 0)
	h.pages = pageHeap{
		regionBytes: rb,
		largeBytes:  rb / 4,
		maxBytes:    opts.MaxBytes,
		free:        make(map[int][]pageRun),
		mapFn:       mem.Map,
	}
	h.scond.L = &h.smu
	h.wcond.L = &h.wmu
	h.table.Store(&spanTable{spans: make([]atomic.Pointer[Span], 64)})
	h.goal.Store(h.minHeap)
	h.nextIdx = 1
	h.wake = make(chan struct{}, h.nsweep)
	h.wg.Add(h.nsweep)
	for i := range h.nsweep {
		go h.bgSweep(i)
	}
	return h, nil
}

// Close stops the background sweepers and returns all memory, objects and
// bitmaps, to the operating system. Every Ref becomes invalid: Heap and
// Mutator methods return ErrClosed afterwards. Close must not run
// concurrently with any other use of the heap or its Mutators. A second
// Close returns ErrClosed.
func (h *Heap) Close() error {
	if h == nil || h.arena == nil {
		return fmt.Errorf("%w: Close of a Heap not made by New", ErrClosed)
	}
	h.wmu.Lock()
	if h.wclosed {
		h.wmu.Unlock()
		return fmt.Errorf("%w: Close", ErrClosed)
	}
	h.wclosed = true
	for m := range h.mutators {
		clear(m.spans)
	}
	h.wmu.Unlock()
	h.closed.Store(true)
	close(h.quit)
	h.wg.Wait()
	h.mu.Lock()
	regions := h.pages.regions
	h.pages.regions, h.pages.free, h.pages.mapped = nil, nil, 0
	h.mu.Unlock()
	var errs []error
	for _, ri := range regions {
		if err := ri.region.Unmap(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := h.arena.Close(); err != nil {
		errs = append(errs, err)
	}
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
		return 0, 0, fmt.Errorf("%w: heap", ErrClosed)
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
		return fmt.Errorf("%w: heap", ErrClosed)
	}
	return nil
}

// resolve returns the span of r and checks that r names its slot's
// current object (in checked mode) or at least an existing slot.
func (h *Heap) resolve(r Ref) (*Span, error) {
	if err := h.usable(); err != nil {
		return nil, err
	}
	if r == Nil {
		return nil, badRef(r, "nil")
	}
	t := h.table.Load()
	i := r.spanIdx()
	if int(i) >= len(t.spans) {
		return nil, badRef(r, "no such span")
	}
	s := t.spans[i].Load()
	if s == nil {
		return nil, badRef(r, "span freed")
	}
	if !s.live(r) {
		return nil, badRef(r, "no live object in slot")
	}
	return s, nil
}

// Valid returns nil if r names a live object, otherwise an error wrapping
// ErrBadRef (or ErrClosed). In unchecked mode only the span and slot
// numbers are checked.
func (h *Heap) Valid(r Ref) error {
	_, err := h.resolve(r)
	return err
}

// Size returns the size of r's slot in bytes (at least the size asked of
// Alloc).
func (h *Heap) Size(r Ref) (int, error) {
	s, err := h.resolve(r)
	if err != nil {
		return 0, err
	}
	return int(s.elemSize), nil
}

// word returns the address of word i of r.
func (h *Heap) word(r Ref, i int) (*uint64, error) {
	s, err := h.resolve(r)
	if err != nil {
		return nil, err
	}
	if uint(i) >= uint(s.elemSize/8) {
		return nil, badRef(r, fmt.Sprintf("word %d outside a %d-byte object", i, s.elemSize))
	}
	return (*uint64)(unsafe.Add(s.addr(r.slot()), uintptr(i)*8)), nil
}

// Word returns word i (bytes 8i to 8i+7) of the object r.
func (h *Heap) Word(r Ref, i int) (uint64, error) {
	p, err := h.word(r, i)
	if err != nil {
		return 0, err
	}
	return *p, nil
}

// SetWord stores v into word i of the object r. Call it only from a
// goroutine holding a running Mutator: there is no write barrier.
func (h *Heap) SetWord(r Ref, i int, v uint64) error {
	p, err := h.word(r, i)
	if err != nil {
		return err
	}
	*p = v
	return nil
}

// Field returns word i of the object r as a Ref.
func (h *Heap) Field(r Ref, i int) (Ref, error) {
	v, err := h.Word(r, i)
	return Ref(v), err
}

// SetField stores v into word i of the object r. Call it only from a
// goroutine holding a running Mutator: there is no write barrier, so a
// collection must not run while it stores. In checked mode v must
// be Nil or a live object, so that a stale Ref is caught where it is
// stored rather than where it is used.
func (h *Heap) SetField(r Ref, i int, v Ref) error {
	if v != Nil && h.checked {
		if _, err := h.resolve(v); err != nil {
			return fmt.Errorf("storing %v into %v: %w", v, r, err)
		}
	}
	return h.SetWord(r, i, uint64(v))
}

// bytes returns the bytes [off, off+n) of r's slot.
func (h *Heap) bytes(r Ref, off, n int) ([]byte, error) {
	s, err := h.resolve(r)
	if err != nil {
		return nil, err
	}
	if off < 0 || n < 0 || uint64(off)+uint64(n) > uint64(s.elemSize) {
		return nil, badRef(r, fmt.Sprintf("bytes [%d,%d+%d) outside a %d-byte object", off, off, n, s.elemSize))
	}
	return unsafe.Slice((*byte)(unsafe.Add(s.addr(r.slot()), off)), n), nil
}

// ReadAt copies len(p) bytes of the object r from offset off into p.
func (h *Heap) ReadAt(r Ref, p []byte, off int) error {
	b, err := h.bytes(r, off, len(p))
	if err != nil {
		return err
	}
	copy(p, b)
	return nil
}

// WriteAt copies p into the object r at offset off. Call it only from a
// goroutine holding a running Mutator.
func (h *Heap) WriteAt(r Ref, p []byte, off int) error {
	b, err := h.bytes(r, off, len(p))
	if err != nil {
		return err
	}
	copy(b, p)
	return nil
}

// Object is a view of one object given to a Tracer. It is valid only
// during the Tracer call.
type Object struct {
	ref  Ref
	base unsafe.Pointer
	size uintptr
}

// Ref returns the object's Ref.
func (o Object) Ref() Ref { return o.ref }

// Size returns the size of the object's slot in bytes.
func (o Object) Size() int { return int(o.size) }

// Word returns word i of the object, or 0 when i is out of range.
func (o Object) Word(i int) uint64 {
	if uint(i) >= uint(o.size/8) {
		return 0
	}
	return *(*uint64)(unsafe.Add(o.base, uintptr(i)*8))
}

// Field returns word i of the object as a Ref, or Nil when i is out of
// range.
func (o Object) Field(i int) Ref { return Ref(o.Word(i)) }

// newSpan makes a span of class c (0: a large object of npages pages),
// with bitmaps from src, swept in generation sg, and publishes it in the
// table. Its slots are all free.
func (h *Heap) newSpan(c, npages int, src BitSource, sg uint32) (*Span, error) {
	var size uintptr
	var nelems int
	if c == 0 {
		size, nelems = uintptr(npages)*PageSize, 1
	} else {
		npages = h.classes.classes[c].Pages
		size, nelems = uintptr(h.classes.classes[c].Size), h.classes.nelems(c)
	}
	h.mu.Lock()
	if h.closed.Load() {
		h.mu.Unlock()
		return nil, fmt.Errorf("%w: heap", ErrClosed)
	}
	base, clean, ri, err := h.pages.alloc(npages)
	if err != nil {
		h.mu.Unlock()
		return nil, err
	}
	var fi freeSpanIdx
	if n := len(h.freeIdx); n > 0 {
		fi = h.freeIdx[n-1]
		h.freeIdx = h.freeIdx[:n-1]
	} else {
		t := h.table.Load()
		fi.idx = h.nextIdx
		if int(fi.idx) >= maxSpans {
			h.pages.release(base, npages, ri)
			h.mu.Unlock()
			if ri != nil {
				ri.region.Unmap()
			}
			return nil, fmt.Errorf("%w: %d spans", ErrLimit, maxSpans-1)
		}
		if int(fi.idx) >= len(t.spans) {
			nt := &spanTable{spans: make([]atomic.Pointer[Span], 2*len(t.spans))}
			for i := range t.spans {
				nt.spans[i].Store(t.spans[i].Load())
			}
			h.table.Store(nt)
		}
		h.nextIdx++
	}
	h.inUse++
	h.mu.Unlock()

	s := &Span{
		idx:      fi.idx,
		class:    uint8(c),
		nelems:   nelems,
		elemSize: size,
		npages:   npages,
		base:     base,
		nextSeq:  fi.seq,
		needzero: !clean,
		region:   ri,
	}
	if h.checked {
		s.seqs = make([]uint32, nelems)
	}
	ab, ae := h.newBits(src, nelems)
	mb, me := h.newBits(src, nelems)
	s.reset(ab, ae, mb, me)
	s.SetSwept(sg)
	h.mu.Lock()
	h.table.Load().spans[fi.idx].Store(s)
	h.mu.Unlock()
	return s, nil
}

// fallbackEpoch marks a bitmap from the Go heap, whose lifetime is
// unbounded.
const fallbackEpoch = ^uint64(0) >> 1

// newBits returns a zeroed bitmap of n bits from src and the arena epoch
// at which its Alloc began. If the arena fails (a memory limit, a failed
// map), the bitmap comes from the Go heap instead, so that a sweep always
// completes; Stats counts these.
func (h *Heap) newBits(src BitSource, n int) (gcbits.Bits, uint64) {
	var t0 time.Time
	if h.timing {
		t0 = time.Now()
	}
	e := h.arena.Epoch()
	b, err := src.Alloc(n)
	if h.timing {
		h.st.bitsNs.Add(int64(time.Since(t0)))
	}
	if err != nil {
		h.st.bitsFallbacks.Add(1)
		return make(gcbits.Bits, (n+63)/64), fallbackEpoch
	}
	return b, e
}

// freeSpan retires s, which its caller holds and which has no allocated
// slot: it leaves the table at once, so that Refs to it fail to resolve,
// and its index goes to the free list with its sequence counter. Its
// memory is only queued on h.retired: a Mutator may be between resolving
// a stale Ref into s and accessing the slot, so the pages stay mapped and
// unused until releaseRetired runs with the world stopped.
func (h *Heap) freeSpan(s *Span) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed.Load() {
		return
	}
	h.table.Load().spans[s.idx].Store(nil)
	h.freeIdx = append(h.freeIdx, freeSpanIdx{idx: s.idx, seq: s.nextSeq})
	h.inUse--
	h.retired = append(h.retired, retiredSpan{base: s.base, npages: s.npages, region: s.region})
}

// releaseRetired gives the memory of the spans freed since the last call
// back to the page heap, unmapping dedicated regions. The world must be
// stopped: no running Mutator is then between resolving a Ref and
// accessing its object, and every Ref into a retired span has failed to
// resolve since the span was freed.
func (h *Heap) releaseRetired() {
	h.mu.Lock()
	if h.closed.Load() || len(h.retired) == 0 {
		h.mu.Unlock()
		return
	}
	var unmap []*regionInfo
	for i, r := range h.retired {
		if ri := h.pages.release(r.base, r.npages, r.region); ri != nil {
			unmap = append(unmap, ri)
		}
		h.retired[i] = retiredSpan{}
	}
	h.retired = h.retired[:0]
	h.mu.Unlock()
	for _, ri := range unmap {
		ri.region.Unmap()
	}
}

// Stats is a snapshot of a Heap's books. Durations and counts are totals
// since New.
type Stats struct {
	Cycles     uint64 // collections whose sweep phase has started
	Allocs     uint64 // objects allocated (Mutators report theirs at span refills and safepoints)
	LiveSlots  int64  // objects marked by the last collection
	LiveBytes  int64  // their slot bytes
	PeakSlots  int64  // the most allocated slots seen at the start of a collection
	PeakBytes  int64  // the most slot bytes allocated seen at the start of a collection
	Spans      int    // spans in use
	Mapped     int64  // bytes of object memory mapped
	FreePages  int    // pages of mapped memory in no span
	SpansSwept uint64 // span sweeps
	SlotsFreed uint64 // slots freed by sweeps

	// MarkTime is the time spent marking, from the world stopped to the
	// last object traced, and PauseTime the whole time the world was
	// stopped (marking, finishing the previous sweep, flushing caches).
	MarkTime, PauseTime time.Duration
	// SweepWall is the time from the start of each sweep phase to its
	// end, with Mutators running meanwhile.
	SweepWall time.Duration
	// SweepTime is the time spent sweeping spans, summed over the
	// goroutines that swept, and BitsTime the part of it and of span
	// creation spent allocating bitmaps. Both need Options.Timing.
	SweepTime, BitsTime time.Duration

	// BadRefs counts Refs that roots or tracers reported during marking
	// that named no allocated slot; they were skipped, so a stale Ref
	// never resurrects a freed slot.
	BadRefs uint64
	// BitsFallbacks counts bitmaps taken from the Go heap because the
	// arena failed.
	BitsFallbacks uint64
	// LifetimeViolations counts spans found holding a bitmap past its
	// arena lifetime when swept; the lifetime argument says it stays 0.
	LifetimeViolations uint64
	// UnsweptTaken counts spans a Mutator took without their being swept
	// in the current cycle; the sweep protocol says it stays 0.
	UnsweptTaken uint64
	// DoubleCached counts spans a Mutator took while another held them;
	// the protocol says it stays 0.
	DoubleCached uint64

	Arena gcbits.Stats // the bitmap arena's books
}

// Stats returns a snapshot of h's books.
func (h *Heap) Stats() Stats {
	if h == nil || h.arena == nil {
		return Stats{}
	}
	s := Stats{
		Cycles:             h.cycle.Load(),
		Allocs:             h.st.allocs.Load(),
		LiveSlots:          h.st.liveSlots.Load(),
		LiveBytes:          h.st.liveBytes.Load(),
		PeakSlots:          h.st.peakSlots.Load(),
		PeakBytes:          h.st.peakBytes.Load(),
		SpansSwept:         h.st.spansSwept.Load(),
		SlotsFreed:         h.st.slotsFreed.Load(),
		MarkTime:           time.Duration(h.st.markNs.Load()),
		PauseTime:          time.Duration(h.st.pauseNs.Load()),
		SweepWall:          time.Duration(h.st.sweepWallNs.Load()),
		SweepTime:          time.Duration(h.st.sweepNs.Load()),
		BitsTime:           time.Duration(h.st.bitsNs.Load()),
		BadRefs:            h.st.badRefs.Load(),
		BitsFallbacks:      h.st.bitsFallbacks.Load(),
		LifetimeViolations: h.st.lifetimeViolations.Load(),
		UnsweptTaken:       h.st.unsweptTaken.Load(),
		DoubleCached:       h.st.doubleCached.Load(),
		Arena:              h.arena.Stats(),
	}
	h.mu.Lock()
	s.Spans = h.inUse
	s.Mapped = h.pages.mapped
	s.FreePages = h.pages.freePages()
	h.mu.Unlock()
	return s
}
