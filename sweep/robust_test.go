package sweep

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/gcbits/gcbits"
	"github.com/gcbits/gcbits/internal/arenatest"
	"github.com/gcbits/gcbits/internal/mem"
)

// TestStaleRefs checks that Refs to swept objects, and garbage Refs, give
// ErrBadRef and never reach another object.
func TestStaleRefs(t *testing.T) {
	h, m, live := heapWithObject(t)
	m.Push(live)
	dead, _ := m.Alloc(16)
	if err := m.StoreWord(dead, 1, 42); err != nil {
		t.Fatal(err)
	}
	if err := m.Store(live, 0, dead); err != nil {
		t.Fatal(err)
	}
	if err := m.Store(live, 0, Nil); err != nil { // drop it
		t.Fatal(err)
	}
	if err := m.GC(); err != nil {
		t.Fatal(err)
	}
	h.WaitSweep()
	if err := h.Valid(live); err != nil {
		t.Fatalf("live object: %v", err)
	}
	for name, err := range map[string]error{
		"Valid":     h.Valid(dead),
		"StoreWord": m.StoreWord(dead, 1, 7),
		"Store":     m.Store(dead, 0, live),
		"WriteAt":   m.WriteAt(dead, []byte{1}, 0),
		"View":      func() error { _, err := m.View(dead); return err }(),
	} {
		if !errors.Is(err, ErrBadRef) {
			t.Errorf("%s on a swept object: %v, want ErrBadRef", name, err)
		}
	}
	if _, err := m.LoadWord(dead, 1); !errors.Is(err, ErrBadRef) {
		t.Errorf("Word on a swept object: %v", err)
	}
	// A stale Ref stored into a live object does not resurrect the free
	// slot at the next mark, and is reported where it is used.
	if err := m.Store(live, 0, dead); err != nil {
		t.Fatal(err)
	}
	if err := m.GC(); err != nil {
		t.Fatal(err)
	}
	h.WaitSweep()
	if st := h.Stats(); st.BadRefs != 1 || st.LiveSlots != 1 {
		t.Fatalf("after marking through a stale Ref: %d bad refs, %d live", st.BadRefs, st.LiveSlots)
	}
	if err := h.Valid(dead); !errors.Is(err, ErrBadRef) {
		t.Fatalf("freed slot resurrected: %v", err)
	}
	if x, err := m.Load(live, 0); err != nil || x != dead {
		t.Fatalf("Load of the stored stale Ref: %v, %v", x, err)
	} else if _, err := m.View(x); !errors.Is(err, ErrBadRef) {
		t.Fatalf("View of a stale Ref loaded from a field: %v", err)
	}
	m.StoreWord(live, 0, 0)

	// Reuse the slot: the new object gets a new sequence number.
	var reused Ref
	for range 2000 {
		r, err := m.Alloc(16)
		if err != nil {
			t.Fatal(err)
		}
		if r.spanIdx() == dead.spanIdx() && r.slot() == dead.slot() {
			reused = r
			break
		}
	}
	if reused == Nil {
		t.Fatal("slot not reused")
	}
	if err := m.StoreWord(reused, 1, 99); err != nil {
		t.Fatal(err)
	}
	if err := m.StoreWord(dead, 1, 7); !errors.Is(err, ErrBadRef) {
		t.Fatalf("stale Ref reached the slot's new object: %v", err)
	}
	if v, _ := m.LoadWord(reused, 1); v != 99 {
		t.Fatalf("new object's word is %d", v)
	}
	// Garbage: nil, out-of-range span, slot, sequence, heap tag, field,
	// bytes.
	bad := []Ref{Nil, makeRef(h.tag, 1<<20, 0, 1), makeRef(h.tag, live.spanIdx(), 60000, live.seq()),
		makeRef(h.tag, live.spanIdx(), live.slot(), live.seq()+1), makeRef(h.tag+1, live.spanIdx(), live.slot(), live.seq()),
		makeRef(0, live.spanIdx(), live.slot(), live.seq())}
	for _, r := range bad {
		if err := h.Valid(r); !errors.Is(err, ErrBadRef) {
			t.Errorf("Valid(%v) = %v", r, err)
		}
	}
	for _, i := range append([]int{-1, 2}, arenatest.AboveInt64(1<<40-1)...) {
		if _, err := m.Load(live, i); !errors.Is(err, ErrBadRef) {
			t.Errorf("Field(%d) = %v", i, err)
		}
	}
	if err := m.ReadAt(live, make([]byte, 8), 9); !errors.Is(err, ErrBadRef) {
		t.Errorf("ReadAt past the end: %v", err)
	}
	if err := m.ReadAt(live, make([]byte, 1), -1); !errors.Is(err, ErrBadRef) {
		t.Errorf("ReadAt(-1): %v", err)
	}
	// Random words never panic, and those accepted name slots of the
	// heap's spans (made-up Refs may name free slots).
	rng := rand.New(rand.NewPCG(5, 5))
	for range 100000 {
		r := Ref(rng.Uint64())
		if rng.IntN(2) == 0 {
			r = makeRef(h.tag, uint32(rng.IntN(8)), rng.IntN(1100), uint16(rng.IntN(4)))
		}
		if h.Valid(r) == nil && r != live && r != reused {
			if _, err := m.LoadWord(r, 0); err != nil {
				t.Fatalf("Valid accepted %v but Word fails: %v", r, err)
			}
		}
	}
}

