package sweep

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// errTracer is what the panicking Tracers of the tests below panic with.
var errTracer = errors.New("tracer bug")

// goroutineID returns the calling goroutine's number, from its stack
// header: only to tell mark workers apart in a test.
func goroutineID() string {
	b := make([]byte, 64)
	b = b[:runtime.Stack(b, false)]
	f := strings.Fields(string(b))
	return f[1]
}

// TestTracerPanic makes the Tracer panic, or call runtime.Goexit as
// t.FailNow does, on the collecting goroutine and on another mark worker:
// the collection must fail with an error wrapping ErrTrace (the
// collecting goroutine that exits gets none), restart the world, and
// leave the heap usable.
func TestTracerPanic(t *testing.T) {
	for _, c := range []struct {
		where  string
		goexit bool
	}{{"collector", false}, {"worker", false}, {"collector", true}, {"worker", true}} {
		where := c.where
		name := where
		if c.goexit {
			name += "-goexit"
		}
		t.Run(name, func(t *testing.T) {
			var panicking atomic.Bool
			var collector atomic.Value // goroutine ID of the GC caller
			var roots []Ref
			h := NewTestHeap(t, Options{
				GCPercent:   -1,
				MarkWorkers: 4,
				Trace: func(o Object, visit func(Ref)) {
					if panicking.Load() && (where == "collector") == (goroutineID() == collector.Load()) {
						if c.goexit {
							runtime.Goexit()
						}
						panic(errTracer)
					}
					visit(o.Field(0))
				},
				Roots: func(visit func(Ref)) {
					for _, r := range roots {
						visit(r)
					}
				},
			})
			m := NewTestMutator(t, h)
			// Many roots with chains behind them: work for every worker.
			for range 2000 {
				r, err := m.Alloc(16)
				if err != nil {
					t.Fatal(err)
				}
				roots = append(roots, r)
				for range 20 {
					c, err := m.Alloc(16)
					if err != nil {
						t.Fatal(err)
					}
					m.Store(c, 0, r)
					r = c
				}
				roots[len(roots)-1] = r
			}
			m.Release()
			panicking.Store(true)
			done := make(chan error, 1)
			exited := make(chan struct{})
			go func() {
				defer close(exited)
				// Recover as net/http recovers a handler's panic.
				defer func() {
					if p := recover(); p != nil {
						done <- fmt.Errorf("GC panicked: %v", p)
					}
				}()
				collector.Store(goroutineID())
				done <- h.GC()
			}()
			<-exited
			switch {
			case c.goexit && where == "collector":
				if len(done) != 0 {
					t.Fatalf("GC returned %v, its goroutine exited", <-done)
				}
			case c.goexit:
				if err := <-done; !errors.Is(err, ErrTrace) || !errors.Is(err, ErrGoexit) {
					t.Fatalf("GC with a Tracer calling Goexit: %v", err)
				}
			default:
				err := <-done
				var te *TraceError
				if !errors.Is(err, ErrTrace) || !errors.Is(err, errTracer) || !errors.As(err, &te) || len(te.Stack) == 0 {
					t.Fatalf("GC with a panicking Tracer: %v, want a TraceError wrapping the panic", err)
				}
			}
			panicking.Store(false)
			// The heap is usable: nothing blocks, and the next collection
			// keeps every object.
			checkUsable(t, h, m, "a Tracer panic")
			if st := h.Stats(); st.LiveSlots != 2000*21 {
				t.Fatalf("after the failed collection: %d live, want %d", st.LiveSlots, 2000*21)
			}
			if err := m.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestRootsPanic makes the Roots function panic during a collection that
// an allocation starts: Alloc returns the TraceError, and the heap goes on.
func TestRootsPanic(t *testing.T) {
	var panicking atomic.Bool
	h := NewTestHeap(t, Options{
		MinHeapBytes: 64 << 10,
		Roots: func(func(Ref)) {
			if panicking.Load() {
				panic("roots bug")
			}
		},
	})
	m := NewTestMutator(t, h)
	defer m.Close()
	panicking.Store(true)
	var err error
	for i := 0; err == nil && i < 100000; i++ {
		_, err = m.Alloc(64)
	}
	if !errors.Is(err, ErrTrace) || !strings.Contains(err.Error(), "roots bug") {
		t.Fatalf("Alloc with a panicking Roots: %v", err)
	}
	panicking.Store(false)
	for range 100000 {
		if _, err := m.Alloc(64); err != nil {
			t.Fatal(err)
		}
	}
	if h.Stats().Cycles == 0 {
		t.Fatal("no collection after the failed one")
	}
}

// TestRootsGoexit makes the Roots function call runtime.Goexit, as
// t.FailNow does, in a collection run by Heap.GC and in one run by
// Mutator.GC: the goroutine exits, and the world, stopped for the roots,
// starts again, leaving the heap usable.
func TestRootsGoexit(t *testing.T) {
	for _, viaMutator := range []bool{false, true} {
		name := "Heap.GC"
		if viaMutator {
			name = "Mutator.GC"
		}
		t.Run(name, func(t *testing.T) {
			var exiting atomic.Bool
			h := NewTestHeap(t, Options{
				GCPercent: -1,
				Roots: func(func(Ref)) {
					if exiting.Load() {
						runtime.Goexit()
					}
				},
			})
			m := NewTestMutator(t, h)
			r, err := m.Alloc(16)
			if err != nil {
				t.Fatal(err)
			}
			m.Push(r)
			m.Release()
			exiting.Store(true)
			returned := make(chan struct{}, 1)
			exited := make(chan struct{})
			go func() {
				defer close(exited)
				if viaMutator {
					m2, err := h.NewMutator()
					if err != nil {
						return
					}
					defer m2.Close()
					m2.GC()
				} else {
					h.GC()
				}
				returned <- struct{}{}
			}()
			select {
			case <-exited:
			case <-time.After(time.Minute):
				t.Fatal("the goroutine whose Roots function called Goexit did not exit in a minute")
			}
			if len(returned) != 0 {
				t.Fatal("GC returned, though its Roots function called Goexit")
			}
			exiting.Store(false)
			checkUsable(t, h, m, "a Roots function called Goexit")
			if st := h.Stats(); st.LiveSlots != 1 {
				t.Fatalf("after the collection: %d live slots, want the 1 rooted", st.LiveSlots)
			}
			if err := m.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// checkUsable checks that h is usable after what: m, released, is
// acquired again and allocates, a Mutator is made and closed, and m
// collects, all within a minute.
func checkUsable(t *testing.T, h *Heap, m *Mutator, what string) {
	t.Helper()
	ok := make(chan error, 1)
	go func() {
		m.Acquire()
		if _, err := m.Alloc(16); err != nil {
			ok <- err
			return
		}
		m2, err := h.NewMutator()
		if err != nil {
			ok <- err
			return
		}
		m2.Close()
		ok <- m.GC()
	}()
	select {
	case err := <-ok:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Minute):
		t.Fatalf("the heap is wedged after %s", what)
	}
}
