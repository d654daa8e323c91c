package gcbits_test

import (
	"math"
	"math/bits"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"pgregory.net/rapid"

	"github.com/gcbits/gcbits"
	"github.com/gcbits/gcbits/internal/arenatest"
)

// badIndexes are indexes outside every bitmap of n words.
func badIndexes(n int) []int {
	return []int{-1, -64, math.MinInt, n * 64, n*64 + 1, n*64 + 63, math.MaxInt}
}

func TestBitsLen(t *testing.T) {
	for _, n := range []int{0, 1, 2, 7} {
		if got := make(gcbits.Bits, n).Len(); got != n*64 {
			t.Errorf("Len of %d words = %d", n, got)
		}
	}
	var nilBits gcbits.Bits
	if nilBits.Len() != 0 {
		t.Error("nil Bits has bits")
	}
}

func TestBitsSetClearTest(t *testing.T) {
	b := make(gcbits.Bits, 3)
	for i := 0; i < b.Len(); i++ {
		if b.Test(i) {
			t.Fatalf("bit %d set in zero bitmap", i)
		}
		b.Set(i)
		if !b.Test(i) {
			t.Fatalf("bit %d not set by Set", i)
		}
		if c := b.Count(); c != i+1 {
			t.Fatalf("Count = %d after setting %d bits", c, i+1)
		}
		// Only bit i's word changed, and only in bit i.
		if w := b[i/64]; w != ^uint64(0)>>(63-uint(i%64)) {
			t.Fatalf("after Set(%d) word %d = %#x", i, i/64, w)
		}
	}
	b.Set(5) // idempotent
	if b.Count() != b.Len() {
		t.Fatal("Set of a set bit changed the count")
	}
	for i := 0; i < b.Len(); i += 3 {
		b.Clear(i)
		if b.Test(i) {
			t.Fatalf("bit %d still set after Clear", i)
		}
	}
	b.Clear(0) // idempotent
	for i := 0; i < b.Len(); i++ {
		if b.Test(i) != (i%3 != 0) {
			t.Fatalf("bit %d = %v", i, b.Test(i))
		}
	}
	b.ClearAll()
	for i, w := range b {
		if w != 0 {
			t.Fatalf("ClearAll left word %d = %#x", i, w)
		}
	}
}

// TestBitsOutOfRange checks that indexes outside [0, Len()) are ignored
// by the setters, read as clear, and give -1 from the searches past the
// end.
func TestBitsOutOfRange(t *testing.T) {
	for _, n := range []int{0, 1, 2} {
		b := make(gcbits.Bits, n)
		for i := range b {
			b[i] = 0x5555_5555_5555_5555
		}
		snapshot := append(gcbits.Bits(nil), b...)
		for _, i := range badIndexes(n) {
			b.Set(i)
			b.Clear(i)
			b.Flip(i)
			b.SetRange(i, i+1)
			b.FlipRange(i, i+1)
			b.ClearRange(i, i+1)
			if b.SetAtomic(i) {
				t.Errorf("%d words: SetAtomic(%d) = true", n, i)
			}
			if b.ClearAtomic(i) {
				t.Errorf("%d words: ClearAtomic(%d) = true", n, i)
			}
			if b.Test(i) || b.TestAtomic(i) {
				t.Errorf("%d words: bit %d reads as set", n, i)
			}
			for w := range b {
				if b[w] != snapshot[w] {
					t.Fatalf("%d words: index %d changed word %d to %#x", n, i, w, b[w])
				}
			}
			if i >= 0 {
				if got := b.NextSet(i); got != -1 {
					t.Errorf("%d words: NextSet(%d) = %d, want -1", n, i, got)
				}
				if got := b.NextClear(i); got != -1 {
					t.Errorf("%d words: NextClear(%d) = %d, want -1", n, i, got)
				}
			}
		}
		// A negative start searches from 0.
		for _, from := range []int{-1, -64, math.MinInt} {
			if got, want := b.NextSet(from), b.NextSet(0); got != want {
				t.Errorf("%d words: NextSet(%d) = %d, want %d", n, from, got, want)
			}
			if got, want := b.NextClear(from), b.NextClear(0); got != want {
				t.Errorf("%d words: NextClear(%d) = %d, want %d", n, from, got, want)
			}
		}
	}
	// Ranges are clipped to [0, Len()); an empty or reversed one does
	// nothing.
	b := make(gcbits.Bits, 2)
	b.SetRange(math.MinInt, math.MaxInt)
	b.ClearRange(5, 5)
	b.ClearRange(70, 60)
	b.FlipRange(-10, 1)
	if b.Count() != 127 || b.Test(0) {
		t.Errorf("after clipped ranges: %d bits set, bit 0 %v", b.Count(), b.Test(0))
	}
	var nilBits gcbits.Bits
	nilBits.Set(0)
	nilBits.Clear(0)
	nilBits.Flip(0)
	nilBits.ClearAll()
	nilBits.SetAll()
	nilBits.SetRange(0, 10)
	nilBits.FlipRange(0, 10)
	nilBits.And(b)
	nilBits.Or(b)
	nilBits.AndNot(b)
	nilBits.Xor(b)
	if nilBits.SetAtomic(0) || nilBits.ClearAtomic(0) || nilBits.Test(0) || nilBits.TestAtomic(0) || nilBits.Count() != 0 ||
		nilBits.NextSet(0) != -1 || nilBits.NextClear(-5) != -1 || nilBits.Any() || !nilBits.None() ||
		nilBits.String() != "{}" || !nilBits.Equal(make(gcbits.Bits, 3)) || nilBits.Equal(b) {
		t.Error("nil Bits is not an empty bitmap")
	}
	for i := range nilBits.EachSet() {
		t.Errorf("nil Bits yields %d", i)
	}
}

