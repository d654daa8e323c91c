package mem

import (
	"errors"
	"testing"
)

// TestProtectUnsupported checks that where Map falls back to the Go heap,
// Protect says it is unsupported in the standard library's terms.
func TestProtectUnsupported(t *testing.T) {
	if OffHeap {
		t.Skip("mprotect is available")
	}
	r, err := Map(1)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Protect(false); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("Protect = %v, want errors.ErrUnsupported", err)
	}
}

func TestMapIsZeroedAndWritable(t *testing.T) {
	r, err := Map(10000)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Unmap()
	if r.Size()%uintptr(PageSize()) != 0 || r.Size() < 10000 {
		t.Fatalf("size %d not rounded to a page of %d", r.Size(), PageSize())
	}
	if uintptr(r.Base())%uintptr(PageSize()) != 0 {
		t.Fatalf("base %p not page aligned", r.Base())
	}
	w := r.Words()
	for i, v := range w {
		if v != 0 {
			t.Fatalf("word %d = %#x, want 0", i, v)
		}
	}
	w[0], w[len(w)-1] = 1, 2
	if w[0] != 1 || w[len(w)-1] != 2 {
		t.Fatal("writes lost")
	}
}

// TestGuard checks that Guard gives the pages back (mincore sees none
// resident), that Protect(true) makes the region usable again, and that
// it then reads as zero.
func TestGuard(t *testing.T) {
	if !OffHeap {
		r, err := Map(1)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Guard(); !errors.Is(err, errors.ErrUnsupported) {
			t.Fatalf("Guard without mmap = %v, want errors.ErrUnsupported", err)
		}
		return
	}
	r, w := written(t, 4)
	if n, ok := resident(t, r); ok && n != 4 {
		t.Fatalf("%d of 4 written pages resident", n)
	}
	if err := r.Guard(); err != nil {
		t.Fatal(err)
	}
	if n, ok := resident(t, r); ok && n != 0 {
		t.Fatalf("%d pages resident after Guard", n)
	}
	if err := r.Protect(true); err != nil {
		t.Fatal(err)
	}
	wantZeroWritable(t, w, "Guard and Protect(true)")
}

func TestMapZeroBytes(t *testing.T) {
	if _, err := Map(0); err == nil {
		t.Fatal("Map(0) succeeded")
	}
}

func TestProtectRoundTrip(t *testing.T) {
	if !OffHeap {
		t.Skip("no mprotect")
	}
	r, err := Map(1)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Unmap()
	if err := r.Protect(false); err != nil {
		t.Fatal(err)
	}
	if err := r.Protect(true); err != nil {
		t.Fatal(err)
	}
	r.Words()[0] = 7
	if r.Words()[0] != 7 {
		t.Fatal("write after Protect(true) lost")
	}
}

func TestSubRelease(t *testing.T) {
	p := uintptr(PageSize())
	r, w := written(t, 4)
	per := int(p / 8)
	if err := r.Sub(p, 2*p).Release(); err != nil {
		t.Fatal(err)
	}
	for i, v := range w {
		want := uint64(i) + 1
		if i >= per && i < 3*per {
			want = 0
		}
		if v != want {
			t.Fatalf("word %d = %d after releasing pages 1 and 2, want %d", i, v, want)
		}
	}
}

// TestRelease checks that Release gives the pages back (mincore sees none
// resident) and leaves the region zeroed and writable.
func TestRelease(t *testing.T) {
	r, w := written(t, 4)
	if err := r.Release(); err != nil {
		t.Fatal(err)
	}
	if n, ok := resident(t, r); ok && n != 0 {
		t.Errorf("%d pages resident after Release", n)
	}
	wantZeroWritable(t, w, "Release")
	if err := (Region{}).Release(); err != nil {
		t.Errorf("Release of the empty Region: %v", err)
	}
}

// wantZeroWritable checks that every word of w reads zero after what,
// and that a write to it sticks.
func wantZeroWritable(t *testing.T, w []uint64, what string) {
	t.Helper()
	for i, v := range w {
		if v != 0 {
			t.Fatalf("word %d = %d after %s, want 0", i, v, what)
		}
	}
	w[1] = 7
	if w[1] != 7 {
		t.Fatalf("write after %s lost", what)
	}
}

// written maps a region of n pages, unmapped when the test ends, and
// writes i+1 to its word i, so that every page is resident.
func written(t *testing.T, n int) (Region, []uint64) {
	t.Helper()
	r, err := Map(uintptr(n * PageSize()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Unmap() })
	w := r.Words()
	for i := range w {
		w[i] = uint64(i) + 1
	}
	return r, w
}
