package sweep

import (
	"errors"
	"fmt"
)

// Sentinel errors. Errors returned by this package wrap one of these, so
// callers test them with errors.Is.
var (
	// ErrBadRef reports a Ref that names no live object: Nil, garbage, an
	// object that was swept (stale), or a field or byte range outside the
	// object.
	ErrBadRef = errors.New("sweep: bad or stale ref")
	// ErrSize reports a request size that is not positive or too large.
	ErrSize = errors.New("sweep: bad size")
	// ErrOption reports an Options field outside its documented range.
	ErrOption = errors.New("sweep: bad option")
	// ErrClosed reports use of a Heap after Close or of a Mutator after
	// Mutator.Close.
	ErrClosed = errors.New("sweep: closed")
	// ErrLimit reports that serving an allocation would map more than
	// Options.MaxBytes, even after a collection that swept the whole heap
	// and released every empty span.
	ErrLimit = errors.New("sweep: heap memory limit reached")
	// ErrReleased reports use of a Mutator between Release and Acquire.
	ErrReleased = errors.New("sweep: mutator released")
)

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

// badRef returns an error wrapping ErrBadRef for r.
func badRef(r Ref, why string) error {
	return fmt.Errorf("%w: %v: %s", ErrBadRef, r, why)
}
