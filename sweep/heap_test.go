package sweep

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"unsafe"

	"go.uber.org/goleak"

	"github.com/gcbits/gcbits/internal/workload"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// treeTrace traces nodes whose first two words are children.
func treeTrace(o Object, visit func(Ref)) {
	visit(o.Field(0))
	visit(o.Field(1))
}

func testHeap(t testing.TB, o Options) *Heap {
	t.Helper()
	if o.Trace == nil {
		o.Trace = treeTrace
	}
	h, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

func newMutator(t testing.TB, h *Heap) *Mutator {
	t.Helper()
	m, err := h.NewMutator()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// small forces many collections.
var small = Options{MinHeapBytes: 32 << 10, GCPercent: 50, RegionBytes: 256 << 10}

// trees builds and checks binary trees for one Mutator.
type trees = workload.Trees[Ref, *Mutator, *Heap]

// binaryTrees runs the benchmark on h and returns its output.
func binaryTrees(h *Heap, n int) (string, error) {
	var out strings.Builder
	err := workload.BinaryTrees(h, n, &out)
	return out.String(), err
}

// checkProtocol fails t if the heap's books show a protocol failure.
func checkProtocol(t testing.TB, st Stats) {
	t.Helper()
	if st.LifetimeViolations != 0 || st.UnsweptTaken != 0 || st.DoubleCached != 0 || st.BadRefs != 0 {
		t.Fatalf("protocol failures: %d lifetime violations, %d unswept spans taken, %d spans cached twice, %d bad refs",
			st.LifetimeViolations, st.UnsweptTaken, st.DoubleCached, st.BadRefs)
	}
}

func TestBinaryTreesFormula(t *testing.T) {
	for _, unchecked := range []bool{false, true} {
		for n := 4; n <= 10; n += 2 {
			o := small
			o.Unchecked = unchecked
			h := testHeap(t, o)
			got, err := binaryTrees(h, n)
			if err != nil {
				t.Fatal(err)
			}
			if want := workload.BinaryTreesWant(n); got != want {
				t.Fatalf("depth %d (unchecked %v):\n%s\nwant:\n%s", n, unchecked, got, want)
			}
			h.WaitSweep()
			st := h.Stats()
			checkProtocol(t, st)
			if n == 10 {
				if st.Cycles < 5 {
					t.Fatalf("only %d collections", st.Cycles)
				}
				if st.PeakSlots*5 > int64(st.Allocs) {
					t.Fatalf("peak %d slots of %d allocated: slots are not reused", st.PeakSlots, st.Allocs)
				}
				t.Logf("depth %d: %d collections, peak %d slots, %d allocated", n, st.Cycles, st.PeakSlots, st.Allocs)
			}
		}
	}
}

// sweepLog records which spans were swept in which generation.
type sweepLog struct {
	mu     sync.Mutex
	sweeps map[*Span]map[uint32]int // span → sweepgen → sweeps
	flips  map[uint32]int           // sweepgen → spans to sweep
	heap   *Heap
	bad    []string
}

func (l *sweepLog) install(h *Heap) {
	l.sweeps = map[*Span]map[uint32]int{}
	l.flips = map[uint32]int{}
	l.heap = h
	h.onSweep = func(s *Span, sg uint32) {
		// The sweeper holds the span: its generation says so.
		if g := s.SweepGen(); g != sg-1 {
			l.mu.Lock()
			l.bad = append(l.bad, fmt.Sprintf("span %d swept at generation %d, heap %d", s.idx, g, sg))
			l.mu.Unlock()
		}
		l.mu.Lock()
		if l.sweeps[s] == nil {
			l.sweeps[s] = map[uint32]int{}
		}
		l.sweeps[s][sg]++
		l.mu.Unlock()
	}
	h.onFlip = func(sg uint32, n int) {
		l.mu.Lock()
		l.flips[sg] = n
		l.mu.Unlock()
	}
}

// verify checks that every generation swept exactly the spans in use at
// its flip, each once.
func (l *sweepLog) verify(t *testing.T) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.bad) > 0 {
		t.Fatal(strings.Join(l.bad, "\n"))
	}
	per := map[uint32]int{}
	for s, m := range l.sweeps {
		for sg, n := range m {
			if n != 1 {
				t.Fatalf("span %d swept %d times in generation %d", s.idx, n, sg)
			}
			per[sg]++
		}
	}
	for sg, n := range l.flips {
		if per[sg] != n {
			t.Fatalf("generation %d: %d spans swept, %d in use at the flip", sg, per[sg], n)
		}
	}
	if len(l.flips) < 5 {
		t.Fatalf("only %d sweep phases", len(l.flips))
	}
}

