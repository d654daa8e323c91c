package sweep

import (
	"math/rand/v2"
	"testing"
	"unsafe"
)

// TestCoalesceUnderCap fills a capped heap with objects of a one-page
// class, drops them all and allocates an object of a two-page class:
// the free pages must join into runs that serve it.
func TestCoalesceUnderCap(t *testing.T) {
	h := NewTestHeap(t, Options{RegionBytes: 64 << 10, MaxBytes: 512 << 10, GCPercent: -1})
	m := NewTestMutator(t, h)
	defer m.Close()
	n := fillToLimit(t, m, 1024) // 1 page, 8 objects a span
	if n < 400 {
		t.Fatalf("only %d objects of 1 KiB in 512 KiB", n)
	}
	m.Pop(n)
	for i := range 300 {
		if _, err := m.Alloc(1408); err != nil { // 2 pages, 11 objects a span
			t.Fatalf("object %d of a 2-page class, every page free: %v", i, err)
		}
	}
}

// TestCoalesceReuse drops 24 MiB of objects of a one-page class, lets
// collections free their spans, and then allocates 16 MiB of a two-page
// class: the heap must reuse the pages rather than map more.
func TestCoalesceReuse(t *testing.T) {
	h := NewTestHeap(t, Options{ScavengeDelay: -1})
	m := NewTestMutator(t, h)
	defer m.Close()
	const total = 24 << 20
	for range total / 1024 {
		r, err := m.Alloc(1024)
		if err != nil {
			t.Fatal(err)
		}
		m.Push(r)
	}
	peak := h.Stats().Mapped
	m.Pop(m.NumRoots())
	// The first sweep keeps the empty spans for their class, the second
	// frees them, the third collection's stop-the-world frees their pages.
	for range 3 {
		if err := m.GC(); err != nil {
			t.Fatal(err)
		}
	}
	for range (16 << 20) / 1408 {
		if _, err := m.Alloc(1408); err != nil {
			t.Fatal(err)
		}
	}
	if st := h.Stats(); st.Mapped > peak+4<<20 {
		t.Fatalf("%d MiB mapped for 24 MiB, then %d MiB after 16 MiB more of another class", peak>>20, st.Mapped>>20)
	}
}

// TestMemoryLimit churns garbage over a small live heap with a GCPercent
// that would let the heap grow five-fold: the memory the heap holds must
// stay near the limit, and without the limit it does not.
func TestMemoryLimit(t *testing.T) {
	const live, limit = 4 << 20, 10 << 20
	held := func(o Options) int64 {
		o.GCPercent = 400
		o.ScavengeDelay = -1
		h := NewTestHeap(t, o)
		m := NewTestMutator(t, h)
		defer m.Close()
		for range live / 64 {
			r, err := m.Alloc(64)
			if err != nil {
				t.Fatal(err)
			}
			m.Push(r)
		}
		var peak int64
		for i := range (96 << 20) / 64 {
			if _, err := m.Alloc(64); err != nil {
				t.Fatal(err)
			}
			if i%4096 == 0 {
				peak = max(peak, h.Stats().HeldBytes())
			}
		}
		CheckProtocol(t, h.Stats())
		return peak
	}
	free := held(Options{})
	limited := held(Options{MemoryLimit: limit})
	if free < 2*limit {
		t.Fatalf("without a limit the heap held only %d MiB", free>>20)
	}
	// A soft limit: sweeping runs behind allocation, and spans freed by
	// a sweep are reused only after the next stop-the-world.
	if limited > limit+limit/4 {
		t.Fatalf("with a %d MiB limit the heap held %d MiB (%d MiB without)", limit>>20, limited>>20, free>>20)
	}
	t.Logf("held at most %d MiB with a %d MiB limit, %d MiB without", limited>>20, limit>>20, free>>20)
}

// TestPageAllocModel drives the page allocator with random spans of 1 to
// 8 pages: no page is in two spans, the books add up, and once every
// span is freed a whole region is one free run.
func TestPageAllocModel(t *testing.T) {
	var p pageAlloc
	p.init(256<<10, 256<<10, 0, 0) // a span may take a whole region
	defer func() {
		for _, m := range p.unmapAll() {
			m.Unmap()
		}
	}()
	type sp struct {
		base unsafe.Pointer
		n    int
	}
	rng := rand.New(rand.NewPCG(1, 1))
	owner := map[uintptr]int{} // page address → span id
	var spans []sp
	for step := range 20000 {
		if len(spans) > 0 && rng.IntN(2) == 0 {
			k := rng.IntN(len(spans))
			s := spans[k]
			spans[k] = spans[len(spans)-1]
			spans = spans[:len(spans)-1]
			for j := range s.n {
				delete(owner, uintptr(s.base)+uintptr(j*PageSize))
			}
			released := rng.IntN(4) == 0
			if released {
				_, r := p.regionOf(s.base)
				if err := r.mem.Sub(uintptr(s.base)-uintptr(r.mem.Base()), uintptr(s.n*PageSize)).Release(); err != nil {
					t.Fatal(err)
				}
			}
			p.release(s.base, s.n, nil, released)
		} else {
			n := 1 + rng.IntN(8)
			base, zero, ri, err := p.alloc(n)
			if err != nil || ri != nil {
				t.Fatal(err, ri)
			}
			for j := range n {
				pg := unsafe.Add(base, j*PageSize)
				a := uintptr(pg)
				if id, ok := owner[a]; ok {
					t.Fatalf("step %d: page %#x in span %d and in a new one", step, a, id)
				}
				owner[a] = step
				if zero && *(*uint64)(pg) != 0 {
					t.Fatalf("step %d: a page said zero is not", step)
				}
				*(*uint64)(pg) = 1
			}
			spans = append(spans, sp{base, n})
		}
		if p.free+p.inSpans != p.mapped {
			t.Fatalf("step %d: %d free + %d in spans != %d mapped", step, p.free, p.inSpans, p.mapped)
		}
	}
	for _, s := range spans {
		p.release(s.base, s.n, nil, false)
	}
	mapped := p.mapped
	for range mapped / (256 << 10) {
		if _, _, _, err := p.alloc(32); err != nil { // a whole region
			t.Fatal(err)
		}
	}
	if p.mapped != mapped {
		t.Fatalf("whole regions free but not found: %d → %d bytes mapped", mapped, p.mapped)
	}
}

// TestSpansKeptWhileReused churns garbage of one class over a live set:
// once the heap has reached its size, spans emptied by a sweep and filled
// again before the next are reused, not freed and made anew each cycle.
func TestSpansKeptWhileReused(t *testing.T) {
	h := NewTestHeap(t, Options{ScavengeDelay: -1, MinHeapBytes: 1 << 20})
	m := NewTestMutator(t, h)
	defer m.Close()
	for range (1 << 20) / 64 {
		r, err := m.Alloc(64)
		if err != nil {
			t.Fatal(err)
		}
		m.Push(r)
	}
	churn := func() {
		for range (16 << 20) / 64 {
			if _, err := m.Alloc(64); err != nil {
				t.Fatal(err)
			}
		}
	}
	churn()
	before := h.Stats()
	churn()
	after := h.Stats()
	cycles, made := after.Cycles-before.Cycles, after.SpansMade-before.SpansMade
	if cycles < 4 || made > uint64(after.Spans)/4 {
		t.Fatalf("%d spans made in %d cycles over %d spans in use", made, cycles, after.Spans)
	}
}
