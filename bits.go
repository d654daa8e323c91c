package gcbits

import (
	"iter"
	"math/bits"
	"strconv"
	"sync/atomic"
)

// Bits is a fixed-size bitmap: bit i lives in word i/64 at position i%64.
// Its length, [Bits.Len], is a whole number of 64-bit words:
// [Arena.Alloc](100) returns two words, 128 bits. A Bits is its words, so
// any []uint64 is one (make(Bits, n) gives n*64 clear bits), and libraries
// that work on words take it as it is: bitset.From(b) of the [bitset]
// package wraps the same memory.
//
// A bitmap of n bits, n not a multiple of 64, is the first n bits of a Bits
// whose tail, bits n to Len()-1, stays clear. Alloc hands the tail out
// clear and no method sets a bit the caller did not name, except
// [Bits.SetAll]: Set, Flip and SetAtomic take one index, [Bits.SetRange]
// and [Bits.FlipRange] a range, and And, Or, AndNot and Xor of bitmaps
// with clear tails leave the tail clear. So with SetRange(0, n) for SetAll
// and FlipRange(0, n) for the complement, Count, Any, None, Equal, EachSet and
// String see exactly the n bits; only [Bits.NextClear] can return an index
// in the tail (compare it with n).
//
// Indexes outside [0, Len()) are ignored by the setters and read as clear
// by Test, since a fixed-size bitmap has no bit there; ranges are clipped
// to [0, Len()).
//
// The set operations [Bits.And], [Bits.Or], [Bits.AndNot] and [Bits.Xor]
// change b in place and never
// its length: the other operand c is read as a bitmap of b's length, its
// missing words as zero and its words past b's end ignored, as Set ignores
// an index past the end. Equal compares the set bits, whatever the lengths.
//
// The methods are not safe for concurrent use with each other on the same
// word, except [Bits.SetAtomic], [Bits.ClearAtomic] and [Bits.TestAtomic]
// with one another.
//
// A Bits from an [Arena] or a [Cache] refers to arena memory and is valid
// for the lifetime described in the package documentation.
//
// [bitset]: https://pkg.go.dev/github.com/bits-and-blooms/bitset
type Bits []uint64

// Len returns the number of bits in b (64 per word).
func (b Bits) Len() int { return len(b) * 64 }

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

// Flip inverts bit i.
func (b Bits) Flip(i int) {
	if w := uint(i) >> 6; w < uint(len(b)) {
		b[w] ^= 1 << (uint(i) & 63)
	}
}

// SetAtomic sets bit i atomically and reports whether this call changed it
// from 0 to 1. Concurrent SetAtomic, ClearAtomic and TestAtomic calls on
// one bitmap are safe; mixing them with the other methods on the same word
// is not.
func (b Bits) SetAtomic(i int) bool {
	w := uint(i) >> 6
	if w >= uint(len(b)) {
		return false
	}
	mask := uint64(1) << (uint(i) & 63)
	return atomic.OrUint64(&b[w], mask)&mask == 0
}

// ClearAtomic clears bit i atomically and reports whether this call changed
// it from 1 to 0. See SetAtomic for what may run concurrently.
func (b Bits) ClearAtomic(i int) bool {
	w := uint(i) >> 6
	if w >= uint(len(b)) {
		return false
	}
	mask := uint64(1) << (uint(i) & 63)
	return atomic.AndUint64(&b[w], ^mask)&mask != 0
}

// TestAtomic reports whether bit i is set, reading its word atomically, so
// that it may run concurrently with SetAtomic and ClearAtomic.
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

// Any reports whether any bit is set.
func (b Bits) Any() bool {
	for _, w := range b {
		if w != 0 {
			return true
		}
	}
	return false
}

// None reports whether no bit is set.
func (b Bits) None() bool { return !b.Any() }

// Equal reports whether b and c have the same bits set. Words that one of
// them has past the other's end must be zero.
func (b Bits) Equal(c Bits) bool {
	if len(b) < len(c) {
		b, c = c, b
	}
	for i, w := range c {
		if b[i] != w {
			return false
		}
	}
	return b[len(c):].None()
}

// EachSet returns an iterator over the indexes of the set bits, in
// increasing order, as bitset's EachSet does. It reads each word when it
// reaches it, so a change to b during the iteration shows from the next
// word on.
func (b Bits) EachSet() iter.Seq[int] {
	return func(yield func(int) bool) {
		for i, w := range b {
			for w != 0 {
				if !yield(i<<6 + bits.TrailingZeros64(w)) {
					return
				}
				w &= w - 1 // clear the lowest set bit
			}
		}
	}
}

