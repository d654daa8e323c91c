package mem

import "testing"

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
	if err := r.Release(); err != nil {
		t.Fatal(err)
	}
	if w[0] != 0 || w[len(w)-1] != 0 {
		t.Fatalf("after Release: %d %d, want zeros", w[0], w[len(w)-1])
	}
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
	r, err := Map(4 * p)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Unmap()
	w := r.Words()
	per := int(p / 8)
	for i := range w {
		w[i] = 1
	}
	if err := r.Sub(p, 2*p).Release(); err != nil {
		t.Fatal(err)
	}
	for i, v := range w {
		want := uint64(1)
		if i >= per && i < 3*per {
			want = 0
		}
		if v != want {
			t.Fatalf("word %d = %d after releasing pages 1 and 2, want %d", i, v, want)
		}
	}
}
