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
// a Ref packs a span index, a slot and a sequence number, and every access
// (Word, Field, ReadAt …) checks it, so a bad or stale Ref gives an error
// wrapping ErrBadRef rather than reaching another object.
//
// # Allocation
//
// Each goroutine allocates through its own Mutator, which caches a span
// per class and finds free slots with a 64-bit cache of the complement of
// the allocation bitmap and count-trailing-zeros. Spans that no Mutator
// caches live on per-class central sets: partial or full, swept or not.
//
// # Collection
//
// A collection stops the world (every running Mutator parks at its next
// safepoint), finishes the previous sweep, marks from the Mutators' root
// stacks and Options.Roots through the user's Tracer with parallel
// workers sharing a work queue, and then starts a sweep phase and lets
// the world go on. Sweeping runs concurrently with allocation: background
// sweepers take unswept spans, and a Mutator that needs a span of a class
// sweeps one itself (lazy sweeping). When the last span of the phase is
// swept, the arena advances to its next epoch.
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
// none). New
// rejects Retain 1.
//
// # Who may access objects
//
// Heap methods that read objects (Word, Field, ReadAt, Size, Valid) check
// a Ref and then access its slot. A sweep running concurrently may free
// the slot or its whole span in between; the span's memory is therefore
// not reused or unmapped by the sweep but queued and released by the next
// collection while it holds the world stopped. A goroutine holding a
// running Mutator is stopped by that collection, so its accesses are
// safe. A goroutine without a running Mutator is not, and must not access
// the heap while a collection or its sweep may run.
//
// Writes (SetWord, SetField, WriteAt) must come from a goroutine holding a
// running Mutator: there is no write barrier, so a collection relies on
// every writer being stopped while it marks.
//
// A Ref carries its heap's tag, so a Ref used on another heap is
// reported. A stale Ref is detected by the sequence number of its slot,
// which the sweep that frees the slot advances. A Ref resolved just
// before a concurrent sweep frees its slot and reallocated within the
// same sweep phase may still reach the new object, and sequence numbers
// wrap after 2^16 frees of a slot: detection of stale Refs is
// best-effort, not a guarantee.
//
// # Errors
//
// Bad input never panics: errors wrap ErrBadRef, ErrSize, ErrOption,
// ErrClosed, ErrReleased or ErrLimit.
package sweep
