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
	h := testHeap(t, Options{GCPercent: -1, Sweepers: 1})
	m := newMutator(t, h)
	defer m.Close()
	buf := make([]byte, 4<<20) // a dedicated region: above RegionBytes/4
	for range 20 {
		big, err := m.Alloc(len(buf))
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var rerr error
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := h.NewMutator()
			if err != nil {
				rerr = err
				return
			}
			defer r.Close()
			for {
				r.Safepoint()
				if rerr = h.ReadAt(big, buf, 0); rerr != nil {
					return
				}
			}
		}()
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
