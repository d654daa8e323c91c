package sweep

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gcbits/gcbits/internal/arenatest"
)

func TestNewType(t *testing.T) {
	h := NewTestHeap(t, Options{})
	cases := []struct {
		size int
		refs []int
	}{{0, nil}, {-1, nil}, {16, []int{2}}, {16, []int{-1}}, {100000, []int{12500}}}
	for _, n := range arenatest.AboveInt64(maxObjectBytes) {
		cases = append(cases, struct {
			size int
			refs []int
		}{n, nil})
	}
	for _, c := range cases {
		if _, err := h.NewType(c.size, c.refs...); !errors.Is(err, ErrType) {
			t.Errorf("NewType(%d, %v) = %v, want ErrType", c.size, c.refs, err)
		}
	}
	a, _ := h.NewType(24, 0, 2)
	b, _ := h.NewType(24, 2, 0, 2)
	c, _ := h.NewType(20, 0, 2) // the same size class and mask
	d, _ := h.NewType(24, 0)
	if a != b || a == c || a == d || a.l.sc != c.l.sc || a.l.sc == d.l.sc {
		t.Errorf("interning: %v %v %v %v", a, b, c, d)
	}
	if a.Size() != 24 || c.Size() != 20 || (Type{}).Size() != 0 {
		t.Errorf("sizes %d %d", a.Size(), c.Size())
	}
	other := NewTestHeap(t, Options{})
	ot, _ := other.NewType(24, 0, 2)
	m := NewTestMutator(t, h)
	defer m.Close()
	for _, bad := range []Type{{}, ot} {
		if _, err := m.New(bad); !errors.Is(err, ErrType) {
			t.Errorf("New(%v) = %v, want ErrType", bad, err)
		}
	}
	r, err := m.New(a)
	if err != nil {
		t.Fatal(err)
	}
	x, _ := m.New(d)
	if err := m.Store(r, 1, x); !errors.Is(err, ErrType) {
		t.Errorf("Store into a data word: %v, want ErrType", err)
	}
	if err := m.Store(r, 2, x); err != nil {
		t.Errorf("Store into a Ref word: %v", err)
	}
	if err := m.StoreWord(r, 1, 77); err != nil {
		t.Errorf("StoreWord into a data word: %v", err)
	}
}

// TestTypesMark checks that marking follows a Type's Ref words and only
// them, large and small, and never calls the Tracer for typed objects.
func TestTypesMark(t *testing.T) {
	var traced atomic.Int64
	h := NewTestHeap(t, Options{GCPercent: -1, Trace: func(o Object, visit func(Ref)) {
		traced.Add(1)
		visit(o.Field(0))
	}})
	m := NewTestMutator(t, h)
	defer m.Close()
	node, _ := h.NewType(32, 1, 3)      // Refs in words 1 and 3
	big, _ := h.NewType(80000, 0, 9999) // a large object: Refs in its first and last words
	leaf, _ := h.NewType(64)            // pointer-free
	root, _ := m.New(big)
	m.Push(root)
	n, _ := m.New(node)
	m.Store(root, 9999, n)
	viaData, _ := m.New(leaf) // held in a data word only: dies
	m.StoreWord(n, 0, uint64(viaData))
	l1, _ := m.New(leaf)
	m.Store(n, 1, l1)
	l3, _ := m.New(leaf)
	m.Store(n, 3, l3)
	untyped, _ := m.Alloc(16) // traced by the Tracer
	m.Store(root, 0, untyped)
	u2, _ := m.Alloc(16)
	m.Store(untyped, 0, u2)
	if err := m.GC(); err != nil {
		t.Fatal(err)
	}
	h.WaitSweep()
	for name, r := range map[string]Ref{"root": root, "node": n, "leaf 1": l1, "leaf 3": l3, "untyped": untyped, "untyped's": u2} {
		if err := h.Valid(r); err != nil {
			t.Errorf("%s collected: %v", name, err)
		}
	}
	if err := h.Valid(viaData); !errors.Is(err, ErrBadRef) {
		t.Errorf("an object named only by a data word survived: %v", err)
	}
	if n := traced.Load(); n != 2 {
		t.Errorf("the Tracer ran %d times, for 2 untyped objects", n)
	}
	if st := h.Stats(); st.LiveSlots != 6 || st.BadRefs != 0 {
		t.Errorf("%d live, %d bad refs", st.LiveSlots, st.BadRefs)
	}
}

// TestTypeAfterMutator makes a Type after the Mutator that uses it, and
// many Types: each gets a span class of its own.
func TestTypeAfterMutator(t *testing.T) {
	h := NewTestHeap(t, Options{GCPercent: -1})
	m := NewTestMutator(t, h)
	defer m.Close()
	var refs []Ref
	for i := range 200 {
		ty, err := h.NewType(64, i%8)
		if err != nil {
			t.Fatal(err)
		}
		r, err := m.New(ty)
		if err != nil {
			t.Fatal(err)
		}
		m.Push(r)
		refs = append(refs, r)
	}
	if err := m.GC(); err != nil {
		t.Fatal(err)
	}
	for _, r := range refs {
		if err := h.Valid(r); err != nil {
			t.Fatal(err)
		}
	}
}