// naiveNext is the reference for NextSet (want true) and NextClear.
func naiveNext(b gcbits.Bits, from int, want bool) int {
	for i := max(from, 0); i < b.Len(); i++ {
		if b.Test(i) == want {
			return i
		}
	}
	return -1
}

// TestBitsNextAcrossWords checks NextSet and NextClear from every start
// against a naive scan, on patterns whose runs cross word boundaries.
func TestBitsNextAcrossWords(t *testing.T) {
	patterns := map[string]func(i int) bool{
		"empty":       func(int) bool { return false },
		"full":        func(int) bool { return true },
		"last":        func(i int) bool { return i == 4*64-1 },
		"first":       func(i int) bool { return i == 0 },
		"boundaries":  func(i int) bool { return i%64 == 63 || i%64 == 0 },
		"sparse":      func(i int) bool { return i == 70 || i == 200 },
		"wordgap":     func(i int) bool { return i < 10 || i >= 3*64+5 }, // two whole words clear between
		"alternating": func(i int) bool { return i%2 == 1 },
	}
	for name, p := range patterns {
		b := make(gcbits.Bits, 4)
		for i := 0; i < b.Len(); i++ {
			if p(i) {
				b.Set(i)
			}
		}
		for from := -2; from <= b.Len()+1; from++ {
			if got, want := b.NextSet(from), naiveNext(b, from, true); got != want {
				t.Errorf("%s: NextSet(%d) = %d, want %d", name, from, got, want)
			}
			if got, want := b.NextClear(from), naiveNext(b, from, false); got != want {
				t.Errorf("%s: NextClear(%d) = %d, want %d", name, from, got, want)
			}
		}
		// Iterating with NextSet visits exactly the set bits.
		n := 0
		for i := b.NextSet(0); i >= 0; i = b.NextSet(i + 1) {
			if !p(i) {
				t.Fatalf("%s: NextSet visited clear bit %d", name, i)
			}
			n++
		}
		if n != b.Count() {
			t.Errorf("%s: NextSet visited %d bits, Count = %d", name, n, b.Count())
		}
	}
}

func TestBitsCount(t *testing.T) {
	b := make(gcbits.Bits, 5)
	want := 0
	for i := range b {
		b[i] = uint64(0x0123_4567_89ab_cdef) << uint(i)
		want += bits.OnesCount64(b[i])
	}
	if got := b.Count(); got != want {
		t.Errorf("Count = %d, want %d", got, want)
	}
}

// TestBitsSetAtomicConcurrent sets every bit of one bitmap from many
// goroutines at once, each bit by several of them: no bit is lost, and
// exactly one SetAtomic per bit reports that it set it. Run it with -race.
func TestBitsSetAtomicConcurrent(t *testing.T) {
	b := make(gcbits.Bits, 64)
	raceBits(t, b, "SetAtomic", gcbits.Bits.SetAtomic, true)
	if c := b.Count(); c != b.Len() {
		t.Errorf("Count = %d after setting all %d bits", c, b.Len())
	}
}