func TestPayloadAndLarge(t *testing.T) {
	h := NewTestHeap(t, Options{GCPercent: -1, RegionBytes: 1 << 20})
	m := NewTestMutator(t, h)
	defer m.Close()
	for _, size := range []int{1, 8, 13, 100, 4000, 32768, 32769, 100000, 3 << 20} {
		r, err := m.Alloc(size)
		if err != nil {
			t.Fatal(size, err)
		}
		got, _ := h.Size(r)
		if got < size {
			t.Fatalf("Alloc(%d) gave a %d-byte object", size, got)
		}
		p := bytes.Repeat([]byte{0xa5}, size)
		if err := m.WriteAt(r, p, 0); err != nil {
			t.Fatal(err)
		}
		q := make([]byte, size)
		if err := m.ReadAt(r, q, 0); err != nil || !bytes.Equal(p, q) {
			t.Fatalf("ReadAt after WriteAt of %d bytes: %v", size, err)
		}
		if err := m.WriteAt(r, []byte{1}, got); !errors.Is(err, ErrBadRef) {
			t.Fatalf("WriteAt at the end of %d bytes: %v", got, err)
		}
	}
	before := h.Stats()
	if err := m.GC(); err != nil { // nothing rooted: everything goes
		t.Fatal(err)
	}
	h.WaitSweep()
	// The sweep retires the dead spans; the next collection unmaps them.
	if err := m.GC(); err != nil {
		t.Fatal(err)
	}
	after := h.Stats()
	if after.LiveSlots != 0 || after.Mapped >= before.Mapped || after.Spans >= before.Spans {
		t.Fatalf("large objects not freed: live %d, mapped %d → %d, spans %d → %d",
			after.LiveSlots, before.Mapped, after.Mapped, before.Spans, after.Spans)
	}
	// Freed slots come back zeroed.
	for range 3 {
		r, _ := m.Alloc(100)
		q := make([]byte, 100)
		m.ReadAt(r, q, 0)
		if !bytes.Equal(q, make([]byte, 100)) {
			t.Fatal("reused slot not zeroed")
		}
	}
	for _, size := range append([]int{0, -1}, arenatest.AboveInt64(maxObjectBytes)...) {
		if _, err := m.Alloc(size); !errors.Is(err, ErrSize) {
			t.Errorf("Alloc(%d) = %v, want ErrSize", size, err)
		}
	}
}

