package sweep

import (
	"errors"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/gcbits/gcbits"
)

// aboveInt64 returns x+1 and math.MaxInt where an int holds them (on
// 32-bit systems it may hold neither): bad inputs above a limit.
func aboveInt64(x int64) []int {
	if x >= math.MaxInt {
		return nil
	}
	return []int{int(x + 1), math.MaxInt}
}

func newArena(t testing.TB, o gcbits.Options) *gcbits.Arena {
	t.Helper()
	a, err := gcbits.New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

// TestSpanModel drives standalone spans of several sizes through random
// allocations, marks and sweeps against a model: a slot is never handed
// out while allocated or marked, Alloc finds every free slot, and a sweep
// frees exactly allocated − marked.
func TestSpanModel(t *testing.T) {
	a := newArena(t, gcbits.Options{})
	for _, n := range []int{1, 2, 63, 64, 65, 127, 128, 341, 512, 1000, 1024, 65535} {
		rng := rand.New(rand.NewPCG(uint64(n), 7))
		s, err := NewSpan(a, n, 16)
		if err != nil {
			t.Fatal(err)
		}
		alloc := make([]bool, n) // the model: allocated slots
		for cycle := range 20 {
			// Allocate a random number of slots.
			want := rng.IntN(n + 2)
			nfree := 0
			for _, b := range alloc {
				if !b {
					nfree++
				}
			}
			for range want {
				i, ok := s.Alloc()
				if !ok {
					if nfree > 0 && s.freeindex < n {
						t.Fatalf("n=%d cycle %d: Alloc failed with %d free slots", n, cycle, nfree)
					}
					break
				}
				if alloc[i] {
					t.Fatalf("n=%d cycle %d: slot %d handed out while allocated", n, cycle, i)
				}
				if s.IsMarked(i) {
					t.Fatalf("n=%d cycle %d: slot %d handed out while marked", n, cycle, i)
				}
				alloc[i] = true
				nfree--
			}
			count := 0
			for i, b := range alloc {
				if s.IsAllocated(i) != b {
					t.Fatalf("n=%d cycle %d: IsAllocated(%d) = %v, model %v", n, cycle, i, !b, b)
				}
				if b {
					count++
				}
			}
			if s.Allocated() != count {
				t.Fatalf("n=%d: Allocated %d, model %d", n, s.Allocated(), count)
			}
			// Mark a random subset of the allocated slots.
			marked := 0
			for i, b := range alloc {
				if b && rng.IntN(3) == 0 {
					if !s.Mark(i) {
						t.Fatalf("first Mark(%d) returned false", i)
					}
					if s.Mark(i) {
						t.Fatalf("second Mark(%d) returned true", i)
					}
					marked++
				}
			}
			if s.CountAlloc() != marked {
				t.Fatalf("CountAlloc %d, marked %d", s.CountAlloc(), marked)
			}
			freed, err := s.Sweep(a)
			if err != nil {
				t.Fatal(err)
			}
			if freed != count-marked {
				t.Fatalf("n=%d cycle %d: Sweep freed %d, want %d - %d", n, cycle, freed, count, marked)
			}
			for i := range alloc {
				alloc[i] = s.IsAllocated(i)
				if s.IsMarked(i) {
					t.Fatalf("mark of %d survived the sweep", i)
				}
			}
			if s.Allocated() != marked {
				t.Fatalf("after sweep Allocated %d, want %d", s.Allocated(), marked)
			}
			a.Advance()
		}
	}
}

// TestSpanFillsCompletely checks that Alloc hands out every free slot,
// in increasing order, whatever survived the sweep.
func TestSpanFillsCompletely(t *testing.T) {
	a := newArena(t, gcbits.Options{})
	for _, n := range []int{1, 64, 100, 1024} {
		s, _ := NewSpan(a, n, 8)
		for i := range n {
			j, ok := s.Alloc()
			if !ok || j != i {
				t.Fatalf("n=%d: Alloc = %d %v, want %d", n, j, ok, i)
			}
		}
		if _, ok := s.Alloc(); ok {
			t.Fatal("Alloc succeeded on a full span")
		}
		for i := 0; i < n; i += 3 {
			s.Mark(i)
		}
		s.Sweep(a)
		prev := -1
		got := 0
		for {
			j, ok := s.Alloc()
			if !ok {
				break
			}
			if j%3 == 0 || j <= prev {
				t.Fatalf("n=%d: Alloc gave %d after %d", n, j, prev)
			}
			prev = j
			got++
		}
		if want := n - (n+2)/3; got != want {
			t.Fatalf("n=%d: %d slots after sweep, want %d", n, got, want)
		}
	}
}

// TestSpanConcurrentMark marks overlapping sets of slots from many
// goroutines: every slot is reported first exactly once, no mark is lost.
func TestSpanConcurrentMark(t *testing.T) {
	a := newArena(t, gcbits.Options{})
	const n, g = 1024, 8
	s, _ := NewSpan(a, n, 8)
	for range n {
		s.Alloc()
	}
	var firsts [n]atomic.Int32
	var wg sync.WaitGroup
	for w := range g {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for range 4 * n {
				i := rng.IntN(n)
				if s.Mark(i) {
					firsts[i].Add(1)
				}
			}
			// Everyone marks the even slots too.
			for i := 0; i < n; i += 2 {
				if s.Mark(i) {
					firsts[i].Add(1)
				}
			}
		}()
	}
	wg.Wait()
	marked := 0
	for i := range n {
		f := firsts[i].Load()
		if f > 1 {
			t.Fatalf("slot %d reported first %d times", i, f)
		}
		if (f == 1) != s.IsMarked(i) {
			t.Fatalf("slot %d: first %d, marked %v", i, f, s.IsMarked(i))
		}
		if i%2 == 0 && f != 1 {
			t.Fatalf("even slot %d lost its mark", i)
		}
		marked += int(f)
	}
	if s.CountAlloc() != marked {
		t.Fatalf("CountAlloc %d, %d marks", s.CountAlloc(), marked)
	}
	if freed, _ := s.Sweep(a); freed != n-marked {
		t.Fatalf("freed %d, want %d", freed, n-marked)
	}
}

