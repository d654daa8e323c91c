package sweep

import (
	"math/bits"
	"sync/atomic"
	"unsafe"

	"github.com/gcbits/gcbits"
)

// bitSource hands out zeroed bitmaps: a *gcbits.Cache of a Mutator or a
// background sweeper, or the arena.
type bitSource interface {
	Alloc(nbits int) (gcbits.Bits, error)
}

// span is a run of equal-sized slots with two bitmaps, as a span of the Go
// runtime's heap has: allocBits says which slots survived the last sweep,
// markBits collects the marks of the current cycle, and a sweep turns the
// marks into the next allocation bits and takes a fresh, zeroed mark
// bitmap from the arena.
//
// # Ownership
//
// A span has one holder at a time: the Mutator that allocates from it or
// the goroutine that sweeps it. Handing a span to another holder
// synchronizes (a spanSet's lock, or tryAcquire and setSwept). Marking
// sets bits of markBits atomically, from any number of mark workers and
// write barriers at once, while the holder allocates; it reads only what
// allocation leaves alone (markFrom, allocBits, pubFree, markEpoch). It
// never runs concurrently with a sweep, which replaces the mark bitmap: a
// mark phase ends before the sweep phase begins, and begins after it ends.
//
// # Sweep generations
//
// The sweep generation lets sweepers and allocators agree on which spans
// still need sweeping without a lock, with the heap's own generation sg
// (which the heap increments by 2 at the start of each sweep phase):
//
//   - sweepgen == sg-2: the span needs sweeping in this cycle;
//   - sweepgen == sg-1: a sweeper is sweeping it;
//   - sweepgen == sg: it is swept and may be allocated from.
//
// A sweeper claims a span with tryAcquire(sg), a compare-and-swap from
// sg-2 to sg-1, so two sweepers never sweep one span; it publishes the
// result with setSwept(sg). An allocator takes only spans at sg.
type span struct {
	// The fields that the mark and the allocator's fast path read come
	// first, up to needzero (194 bytes); those from sweepgen on are for
	// taking, sweeping and freeing spans. Each says how it is
	// synchronized: "read-only" fields are set when the span is made and
	// may be read by any goroutine; "holder" fields belong to the span's
	// holder.

	base     unsafe.Pointer // address of slot 0; read-only
	layout   *layout        // how its objects hold Refs; read-only
	elemSize uintptr        // bytes per slot; read-only
	nelems   int            // number of slots, 1..65535; read-only
	// freeindex: every slot below it is allocated; nextFree looks for free
	// slots at or above it. 0 after a sweep, nelems once the span is full.
	// Holder.
	freeindex int
	// allocCache holds the complement of allocBits for the slots from
	// freeindex up to the next multiple of 64, shifted so that bit 0 is
	// slot freeindex: a set bit is a free slot, and count-trailing-zeros
	// finds the next one. Bits past nelems may read as free; nextFree
	// checks. Holder.
	allocCache uint64
	// allocCount is the number of allocated slots: the survivors of the
	// last sweep plus the slots nextFree has handed out since. Holder.
	allocCount int
	// markFrom is freeindex when the current (or last) mark began: the
	// slots below it, and those of allocBits, were allocated then; the
	// others were free, and any of them allocated during the mark is
	// black (blacken marks them before the sweep). Written with the world
	// stopped at the start of a mark, before the span is published, or by
	// the holder in a sweep (sweepWith resets it); read-only while
	// marking.
	markFrom int
	// scans has a bit set for each object a marker has scanned in the
	// current mark: marks that are not in it are grey. Set by markers
	// with atomic ORs, which claim the objects they scan; cleared by the
	// sweep, which holds the span. Its length is fixed.
	scans []uint64
	// queued is set while the span is in a mark queue; set by
	// compare-and-swap by the marker that queues it, cleared by the one
	// that takes it to scan it.
	queued atomic.Bool
	// pubFree is freeindex as the holder last published it (at least
	// every 64 slots, and when it gives the span back): every slot below
	// it is allocated. A marker reads it atomically, to tell a Ref to an
	// object allocated during the mark from a stale one. Stored
	// atomically by the holder.
	pubFree atomic.Int32
	// allocEpoch and markEpoch are the arena epochs in which the Alloc of
	// allocBits and of markBits began: a heap checks with them that a
	// bitmap is never used past its lifetime. Written by the holder in a
	// sweep, which never overlaps a mark; markEpoch is read by markers.
	allocEpoch, markEpoch uint64
	// allocBits has a bit set for each slot that survived the last sweep:
	// it is the mark bitmap of the previous cycle. Slots below freeindex
	// are allocated whatever their bit says. Replaced by the holder in a
	// sweep, never during a mark, and not written otherwise: markers read
	// it while the holder allocates.
	allocBits gcbits.Bits
	// markBits collects this cycle's marks. During a mark, markers
	// (setMarks) and write barriers set bits with atomic ORs and read
	// words atomically; once the mark is over the holder writes it
	// plainly (blacken). The slice itself is replaced only by a sweep,
	// never during marking.
	markBits gcbits.Bits
	// seqs holds the slots' sequence numbers (see slotSeqs), less
	// seqBase, which advances all of them at once (modulo 2^16) when a
	// sweep frees every object; nil in unchecked mode. The slice is
	// read-only; see slotSeqs for its words. seqBase is stored atomically
	// by the holder and read atomically by any goroutine, as the words.
	seqs    slotSeqs
	seqBase atomic.Uint32
	idx     uint32 // index in the heap's span table, from 1; read-only
	tag     uint8  // the heap's tag, for the Refs of the span's objects; read-only
	// needzero: freed slots may hold old data, so take clears a slot
	// before handing it out. False for fresh memory from the OS. Holder.
	needzero bool

	// sweepgen is the span's sweep generation (see the type's
	// documentation). Read atomically; moved from sg-2 to sg-1 by
	// compare-and-swap, stored atomically by the holder otherwise.
	sweepgen atomic.Uint32
	// cached is true while a Mutator caches the span: set by
	// compare-and-swap when one takes it, cleared when it gives it back.
	// It checks that no two Mutators ever hold one span.
	cached atomic.Bool

	cls    *spanClass // the span's class: its size class and central sets; read-only
	npages int        // pages of heap memory; read-only
	// emptySweeps counts consecutive sweeps that found the span empty and
	// left it so; a heap returns the pages of a span that stays empty for
	// a whole cycle, and keeps one that empties for its size class.
	// Holder.
	emptySweeps int
	// emptySince is when the span was last left empty on a partial set
	// (in the page allocator's clock), 0 once a Mutator takes it: the
	// scavenger frees spans that stay empty for a while. Holder.
	emptySince int64
	// region is the dedicated memory of a large object's span, unmapped
	// when the span's retired memory is released; nil when the span lies
	// in a shared region. Read-only.
	region *regionInfo
}