// TestLifetimeCanaries runs many cycles of churn over several size
// classes with Guard on (a bitmap used past its lifetime faults) and
// checks after every sweep that each span's allocation bitmap holds
// exactly the objects the model says are live, so a bitmap recycled
// early, and reused by another span, would show.
func TestLifetimeCanaries(t *testing.T) {
	type obj struct {
		r  Ref
		id uint64
	}
	var roots []Ref
	h := NewTestHeap(t, Options{
		GCPercent:   -1,
		RegionBytes: 256 << 10,
		Arena:       gcbits.Options{Guard: mem.OffHeap, BlockSize: 4096},
		Trace:       func(Object, func(Ref)) {},
		Roots: func(visit func(Ref)) {
			for _, r := range roots {
				visit(r)
			}
		},
		MinHeapBytes: 1,
	})
	m := NewTestMutator(t, h)
	defer m.Close()
	rng := rand.New(rand.NewPCG(9, 9))
	sizes := []int{8, 48, 256, 3072, 40000}
	var live []obj
	id := uint64(0)
	for cycle := range 40 {
		for range 300 + rng.IntN(600) {
			r, err := m.Alloc(sizes[rng.IntN(len(sizes))])
			if err != nil {
				t.Fatal(err)
			}
			id++
			m.StoreWord(r, 0, id)
			live = append(live, obj{r, id})
		}
		// Keep a random part, some of it for many cycles.
		kept := live[:0]
		roots = roots[:0]
		for _, o := range live {
			if rng.IntN(3) > 0 {
				kept = append(kept, o)
				roots = append(roots, o.r)
			}
		}
		live = kept
		if err := m.GC(); err != nil {
			t.Fatal(err)
		}
		if cycle%2 == 0 {
			h.WaitSweep() // else the next cycle's allocations sweep lazily
			want := map[*span]int{}
			for _, o := range live {
				s, err := h.resolve(o.r)
				if err != nil {
					t.Fatalf("cycle %d: live object: %v", cycle, err)
				}
				if !s.allocBits.Test(o.r.slot()) {
					t.Fatalf("cycle %d: allocation bit of a live object is clear", cycle)
				}
				if v, _ := m.LoadWord(o.r, 0); v != o.id {
					t.Fatalf("cycle %d: object %d holds %d", cycle, o.id, v)
				}
				want[s]++
			}
			tb := h.table.Load()
			for i := range tb.spans {
				s := tb.spans[i].Load()
				if s == nil {
					continue
				}
				if got := s.allocBits.Count(); got != want[s] || s.allocCount != got {
					t.Fatalf("cycle %d: span %d has %d allocation bits and count %d, %d live objects", cycle, s.idx, got, s.allocCount, want[s])
				}
				if s.markBits.Count() != 0 {
					t.Fatalf("cycle %d: fresh mark bitmap of span %d not zero", cycle, s.idx)
				}
			}
		}
	}
	st := h.Stats()
	CheckProtocol(t, st)
	if st.Arena.Epoch < 39 {
		t.Fatalf("arena at epoch %d after 40 cycles", st.Arena.Epoch)
	}
}

// TestLifetimeCheckHasTeeth builds a heap whose arena keeps bitmaps for
// one epoch only: the sweeps must notice spans holding expired bitmaps.
func TestLifetimeCheckHasTeeth(t *testing.T) {
	if _, err := New(Options{Trace: treeTrace, Arena: gcbits.Options{Retain: 1}}); !errors.Is(err, ErrOption) {
		t.Fatalf("Retain 1 accepted: %v", err)
	}
	h, err := newHeap(Options{Trace: treeTrace, GCPercent: -1, Arena: gcbits.Options{Retain: 1}}, true)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	m := NewTestMutator(t, h)
	r, _ := m.Alloc(16)
	m.Push(r)
	for range 4 {
		m.GC()
		h.WaitSweep()
	}
	m.Close()
	if h.Stats().Protocol.LifetimeViolations == 0 {
		t.Fatal("expired bitmaps went unnoticed")
	}
}

