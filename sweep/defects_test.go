package sweep

import (
	"errors"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gcbits/gcbits"
)

// nilSource is a bitmap source that returns no bitmap and no error.
type nilSource struct{}

func (nilSource) Alloc(int) (gcbits.Bits, error) { return nil, nil }

// TestBitSourceNilBitmap makes spans with a source that returns nil, nil:
// the heap falls back to bitmaps of its own instead of failing.
func TestBitSourceNilBitmap(t *testing.T) {
	h := NewTestHeap(t, Options{GCPercent: -1})
	s, err := h.newSpan(h.spanClassOf(1), 0, nil, nilSource{}, h.sweepgen.Load())
	if err != nil {
		t.Fatal(err)
	}
	if len(s.allocBits)*64 < s.nelems || len(s.markBits)*64 < s.nelems {
		t.Fatalf("span of %d slots with %d and %d bitmap words", s.nelems, len(s.allocBits), len(s.markBits))
	}
	if i, ok := s.nextFree(); !ok || i != 0 {
		t.Fatalf("nextFree = %d, %v", i, ok)
	}
	if n := h.Stats().BitsFallbacks; n != 2 {
		t.Fatalf("%d fallback bitmaps, want 2", n)
	}
}

// TestFullSweepFlagAtFlip checks that a collection after ErrLimit has its
// full-sweep flag set when it flips, before any sweeper can take a span
// of its sweep phase: a span swept with the flag unset would keep its
// empty pages from the allocation that needs them.
func TestFullSweepFlagAtFlip(t *testing.T) {
	h := NewTestHeap(t, Options{RegionBytes: 64 << 10, MaxBytes: 256 << 10, GCPercent: -1, Sweepers: 2})
	var flips, fullFlips atomic.Int32
	h.onFlip = func(uint32, int) {
		flips.Add(1)
		if h.sweepFull.Load() {
			fullFlips.Add(1)
		}
	}
	m := NewTestMutator(t, h)
	defer m.Close()
	m.Pop(fillToLimit(t, m, 1024))
	if _, err := m.Alloc(16); err != nil {
		t.Fatal(err)
	}
	if flips.Load() < 2 || fullFlips.Load() != flips.Load() {
		t.Fatalf("%d flips, %d with the full-sweep flag set; every one follows ErrLimit", flips.Load(), fullFlips.Load())
	}
}

// TestPanicWithWorldStopped checks that a panic in a collection while it
// holds the world stopped reaches the caller of GC, and leaves the world
// stopped, rather than hanging in the cleanups it unwinds through, which
// would wait for the world to start. Only a bug can panic there; the test
// makes one at the start of the mark (a nil marker) and at its end (an
// onFlip hook that panics). Close ends the Heap here, since no background
// goroutine is waiting for the world or for what the collector holds, and
// NewMutator then returns ErrClosed without waiting for the world.
func TestPanicWithWorldStopped(t *testing.T) {
	for _, tc := range []struct {
		name string
		bug  func(h *Heap)
		want func(v any) bool
	}{
		{"markStart", func(h *Heap) { h.markers[0] = nil }, func(v any) bool { _, ok := v.(runtime.Error); return ok }},
		{"markEnd", func(h *Heap) { h.onFlip = func(uint32, int) { panic("flip") } }, func(v any) bool { return v == "flip" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := NewTestHeap(t, Options{GCPercent: -1})
			m := NewTestMutator(t, h)
			if _, err := m.Alloc(16); err != nil {
				t.Fatal(err)
			}
			tc.bug(h)
			got := make(chan any, 1)
			go func() {
				defer func() { got <- recover() }()
				m.GC()
			}()
			select {
			case v := <-got:
				if !tc.want(v) {
					t.Fatalf("GC panicked with %v", v)
				}
			case <-time.After(time.Minute):
				t.Fatal("GC did not return a minute after a panic with the world stopped")
			}
			if !h.world.isWedged() || h.world.stopReq.Load() != 1 {
				t.Errorf("after the panic: wedged %v, stopReq %d; want the world held stopped", h.world.isWedged(), h.world.stopReq.Load())
			}
			if err := h.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
			if err := m.Close(); !errors.Is(err, ErrClosed) {
				t.Errorf("Mutator.Close after Heap.Close: %v, want ErrClosed", err)
			}
			if m2, err := h.NewMutator(); m2 != nil || !errors.Is(err, ErrClosed) {
				t.Errorf("NewMutator after Heap.Close: %v, %v; want nil, ErrClosed", m2, err)
			}
		})
	}
}