// reset gives s two fresh, zeroed bitmaps and makes every slot free.
func (s *span) reset(ab gcbits.Bits, ae uint64, mb gcbits.Bits, me uint64) {
	s.allocBits, s.allocEpoch = ab, ae
	s.markBits, s.markEpoch = mb, me
	s.freeindex, s.allocCount = 0, 0
	s.allocCache = ^s.allocBits[0]
}

// nextFreeFast is nextFree when the cache word has a free slot and taking
// it needs no new cache word, as the runtime's nextFreeFast; it reports
// false otherwise, and the caller falls back to nextFree.
func (s *span) nextFreeFast() (int, bool) {
	tz := bits.TrailingZeros64(s.allocCache)
	if tz < 64 {
		i := s.freeindex + tz
		if i < s.nelems && (i+1)&63 != 0 {
			s.allocCache >>= uint(tz + 1)
			s.freeindex = i + 1
			s.allocCount++
			return i, true
		}
	}
	return 0, false
}

// nextFree hands out the lowest free slot at or above the allocation cursor
// and reports whether there was one. A slot is free when it was neither
// allocated before the last sweep and marked, nor handed out since. For
// the holder only.
//
// The search reads the allocation bitmap 64 slots at a time into a cache
// word holding its complement, so that finding the next free slot is one
// count-trailing-zeros instruction and a shift.
func (s *span) nextFree() (int, bool) {
	if s.allocCount >= s.nelems {
		return 0, false
	}
	for {
		if s.freeindex >= s.nelems {
			return 0, false
		}
		if s.allocCache == 0 {
			// No free slot in the rest of this word: load the next one.
			next := (s.freeindex + 64) &^ 63
			if next >= s.nelems {
				s.freeindex = s.nelems
				return 0, false
			}
			s.freeindex = next
			s.pubFree.Store(int32(next))
			s.allocCache = ^s.allocBits[next>>6]
			continue
		}
		tz := bits.TrailingZeros64(s.allocCache)
		i := s.freeindex + tz
		if i >= s.nelems {
			s.freeindex = s.nelems
			return 0, false
		}
		// Shift out the slot we take and those before it (a shift by 64
		// yields 0 in Go, which is what we want).
		s.allocCache >>= uint(tz + 1)
		s.freeindex = i + 1
		if s.freeindex&63 == 0 && s.freeindex < s.nelems {
			s.pubFree.Store(int32(s.freeindex))
			s.allocCache = ^s.allocBits[s.freeindex>>6]
		}
		s.allocCount++
		return i, true
	}
}

