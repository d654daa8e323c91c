package sweep

import (
	"errors"
	"testing"
)

// Test helpers shared by the package's internal tests and its external
// tests (package sweep_test), and the hooks the external tests need.

// treeTrace traces nodes whose first two words are children.
func treeTrace(o Object, visit func(Ref)) {
	visit(o.Field(0))
	visit(o.Field(1))
}

// NewTestHeap returns a heap made with o, closed when t ends. Objects
// from Mutator.Alloc are traced as binary-tree nodes if o.Trace is nil.
func NewTestHeap(t testing.TB, o Options) *Heap {
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

// NewTestMutator returns a running Mutator of h.
func NewTestMutator(t testing.TB, h *Heap) *Mutator {
	t.Helper()
	m, err := h.NewMutator()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// heapWithObject returns a heap that collects only when asked, a
// running Mutator of it, closed when t ends, and a 16-byte object that
// the Mutator allocated and did not root.
func heapWithObject(t testing.TB) (*Heap, *Mutator, Ref) {
	t.Helper()
	h := NewTestHeap(t, Options{GCPercent: -1})
	m := NewTestMutator(t, h)
	t.Cleanup(func() { m.Close() })
	r, err := m.Alloc(16)
	if err != nil {
		t.Fatal(err)
	}
	return h, m, r
}

// fillToLimit allocates objects of size bytes with m and pushes them
// until an allocation fails, which must be with ErrLimit, within 100000
// objects; it returns how many it pushed.
func fillToLimit(t testing.TB, m *Mutator, size int) int {
	t.Helper()
	const most = 100000
	for n := range most {
		r, err := m.Alloc(size)
		if err != nil {
			if !errors.Is(err, ErrLimit) {
				t.Fatalf("after %d objects: %v, want ErrLimit", n, err)
			}
			return n
		}
		m.Push(r)
	}
	t.Fatalf("after %d objects: no ErrLimit", most)
	return most
}

// SmallHeap makes heaps that collect often.
var SmallHeap = Options{MinHeapBytes: 32 << 10, GCPercent: 50, RegionBytes: 256 << 10}

// CheckProtocol fails t if the heap's books show a protocol failure or a
// bad Ref met while marking.
func CheckProtocol(t testing.TB, st Stats) {
	t.Helper()
	if !st.Protocol.Clean() || st.BadRefs != 0 {
		t.Fatalf("protocol failures: %+v, %d bad refs", st.Protocol, st.BadRefs)
	}
}

// SetSweepHooks installs hooks called before each span sweep (with the
// span's index and sweep generation, and the heap's) and at each flip
// (with the new sweep generation and the number of spans to sweep). Call
// it before the heap is used.
func SetSweepHooks(h *Heap, onSweep func(idx, spanGen, sg uint32), onFlip func(sg uint32, n int)) {
	if onSweep != nil {
		h.onSweep = func(s *span, sg uint32) { onSweep(s.idx, s.sweepgen.Load(), sg) }
	}
	h.onFlip = onFlip
}

// SweepLeft returns the number of spans still to sweep in this cycle.
func SweepLeft(h *Heap) int64 { return h.sweepLeft.Load() }