func TestViewExpires(t *testing.T) {
	h := NewTestHeap(t, Options{GCPercent: -1})
	m := NewTestMutator(t, h)
	defer m.Close()
	node, _ := h.NewType(16, 0, 1)
	r, _ := m.New(node)
	m.Push(r)
	v, err := m.View(r)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.New(node); err != nil { // no collection: v holds
		t.Fatal(err)
	}
	if err := v.StoreWord(1, 5); err != nil {
		t.Fatalf("View after an allocation that did not park: %v", err)
	}
	if _, err := v.Load(2); !errors.Is(err, ErrBadRef) {
		t.Errorf("word outside the object: %v", err)
	}
	if err := v.ReadAt(make([]byte, 9), 8); !errors.Is(err, ErrBadRef) {
		t.Errorf("bytes outside the object: %v", err)
	}
	m.GC()
	if _, err := v.Load(0); !errors.Is(err, ErrBadRef) {
		t.Errorf("View after a collection: %v, want ErrBadRef", err)
	}
	v, _ = m.View(r)
	m.Release()
	if err := v.StoreWord(0, 1); !errors.Is(err, ErrBadRef) {
		t.Errorf("View after Release: %v, want ErrBadRef", err)
	}
	if _, err := m.Load(r, 0); !errors.Is(err, ErrReleased) {
		t.Errorf("Load on a released Mutator: %v, want ErrReleased", err)
	}
	m.Acquire()
	var zero View
	if _, err := zero.Load(0); !errors.Is(err, ErrBadRef) || zero.Size() != 0 {
		t.Errorf("zero View: %v", err)
	}
}

func TestPopTo(t *testing.T) {
	h := NewTestHeap(t, Options{})
	m := NewTestMutator(t, h)
	defer m.Close()
	m.Push(Nil)
	f := func() {
		defer m.PopTo(m.NumRoots())
		for range 5 {
			m.Push(Nil)
		}
	}
	f()
	if m.NumRoots() != 1 {
		t.Fatalf("%d roots after a scope", m.NumRoots())
	}
	m.PopTo(5) // above: nothing
	m.PopTo(-3)
	if m.NumRoots() != 0 {
		t.Fatalf("%d roots after PopTo(-3)", m.NumRoots())
	}
}

// TestGCPercent checks the goal against GOGC's formula, and SetGCPercent.
func TestGCPercent(t *testing.T) {
	h := NewTestHeap(t, Options{MinHeapBytes: 64 << 10})
	m := NewTestMutator(t, h)
	defer m.Close()
	leaf, _ := h.NewType(1024)
	for range 1000 {
		r, _ := m.New(leaf)
		m.Push(r)
	}
	m.GC()
	st := h.Stats()
	marked := st.LiveBytes
	if want := marked + (marked+8*1000)/100*100; st.HeapGoal != want {
		t.Fatalf("goal %d, want %d for %d marked bytes and 1000 roots", st.HeapGoal, want, marked)
	}
	if old := h.SetGCPercent(50); old != 100 {
		t.Fatalf("SetGCPercent returned %d, want 100", old)
	}
	if want := marked + (marked+8*1000)/100*50; h.Stats().HeapGoal != want {
		t.Fatalf("goal %d after SetGCPercent(50), want %d", h.Stats().HeapGoal, want)
	}
	h.SetGCPercent(0)
	if h.Stats().HeapGoal != marked {
		t.Fatalf("GOGC=0: goal %d, want the marked %d", h.Stats().HeapGoal, marked)
	}
	before := h.Stats().Cycles
	for range 100 {
		m.New(leaf) // each new span is past the goal
	}
	if h.Stats().Cycles-before < 5 {
		t.Fatalf("GOGC=0: %d collections in 100 KiB", h.Stats().Cycles-before)
	}
	if old := h.SetGCPercent(-1); old != 0 {
		t.Fatalf("SetGCPercent returned %d, want 0", old)
	}
	before = h.Stats().Cycles
	for range 10000 {
		m.New(leaf)
	}
	if h.Stats().Cycles != before {
		t.Fatal("collections with GOGC=off")
	}
}

func TestPauses(t *testing.T) {
	h := NewTestHeap(t, Options{})
	for range 300 {
		if err := h.GC(); err != nil {
			t.Fatal(err)
		}
	}
	st := h.Stats()
	if len(st.Pauses) != 256 || st.PauseMax <= 0 {
		t.Fatalf("%d pauses, max %v", len(st.Pauses), st.PauseMax)
	}
	var sum time.Duration
	for _, p := range st.Pauses {
		if p <= 0 || p > st.PauseMax {
			t.Fatalf("pause %v, max %v", p, st.PauseMax)
		}
		sum += p
	}
	if sum > st.PauseTime {
		t.Fatalf("recent pauses add up to %v, all of them to %v", sum, st.PauseTime)
	}
}
