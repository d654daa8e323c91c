package sweep

import (
	"fmt"
	"math/bits"
	"sync/atomic"
	"unsafe"

	"github.com/gcbits/gcbits"
)

// BitSource hands out zeroed bitmaps. *gcbits.Arena and *gcbits.Cache
// satisfy it.
type BitSource interface {
	Alloc(nbits int) (gcbits.Bits, error)
}

// Span is a run of equal-sized slots with two bitmaps, as a span of the Go
// runtime's heap has: allocBits says which slots survived the last sweep,
// markBits collects the marks of the current cycle, and Sweep turns the
// marks into the next allocation bits and takes a fresh, zeroed mark
// bitmap from a BitSource.
//
// # Ownership
//
// A Span has one holder at a time: the goroutine that allocates from it
// (Alloc, Allocated, IsAllocated) or sweeps it (Sweep). Handing a span to
// another holder must synchronize (a channel, a lock, or TryAcquire and
// SetSwept). Mark and IsMarked are atomic and may run from any number of
// goroutines at once, but not concurrently with Sweep, which replaces the
// mark bitmap: a mark phase ends before the sweep phase begins.
//
// # Sweep generations
//
// The sweep generation lets sweepers and allocators agree on which spans
// still need sweeping without a lock, with the heap's own generation sg
// (which a heap increments by 2 at the start of each sweep phase):
//
//   - SweepGen() == sg-2: the span needs sweeping in this cycle;
//   - SweepGen() == sg-1: a sweeper is sweeping it;
//   - SweepGen() == sg: it is swept and may be allocated from.
//
// A sweeper claims a span with TryAcquire(sg), a compare-and-swap from
// sg-2 to sg-1, so two sweepers never sweep one span; it publishes the
// result with SetSwept(sg). An allocator takes only spans at sg.
type Span struct {
	// Set when the span is made; read-only afterwards, so that any
	// goroutine may read them without synchronization.
	idx      uint32         // index in the heap's span table; 0 for a standalone span
	class    uint8          // size class; 0 for a large object or a standalone span
	nelems   int            // number of slots, 1..65535
	elemSize uintptr        // bytes per slot
	npages   int            // pages of heap memory, 0 for a standalone span
	base     unsafe.Pointer // address of slot 0; nil for a standalone span
	// seqs[i] is the sequence number of the object in slot i, 0 while the
	// slot is free; nil in unchecked mode. The holder stores an entry
	// atomically, and only while the slot has no live object: when it
	// hands the slot out (take) and when a sweep frees it. Any goroutine
	// resolving a Ref loads entries atomically. A load that races with a
	// store is made with a Ref to a dead object, an error either way; it
	// sees the old or the new value, and both
	// differ from any live object's number but the new one's own.
	seqs []uint32

	// sweepgen is the span's sweep generation (see the type's
	// documentation). Read atomically; moved from sg-2 to sg-1 by
	// compare-and-swap, stored atomically by the holder otherwise.
	sweepgen atomic.Uint32

	// cached is true while a Mutator caches the span: set by
	// compare-and-swap when one takes it, cleared when it gives it back.
	// It checks that no two Mutators ever hold one span.
	cached atomic.Bool

	// The fields below belong to the span's holder.

	// freeindex: every slot below it is allocated; Alloc looks for free
	// slots at or above it. 0 after a sweep, nelems once the span is full.
	freeindex int
	// allocCache holds the complement of allocBits for the slots from
	// freeindex up to the next multiple of 64, shifted so that bit 0 is
	// slot freeindex: a set bit is a free slot, and count-trailing-zeros
	// finds the next one. Bits past nelems may read as free; Alloc checks.
	allocCache uint64
	// allocCount is the number of allocated slots: the survivors of the
	// last sweep plus the slots Alloc has handed out since.
	allocCount int
	// allocBits has a bit set for each slot that survived the last sweep:
	// it is the mark bitmap of the previous cycle. Slots below freeindex
	// are allocated whatever their bit says.
	allocBits gcbits.Bits
	// markBits collects this cycle's marks; Mark sets bits atomically.
	// The slice itself is replaced only by Sweep, never during marking.
	markBits gcbits.Bits
	// allocEpoch and markEpoch are the arena epochs in which the Alloc of
	// allocBits and of markBits began: a heap checks with them that a
	// bitmap is never used past its lifetime. Standalone spans leave them 0.
	allocEpoch, markEpoch uint64
	// nextSeq is the last sequence number handed out (24 bits, never 0).
	nextSeq uint32
	// needzero: freed slots may hold old data, so Alloc's caller clears a
	// slot before handing it out. False for fresh memory from the OS.
	needzero bool
	// emptySweeps counts consecutive sweeps that left the span empty; a
	// heap returns the pages of a span that stays empty.
	emptySweeps int
	// region is the dedicated memory of a large object's span, unmapped
	// when the span's retired memory is released; nil when the span lies
	// in a shared region. Set when the span is made; read-only afterwards.
	region *regionInfo
}