// NextSet returns the index of the first set bit at or after from, or -1
// when there is none. A negative from starts at 0.
func (b Bits) NextSet(from int) int {
	return b.next(from, 0)
}

// NextClear returns the index of the first clear bit at or after from, or
// -1 when there is none. A negative from starts at 0. For a bitmap of n
// bits with a clear tail (see Bits), a result of n or more means none.
func (b Bits) NextClear(from int) int {
	return b.next(from, ^uint64(0))
}

// next finds the first bit at or after from whose value differs from the
// corresponding bit of flip (0 finds set bits, all ones finds clear bits).
func (b Bits) next(from int, flip uint64) int {
	if from < 0 {
		from = 0
	}
	i := uint(from) >> 6
	if i >= uint(len(b)) {
		return -1
	}
	w := (b[i] ^ flip) >> (uint(from) & 63)
	if w != 0 {
		return from + bits.TrailingZeros64(w)
	}
	for i++; i < uint(len(b)); i++ {
		if w := b[i] ^ flip; w != 0 {
			return int(i)<<6 + bits.TrailingZeros64(w)
		}
	}
	return -1
}

// ClearAll clears every bit.
func (b Bits) ClearAll() { clear(b) }

// SetAll sets every bit, up to Len(). For a bitmap of n bits that is not a
// multiple of 64, SetRange(0, n) keeps the tail clear (see Bits).
func (b Bits) SetAll() {
	for i := range b {
		b[i] = ^uint64(0)
	}
}

// SetRange sets bits lo to hi-1, clipped to [0, Len()).
func (b Bits) SetRange(lo, hi int) {
	first, last, fm, lm, ok := b.rangeWords(lo, hi)
	switch {
	case !ok:
	case first == last:
		b[first] |= fm & lm
	default:
		b[first] |= fm
		for i := first + 1; i < last; i++ {
			b[i] = ^uint64(0)
		}
		b[last] |= lm
	}
}

// ClearRange clears bits lo to hi-1, clipped to [0, Len()).
func (b Bits) ClearRange(lo, hi int) {
	first, last, fm, lm, ok := b.rangeWords(lo, hi)
	switch {
	case !ok:
	case first == last:
		b[first] &^= fm & lm
	default:
		b[first] &^= fm
		clear(b[first+1 : last])
		b[last] &^= lm
	}
}

// FlipRange inverts bits lo to hi-1, clipped to [0, Len()).
// FlipRange(0, n) is the complement of a bitmap of n bits.
func (b Bits) FlipRange(lo, hi int) {
	first, last, fm, lm, ok := b.rangeWords(lo, hi)
	switch {
	case !ok:
	case first == last:
		b[first] ^= fm & lm
	default:
		b[first] ^= fm
		for i := first + 1; i < last; i++ {
			b[i] = ^b[i]
		}
		b[last] ^= lm
	}
}

// rangeWords returns the words that hold bits of [lo, hi) ∩ [0, Len()),
// first to last, and the masks of those bits in the first and the last
// word; ok is false when the range is empty.
func (b Bits) rangeWords(lo, hi int) (first, last int, firstMask, lastMask uint64, ok bool) {
	lo, hi = max(lo, 0), min(hi, b.Len())
	if lo >= hi {
		return 0, 0, 0, 0, false
	}
	first, last = lo>>6, (hi-1)>>6
	return first, last, ^uint64(0) << (uint(lo) & 63), ^uint64(0) >> (63 - uint(hi-1)&63), true
}

// And sets b to the intersection of b and c: bits of b past c's end are
// cleared.
func (b Bits) And(c Bits) {
	n := min(len(b), len(c))
	for i := range n {
		b[i] &= c[i]
	}
	clear(b[n:])
}

// Or sets b to the union of b and c; bits of c past b's end are ignored.
func (b Bits) Or(c Bits) {
	for i := range min(len(b), len(c)) {
		b[i] |= c[i]
	}
}

// AndNot clears in b the bits set in c.
func (b Bits) AndNot(c Bits) {
	for i := range min(len(b), len(c)) {
		b[i] &^= c[i]
	}
}

// Xor sets b to the symmetric difference of b and c; bits of c past b's end
// are ignored.
func (b Bits) Xor(c Bits) {
	for i := range min(len(b), len(c)) {
		b[i] ^= c[i]
	}
}

// String returns the indexes of the set bits in braces, separated by
// commas: "{1,63,64,100}" (bitset's String does the same).
func (b Bits) String() string {
	buf := []byte{'{'}
	for i := range b.EachSet() {
		if len(buf) > 1 {
			buf = append(buf, ',')
		}
		buf = strconv.AppendInt(buf, int64(i), 10)
	}
	return string(append(buf, '}'))
}
