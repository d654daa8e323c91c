// Package sweep is a mark-sweep heap built on gcbits, the client that the
// arena exists for: spans of fixed-size slots, each with an allocation
// bitmap and a mark bitmap from a gcbits.Arena, swept into one another
// every collection, as the Go runtime's heap does with its spans.
//
// # Objects
//
// A Heap holds objects in memory mapped outside the Go heap (so the Go
// collector neither scans nor counts it), grouped by size class (Go's
// table by default) into spans carved from 8 KiB pages; larger objects
// get pages of their own. Objects are named by Ref handles, not pointers:
// a Ref packs the heap's tag, a span index, a slot and a sequence number,
// and every access checks it, so a bad or stale Ref, or one of another
// heap, gives an error wrapping ErrBadRef rather than reaching another
// object.
//
// The heap finds an object's Refs by its Type (Heap.NewType): its size and
// the words that hold Refs, a pointer mask as the runtime keeps per type.
// Objects of a Type without Ref words are never traced. Objects made by
// Mutator.Alloc have no Type: Options.Trace, a function, reports their
// Refs, or they are pointer-free when it is nil.
//
// # Mutators
//
// Each goroutine that uses the heap holds a Mutator: it allocates (New,
// Alloc), loads and stores (Load, Store, LoadWord, StoreWord, ReadAt,
// WriteAt, and View for several accesses to one object) and keeps a root
// stack (Push, Pop, PopTo, SetRoot): the objects reachable from the root
// stacks, from Options.Roots and from those objects survive a collection.
// A Ref held only in a Go variable is safe until the Mutator's next
// safepoint (an allocation, GC, Safepoint): link a new object into a
// reachable one, or push it, before the next allocation. A Mutator that
// will block or wait must Release the heap and Acquire it afterwards.
//
// A Mutator caches a span per span class and finds free slots with a
// 64-bit cache of the complement of the allocation bitmap and
// count-trailing-zeros. Spans that no Mutator caches live on central sets
// per span class: partial or full, swept or not.
//
// # Collection
//
// A collection starts when the heap nears its goal, the growth GOGC
// allows (Options.GCPercent, Heap.SetGCPercent), or earlier to stay under
// Options.MemoryLimit, and marks concurrently with the Mutators, as Go's
// collector does. It stops the world briefly (every running Mutator
// parks at its next safepoint) to finish the previous sweep, mark the
// roots and turn the write barrier on; mark goroutines then trace the
// heap while the Mutators run, span by span, their stores shading the
// Refs they overwrite (a deletion barrier) and their new objects black;
// once the mark is drained, the world stops again to flush the barriers,
// turn them off and start a sweep phase. Mutators that reach the goal
// during a mark help it. Sweeping runs concurrently with allocation:
// background sweepers take unswept spans, and a Mutator that needs a span
// sweeps one itself (lazy sweeping). When the last span of the phase is
// swept, the arena advances to its next epoch. A Tracer or Roots function
// that panics fails the collection with a *TraceError and leaves the heap
// as it was. Any other panic while the world is stopped, which only a bug
// in sweep can raise, reaches the goroutine that ran the collection, and
// the world stays stopped: the Heap is unusable, calls that wait for the
// world to start block for good, and so may Close.
//
// # Memory
//
// Pages come from regions mapped from the operating system, carved first
// fit at the lowest address, so that free pages coalesce. A background
// scavenger returns memory unused for Options.ScavengeDelay to the OS;
// Heap.FreeOSMemory returns it all at once. Options.MaxBytes is a hard cap
// on mapped memory (ErrLimit), Options.MemoryLimit a soft one.
//
// # Sweep generations
//
// The heap's sweep generation sg grows by 2 at each sweep phase. A span
// with generation sg-2 needs sweeping, sg-1 is being swept, sg is swept;
// sweepers claim a span by compare-and-swap from sg-2 to sg-1, so two
// sweepers never sweep one span, and a Mutator only ever allocates from a
// span at sg. The central sets swap roles with sg, so the flip makes every
// swept span unswept in O(1).
//
// # Bitmap lifetimes
//
// Sweeping a span makes its mark bitmap the allocation bitmap and takes a
// fresh mark bitmap from the arena. The allocation bitmap is therefore a
// bitmap allocated one cycle earlier, and it is read until the span's
// next sweep. With the arena's default Retain of 2 and the Advance at the
// end of every sweep phase, every bitmap a span holds is within its
// lifetime. Sweeps and marks check it, and
// Stats.Protocol.LifetimeViolations counts failures (the tests require
// none). New rejects Retain 1.
//
// # Who may access objects
//
// A Mutator's accesses check a Ref and then reach its slot. A sweep
// running concurrently may free the slot or its whole span in between;
// the span's memory is therefore not reused or unmapped by the sweep but
// queued and released by the next collection while it holds the world
// stopped, which it can only do once every running Mutator has parked: a
// View lasts until its Mutator parks. (The scavenger may return the
// queued pages to the OS meanwhile; they still read, as zeros.) Every
// store goes through a running Mutator, and so through the write barrier
// that a concurrent mark relies on.
//
// A stale Ref is detected by the sequence number of its slot, which the
// sweep that frees the slot advances. A Ref resolved just before a
// concurrent sweep frees its slot and reallocated within the same sweep
// phase may still reach the new object, and sequence numbers wrap after
// 2^16 frees of a slot: detection of stale Refs is best-effort, not a
// guarantee. Options.Unchecked turns it off.
//
// # Errors
//
// Bad input never panics: errors wrap ErrBadRef, ErrType, ErrSize,
// ErrOption, ErrClosed, ErrReleased, ErrLimit or ErrTrace.
package sweep
