package sweep

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// graphWords is the layout of the stress test's nodes: words 0 to 3
// hold Refs, word 4 the node's id.
const graphRefs, graphWords = 4, 5

// graphTrace traces the stress test's nodes when they are made by Alloc.
func graphTrace(o Object, visit func(Ref)) {
	for i := range graphRefs {
		visit(o.Field(i))
	}
}

// rewireGraph is one Mutator of the barrier stress test: it builds a
// graph of n nodes reachable from four roots, then, for the given time,
// swaps edges between random reachable nodes (the move that hides an
// object behind one the markers have scanned: its old edge is cut while a
// new one is stored), adds new nodes, and checks every so often that each
// node reachable from its roots is still a live object with its id. It
// returns the first failure.
func rewireGraph(h *Heap, typed bool, seed uint64, n int, d time.Duration) error {
	m, err := h.NewMutator()
	if err != nil {
		return err
	}
	defer m.Close()
	node, err := h.NewType(8*graphWords, 0, 1, 2, 3)
	if err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(seed, 11))
	id := seed << 32
	alloc := func() (Ref, error) {
		var r Ref
		var err error
		if typed {
			r, err = m.New(node)
		} else {
			r, err = m.Alloc(8 * graphWords)
		}
		if err == nil {
			id++
			err = m.StoreWord(r, graphRefs, id)
		}
		return r, err
	}
	// A spanning tree with random extra edges, built with every node
	// rooted; then only the first four stay roots.
	nodes := make([]Ref, 0, n)
	for k := range n {
		r, err := alloc()
		if err != nil {
			return err
		}
		m.Push(r)
		if k > 0 {
			nodes = nodes[:0]
			for i := range m.NumRoots() {
				nodes = append(nodes, m.Root(i))
			}
			parent := nodes[rng.IntN(k)]
			for f := range graphRefs {
				if x, _ := m.Load(parent, f); x == Nil {
					m.Store(parent, f, r)
					break
				}
				if f == graphRefs-1 { // full: chain through field 0's node
					c, _ := m.Load(parent, 0)
					m.Store(r, 0, c)
					m.Store(parent, 0, r)
				}
			}
			if rng.IntN(2) == 0 {
				m.Store(r, graphRefs-1, nodes[rng.IntN(k)])
			}
		}
	}
	for i := 4; i < n; i++ {
		m.SetRoot(i, Nil)
	}
	m.PopTo(4)

	// walk returns a random node reachable from the roots.
	walk := func() Ref {
		r := m.Root(rng.IntN(4))
		for range rng.IntN(12) {
			x, err := m.Load(r, rng.IntN(graphRefs))
			if err != nil || x == Nil {
				break
			}
			r = x
		}
		return r
	}
	check := func() error {
		seen := map[Ref]bool{}
		stack := []Ref{m.Root(0), m.Root(1), m.Root(2), m.Root(3)}
		for len(stack) > 0 {
			r := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if r == Nil || seen[r] {
				continue
			}
			seen[r] = true
			v, err := m.View(r)
			if err != nil {
				return fmt.Errorf("a reachable node was freed (%d reachable so far): %w", len(seen), err)
			}
			if w, _ := v.LoadWord(graphRefs); w>>32 != seed {
				return fmt.Errorf("reachable node %v holds id %#x", r, w)
			}
			for f := range graphRefs {
				x, _ := v.Load(f)
				stack = append(stack, x)
			}
		}
		return nil
	}
	end := time.Now().Add(d)
	for it := 0; time.Now().Before(end); it++ {
		for range 64 {
			a, b := walk(), walk()
			i, j := rng.IntN(graphRefs), rng.IntN(graphRefs)
			x, err := m.Load(a, i)
			if err != nil {
				return fmt.Errorf("walked to a freed node: %w", err)
			}
			y, err := m.Load(b, j)
			if err != nil {
				return fmt.Errorf("walked to a freed node: %w", err)
			}
			if err := m.Store(b, j, x); err != nil {
				return err
			}
			if err := m.Store(a, i, y); err != nil {
				return err
			}
		}
		// New nodes, linked in after the allocation (a safepoint).
		for range 8 {
			r, err := alloc()
			if err != nil {
				return err
			}
			a := walk()
			f := rng.IntN(graphRefs)
			old, err := m.Load(a, f)
			if err != nil {
				return fmt.Errorf("walked to a freed node: %w", err)
			}
			m.Store(r, 0, old)
			m.Store(a, f, r)
		}
		if it%16 == 0 {
			if err := check(); err != nil {
				return err
			}
		}
	}
	return check()
}

// barrierStress runs rewireGraph on four Mutators of a heap that collects
// often, in the background, and returns the first failure.
func barrierStress(t *testing.T, typed, noBarrier bool, d time.Duration) error {
	h := NewTestHeap(t, Options{MinHeapBytes: 64 << 10, GCPercent: 25, MarkWorkers: 2, Trace: graphTrace})
	h.noBarrier = noBarrier
	errs := make(chan error, 4)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() { errs <- rewireGraph(h, typed, uint64(w+1), 3000, d) })
	}
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	if err := errors.Join(all...); err != nil {
		return err
	}
	st := h.Stats()
	CheckProtocol(t, st)
	if st.Cycles < 10 {
		t.Fatalf("only %d collections", st.Cycles)
	}
	t.Logf("%d collections, %d objects allocated", st.Cycles, st.Allocs)
	return nil
}

// TestBarrierStress has Mutators rewire graphs while collections mark
// them concurrently: no node reachable from a root is ever freed, for
// typed nodes and for nodes traced by a Tracer.
func TestBarrierStress(t *testing.T) {
	for _, typed := range []bool{true, false} {
		t.Run(fmt.Sprintf("typed=%v", typed), func(t *testing.T) {
			if err := barrierStress(t, typed, false, 2*time.Second); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestBarrierNeeded runs the stress test with the write barrier off: it
// must lose reachable nodes, which shows that the stress test exercises
// the barrier (the mutation check of TestBarrierStress).
func TestBarrierNeeded(t *testing.T) {
	for _, typed := range []bool{true, false} {
		t.Run(fmt.Sprintf("typed=%v", typed), func(t *testing.T) {
			err := barrierStress(t, typed, true, 20*time.Second)
			if !errors.Is(err, ErrBadRef) {
				t.Fatalf("without the write barrier: %v, want a reachable node freed", err)
			}
			t.Log(err)
		})
	}
}
