package sweep

import (
	"errors"
	"math/rand/v2"
	"testing"
)

// TestRefOfAnotherHeap uses a Ref of one heap on another whose object
// sits in the same span, slot and sequence number: every use must fail
// with ErrBadRef, and marking must not follow it.
func TestRefOfAnotherHeap(t *testing.T) {
	a, ma, ra := heapWithObject(t)
	_, _, rb := heapWithObject(t)
	ma.Push(ra)
	if err := a.Valid(rb); !errors.Is(err, ErrBadRef) {
		t.Errorf("Valid on another heap: %v, want ErrBadRef", err)
	}
	if err := ma.StoreWord(rb, 1, 7); !errors.Is(err, ErrBadRef) {
		t.Errorf("SetWord on another heap: %v, want ErrBadRef", err)
	}
	if _, err := ma.LoadWord(rb, 1); !errors.Is(err, ErrBadRef) {
		t.Errorf("Word on another heap: %v, want ErrBadRef", err)
	}
	if err := ma.Store(ra, 0, rb); !errors.Is(err, ErrBadRef) {
		t.Errorf("storing a Ref of another heap: %v, want ErrBadRef", err)
	}
	if v, _ := ma.LoadWord(ra, 1); v != 0 {
		t.Errorf("a's object was written through b's Ref: word 1 is %d", v)
	}
	// A Ref of b written raw into a's object is not followed by a's mark.
	ma.StoreWord(ra, 0, uint64(rb))
	if err := ma.GC(); err != nil {
		t.Fatal(err)
	}
	if st := a.Stats(); st.BadRefs != 1 || st.LiveSlots != 1 {
		t.Errorf("marking through b's Ref: %d bad refs, %d live, want 1 and 1", st.BadRefs, st.LiveSlots)
	}
}

// TestHeapTags opens heaps until the tags run out: the next New fails
// with ErrLimit, and a tag comes back with Close.
func TestHeapTags(t *testing.T) {
	var open []*Heap
	defer func() {
		for _, h := range open {
			h.Close()
		}
	}()
	tags := map[uint8]bool{}
	for {
		h, err := New(Options{Trace: treeTrace, Sweepers: -1})
		if err != nil {
			if !errors.Is(err, ErrLimit) {
				t.Fatal(err)
			}
			break
		}
		if tags[h.tag] || h.tag == 0 {
			t.Fatalf("tag %d given twice or zero", h.tag)
		}
		tags[h.tag] = true
		open = append(open, h)
	}
	if len(open) > maxHeaps {
		t.Fatalf("%d heaps open at once", len(open))
	}
	open[7].Close()
	h, err := New(Options{Trace: treeTrace, Sweepers: -1})
	if err != nil {
		t.Fatalf("New after a Close: %v", err)
	}
	open[7] = h
}

func TestSlotSeqsBump(t *testing.T) {
	q := newSlotSeqs(130, 0xfffe)
	want := make([]uint16, 130)
	for i := range want {
		want[i] = 0xfffe
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 50 {
		for first := 0; first < 130; first += 64 {
			dead := rng.Uint64()
			if first == 128 {
				dead &= 3 // the last two slots
			}
			q.bump(first, dead)
			for j := range 64 {
				if dead>>j&1 == 1 {
					want[first+j]++
				}
			}
		}
		for i, w := range want {
			if got := q.get(i); got != w {
				t.Fatalf("slot %d: %#x, want %#x", i, got, w)
			}
		}
	}
}

// TestOldSpanTable resolves Refs with a Mutator that read the span table
// before it grew, after spans were freed and their indexes given to new
// spans: an old table must give nil, never the freed span (in unchecked
// mode nothing else would tell them apart).
func TestOldSpanTable(t *testing.T) {
	h := NewTestHeap(t, Options{Unchecked: true, GCPercent: -1})
	old := NewTestMutator(t, h) // reads the table now, 64 slots
	defer old.Close()
	m := NewTestMutator(t, h)
	defer m.Close()
	for range 200 { // large objects: a span each; the table grows
		if _, err := m.Alloc(40 << 10); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(h.table.Load().spans); n <= 64 {
		t.Fatalf("table of %d slots did not grow", n)
	}
	old.Release()                  // keeps its table
	if err := m.GC(); err != nil { // all garbage: the sweep frees the spans
		t.Fatal(err)
	}
	h.WaitSweep()
	old.Acquire()
	var fresh []Ref
	for i := range 200 { // other sizes: other addresses for the same indexes
		r, err := m.Alloc(24 << 10)
		if err != nil {
			t.Fatal(err)
		}
		m.Push(r)
		if err := m.StoreWord(r, 0, uint64(1000+i)); err != nil {
			t.Fatal(err)
		}
		fresh = append(fresh, r)
	}
	// First the Refs whose index the old table has (a miss would make
	// old read the table again).
	reused := 0
	for i, r := range fresh {
		if r.spanIdx() >= 64 {
			continue
		}
		reused++
		if w, err := old.LoadWord(r, 0); err != nil || w != uint64(1000+i) {
			t.Fatalf("object %d (span %d) through the old table: %d, %v", i, r.spanIdx(), w, err)
		}
	}
	if reused == 0 {
		t.Fatal("no span index below 64 was given again")
	}
	for i, r := range fresh {
		if w, err := old.LoadWord(r, 0); err != nil || w != uint64(1000+i) {
			t.Fatalf("object %d (span %d): %d, %v", i, r.spanIdx(), w, err)
		}
	}
}

// TestViewErrorFixed checks that the error of a View of a stale Ref says
// what the View found, and keeps saying it while the heap moves on.
func TestViewErrorFixed(t *testing.T) {
	_, m, r := heapWithObject(t)
	// r is no root: the first collection finds its object dead, and the
	// second one starts by finishing the first one's sweep, which frees it.
	for range 2 {
		if err := m.GC(); err != nil {
			t.Fatal(err)
		}
	}
	_, err := m.View(r)
	if !errors.Is(err, ErrBadRef) {
		t.Fatalf("View of a dead object: %v, want ErrBadRef", err)
	}
	text := err.Error()
	for range 6 {
		if err := m.GC(); err != nil {
			t.Fatal(err)
		}
	}
	if !errors.Is(err, ErrBadRef) || err.Error() != text {
		t.Errorf("the error of a View changed after collections: %q, then %q", text, err.Error())
	}
}

// TestSlotSeqsNextBase checks where a new span on a dead span's index
// starts its numbers: past every slot's number plus the dead span's base,
// as its Refs read them.
func TestSlotSeqsNextBase(t *testing.T) {
	q := newSlotSeqs(8, 5)
	q.bump(0, 1<<6) // slot 6: 6
	for _, c := range []struct{ base, want uint16 }{{0, 7}, {10, 17}, {0xfff0, 0xfff7}} {
		if got := q.next(c.base); got != c.want {
			t.Errorf("next(%#x) = %#x, want %#x", c.base, got, c.want)
		}
	}
}
