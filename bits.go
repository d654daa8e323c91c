package gcbits

import (
	"math/bits"
	"sync/atomic"
)

// Bits is a fixed-size bitmap: bit i lives in word i/64 at position i%64.
// Its length is a whole number of 64-bit words.
//
// A Bits from an Arena or a Cache refers to arena memory and is valid for
// the lifetime described in the package documentation. Indexes outside
// [0, Len()) are ignored by the setters and read as clear by Test, since a
// fixed-size bitmap has no bit there.
type Bits []uint64

// Len returns the number of bits in b (64 per word).
func (b Bits) Len() int { return len(b) * 64 }

// inRange reports whether bit i exists in b.
func (b Bits) inRange(i int) bool { return uint(i) < uint(len(b))*64 }

// The accessors test the word index against len(b) as unsigned numbers:
// that rejects negative i too and lets the compiler drop its own bounds
// check.

// Test reports whether bit i is set.
func (b Bits) Test(i int) bool {
	if w := uint(i) >> 6; w < uint(len(b)) {
		return b[w]&(1<<(uint(i)&63)) != 0
	}
	return false
}

// Set sets bit i.
func (b Bits) Set(i int) {
	if w := uint(i) >> 6; w < uint(len(b)) {
		b[w] |= 1 << (uint(i) & 63)
	}
}

// Clear clears bit i.
func (b Bits) Clear(i int) {
	if w := uint(i) >> 6; w < uint(len(b)) {
		b[w] &^= 1 << (uint(i) & 63)
	}
}

// SetAtomic sets bit i atomically and reports whether this call changed it
// from 0 to 1. Concurrent SetAtomic calls on one bitmap are safe; mixing
// them with Set or Clear on the same word is not.
func (b Bits) SetAtomic(i int) bool {
	w := uint(i) >> 6
	if w >= uint(len(b)) {
		return false
	}
	mask := uint64(1) << (uint(i) & 63)
	return atomic.OrUint64(&b[w], mask)&mask == 0
}

// TestAtomic reports whether bit i is set, reading its word atomically, so
// that it may run concurrently with SetAtomic.
func (b Bits) TestAtomic(i int) bool {
	if w := uint(i) >> 6; w < uint(len(b)) {
		return atomic.LoadUint64(&b[w])&(1<<(uint(i)&63)) != 0
	}
	return false
}

// Count returns the number of set bits.
func (b Bits) Count() int {
	n := 0
	for _, w := range b {
		n += bits.OnesCount64(w)
	}
	return n
}

// NextSet returns the index of the first set bit at or after from, or -1
// when there is none. A negative from starts at 0.
func (b Bits) NextSet(from int) int {
	return b.next(from, 0)
}

// NextClear returns the index of the first clear bit at or after from, or
// -1 when there is none. A negative from starts at 0.
func (b Bits) NextClear(from int) int {
	return b.next(from, ^uint64(0))
}

// next finds the first bit at or after from whose value differs from the
// corresponding bit of flip (0 finds set bits, all ones finds clear bits).
func (b Bits) next(from int, flip uint64) int {
	if from < 0 {
		from = 0
	}
	if !b.inRange(from) {
		return -1
	}
	i := from >> 6
	w := (b[i] ^ flip) >> (uint(from) & 63)
	if w != 0 {
		return from + bits.TrailingZeros64(w)
	}
	for i++; i < len(b); i++ {
		if w := b[i] ^ flip; w != 0 {
			return i<<6 + bits.TrailingZeros64(w)
		}
	}
	return -1
}

// ClearAll clears every bit.
func (b Bits) ClearAll() { clear(b) }