// sweepWith ends the span's cycle: the mark bitmap becomes the
// allocation bitmap, nb (zeroed, at least nelems bits, whose Alloc began
// in arena epoch e) the mark bitmap, and allocation starts over from slot
// 0. It returns the number of slots freed: those allocated before the
// sweep that were not marked. In checked mode it advances the sequence
// number of every freed slot, so that Refs to the objects it frees become
// stale at once: all of them at once through seqBase when every object
// died. For the holder only; no mark may run concurrently.
func (s *span) sweepWith(nb gcbits.Bits, e uint64) int {
	live := s.markBits.Count()
	freed := s.allocCount - live
	if s.seqs != nil && freed > 0 {
		if live == 0 {
			s.seqBase.Add(1) // free slots advance too: their next object takes the new number
		} else {
			for w := range s.markBits {
				if dead := (s.allocBits[w] | s.belowFreeindex(w)) &^ s.markBits[w]; dead != 0 {
					s.seqs.bump(w<<6, dead)
				}
			}
		}
	}
	s.allocBits, s.allocEpoch = s.markBits, s.markEpoch
	s.markBits, s.markEpoch = nb, e
	s.allocCount = live
	s.freeindex, s.markFrom = 0, 0
	s.pubFree.Store(0)
	s.allocCache = ^s.allocBits[0]
	if freed > 0 {
		s.needzero = true
	}
	switch {
	case live > 0:
		s.emptySweeps = 0
	case freed == 0: // empty since the last sweep too: nothing was allocated
		s.emptySweeps++
	default:
		s.emptySweeps = 1
	}
	return freed
}

// belowFreeindex returns the mask of the slots of word w below freeindex.
func (s *span) belowFreeindex(w int) uint64 { return below(s.freeindex, w) }

// below returns the mask of the slots of word w below slot i.
func below(i, w int) uint64 {
	lo := w << 6
	switch {
	case i >= lo+64:
		return ^uint64(0)
	case i <= lo:
		return 0
	default:
		return 1<<uint(i-lo) - 1
	}
}

// blacken marks the slots allocated since the mark began (from markFrom
// up to freeindex, but for those of allocBits, which were allocated
// before): objects allocated during a mark are black, as the runtime
// allocates them. The sweep calls it first. For the holder only, once
// the mark is over.
func (s *span) blacken() {
	if s.freeindex <= s.markFrom {
		return
	}
	for w := s.markFrom >> 6; w<<6 < s.freeindex; w++ {
		s.markBits[w] |= (below(s.freeindex, w) &^ below(s.markFrom, w)) &^ s.allocBits[w]
	}
}

// allocatedAtMark reports whether slot j held an object when the current
// (or last) mark began; markFrom and allocBits are fixed while it runs.
func (s *span) allocatedAtMark(j int) bool {
	return j < s.markFrom || s.allocBits.Test(j)
}

// publishFree publishes freeindex for markers (pubFree).
func (s *span) publishFree() { s.pubFree.Store(int32(s.freeindex)) }

// tryAcquire claims the span for sweeping in heap generation sg: it moves
// the span's generation from sg-2 (needs sweeping) to sg-1 (being swept)
// with a compare-and-swap and reports whether this call did. Exactly one
// of any number of concurrent callers succeeds, and none once the span is
// swept. The winner becomes the span's holder and ends with setSwept(sg).
func (s *span) tryAcquire(sg uint32) bool {
	return s.sweepgen.CompareAndSwap(sg-2, sg-1)
}

// setSwept stores sg as the span's sweep generation: the span is swept in
// generation sg and may be allocated from. Its holder calls it after
// sweeping, or when it makes the span during generation sg.
func (s *span) setSwept(sg uint32) { s.sweepgen.Store(sg) }

// take prepares slot i, just returned by nextFree, for a new object: it
// clears the slot if it may hold old data. It returns the object's Ref,
// with the slot's sequence number in checked mode.
func (s *span) take(i int) Ref {
	if s.needzero {
		p := s.addr(i)
		if s.elemSize <= 64 {
			for off := uintptr(0); off < s.elemSize; off += 8 {
				*(*uint64)(unsafe.Add(p, off)) = 0
			}
		} else {
			clear(unsafe.Slice((*byte)(p), s.elemSize))
		}
	}
	return makeRef(s.tag, s.idx, i, s.seq(i))
}

// seq returns the sequence number of slot i: 0 in unchecked mode.
func (s *span) seq(i int) uint16 {
	if s.seqs == nil {
		return 0
	}
	return s.seqs.get(i) + uint16(s.seqBase.Load())
}

// live reports whether r, naming slot r.slot() of s, may be the slot's
// current object: the slot exists and, in checked mode, has r's sequence
// number. (A free slot has the number its next object will get: a Ref
// made up rather than given by the heap may pass.)
func (s *span) live(r Ref) bool {
	i := r.slot()
	if i >= s.nelems {
		return false
	}
	return s.seqs == nil || s.seq(i) == r.seq()
}

// addr returns the address of slot i.
func (s *span) addr(i int) unsafe.Pointer {
	return unsafe.Add(s.base, uintptr(i)*s.elemSize)
}
