package sweep

import (
	"errors"
	"sync"
	"testing"
)

// TestStaleReadLargeDuringSweep reads a dead large object through its
// stale Ref in a loop while a collection frees it: the read must end
// with ErrBadRef, never reach unmapped memory.
func TestStaleReadLargeDuringSweep(t *testing.T) {
	h := NewTestHeap(t, Options{GCPercent: -1, Sweepers: 1})
	m := NewTestMutator(t, h)
	defer m.Close()
	buf := make([]byte, 4<<20) // a dedicated region: above RegionBytes/4
	for range 20 {
		big, err := m.Alloc(len(buf))
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var rerr error
		wg.Go(func() {
			r, err := h.NewMutator()
			if err != nil {
				rerr = err
				return
			}
			defer r.Close()
			for {
				r.Safepoint()
				if rerr = r.ReadAt(big, buf, 0); rerr != nil {
					return
				}
			}
		})
		m.Release()
		if err := h.GC(); err != nil { // big is unreachable: the sweep frees it
			t.Fatal(err)
		}
		h.WaitSweep()
		wg.Wait()
		m.Acquire()
		if !errors.Is(rerr, ErrBadRef) {
			t.Fatalf("stale read: %v, want ErrBadRef", rerr)
		}
	}
}

// TestErrLimitCollectsOtherClass fills a capped heap with objects of one
// class, drops them all, and allocates from another class: the
// collection that ErrLimit triggers must free the empty spans in time.
func TestErrLimitCollectsOtherClass(t *testing.T) {
	h := NewTestHeap(t, Options{RegionBytes: 64 << 10, MaxBytes: 256 << 10, GCPercent: -1})
	m := NewTestMutator(t, h)
	defer m.Close()
	n := fillToLimit(t, m, 1024)
	m.Pop(n) // everything is garbage now
	for i := range 100 {
		if _, err := m.Alloc(16); err != nil {
			t.Fatalf("Alloc(16) #%d with %d dead 1 KiB objects: %v", i, n, err)
		}
	}
}

// TestErrLimitCollectsLarge allocates dead large objects in a heap that
// holds only one of them at a time.
func TestErrLimitCollectsLarge(t *testing.T) {
	h := NewTestHeap(t, Options{RegionBytes: 64 << 10, MaxBytes: 1 << 20, GCPercent: -1})
	m := NewTestMutator(t, h)
	defer m.Close()
	for i := range 20 {
		if _, err := m.Alloc(600 << 10); err != nil { // dead at once
			t.Fatalf("large alloc %d: %v", i, err)
		}
	}
}

// TestStaleValidDuringAlloc resolves stale Refs while their slots are
// handed out again; under -race it checks that sequence numbers are
// stored and loaded atomically.
func TestStaleValidDuringAlloc(t *testing.T) {
	h := NewTestHeap(t, Options{GCPercent: -1, Sweepers: -1})
	m := NewTestMutator(t, h)
	defer m.Close()
	var stale []Ref
	for range 500 {
		r, err := m.Alloc(16)
		if err != nil {
			t.Fatal(err)
		}
		stale = append(stale, r)
	}
	if err := m.GC(); err != nil {
		t.Fatal(err)
	}
	h.WaitSweep()
	var wg sync.WaitGroup
	wg.Go(func() {
		for range 50 {
			for _, r := range stale {
				if err := h.Valid(r); err == nil {
					t.Errorf("stale %v is valid", r)
					return
				}
			}
		}
	})
	for range 500 {
		if _, err := m.Alloc(16); err != nil {
			t.Error(err)
			break
		}
	}
	wg.Wait()
}
