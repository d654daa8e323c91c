package sweep_test

import (
	"errors"
	"fmt"

	"github.com/gcbits/gcbits/sweep"
)

// A linked list on a Heap: only the part reachable from the root stack
// survives a collection, and a Ref to a collected object is reported as
// stale. The heap is small, so that building the list already collects:
// every new cell is linked into the list and the list is rooted before
// the next Alloc, a safepoint where a collection may run.
func Example() {
	h, err := sweep.New(sweep.Options{
		// A list cell holds its next cell in word 0 and a value in word 1.
		Trace:        func(o sweep.Object, visit func(sweep.Ref)) { visit(o.Field(0)) },
		MinHeapBytes: 8 << 10,
	})
	if err != nil {
		panic(err)
	}
	defer h.Close()
	m, _ := h.NewMutator()
	defer m.Close()

	const cellBytes = 4096 // two cells a span: refills, and so collections, are frequent
	m.Push(sweep.Nil)      // root 0: the head of the list
	var second, third sweep.Ref
	for i := 1; i <= 5; i++ {
		c, err := m.Alloc(cellBytes) // may collect: the list is rooted
		if err != nil {
			panic(err)
		}
		h.SetField(c, 0, m.Root(0))
		h.SetWord(c, 1, uint64(i))
		m.SetRoot(0, c) // the new cell is rooted before the next Alloc
		switch i {
		case 2:
			second = c
		case 3:
			third = c
		}
	}
	head := m.Root(0)
	fmt.Println("collected while building:", h.Stats().Cycles > 0)
	h.SetField(third, 0, sweep.Nil) // cut the list after the third cell

	m.GC()
	h.WaitSweep()
	for c := head; c != sweep.Nil; c, _ = h.Field(c, 0) {
		v, _ := h.Word(c, 1)
		fmt.Println(v)
	}
	fmt.Println("live:", h.Stats().LiveSlots)
	fmt.Println("stale:", errors.Is(h.Valid(second), sweep.ErrBadRef))
	// Output:
	// collected while building: true
	// 5
	// 4
	// 3
	// live: 3
	// stale: true
}
