// Package gcbits hands out many short-lived, zeroed bitmaps whose memory
// is recycled by epochs, as the Go runtime does for the mark bits of its
// spans, as a library for mark-sweep memory managers, parallel graph
// passes and anything else that needs fresh bitmaps every cycle.
//
// # Model
//
// An [Arena] serves bitmaps ([Bits], a []uint64) from blocks of
// [Options.BlockSize] bytes mapped outside the Go heap, so the garbage
// collector never scans or counts them. Time is divided into epochs; the
// caller ends one with [Arena.Advance], typically once per collection
// cycle, after sweeping.
//
// Lifetime rule: a bitmap from an Alloc that began while Epoch() == e is
// neither reused nor written by the arena before Epoch() reaches
// e + Retain + 1. With the default [Options.Retain] of 2 this is the
// runtime's next → current → previous → free rotation: bits allocated
// while sweeping in cycle e are marked in e+1 and read as allocation bits
// until the sweep of e+2 replaces them.
//
// A program that advances while other goroutines allocate learns each
// bitmap's lifetime from [Arena.AllocEpoch], which returns the epoch the
// bitmap belongs to, and [Arena.Live], which reports whether that epoch's
// bitmaps are still valid; it keeps Advance out, by its own
// synchronization, while it uses a bitmap it found live.
//
// # Concurrency
//
// [Arena.Alloc] is safe from any number of goroutines, and Advance may run
// concurrently with it; no stop-the-world is needed. This is achieved so:
//
//   - The fast path takes no lock: one atomic load of a head block and one
//     atomic add of its free offset. Heads are spread over shards, each on
//     cache lines of its own, so that goroutines alive together rarely
//     share one.
//   - A block stops taking allocations when it is sealed: under the lock,
//     its free offset is swapped to a huge value, so every later add
//     fails. Advance seals every head before it publishes the new epoch, so
//     an add that succeeds on a block of epoch g happened while the epoch
//     was g, and the Alloc that made it began in g or earlier.
//   - A block gets a new header, with a new free offset, each time it is
//     reused, so a goroutine still holding an old header cannot allocate
//     from the block's new life.
//   - The memory of epoch g is recycled by the Advance to g+Retain+1.
//
// The [design notes] spell out the protocol, and a [spin model] checks it,
// together with the mutations that would break it.
//
// Zeroing never happens under the lock: a block on the free list records
// how many leading bytes its previous life handed out (none for fresh
// memory, which is never cleared), and the goroutine that takes it off the
// list clears those bytes while the block is still private, before any
// bitmap of it is handed out. Allocators never write arena memory, so one
// preempted across several epochs cannot clear a newer owner's bitmap.
// System calls (mmap, munmap, mprotect) are made with the lock released
// too, except by an Alloc that races [Arena.Close], which the contract
// forbids. Advance does O(1) work under the lock in the number of blocks
// it recycles (the runtime walks a list), with [Options.Guard] or without.
//
// # Caches
//
// A [Cache] is a per-worker front end with a fast path of a bounds check,
// an epoch check and a bump; see Cache for when to use one.
//
// # Errors
//
// Bad input never panics: errors wrap [ErrSize], [ErrClosed], [ErrOption]
// or [ErrLimit], and failures of the operating system wrap their cause.
// (Methods called on a nil *Arena or *Cache dereference it, as nil
// pointers do.) The [bad-input table] lists every case and the test that
// shows it.
//
// # When not to use it
//
// Bitmaps that must live for an unknown time belong on the Go heap: an
// arena bitmap used after its lifetime silently aliases a newer one
// ([Options.Guard] turns that into a fault while debugging). For a handful
// of bitmaps, make([]uint64, n) is simpler.
//
// [design notes]: https://github.com/gcbits/gcbits/blob/main/doc/DESIGN.md
// [spin model]: https://github.com/gcbits/gcbits/blob/main/model/MODEL.md
// [bad-input table]: https://github.com/gcbits/gcbits/blob/main/doc/BADINPUT.md
package gcbits
