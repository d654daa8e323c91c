package sweep

import (
	"fmt"
	"sync"
)

// Ref names an object of a Heap. The zero Ref, Nil, names nothing. A Ref
// packs the heap's tag, the index of the object's span, its slot in the
// span and, in checked mode, the slot's sequence number when the object
// was allocated. The heap checks the tag, so a Ref of another heap gives
// ErrBadRef, and compares the sequence number with the slot's current
// one, which a sweep advances when it frees the slot: a Ref kept after
// its object was swept is reported as stale (ErrBadRef) rather than
// reaching the slot's next occupant.
//
// Sequence numbers have 16 bits and count per slot, so a stale Ref can
// only be mistaken for a live one after its slot has been freed 2^16
// more times. Heap tags have 8 bits: at most 255 heaps are open at once,
// and a tag is given out again only after the others.
type Ref uint64

// Nil is the Ref of no object.
const Nil Ref = 0

const (
	refSlotBits = 16
	refSpanBits = 24
	refSeqBits  = 16
	refHeapBits = 8

	refSpanShift = refSlotBits
	refSeqShift  = refSpanShift + refSpanBits
	refHeapShift = refSeqShift + refSeqBits

	refSlotMask = 1<<refSlotBits - 1
	refSpanMask = 1<<refSpanBits - 1

	// maxSpans caps the span table; index 0 is never used.
	maxSpans = 1 << refSpanBits
	// maxHeaps is the number of heaps that may be open at once; tag 0 is
	// never used, so no Ref of an object is Nil.
	maxHeaps = 1<<refHeapBits - 1
)

// makeRef packs a heap tag, a span index, a slot and a sequence number.
func makeRef(tag uint8, span uint32, slot int, seq uint16) Ref {
	return Ref(uint64(tag)<<refHeapShift | uint64(seq)<<refSeqShift | uint64(span)<<refSpanShift | uint64(slot))
}

func (r Ref) slot() int       { return int(r & refSlotMask) }
func (r Ref) spanIdx() uint32 { return uint32(r>>refSpanShift) & refSpanMask }
func (r Ref) seq() uint16     { return uint16(r >> refSeqShift) }
func (r Ref) tag() uint8      { return uint8(r >> refHeapShift) }

// String formats r as heap:span/slot#seq, or "nil".
func (r Ref) String() string {
	if r == Nil {
		return "nil"
	}
	return fmt.Sprintf("%d:%d/%d#%d", r.tag(), r.spanIdx(), r.slot(), r.seq())
}

// heapTags gives each open Heap a tag of its own for its Refs.
var heapTags struct {
	mu   sync.Mutex
	used [maxHeaps + 1]bool // under mu; used[0] stays false and is never given
	last uint8              // the tag given last; under mu
}

// takeHeapTag returns a tag no open heap has, the first free one after
// the tag given last, so that a tag comes back as late as possible; or
// an error wrapping ErrLimit when maxHeaps heaps are open.
func takeHeapTag() (uint8, error) {
	heapTags.mu.Lock()
	defer heapTags.mu.Unlock()
	for i := range maxHeaps {
		t := uint8((int(heapTags.last)+i)%maxHeaps + 1)
		if !heapTags.used[t] {
			heapTags.used[t] = true
			heapTags.last = t
			return t, nil
		}
	}
	return 0, fmt.Errorf("%w: %d heaps open", ErrLimit, maxHeaps)
}

// dropHeapTag gives tag back, once its heap is closed.
func dropHeapTag(t uint8) {
	heapTags.mu.Lock()
	heapTags.used[t] = false
	heapTags.mu.Unlock()
}
