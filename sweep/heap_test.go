package sweep_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"go.uber.org/goleak"

	"github.com/gcbits/gcbits"
	"github.com/gcbits/gcbits/internal/workload"
	"github.com/gcbits/gcbits/sweep"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// newTrees returns binary-tree builders for m, a Mutator of h. If the
// node Type cannot be made (a closed heap), every allocation of the
// builders reports ErrType.
func newTrees(h *sweep.Heap, m *sweep.Mutator) workload.Trees {
	tr, _ := workload.NewTrees(h, m)
	return tr
}

// closeTwice closes c, a Heap or a Mutator, and fails t unless that
// succeeds and then a second Close of c, and an Alloc on m (c itself or
// a Mutator of the Heap c), fail with ErrClosed.
func closeTwice(t *testing.T, c interface{ Close() error }, m *sweep.Mutator) {
	t.Helper()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); !errors.Is(err, sweep.ErrClosed) {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := m.Alloc(16); !errors.Is(err, sweep.ErrClosed) {
		t.Fatalf("Alloc after Close: %v", err)
	}
}

// binaryTrees runs the benchmark on h and returns its output.
func binaryTrees(h *sweep.Heap, n int) (string, error) {
	var out strings.Builder
	err := workload.BinaryTrees(h, n, &out)
	return out.String(), err
}

