package sweep_test

import (
	"errors"
	"fmt"

	"github.com/gcbits/gcbits/sweep"
)

// A linked list on a Heap: only the part reachable from the root stack
// survives a collection, and a Ref to a collected object is reported as
// stale.
func Example() {
	h, err := sweep.New(sweep.Options{
		// A list cell holds its next cell in word 0 and a value in word 1.
		Trace: func(o sweep.Object, visit func(sweep.Ref)) { visit(o.Field(0)) },
	})
	if err != nil {
		panic(err)
	}
	defer h.Close()
	m, _ := h.NewMutator()
	defer m.Close()

	var head, second, third sweep.Ref
	for i := 1; i <= 5; i++ {
		c, _ := m.Alloc(16)
		h.SetField(c, 0, head) // link before the next Alloc, a safepoint
		h.SetWord(c, 1, uint64(i))
		head = c
		switch i {
		case 2:
			second = c
		case 3:
			third = c
		}
	}
	m.Push(head)
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
	// 5
	// 4
	// 3
	// live: 3
	// stale: true
}
