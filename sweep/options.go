package sweep

import (
	"fmt"
	"runtime"
	"time"

	"github.com/gcbits/gcbits"
)

// Tracer reports the references held by obj: it calls visit once for each
// Ref field (Nil fields may be skipped or passed; both are fine). The heap
// calls it once for every object it scans (an object allocated during a
// mark is marked without a scan), from several goroutines at once, while
// Mutators run: a word a Mutator stores meanwhile reads as its old or its
// new value. It must not call methods of the Heap or of a Mutator; it may
// only read obj. A panic in it fails the collection: the caller that
// started or ended the mark (Alloc, New, GC) gets the *TraceError.
type Tracer func(obj Object, visit func(Ref))

// DefaultMinHeapBytes is Options.MinHeapBytes when it is 0: the Go
// runtime's least heap goal, 4 MiB.
const DefaultMinHeapBytes = 4 << 20

// Options configure a Heap. Every zero field gives a default.
type Options struct {
	// Trace enumerates the references of the objects Mutator.Alloc makes,
	// during marking. Without it those objects are pointer-free. Objects
	// made by Mutator.New are traced by their Type instead, which costs
	// less during a mark: a Store into an object Trace traces makes the
	// write barrier read every word of it, unless the Mutator's barrier
	// shaded that object last, so stores that alternate between large
	// traced objects cost in proportion to their size.
	Trace Tracer
	// Roots, if set, reports global roots at the start of every
	// collection, in addition to the root stacks of the Mutators. It runs
	// while the world is stopped, on the goroutine that starts the
	// collection. A Ref it reports keeps its object for this collection
	// even if it is dropped meanwhile.
	Roots func(visit func(Ref))
	// Classes is the table of small size classes, sizes increasing;
	// nil means GoClasses(). Larger objects get a span of their own.
	Classes []Class
	// GCPercent is GOGC: the heap goal, where a collection's mark should
	// end, is what the last one found live (its marked bytes and its
	// roots, 8 bytes each) grown by GCPercent percent, and not below
	// MinHeapBytes scaled by GCPercent/100; a collection starts early
	// enough to end its mark there. 0 means 100 (call Heap.SetGCPercent(0) for GOGC=0);
	// negative turns automatic collection off, but for MemoryLimit
	// (Heap.GC and Mutator.GC still collect).
	GCPercent int
	// MinHeapBytes is the least heap goal at GCPercent 100, as the
	// runtime's 4 MiB; 0 means DefaultMinHeapBytes.
	MinHeapBytes int64
	// MarkWorkers is the number of goroutines that mark a collection
	// (the caller of GC is one of them); 0 means GOMAXPROCS. Mutators
	// that wait for a mark to end help it too.
	MarkWorkers int
	// Sweepers is the number of background sweeper goroutines; 0 means
	// GOMAXPROCS/2 (at least 1), negative means none: spans are then swept
	// by allocating Mutators and by the next collection.
	Sweepers int
	// RegionBytes is the size of the regions the heap maps for spans: 0
	// means 4 MiB; otherwise a multiple of PageSize from 64 KiB to 1 GiB.
	RegionBytes int
	// MaxBytes caps the heap memory mapped for objects (bitmaps are
	// counted by the arena, see Arena.MaxBytes); 0 means no cap. An
	// allocation that would pass it fails with ErrLimit.
	MaxBytes int64
	// MemoryLimit is a soft limit on the memory the heap holds from the
	// operating system, objects and bitmaps, as GOMEMLIMIT is for Go's
	// heap: collections start early enough to stay under it, and free
	// memory is returned to the OS at once while the heap is above it.
	// The heap passes it when its live objects need more. 0 means none.
	MemoryLimit int64
	// ScavengeDelay is how long memory stays unused (free pages, and
	// empty spans kept for their size class) before the heap returns it
	// to the operating system in the background: 0 means 1 s; negative
	// means never (Heap.FreeOSMemory and MemoryLimit still do).
	ScavengeDelay time.Duration
	// Unchecked turns off sequence numbers: a stale Ref is then not
	// detected and reaches whatever object occupies its slot. Bad heap,
	// span or slot numbers and out-of-range fields are still reported. It
	// saves 2 bytes per slot and the sweep's update of the numbers of the
	// slots it frees.
	Unchecked bool
	// Arena configures the arena of mark bitmaps. Retain must be 0 (the
	// default, 2) or at least 2: see the lifetime argument in the package
	// documentation.
	Arena gcbits.Options
	// Timing measures the time spent sweeping and allocating bitmaps, per
	// span, for Stats. It costs three reads of the monotonic clock per span
	// swept and two per span made.
	Timing bool
}

// resolve checks o and fills in its defaults. anyRetain lets a test build
// a heap with Retain 1, to check that the lifetime checks catch it.
func (o Options) resolve(anyRetain bool) (Options, error) {
	if o.Arena.Retain == 0 {
		o.Arena.Retain = gcbits.DefaultRetain
	}
	if o.Arena.Retain < 2 && !anyRetain {
		return o, fmt.Errorf("%w: Arena.Retain %d: allocation bits live for two epochs after their own, so Retain must be at least 2", ErrOption, o.Arena.Retain)
	}
	switch rb := o.RegionBytes; {
	case rb == 0:
		o.RegionBytes = 4 << 20
	case rb%PageSize != 0 || rb < 64<<10 || rb > 1<<30:
		return o, fmt.Errorf("%w: RegionBytes %d is not a multiple of %d from 64 KiB to 1 GiB", ErrOption, rb, PageSize)
	}
	if o.MaxBytes < 0 || o.MemoryLimit < 0 {
		return o, fmt.Errorf("%w: MaxBytes %d or MemoryLimit %d is negative", ErrOption, o.MaxBytes, o.MemoryLimit)
	}
	if o.ScavengeDelay == 0 {
		o.ScavengeDelay = time.Second
	}
	if o.MinHeapBytes < 0 || o.MarkWorkers < 0 {
		return o, fmt.Errorf("%w: MinHeapBytes %d or MarkWorkers %d is negative", ErrOption, o.MinHeapBytes, o.MarkWorkers)
	}
	if o.GCPercent == 0 {
		o.GCPercent = 100
	}
	if o.MinHeapBytes == 0 {
		o.MinHeapBytes = DefaultMinHeapBytes
	}
	if o.MarkWorkers == 0 {
		o.MarkWorkers = runtime.GOMAXPROCS(0)
	}
	switch {
	case o.Sweepers == 0:
		o.Sweepers = max(1, runtime.GOMAXPROCS(0)/2)
	case o.Sweepers < 0:
		o.Sweepers = 0
	}
	return o, nil
}