// TestSweepOnceConcurrent runs Mutators, lazy sweeping and background
// sweepers together and checks that each span in use at a flip is swept
// exactly once in that cycle, that no Mutator ever takes an unswept span
// or one another Mutator holds, and that the trees stay intact.
func TestSweepOnceConcurrent(t *testing.T) {
	for _, sweepers := range []int{-1, 1, 4} {
		o := small
		o.Sweepers = sweepers
		h := testHeap(t, o)
		var log sweepLog
		log.install(h)
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for w := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				m, err := h.NewMutator()
				if err != nil {
					errs <- err
					return
				}
				defer m.Close()
				b := trees{H: h, M: m}
				rng := rand.New(rand.NewPCG(uint64(w), 3))
				keep, err := b.Tree(6)
				if err != nil {
					errs <- err
					return
				}
				m.Push(keep)
				for range 150 {
					d := 2 + rng.IntN(6)
					r, err := b.Tree(d)
					if err == nil {
						var c int
						if c, err = b.Check(r); err == nil && c != 1<<(d+1)-1 {
							err = fmt.Errorf("tree of depth %d has %d nodes", d, c)
						}
					}
					if err == nil && rng.IntN(20) == 0 {
						err = m.GC()
					}
					if err != nil {
						errs <- err
						return
					}
				}
				if c, err := b.Check(keep); err != nil || c != 127 {
					errs <- fmt.Errorf("kept tree: %d nodes, %v", c, err)
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		h.WaitSweep()
		log.verify(t)
		checkProtocol(t, h.Stats())
	}
}

// TestConcurrentMarkLosesNothing marks a random graph with sharing and
// cycles from many workers: exactly the reachable objects survive.
func TestConcurrentMarkLosesNothing(t *testing.T) {
	const n, fields = 20000, 5
	var roots []Ref
	h := testHeap(t, Options{
		MarkWorkers: 8,
		GCPercent:   -1,
		Trace: func(o Object, visit func(Ref)) {
			for i := range fields {
				visit(o.Field(i))
			}
		},
		Roots: func(visit func(Ref)) {
			for _, r := range roots {
				visit(r)
			}
		},
	})
	m := newMutator(t, h)
	defer m.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	objs := make([]Ref, n)
	edges := make([][fields]int, n) // -1: Nil
	for i := range objs {
		r, err := m.Alloc(8 * fields)
		if err != nil {
			t.Fatal(err)
		}
		objs[i] = r
	}
	for cycle := range 6 {
		// Rewire: object i points to random objects (not all alive).
		for i := range objs {
			if objs[i] == Nil {
				continue
			}
			for f := range fields {
				j := rng.IntN(n)
				if objs[j] == Nil || rng.IntN(3) == 0 {
					j = -1
				}
				edges[i][f] = j
				v := Nil
				if j >= 0 {
					v = objs[j]
				}
				if err := h.SetField(objs[i], f, v); err != nil {
					t.Fatal(err)
				}
			}
		}
		roots = roots[:0]
		var rootIdx []int
		for range 20 {
			if i := rng.IntN(n); objs[i] != Nil {
				roots = append(roots, objs[i])
				rootIdx = append(rootIdx, i)
			}
		}
		// The expected reachable set.
		reach := make([]bool, n)
		stack := append([]int(nil), rootIdx...)
		for len(stack) > 0 {
			i := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if reach[i] {
				continue
			}
			reach[i] = true
			for _, j := range edges[i] {
				if j >= 0 && !reach[j] {
					stack = append(stack, j)
				}
			}
		}
		nreach := 0
		for _, b := range reach {
			if b {
				nreach++
			}
		}
		if err := m.GC(); err != nil {
			t.Fatal(err)
		}
		st := h.Stats()
		if st.LiveSlots != int64(nreach) {
			t.Fatalf("cycle %d: %d objects marked, %d reachable", cycle, st.LiveSlots, nreach)
		}
		h.WaitSweep()
		for i, r := range objs {
			if r == Nil {
				continue
			}
			err := h.Valid(r)
			if reach[i] != (err == nil) {
				t.Fatalf("cycle %d: object %d reachable %v, Valid %v", cycle, i, reach[i], err)
			}
			if !reach[i] {
				objs[i] = Nil
			}
		}
		// Refill some of the dead.
		for i := range objs {
			if objs[i] == Nil && rng.IntN(2) == 0 {
				r, err := m.Alloc(8 * fields)
				if err != nil {
					t.Fatal(err)
				}
				objs[i] = r
			}
		}
	}
	checkProtocol(t, h.Stats())
}

// TestMutatorLayout checks that a Mutator fills a 128-byte block of its
// own: Mutators write their counters and root stacks on every allocation,
// from different goroutines.
func TestMutatorLayout(t *testing.T) {
	if unsafe.Sizeof(uintptr(0)) != 8 {
		t.Skip("the padding is computed for 64-bit systems")
	}
	if n := unsafe.Sizeof(Mutator{}); n != 128 {
		t.Fatalf("Mutator is %d bytes, want 128 (adjust its padding)", n)
	}
}