// TestSpanAcquireOnce races sweepers for spans in several generations:
// exactly one wins each span each generation.
func TestSpanAcquireOnce(t *testing.T) {
	a := newArena(t, gcbits.Options{})
	spans := make([]*Span, 64)
	for i := range spans {
		spans[i], _ = NewSpan(a, 64, 8)
	}
	for sg := uint32(2); sg < 40; sg += 2 {
		var wins [64]atomic.Int32
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i, s := range spans {
					if s.TryAcquire(sg) {
						wins[i].Add(1)
						if s.SweepGen() != sg-1 {
							t.Errorf("acquired span at %d, want %d", s.SweepGen(), sg-1)
						}
						s.Sweep(a)
						s.SetSwept(sg)
					}
				}
			}()
		}
		wg.Wait()
		for i := range spans {
			if w := wins[i].Load(); w != 1 {
				t.Fatalf("sg %d: span %d swept %d times", sg, i, w)
			}
			if spans[i].TryAcquire(sg) {
				t.Fatalf("sg %d: swept span acquired again", sg)
			}
		}
		a.Advance()
	}
}

func TestSpanBadInput(t *testing.T) {
	a := newArena(t, gcbits.Options{})
	for _, c := range []struct{ n, size int }{{0, 8}, {-1, 8}, {maxSlots, 8}, {10, 0}, {10, -8}} {
		if _, err := NewSpan(a, c.n, c.size); !errors.Is(err, ErrSize) {
			t.Errorf("NewSpan(%d, %d) = %v, want ErrSize", c.n, c.size, err)
		}
	}
	if _, err := NewSpan(nil, 8, 8); !errors.Is(err, ErrOption) {
		t.Errorf("NewSpan(nil) = %v", err)
	}
	s, _ := NewSpan(a, 10, 8)
	for _, i := range append([]int{-1, 10, 63, 64}, aboveInt64(1<<40-1)...) {
		if s.Mark(i) || s.IsMarked(i) || s.IsAllocated(i) {
			t.Errorf("slot %d out of range reads as set", i)
		}
	}
	if _, err := s.Sweep(nil); !errors.Is(err, ErrOption) {
		t.Errorf("Sweep(nil) = %v", err)
	}
	// A failing source leaves the span unchanged.
	s.Alloc()
	s.Mark(0)
	if _, err := s.Sweep(failSource{}); !errors.Is(err, gcbits.ErrLimit) {
		t.Fatalf("Sweep with a failing source = %v", err)
	}
	if s.Allocated() != 1 || s.CountAlloc() != 1 {
		t.Fatalf("failed sweep changed the span: %d allocated, %d marked", s.Allocated(), s.CountAlloc())
	}
}

func TestClassTable(t *testing.T) {
	ct, err := newClassTable(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(ct.classes) != 68 || ct.maxSize != 32768 {
		t.Fatalf("%d classes up to %d, want 68 up to 32768", len(ct.classes), ct.maxSize)
	}
	// Objects per span, from the runtime's table.
	for c, want := range map[int]int{1: 1024, 2: 512, 3: 341, 5: 170, 35: 11, 41: 8, 50: 7, 60: 4, 65: 3, 67: 1} {
		if got := ct.nelems(c); got != want {
			t.Errorf("class %d: %d objects per span, want %d", c, got, want)
		}
	}
	for size := 1; size <= ct.maxSize; size++ {
		c := ct.classOf(size)
		if ct.classes[c].Size < size || (c > 1 && ct.classes[c-1].Size >= size) {
			t.Fatalf("size %d: class %d of %d bytes", size, c, ct.classes[c].Size)
		}
	}
	if ct.classOf(ct.maxSize+1) != 0 {
		t.Fatal("a large size got a small class")
	}
	for _, bad := range [][]Class{{{12, 1}}, {{16, 1}, {16, 1}}, {{8, 0}}, {{8, 65}}, {{16384, 1}}} {
		if _, err := newClassTable(bad); !errors.Is(err, ErrOption) {
			t.Errorf("classes %v: %v, want ErrOption", bad, err)
		}
	}
	if _, err := newClassTable([]Class{{8, 64}}); !errors.Is(err, ErrOption) {
		t.Error("65536 slots per span accepted")
	}
}

// failSource is a BitSource that always fails.
type failSource struct{}

func (failSource) Alloc(int) (gcbits.Bits, error) { return nil, gcbits.ErrLimit }