// NewSpan returns a standalone span of nelems slots of elemSize bytes,
// all free, with both bitmaps from src. A standalone span has no memory
// for its slots: it manages slot indexes and bitmaps only. Its sweep
// generation starts at 0. nelems must be in 1..65535 and elemSize
// positive; otherwise NewSpan returns an error wrapping ErrSize.
func NewSpan(src BitSource, nelems, elemSize int) (*Span, error) {
	if nelems < 1 || nelems >= maxSlots || elemSize < 1 {
		return nil, fmt.Errorf("%w: span of %d slots of %d bytes", ErrSize, nelems, elemSize)
	}
	if src == nil {
		return nil, fmt.Errorf("%w: nil BitSource", ErrOption)
	}
	s := &Span{nelems: nelems, elemSize: uintptr(elemSize)}
	ab, err := src.Alloc(nelems)
	if err != nil {
		return nil, err
	}
	mb, err := src.Alloc(nelems)
	if err != nil {
		return nil, err
	}
	s.reset(ab, 0, mb, 0)
	return s, nil
}

// reset gives s two fresh, zeroed bitmaps and makes every slot free.
func (s *Span) reset(ab gcbits.Bits, ae uint64, mb gcbits.Bits, me uint64) {
	s.allocBits, s.allocEpoch = ab, ae
	s.markBits, s.markEpoch = mb, me
	s.freeindex, s.allocCount = 0, 0
	s.allocCache = ^s.allocBits[0]
}

// Len returns the number of slots.
func (s *Span) Len() int { return s.nelems }

// ElemSize returns the size of a slot in bytes.
func (s *Span) ElemSize() int { return int(s.elemSize) }

// Allocated returns the number of allocated slots: those that survived
// the last sweep plus those Alloc handed out since. For the holder only.
func (s *Span) Allocated() int { return s.allocCount }

// IsAllocated reports whether slot i is allocated. For the holder only.
func (s *Span) IsAllocated(i int) bool {
	if uint(i) >= uint(s.nelems) {
		return false
	}
	return i < s.freeindex || s.allocBits.Test(i)
}

// Alloc hands out the lowest free slot at or above the allocation cursor
// and reports whether there was one. A slot is free when it was neither
// allocated before the last sweep and marked, nor handed out since. For
// the holder only.
//
// The search reads the allocation bitmap 64 slots at a time into a cache
// word holding its complement, so that finding the next free slot is one
// count-trailing-zeros instruction and a shift.
func (s *Span) Alloc() (int, bool) {
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
			s.allocCache = ^s.allocBits[s.freeindex>>6]
		}
		s.allocCount++
		return i, true
	}
}

// Mark sets the mark bit of slot i atomically and reports whether this
// call set it (false if it was set already or i is out of range). Safe
// for concurrent use with other Mark and IsMarked calls.
//
// Marking a slot that is not allocated makes it allocated at the next
// sweep; a heap only marks slots that it has checked are allocated.
func (s *Span) Mark(i int) bool {
	if uint(i) >= uint(s.nelems) {
		return false
	}
	return s.markBits.SetAtomic(i)
}

// IsMarked reports whether slot i is marked, reading atomically.
func (s *Span) IsMarked(i int) bool {
	if uint(i) >= uint(s.nelems) {
		return false
	}
	return s.markBits.TestAtomic(i)
}

// CountAlloc returns the number of marked slots, a population count of
// the mark bitmap: the number of slots that will be allocated after the
// next Sweep. Not for use while marking is in progress.
func (s *Span) CountAlloc() int { return s.markBits.Count() }

