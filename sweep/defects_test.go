package sweep

import (
	"sync/atomic"
	"testing"

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