// raceBits applies op (SetAtomic, or ClearAtomic) to every bit of b from
// many goroutines at once, each bit by several of them. It checks that
// each bit reads as op leaves it (set if set is true) right after op, and
// that exactly one op per bit reports that it changed the bit.
func raceBits(t *testing.T, b gcbits.Bits, name string, op func(gcbits.Bits, int) bool, set bool) {
	t.Helper()
	leaves := "clear" // how op leaves a bit
	if set {
		leaves = "set"
	}
	workers := max(8, 4*runtime.GOMAXPROCS(0))
	const copies = 3 // every bit is changed by this many goroutines
	firsts := make([]atomic.Int32, b.Len())
	var wg sync.WaitGroup
	start := make(chan struct{})
	for w := range workers {
		wg.Go(func() {
			<-start
			// Worker w changes the bits i with i%workers in a window of
			// copies residues, each walking its own order, so the same
			// words are hit by several goroutines at once.
			for k := 0; k < b.Len(); k++ {
				i := (k*7 + w*131) % b.Len()
				if (i-w+workers)%workers >= copies {
					continue
				}
				if op(b, i) {
					firsts[i].Add(1)
				}
				if b.TestAtomic(i) != set {
					t.Errorf("bit %d does not read %s right after %s", i, leaves, name)
				}
			}
		})
	}
	close(start)
	wg.Wait()
	for i := range firsts {
		if n := firsts[i].Load(); n != 1 {
			t.Errorf("bit %d: %d %s calls reported changing it, want 1", i, n, name)
		}
	}
}

// ref is the reference model of a Bits: one bool per bit.
type ref []bool

func refOf(b gcbits.Bits) ref {
	r := make(ref, b.Len())
	for i := range r {
		r[i] = b[i/64]>>(i%64)&1 == 1
	}
	return r
}

func (r ref) set() []int {
	var s []int
	for i, v := range r {
		if v {
			s = append(s, i)
		}
	}
	return s
}

// at is bit i of r, clear past its end, as the set operations read c.
func (r ref) at(i int) bool { return i < len(r) && r[i] }

// checkRef fails t unless b holds exactly the bits of want.
func checkRef(t interface {
	Helper()
	Fatalf(string, ...any)
}, what string, b gcbits.Bits, want ref) {
	t.Helper()
	if got := refOf(b); !slices.Equal(got, want) {
		t.Fatalf("%s: bits %v, want %v", what, got.set(), want.set())
	}
}

// drawBits draws a bitmap of 0 to 4 words, sparse, dense or random.
func drawBits(t *rapid.T, label string) gcbits.Bits {
	n := rapid.IntRange(0, 4).Draw(t, label+" words")
	b := make(gcbits.Bits, n)
	for i := range b {
		b[i] = rapid.SampledFrom([]uint64{0, ^uint64(0), 1, 1 << 63}).Draw(t, label+" word")
		if rapid.Bool().Draw(t, label+" random") {
			b[i] = rapid.Uint64().Draw(t, label+" bits")
		}
	}
	return b
}

// TestBitsOpsModel checks every Bits method against the []bool model, on
// bitmaps of 0 to 4 words, with the second operand of the set operations
// shorter, as long as or longer than the first, and indexes and ranges
// inside, across and outside them.
func TestBitsOpsModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		b, c := drawBits(t, "b"), drawBits(t, "c")
		want, cref := refOf(b), refOf(c)
		index := rapid.IntRange(-70, 4*64+70)
		t.Repeat(map[string]func(*rapid.T){
			"Flip": func(t *rapid.T) {
				i := index.Draw(t, "i")
				b.Flip(i)
				if i >= 0 && i < len(want) {
					want[i] = !want[i]
				}
			},
			"ClearAtomic": func(t *rapid.T) {
				i := index.Draw(t, "i")
				in := i >= 0 && i < len(want)
				if got := b.ClearAtomic(i); got != (in && want[i]) {
					t.Fatalf("ClearAtomic(%d) = %v with bit %v", i, got, in && want[i])
				}
				if in {
					want[i] = false
				}
			},
			"Range": func(t *rapid.T) {
				lo, hi := index.Draw(t, "lo"), index.Draw(t, "hi")
				op := rapid.SampledFrom([]string{"set", "clear", "flip"}).Draw(t, "op")
				switch op {
				case "set":
					b.SetRange(lo, hi)
				case "clear":
					b.ClearRange(lo, hi)
				case "flip":
					b.FlipRange(lo, hi)
				}
				for i := max(lo, 0); i < min(hi, len(want)); i++ {
					want[i] = op == "set" || (op == "flip" && !want[i])
				}
			},
			"SetAll": func(t *rapid.T) {
				b.SetAll()
				for i := range want {
					want[i] = true
				}
			},
			"SetOp": func(t *rapid.T) {
				op := rapid.SampledFrom([]string{"And", "Or", "AndNot", "Xor"}).Draw(t, "op")
				switch op {
				case "And":
					b.And(c)
				case "Or":
					b.Or(c)
				case "AndNot":
					b.AndNot(c)
				case "Xor":
					b.Xor(c)
				}
				for i := range want {
					x, y := want[i], cref.at(i)
					want[i] = map[string]bool{"And": x && y, "Or": x || y, "AndNot": x && !y, "Xor": x != y}[op]
				}
				checkRef(t, op, c, cref) // c is not changed
			},
			"SelfOp": func(t *rapid.T) {
				// The operand may be b itself.
				b.Xor(b)
				clear(want)
			},
			"": func(t *rapid.T) {
				checkRef(t, "b", b, want)
				set := want.set()
				if got := slices.Collect(b.EachSet()); !slices.Equal(got, set) {
					t.Fatalf("EachSet() = %v, want %v", got, set)
				}
				if b.Count() != len(set) || b.Any() != (len(set) > 0) || b.None() != (len(set) == 0) {
					t.Fatalf("Count %d, Any %v, None %v with %d bits set", b.Count(), b.Any(), b.None(), len(set))
				}
				eq := slices.Equal(set, cref.set())
				if b.Equal(c) != eq || c.Equal(b) != eq {
					t.Fatalf("Equal(%v, %v) = %v, %v", set, cref.set(), b.Equal(c), c.Equal(b))
				}
				if !b.Equal(b) || !b.Equal(append(slices.Clone(b), 0)) {
					t.Fatal("b differs from itself, or from itself with a zero word more")
				}
				items := make([]string, len(set))
				for k, i := range set {
					items[k] = strconv.Itoa(i)
				}
				if got, want := b.String(), "{"+strings.Join(items, ",")+"}"; got != want {
					t.Fatalf("String() = %q, want %q", got, want)
				}
			},
		})
	})
}