// Sweep ends the span's cycle: the mark bitmap becomes the allocation
// bitmap, a fresh mark bitmap comes from src, and allocation starts over
// from slot 0. It returns the number of slots freed: those allocated
// before the sweep (Allocated) that were not marked. If src fails, Sweep
// returns its error and leaves the span unchanged. For the holder only;
// no Mark may run concurrently.
func (s *Span) Sweep(src BitSource) (int, error) {
	if src == nil {
		return 0, fmt.Errorf("%w: nil BitSource", ErrOption)
	}
	if s.nelems == 0 {
		return 0, fmt.Errorf("%w: Span not made by NewSpan", ErrSize)
	}
	nb, err := src.Alloc(s.nelems)
	if err != nil {
		return 0, err
	}
	return s.sweepWith(nb, 0), nil
}

// sweepWith is Sweep with the new mark bitmap nb (zeroed, at least nelems
// bits), whose Alloc began in arena epoch e. In checked mode it also
// clears the sequence number of every freed slot, so that Refs to the
// objects it frees become stale at once.
func (s *Span) sweepWith(nb gcbits.Bits, e uint64) int {
	if s.seqs != nil {
		for w := range s.markBits {
			dead := (s.allocBits[w] | s.belowFreeindex(w)) &^ s.markBits[w]
			for dead != 0 {
				atomic.StoreUint32(&s.seqs[w<<6+bits.TrailingZeros64(dead)], 0)
				dead &= dead - 1
			}
		}
	}
	live := s.markBits.Count()
	freed := s.allocCount - live
	s.allocBits, s.allocEpoch = s.markBits, s.markEpoch
	s.markBits, s.markEpoch = nb, e
	s.allocCount = live
	s.freeindex = 0
	s.allocCache = ^s.allocBits[0]
	if freed > 0 {
		s.needzero = true
	}
	if live == 0 {
		s.emptySweeps++
	} else {
		s.emptySweeps = 0
	}
	return freed
}

// belowFreeindex returns the mask of the slots of word w below freeindex.
func (s *Span) belowFreeindex(w int) uint64 {
	lo := w << 6
	switch {
	case s.freeindex >= lo+64:
		return ^uint64(0)
	case s.freeindex <= lo:
		return 0
	default:
		return 1<<uint(s.freeindex-lo) - 1
	}
}

// SweepGen returns the span's sweep generation, read atomically.
func (s *Span) SweepGen() uint32 { return s.sweepgen.Load() }

// TryAcquire claims the span for sweeping in heap generation sg: it moves
// the span's generation from sg-2 (needs sweeping) to sg-1 (being swept)
// with a compare-and-swap and reports whether this call did. Exactly one
// of any number of concurrent callers succeeds, and none once the span is
// swept. The winner becomes the span's holder and ends with SetSwept(sg).
func (s *Span) TryAcquire(sg uint32) bool {
	return s.sweepgen.CompareAndSwap(sg-2, sg-1)
}

// SetSwept stores sg as the span's sweep generation: the span is swept in
// generation sg and may be allocated from. Its holder calls it after
// sweeping, or when it makes the span during generation sg.
func (s *Span) SetSwept(sg uint32) { s.sweepgen.Store(sg) }

// take prepares slot i, just returned by Alloc, for a new object: it
// clears the slot if it may hold old data and, in checked mode, gives it
// a new sequence number. It returns the object's Ref.
func (s *Span) take(i int) Ref {
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
	var seq uint32
	if s.seqs != nil {
		seq = s.nextSeq + 1
		if seq > refSeqMask {
			seq = 1
		}
		s.nextSeq = seq
		atomic.StoreUint32(&s.seqs[i], seq)
	}
	return makeRef(s.idx, i, seq)
}

// live reports whether r, naming slot r.slot() of s, is the slot's
// current object. In unchecked mode it only checks the slot index.
func (s *Span) live(r Ref) bool {
	i := r.slot()
	if i >= s.nelems {
		return false
	}
	if s.seqs == nil {
		return true
	}
	q := r.seq()
	return q != 0 && atomic.LoadUint32(&s.seqs[i]) == q
}

// addr returns the address of slot i.
func (s *Span) addr(i int) unsafe.Pointer {
	return unsafe.Add(s.base, uintptr(i)*s.elemSize)
}
