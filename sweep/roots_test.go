package sweep

import (
	"errors"
	"sync"
	"testing"
)

// TestPushWhileReleased pushes a root on a released Mutator while another
// goroutine collects: the object must survive.
func TestPushWhileReleased(t *testing.T) {
	h, m, r := heapWithObject(t)
	m.Release()
	m.Push(r)
	if err := h.GC(); err != nil {
		t.Fatal(err)
	}
	h.WaitSweep()
	m.Acquire()
	if err := h.Valid(r); err != nil {
		t.Fatalf("object pushed while released was collected: %v", err)
	}
	if m.NumRoots() != 1 || m.Root(0) != r {
		t.Fatalf("root stack: %d roots, root 0 %v", m.NumRoots(), m.Root(0))
	}
	// Pop and SetRoot work while released too.
	m.Release()
	if err := m.SetRoot(0, Nil); err != nil {
		t.Fatal(err)
	}
	m.Pop(1)
	m.Acquire()
	if m.NumRoots() != 0 {
		t.Fatalf("Pop while released left %d roots", m.NumRoots())
	}
}

// TestRootsWhileReleasedRace changes a released Mutator's root stack
// while collections read it; -race checks that they synchronize.
func TestRootsWhileReleasedRace(t *testing.T) {
	h, m, r := heapWithObject(t)
	m.Push(r)
	m.Release()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
				h.GC()
			}
		}
	})
	for range 2000 {
		m.Push(r)
		m.SetRoot(1, Nil)
		m.Pop(1)
	}
	close(stop)
	wg.Wait()
	m.Acquire()
	if err := h.Valid(r); err != nil {
		t.Fatal(err)
	}
}

// TestRootsErrors: root stack changes on a closed Mutator, and pushes of
// another heap's Refs, are refused.
func TestRootsErrors(t *testing.T) {
	a, b := NewTestHeap(t, Options{}), NewTestHeap(t, Options{})
	ma, mb := NewTestMutator(t, a), NewTestMutator(t, b)
	defer mb.Close()
	rb, err := mb.Alloc(16)
	if err != nil {
		t.Fatal(err)
	}
	for _, released := range []bool{false, true} {
		if released {
			ma.Release()
		}
		if err := ma.Push(rb); !errors.Is(err, ErrBadRef) {
			t.Errorf("Push of another heap's Ref (released %v): %v", released, err)
		}
		if err := ma.Push(Nil); err != nil {
			t.Fatal(err)
		}
		if err := ma.SetRoot(0, rb); !errors.Is(err, ErrBadRef) {
			t.Errorf("SetRoot of another heap's Ref (released %v): %v", released, err)
		}
	}
	ma.Close()
	if err := ma.Push(Nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Push on a closed Mutator: %v", err)
	}
	if err := ma.Pop(1); !errors.Is(err, ErrClosed) {
		t.Errorf("Pop on a closed Mutator: %v", err)
	}
	if err := ma.SetRoot(0, Nil); !errors.Is(err, ErrClosed) {
		t.Errorf("SetRoot on a closed Mutator: %v", err)
	}
}