// TestBitsEachSetStops checks that EachSet's iterator stops when the
// loop breaks and that it sees a change to a word it has not reached yet.
func TestBitsEachSetStops(t *testing.T) {
	b := make(gcbits.Bits, 3)
	b.Set(5)
	b.Set(70)
	b.Set(130)
	var got []int
	for i := range b.EachSet() {
		got = append(got, i)
		if i == 5 {
			b.Clear(70)
			b.Set(71)
		}
		if i == 71 {
			break
		}
	}
	if want := []int{5, 71}; !slices.Equal(got, want) {
		t.Errorf("iterated %v, want %v", got, want)
	}
	var nilBits gcbits.Bits
	for i := range nilBits.EachSet() {
		t.Errorf("nil Bits yields %d", i)
	}
}

// TestBitsLengthRule checks the rule for a bitmap of n bits that is not a
// multiple of 64: Alloc(100) gives 128 bits whose tail, with SetRange and
// FlipRange bounded by n, stays clear, so that Count, the iterator and the
// set operations see exactly the n bits; SetAll does set the tail.
func TestBitsLengthRule(t *testing.T) {
	a := arenatest.New(t, gcbits.Options{})
	const n = 100
	b, err := a.Alloc(n)
	if err != nil {
		t.Fatal(err)
	}
	if b.Len() != 128 {
		t.Fatalf("Alloc(%d).Len() = %d, want 128", n, b.Len())
	}
	tailClear := func(what string, b gcbits.Bits) {
		t.Helper()
		if i := b.NextSet(n); i != -1 {
			t.Errorf("%s: tail bit %d set", what, i)
		}
	}
	b.SetRange(0, n)
	tailClear("SetRange(0, n)", b)
	if b.Count() != n || b.NextClear(0) != n {
		t.Errorf("SetRange(0, n): Count %d, first clear %d; want %d, %d", b.Count(), b.NextClear(0), n, n)
	}
	c := make(gcbits.Bits, 2)
	c.SetRange(n/2, n)
	for _, op := range []func(gcbits.Bits){b.And, b.Or, b.AndNot, b.Xor} {
		op(c)
		tailClear("a set operation", b)
	}
	b.FlipRange(0, n) // the complement
	tailClear("FlipRange(0, n)", b)
	if got, last := b.Count(), slices.Collect(b.EachSet()); got == 0 || last[len(last)-1] >= n {
		t.Errorf("after the complement: Count %d, bits %v", got, last)
	}
	b.SetAll()
	if b.Count() != 128 {
		t.Errorf("SetAll: Count %d, want 128", b.Count())
	}
}

// TestBitsClearAtomicConcurrent clears every bit of a full bitmap from
// many goroutines at once, each bit by several of them: every bit ends
// clear, and exactly one ClearAtomic per bit reports that it cleared it.
// Run it with -race.
func TestBitsClearAtomicConcurrent(t *testing.T) {
	b := make(gcbits.Bits, 64)
	b.SetAll()
	raceBits(t, b, "ClearAtomic", gcbits.Bits.ClearAtomic, false)
	if b.Any() {
		t.Errorf("%d bits still set", b.Count())
	}
}
