package sweep

import (
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/gcbits/gcbits"
	"github.com/gcbits/gcbits/internal/arenatest"
)

// TestSpanModel drives standalone spans of several sizes through random
// allocations, marks and sweeps against a model: a slot is never handed
// out while allocated or marked, Alloc finds every free slot, and a sweep
// frees exactly allocated − marked.
func TestSpanModel(t *testing.T) {
	a := arenatest.New(t, gcbits.Options{})
	for _, n := range []int{1, 2, 63, 64, 65, 127, 128, 341, 512, 1000, 1024, 65535} {
		rng := rand.New(rand.NewPCG(uint64(n), 7))
		s := newBareSpan(a, n, 16)
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
				i, ok := s.nextFree()
				if !ok {
					if nfree > 0 && s.freeindex < n {
						t.Fatalf("n=%d cycle %d: Alloc failed with %d free slots", n, cycle, nfree)
					}
					break
				}
				if alloc[i] {
					t.Fatalf("n=%d cycle %d: slot %d handed out while allocated", n, cycle, i)
				}
				if s.isMarked(i) {
					t.Fatalf("n=%d cycle %d: slot %d handed out while marked", n, cycle, i)
				}
				alloc[i] = true
				nfree--
			}
			count := 0
			for i, b := range alloc {
				if s.isAllocated(i) != b {
					t.Fatalf("n=%d cycle %d: IsAllocated(%d) = %v, model %v", n, cycle, i, !b, b)
				}
				if b {
					count++
				}
			}
			if s.allocCount != count {
				t.Fatalf("n=%d: Allocated %d, model %d", n, s.allocCount, count)
			}
			// Mark a random subset of the allocated slots.
			marked := 0
			for i, b := range alloc {
				if b && rng.IntN(3) == 0 {
					if !s.mark(i) {
						t.Fatalf("first Mark(%d) returned false", i)
					}
					if s.mark(i) {
						t.Fatalf("second Mark(%d) returned true", i)
					}
					marked++
				}
			}
			if s.countMarked() != marked {
				t.Fatalf("CountAlloc %d, marked %d", s.countMarked(), marked)
			}
			freed, err := sweepBare(s, a)
			if err != nil {
				t.Fatal(err)
			}
			if freed != count-marked {
				t.Fatalf("n=%d cycle %d: Sweep freed %d, want %d - %d", n, cycle, freed, count, marked)
			}
			for i := range alloc {
				alloc[i] = s.isAllocated(i)
				if s.isMarked(i) {
					t.Fatalf("mark of %d survived the sweep", i)
				}
			}
			if s.allocCount != marked {
				t.Fatalf("after sweep Allocated %d, want %d", s.allocCount, marked)
			}
			a.Advance()
		}
	}
}