func TestOptions(t *testing.T) {
	for _, o := range []Options{
		{Trace: treeTrace, Arena: gcbits.Options{Retain: 1}},
		{MemoryLimit: -1},
		{Trace: treeTrace, RegionBytes: 1000},
		{Trace: treeTrace, RegionBytes: 32 << 10},
		{Trace: treeTrace, MaxBytes: -1},
		{Trace: treeTrace, MarkWorkers: -1},
		{Trace: treeTrace, Classes: []Class{{7, 1}}},
		{Trace: treeTrace, Arena: gcbits.Options{BlockSize: 3}},
	} {
		if h, err := New(o); err == nil {
			h.Close()
			t.Errorf("New(%+v) succeeded", o)
		}
	}
	h := NewTestHeap(t, Options{Classes: []Class{{16, 1}, {64, 2}}})
	m := NewTestMutator(t, h)
	defer m.Close()
	for size, want := range map[int]int{1: 16, 16: 16, 17: 64, 64: 64, 65: PageSize} {
		r, err := m.Alloc(size)
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := h.Size(r); got != want {
			t.Errorf("custom classes: Alloc(%d) gave %d bytes, want %d", size, got, want)
		}
	}
}

// TestMaxBytes fills a capped heap: Alloc fails with ErrLimit after a
// collection could not help, and works again once objects die.
func TestMaxBytes(t *testing.T) {
	h := NewTestHeap(t, Options{RegionBytes: 64 << 10, MaxBytes: 256 << 10, GCPercent: -1})
	m := NewTestMutator(t, h)
	defer m.Close()
	n := fillToLimit(t, m, 1024)
	if n < 200 {
		t.Fatalf("only %d KiB objects fit in 256 KiB", n)
	}
	m.Pop(n)
	for i := range n {
		if _, err := m.Alloc(1024); err != nil {
			t.Fatalf("object %d after the roots died: %v", i, err)
		}
	}
}

// TestZeroValues checks that zero and nil values report errors instead of
// panicking.
func TestZeroValues(t *testing.T) {
	for _, h := range []*Heap{nil, {}} {
		if _, err := h.NewMutator(); !errors.Is(err, ErrClosed) {
			t.Errorf("NewMutator: %v", err)
		}
		if err := h.GC(); !errors.Is(err, ErrClosed) {
			t.Errorf("GC: %v", err)
		}
		if err := h.Close(); !errors.Is(err, ErrClosed) {
			t.Errorf("Close: %v", err)
		}
		if err := h.Valid(makeRef(1, 1, 0, 1)); !errors.Is(err, ErrClosed) {
			t.Errorf("Field: %v", err)
		}
		if _, _, err := h.SizeClass(8); !errors.Is(err, ErrClosed) {
			t.Errorf("SizeClass: %v", err)
		}
		h.WaitSweep()
		_ = h.Stats()
	}
	var m Mutator
	if _, err := m.Alloc(8); !errors.Is(err, ErrClosed) {
		t.Errorf("zero Mutator Alloc: %v", err)
	}
	if err := m.GC(); !errors.Is(err, ErrClosed) {
		t.Errorf("zero Mutator GC: %v", err)
	}
	if err := m.Close(); !errors.Is(err, ErrClosed) {
		t.Errorf("zero Mutator Close: %v", err)
	}
	m.Release()
	m.Acquire()
	m.Safepoint()
	m.Push(Nil)
	m.Pop(3)
	var o Object
	if o.Word(0) != 0 || o.Field(1) != Nil || o.Size() != 0 {
		t.Error("zero Object has words")
	}
}

// TestZeroMutatorView checks that a zero Mutator's View fails cleanly.
func TestZeroMutatorView(t *testing.T) {
	var m Mutator
	if _, err := m.View(makeRef(1, 1, 0, 1)); !errors.Is(err, ErrClosed) {
		t.Fatalf("View on a zero Mutator: %v", err)
	}
}