func TestBinaryTreesFormula(t *testing.T) {
	for _, unchecked := range []bool{false, true} {
		for n := 4; n <= 10; n += 2 {
			o := sweep.SmallHeap
			o.Unchecked = unchecked
			h := sweep.NewTestHeap(t, o)
			got, err := binaryTrees(h, n)
			if err != nil {
				t.Fatal(err)
			}
			if want := workload.BinaryTreesWant(n); got != want {
				t.Fatalf("depth %d (unchecked %v):\n%s\nwant:\n%s", n, unchecked, got, want)
			}
			h.WaitSweep()
			st := h.Stats()
			sweep.CheckProtocol(t, st)
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
	sweeps map[uint32]map[uint32]int // span index → sweepgen → sweeps
	flips  map[uint32]int            // sweepgen → spans to sweep
	bad    []string
}

func (l *sweepLog) install(h *sweep.Heap) {
	l.sweeps = map[uint32]map[uint32]int{}
	l.flips = map[uint32]int{}
	sweep.SetSweepHooks(h, func(idx, spanGen, sg uint32) {
		l.mu.Lock()
		defer l.mu.Unlock()
		// The sweeper holds the span: its generation says so.
		if spanGen != sg-1 {
			l.bad = append(l.bad, fmt.Sprintf("span %d swept at generation %d, heap %d", idx, spanGen, sg))
		}
		if l.sweeps[idx] == nil {
			l.sweeps[idx] = map[uint32]int{}
		}
		l.sweeps[idx][sg]++
	}, func(sg uint32, n int) {
		l.mu.Lock()
		l.flips[sg] = n
		l.mu.Unlock()
	})
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
	for idx, m := range l.sweeps {
		for sg, n := range m {
			if n != 1 {
				t.Fatalf("span %d swept %d times in generation %d", idx, n, sg)
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
// exactly once in that cycle, that no sweep.Mutator ever takes an unswept span
// or one another sweep.Mutator holds, and that the trees stay intact.
func TestSweepOnceConcurrent(t *testing.T) {
	for _, sweepers := range []int{-1, 1, 4} {
		o := sweep.SmallHeap
		o.Sweepers = sweepers
		h := sweep.NewTestHeap(t, o)
		var log sweepLog
		log.install(h)
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for w := range 4 {
			wg.Go(func() {
				m, err := h.NewMutator()
				if err != nil {
					errs <- err
					return
				}
				defer m.Close()
				b := newTrees(h, m)
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
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		h.WaitSweep()
		log.verify(t)
		sweep.CheckProtocol(t, h.Stats())
	}
}

// TestConcurrentMarkLosesNothing marks a random graph with sharing and
// cycles from many workers: exactly the reachable objects survive.
func TestConcurrentMarkLosesNothing(t *testing.T) {
	const n, fields = 20000, 5
	var roots []sweep.Ref
	h := sweep.NewTestHeap(t, sweep.Options{
		MarkWorkers: 8,
		GCPercent:   -1,
		Trace: func(o sweep.Object, visit func(sweep.Ref)) {
			for i := range fields {
				visit(o.Field(i))
			}
		},
		Roots: func(visit func(sweep.Ref)) {
			for _, r := range roots {
				visit(r)
			}
		},
	})
	m := sweep.NewTestMutator(t, h)
	defer m.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	objs := make([]sweep.Ref, n)
	edges := make([][fields]int, n) // -1: sweep.Nil
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
			if objs[i] == sweep.Nil {
				continue
			}
			for f := range fields {
				j := rng.IntN(n)
				if objs[j] == sweep.Nil || rng.IntN(3) == 0 {
					j = -1
				}
				edges[i][f] = j
				v := sweep.Nil
				if j >= 0 {
					v = objs[j]
				}
				if err := m.Store(objs[i], f, v); err != nil {
					t.Fatal(err)
				}
			}
		}
		roots = roots[:0]
		var rootIdx []int
		for range 20 {
			if i := rng.IntN(n); objs[i] != sweep.Nil {
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
			if r == sweep.Nil {
				continue
			}
			err := h.Valid(r)
			if reach[i] != (err == nil) {
				t.Fatalf("cycle %d: object %d reachable %v, Valid %v", cycle, i, reach[i], err)
			}
			if !reach[i] {
				objs[i] = sweep.Nil
			}
		}
		// Refill some of the dead.
		for i := range objs {
			if objs[i] == sweep.Nil && rng.IntN(2) == 0 {
				r, err := m.Alloc(8 * fields)
				if err != nil {
					t.Fatal(err)
				}
				objs[i] = r
			}
		}
	}
	sweep.CheckProtocol(t, h.Stats())
}

// TestMutatorLayout checks that a sweep.Mutator fills a 128-byte block of its
// own: Mutators write their counters and root stacks on every allocation,
// from different goroutines.
func TestMutatorLayout(t *testing.T) {
	if unsafe.Sizeof(uintptr(0)) != 8 {
		t.Skip("the padding is computed for 64-bit systems")
	}
	if n := unsafe.Sizeof(sweep.Mutator{}); n != 128 {
		t.Fatalf("sweep.Mutator is %d bytes, want 128 (adjust its padding)", n)
	}
}

// TestMutatorStates covers Release, Acquire, Close, GC from outside and
// Safepoint: collections never wait for released Mutators, and a sweep.Mutator
// spinning on Safepoint does not block them.
func TestMutatorStates(t *testing.T) {
	h := sweep.NewTestHeap(t, sweep.SmallHeap)
	if err := h.GC(); err != nil { // no Mutators at all
		t.Fatal(err)
	}
	a, b := sweep.NewTestMutator(t, h), sweep.NewTestMutator(t, h)
	keep, _ := a.Alloc(16)
	a.Push(keep)
	a.Release()
	if _, err := a.Alloc(16); !errors.Is(err, sweep.ErrReleased) {
		t.Fatalf("Alloc on a released sweep.Mutator: %v", err)
	}
	if err := a.GC(); !errors.Is(err, sweep.ErrReleased) {
		t.Fatalf("GC on a released sweep.Mutator: %v", err)
	}
	b.Release()
	if err := h.GC(); err != nil { // both released: no wait
		t.Fatal(err)
	}
	h.WaitSweep()
	if err := h.Valid(keep); err != nil {
		t.Fatalf("root of a released sweep.Mutator was collected: %v", err)
	}
	a.Acquire()
	b.Acquire()

	// b spins on Safepoint while a allocates enough for many collections.
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
				b.Safepoint()
			}
		}
	}()
	ta := newTrees(h, a)
	for range 30 {
		if _, err := ta.Tree(8); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	<-done
	if h.Stats().Cycles < 5 {
		t.Fatalf("only %d collections", h.Stats().Cycles)
	}
	closeTwice(t, b, b)
	if err := a.SetRoot(5, sweep.Nil); !errors.Is(err, sweep.ErrBadRef) {
		t.Fatalf("SetRoot out of range: %v", err)
	}
	if a.Root(-1) != sweep.Nil || a.NumRoots() != 1 || a.Root(0) != keep {
		t.Fatal("root stack")
	}
	a.Pop(10)
	if a.NumRoots() != 0 {
		t.Fatal("Pop(10) left roots")
	}
	a.Close()
}

// TestClose checks that Close stops every goroutine, that use afterwards
// gives sweep.ErrClosed, and that a sweep.Heap closed in the middle of a sweep phase
// leaves nothing behind.
func TestClose(t *testing.T) {
	for range 20 {
		// The default minimum heap: building the tree does not collect.
		h, err := sweep.New(sweep.Options{Sweepers: 3})
		if err != nil {
			t.Fatal(err)
		}
		// The first span a sweeper takes holds it until Close has begun.
		started, gate := make(chan struct{}), make(chan struct{})
		var first atomic.Bool
		sweep.SetSweepHooks(h, func(uint32, uint32, uint32) {
			if first.CompareAndSwap(false, true) {
				close(started)
				<-gate
			}
		}, nil)
		m := sweep.NewTestMutator(t, h)
		b := newTrees(h, m)
		r, _ := b.Tree(10)
		m.GC() // starts a sweep phase that Close interrupts
		<-started
		if left := sweep.SweepLeft(h); left <= 0 {
			t.Fatalf("no sweep running at Close: %d spans left", left)
		}
		go func() {
			time.Sleep(5 * time.Millisecond)
			close(gate)
		}()
		closeTwice(t, h, m)
		if _, err := m.Load(r, 0); !errors.Is(err, sweep.ErrClosed) {
			t.Fatalf("Field after Close: %v", err)
		}
		if _, err := h.NewMutator(); !errors.Is(err, sweep.ErrClosed) {
			t.Fatalf("NewMutator after Close: %v", err)
		}
		if err := h.GC(); !errors.Is(err, sweep.ErrClosed) {
			t.Fatalf("GC after Close: %v", err)
		}
		h.WaitSweep()
		m.Close()
	}
	goleak.VerifyNone(t)
}

// TestBitmapFallback starves the bitmap arena: sweeps fall back to Go
// heap bitmaps and the heap stays correct.
func TestBitmapFallback(t *testing.T) {
	o := sweep.SmallHeap
	o.Arena = gcbits.Options{BlockSize: 4096, MaxBytes: 8192}
	h := sweep.NewTestHeap(t, o)
	got, err := binaryTrees(h, 8)
	if err != nil {
		t.Fatal(err)
	}
	if want := workload.BinaryTreesWant(8); got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	h.WaitSweep()
	st := h.Stats()
	sweep.CheckProtocol(t, st)
	if st.BitsFallbacks == 0 {
		t.Fatal("no fallback bitmaps: the arena was not starved")
	}
}

// TestNoDeadlockManyMutators runs short-lived Mutators that come and go
// while others trigger collections.
func TestNoDeadlockManyMutators(t *testing.T) {
	h := sweep.NewTestHeap(t, sweep.SmallHeap)
	var wg sync.WaitGroup
	deadline := time.Now().Add(2 * time.Second)
	for w := range 6 {
		wg.Go(func() {
			for i := 0; time.Now().Before(deadline); i++ {
				m, err := h.NewMutator()
				if err != nil {
					t.Error(err)
					return
				}
				b := newTrees(h, m)
				for range 1 + (w+i)%4 {
					if _, err := b.Tree(6); err != nil {
						t.Error(err)
					}
				}
				if i%3 == 0 {
					m.Release()
					time.Sleep(time.Millisecond)
					m.Acquire()
				}
				m.Close()
			}
		})
	}
	wg.Wait()
	sweep.CheckProtocol(t, h.Stats())
}

// TestTiming checks that with Options.Timing the heap counts the time of
// its sweeps and of their bitmaps, the part within the whole, and
// without it counts none.
func TestTiming(t *testing.T) {
	for _, timing := range []bool{false, true} {
		h := sweep.NewTestHeap(t, sweep.Options{GCPercent: -1, Sweepers: -1, Timing: timing})
		m := sweep.NewTestMutator(t, h)
		for range 1000 {
			if _, err := m.Alloc(64); err != nil {
				t.Fatal(err)
			}
		}
		for range 2 { // the second collection finishes the first one's sweep
			if err := m.GC(); err != nil {
				t.Fatal(err)
			}
		}
		st := h.Stats()
		if timing && (st.BitsTime <= 0 || st.SweepTime <= 0) || !timing && (st.BitsTime != 0 || st.SweepTime != 0) {
			t.Errorf("Timing %v: sweep %v, bitmaps %v", timing, st.SweepTime, st.BitsTime)
		}
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
