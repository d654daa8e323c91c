package sweep

import "fmt"

// Ref names an object of a Heap. The zero Ref, Nil, names nothing. A Ref
// packs the index of the object's span, its slot in the span and, in
// checked mode, the sequence number the slot got when the object was
// allocated; the Heap compares it with the slot's current number, so a Ref
// kept after its object was swept is reported as stale (ErrBadRef) rather
// than reaching the slot's next occupant.
//
// Sequence numbers have 24 bits and count per span, so a stale Ref can only
// be mistaken for a live one after its span has made 2^24 further
// allocations and the counter has come round to the same slot.
type Ref uint64

// Nil is the Ref of no object.
const Nil Ref = 0

const (
	refSlotBits = 16
	refSpanBits = 24
	refSeqBits  = 24

	refSlotMask = 1<<refSlotBits - 1
	refSpanMask = 1<<refSpanBits - 1
	refSeqMask  = 1<<refSeqBits - 1

	// maxSpans caps the span table; index 0 is never used, so no Ref of an
	// object is Nil.
	maxSpans = 1 << refSpanBits
)

// makeRef packs a span index, a slot and a sequence number.
func makeRef(span uint32, slot int, seq uint32) Ref {
	return Ref(uint64(seq)<<(refSlotBits+refSpanBits) | uint64(span)<<refSlotBits | uint64(slot))
}

func (r Ref) slot() int       { return int(r & refSlotMask) }
func (r Ref) spanIdx() uint32 { return uint32(r>>refSlotBits) & refSpanMask }
func (r Ref) seq() uint32     { return uint32(r >> (refSlotBits + refSpanBits)) }

// String formats r as span/slot#seq, or "nil".
func (r Ref) String() string {
	if r == Nil {
		return "nil"
	}
	return fmt.Sprintf("%d/%d#%d", r.spanIdx(), r.slot(), r.seq())
}
