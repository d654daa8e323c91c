package gcbits

import (
	"math"
	"math/bits"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
)

// badIndexes are indexes outside every bitmap of n words.
func badIndexes(n int) []int {
	return []int{-1, -64, math.MinInt, n * 64, n*64 + 1, n*64 + 63, math.MaxInt}
}

func TestBitsLen(t *testing.T) {
	for _, n := range []int{0, 1, 2, 7} {
		if got := make(Bits, n).Len(); got != n*64 {
			t.Errorf("Len of %d words = %d", n, got)
		}
	}
	var nilBits Bits
	if nilBits.Len() != 0 {
		t.Error("nil Bits has bits")
	}
}

func TestBitsSetClearTest(t *testing.T) {
	b := make(Bits, 3)
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
		b := make(Bits, n)
		for i := range b {
			b[i] = 0x5555_5555_5555_5555
		}
		snapshot := append(Bits(nil), b...)
		for _, i := range badIndexes(n) {
			b.Set(i)
			b.Clear(i)
			if b.SetAtomic(i) {
				t.Errorf("%d words: SetAtomic(%d) = true", n, i)
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
	var nilBits Bits
	nilBits.Set(0)
	nilBits.Clear(0)
	nilBits.ClearAll()
	if nilBits.SetAtomic(0) || nilBits.Test(0) || nilBits.TestAtomic(0) || nilBits.Count() != 0 ||
		nilBits.NextSet(0) != -1 || nilBits.NextClear(-5) != -1 {
		t.Error("nil Bits is not an empty bitmap")
	}
}

// naiveNext is the reference for NextSet (want true) and NextClear.
func naiveNext(b Bits, from int, want bool) int {
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
		b := make(Bits, 4)
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
	b := make(Bits, 5)
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
	const words = 64
	b := make(Bits, words)
	workers := max(8, 4*runtime.GOMAXPROCS(0))
	const copies = 3 // every bit is set by this many goroutines
	firsts := make([]atomic.Int32, b.Len())
	var wg sync.WaitGroup
	start := make(chan struct{})
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			<-start
			// Worker w sets the bits i with i%workers in a window of
			// copies residues, each walking its own order, so the same
			// words are hit by several goroutines at once.
			for k := 0; k < b.Len(); k++ {
				i := (k*7 + w*131) % b.Len()
				if (i-w+workers)%workers >= copies {
					continue
				}
				if b.SetAtomic(i) {
					firsts[i].Add(1)
				}
				if !b.TestAtomic(i) {
					t.Errorf("bit %d reads clear right after SetAtomic", i)
				}
			}
		}(w)
	}
	close(start)
	wg.Wait()
	for i := range firsts {
		if n := firsts[i].Load(); n != 1 {
			t.Errorf("bit %d: %d SetAtomic calls reported setting it, want 1", i, n)
		}
	}
	if c := b.Count(); c != b.Len() {
		t.Errorf("Count = %d after setting all %d bits", c, b.Len())
	}
	if b.SetAtomic(17) {
		t.Error("SetAtomic of a set bit reported setting it")
	}
}
