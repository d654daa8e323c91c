package sweep

import "sync/atomic"

// slotSeqs holds the sequence numbers of a span's slots, 16 bits each,
// four to a word: slot i has bits 16*(i%4) up of word i/4.
//
// A slot's number changes only when a sweep frees the slot: the sweeper,
// the span's holder, adds 1 to it, or, when the sweep frees every object
// of the span, adds 1 to span.seqBase instead, which moves the numbers of
// all slots, free ones too, with one store. Allocation reads the number
// into the new object's Ref and writes nothing. So a stale Ref, whose
// object a sweep freed, never matches again (until the slot is freed 2^16
// more times), and the cost is at most one atomic store per word of four
// slots with a death, paid by the sweep, instead of a store per
// allocation.
//
// The holder stores words atomically; any goroutine resolving a Ref loads
// them atomically. A load that races with a store is made with a Ref
// whose object is dead, an error either way: it sees the old or the new
// number, and both differ from the Ref's.
type slotSeqs []uint64

// laneHigh has the top bit of each 16-bit lane.
const laneHigh = 0x8000_8000_8000_8000

// newSlotSeqs returns the numbers of n slots, each start.
func newSlotSeqs(n int, start uint16) slotSeqs {
	q := make(slotSeqs, (n+3)/4)
	w := uint64(start) * 0x0001_0001_0001_0001
	for i := range q {
		q[i] = w
	}
	return q
}

// get returns the number of slot i, loading atomically.
func (q slotSeqs) get(i int) uint16 {
	return uint16(atomic.LoadUint64(&q[i>>2]) >> (16 * (uint(i) & 3)))
}

// bump adds 1 to the number of each slot first+j for which bit j of dead
// is set; first is a multiple of 64. For the span's holder only.
func (q slotSeqs) bump(first int, dead uint64) {
	for k := first >> 2; dead != 0; k, dead = k+1, dead>>4 {
		lanes := dead & 0xf
		if lanes == 0 {
			continue
		}
		// One 1 in each lane to bump, added without carries from one
		// lane into the next (a lane at 0xffff wraps to 0).
		inc := lanes&1 | lanes&2<<15 | lanes&4<<30 | lanes&8<<45
		old := atomic.LoadUint64(&q[k])
		atomic.StoreUint64(&q[k], (old&^laneHigh+inc)^old&laneHigh)
	}
}

// next returns 1 more than the highest number of the slots, each plus
// base (in 16-bit arithmetic), where a new span on the same index starts
// its slots, so that Refs to this span's objects stay stale.
func (q slotSeqs) next(base uint16) uint16 {
	var m uint16
	for _, w := range q {
		for k := range 4 {
			m = max(m, uint16(w>>(16*k))+base)
		}
	}
	return m + 1
}
