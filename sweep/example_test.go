package sweep_test

import (
	"errors"
	"fmt"

	"github.com/gcbits/gcbits/sweep"
)

// A linked list on a Heap: only the part reachable from the root stack
// survives a collection, and a Ref to a collected object is reported as
// stale. Cells have a Type: word 0 holds the next cell, word 1 a value.
func Example() {
	h, err := sweep.New(sweep.Options{})
	if err != nil {
		panic(err)
	}
	defer h.Close()
	cell, _ := h.NewType(16, 0) // 16 bytes; word 0 is a Ref
	m, _ := h.NewMutator()
	defer m.Close()

	m.Push(sweep.Nil) // root 0: the head of the list
	var second, third sweep.Ref
	for i := 1; i <= 5; i++ {
		c, err := m.New(cell) // a safepoint: a collection may run here
		if err != nil {
			panic(err)
		}
		m.Store(c, 0, m.Root(0))
		m.StoreWord(c, 1, uint64(i))
		m.SetRoot(0, c) // rooted before the next allocation
		switch i {
		case 2:
			second = c
		case 3:
			third = c
		}
	}
	m.Store(third, 0, sweep.Nil) // cut the list after the third cell

	m.GC()
	for c := m.Root(0); c != sweep.Nil; c, _ = m.Load(c, 0) {
		v, _ := m.LoadWord(c, 1)
		fmt.Println(v)
	}
	fmt.Println("live:", h.Stats().LiveSlots)
	h.WaitSweep()
	fmt.Println("stale:", errors.Is(h.Valid(second), sweep.ErrBadRef))
	// Output:
	// 5
	// 4
	// 3
	// live: 3
	// stale: true
}

// A View reads and writes one object without checking its Ref again, until
// the Mutator's next safepoint; a handle scope (NumRoots and PopTo) keeps
// the objects a function works on alive until it returns.
func ExampleMutator_View() {
	h, _ := sweep.New(sweep.Options{})
	defer h.Close()
	pair, _ := h.NewType(16, 0, 1) // two Refs
	leaf, _ := h.NewType(8)        // pointer-free: never traced
	m, _ := h.NewMutator()
	defer m.Close()

	newPair := func(a, b uint64) (sweep.Ref, error) {
		scope := m.NumRoots()
		defer m.PopTo(scope) // the leaves stop being roots here
		l, err := m.New(leaf)
		if err != nil {
			return sweep.Nil, err
		}
		m.Push(l)
		m.StoreWord(l, 0, a)
		r, err := m.New(leaf)
		if err != nil {
			return sweep.Nil, err
		}
		m.Push(r)
		m.StoreWord(r, 0, b)
		p, err := m.New(pair)
		if err != nil {
			return sweep.Nil, err
		}
		v, _ := m.View(p) // valid until the next allocation that parks
		v.Store(0, l)
		v.Store(1, r)
		return p, nil
	}
	p, _ := newPair(6, 7)
	m.Push(p)
	m.GC()
	v, _ := m.View(p)
	l, _ := v.Load(0)
	r, _ := v.Load(1)
	a, _ := m.LoadWord(l, 0)
	b, _ := m.LoadWord(r, 0)
	fmt.Println(a*b, m.NumRoots())
	// Output: 42 1
}

// FreeOSMemory returns the memory of dead objects to the operating
// system at once; the background scavenger does the same for memory
// unused for Options.ScavengeDelay.
func ExampleHeap_FreeOSMemory() {
	h, _ := sweep.New(sweep.Options{})
	defer h.Close()
	m, _ := h.NewMutator()
	for range 1 << 16 {
		m.Alloc(256) // garbage at once: nothing holds it
	}
	m.Release() // FreeOSMemory, like GC, waits for running Mutators
	h.FreeOSMemory()
	st := h.Stats()
	fmt.Println(st.Released >= st.Mapped/2)
	m.Close()
	// Output: true
}