// TestSpanFillsCompletely checks that Alloc hands out every free slot,
// in increasing order, whatever survived the sweep.
func TestSpanFillsCompletely(t *testing.T) {
	a := arenatest.New(t, gcbits.Options{})
	for _, n := range []int{1, 64, 100, 1024} {
		s := newBareSpan(a, n, 8)
		for i := range n {
			j, ok := s.nextFree()
			if !ok || j != i {
				t.Fatalf("n=%d: Alloc = %d %v, want %d", n, j, ok, i)
			}
		}
		if _, ok := s.nextFree(); ok {
			t.Fatal("Alloc succeeded on a full span")
		}
		for i := 0; i < n; i += 3 {
			s.mark(i)
		}
		sweepBare(s, a)
		prev := -1
		got := 0
		for {
			j, ok := s.nextFree()
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

// TestSpanConcurrentMark races markers' setMarks over one span, one
// object and a whole word at a time: every slot marked is counted by
// exactly one marker, in its slots and bytes, no mark is lost, the span
// is queued by exactly one marker, and its sweep keeps the marked slots.
func TestSpanConcurrentMark(t *testing.T) {
	a := arenatest.New(t, gcbits.Options{})
	const n, g = 1024, 8
	s := newBareSpan(a, n, 8)
	s.layout = &layout{size: 8, scan: scanTracer}
	for range n {
		s.nextFree()
	}
	ws := make([]*marker, g)
	var wg sync.WaitGroup
	for w := range ws {
		ws[w] = &marker{}
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for range 4 * n {
				i := rng.IntN(n)
				ws[w].setMarks(s, i>>6, 1<<(i&63))
			}
			// Everyone marks the even slots too.
			for k := range n / 64 {
				ws[w].setMarks(s, k, 0x5555555555555555)
			}
		})
	}
	wg.Wait()
	var slots, bytes int64
	queued := 0
	for _, w := range ws {
		slots, bytes, queued = slots+w.slots, bytes+w.bytes, queued+w.spans.len()
	}
	marked := s.countMarked()
	if slots != int64(marked) || bytes != 8*slots {
		t.Fatalf("markers counted %d slots of %d bytes; %d are marked", slots, bytes, marked)
	}
	if marked <= n/2 {
		t.Fatalf("%d slots marked; want the %d even ones and some odd ones", marked, n/2)
	}
	for i := 0; i < n; i += 2 {
		if !s.isMarked(i) {
			t.Fatalf("even slot %d lost its mark", i)
		}
	}
	if queued != 1 {
		t.Fatalf("the span was queued %d times, want once", queued)
	}
	if freed, _ := sweepBare(s, a); freed != n-marked {
		t.Fatalf("freed %d, want %d", freed, n-marked)
	}
}

// TestSpanAcquireOnce races sweepers for spans in several generations:
// exactly one wins each span each generation.
func TestSpanAcquireOnce(t *testing.T) {
	a := arenatest.New(t, gcbits.Options{})
	spans := make([]*span, 64)
	for i := range spans {
		spans[i] = newBareSpan(a, 64, 8)
	}
	for sg := uint32(2); sg < 40; sg += 2 {
		var wins [64]atomic.Int32
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for i, s := range spans {
					if s.tryAcquire(sg) {
						wins[i].Add(1)
						if s.sweepgen.Load() != sg-1 {
							t.Errorf("acquired span at %d, want %d", s.sweepgen.Load(), sg-1)
						}
						sweepBare(s, a)
						s.setSwept(sg)
					}
				}
			})
		}
		wg.Wait()
		for i := range spans {
			if w := wins[i].Load(); w != 1 {
				t.Fatalf("sg %d: span %d swept %d times", sg, i, w)
			}
			if spans[i].tryAcquire(sg) {
				t.Fatalf("sg %d: swept span acquired again", sg)
			}
		}
		a.Advance()
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

// newBareSpan returns a span of nelems slots of elemSize bytes, all free,
// with bitmaps from src and no memory for its slots: it manages slot
// indexes and bitmaps only, for tests of the span's own protocol.
func newBareSpan(src bitSource, nelems, elemSize int) *span {
	s := &span{nelems: nelems, elemSize: uintptr(elemSize)}
	ab, _ := src.Alloc(nelems)
	mb, _ := src.Alloc(nelems)
	s.reset(ab, 0, mb, 0)
	return s
}

// sweepBare sweeps s with a fresh mark bitmap from src and returns the
// number of slots freed.
func sweepBare(s *span, src bitSource) (int, error) {
	nb, err := src.Alloc(s.nelems)
	if err != nil {
		return 0, err
	}
	return s.sweepWith(nb, 0), nil
}

// The span methods below serve the tests that drive standalone spans.

// isAllocated reports whether slot i is allocated. For the holder only.
func (s *span) isAllocated(i int) bool {
	if uint(i) >= uint(s.nelems) {
		return false
	}
	return i < s.freeindex || s.allocBits.Test(i)
}

// mark sets the mark bit of slot i atomically and reports whether this
// call set it (false if it was set already or i is out of range). Safe
// for concurrent use with other mark and isMarked calls.
//
// Marking a slot that is not allocated makes it allocated at the next
// sweep; a heap only marks slots that it has checked are allocated.
func (s *span) mark(i int) bool {
	if uint(i) >= uint(s.nelems) {
		return false
	}
	return s.markBits.SetAtomic(i)
}

// isMarked reports whether slot i is marked, reading atomically.
func (s *span) isMarked(i int) bool {
	if uint(i) >= uint(s.nelems) {
		return false
	}
	return s.markBits.TestAtomic(i)
}

// countMarked returns the number of marked slots, a population count of
// the mark bitmap: the number of slots that will be allocated after the
// next sweep. Not for use while marking is in progress.
func (s *span) countMarked() int { return s.markBits.Count() }
