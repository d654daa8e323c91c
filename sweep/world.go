package sweep

import (
	"sync"
	"sync/atomic"
	"time"
)

// world is the set of a Heap's Mutators and the protocol that stops them:
// a collection stops the world by raising stopReq and waiting until every
// running Mutator is parked at a safepoint; released Mutators stay away
// until the world starts again.
//
// Invariant: while stopping is set by a collector that has returned from
// stop, no running Mutator other than the collector's own runs heap code,
// no Mutator is made, closed or acquired, and the fields of every
// Mutator belong to the collector.
type world struct {
	mu   sync.Mutex
	cond sync.Cond // on mu; broadcast when parked, running, stopping or gen change

	mutators map[*Mutator]struct{} // every open Mutator; under mu
	running  int                   // Mutators in state mutatorRunning; under mu
	parked   int                   // running Mutators parked at a safepoint; under mu
	stopping bool                  // a collection holds or is stopping the world; under mu
	gen      uint64                // incremented when a collection starts the world again; under mu
	closed   bool                  // the Heap's Close has begun; under mu
	wedged   bool                  // a collector panicked holding the world, which stays stopped; under mu

	// stopReq is 1 while stopping is true, so that a safepoint tests it
	// with one atomic load. Stored under mu; read atomically.
	stopReq atomic.Uint32
}

func (w *world) init() {
	w.cond.L = &w.mu
	w.mutators = make(map[*Mutator]struct{})
}

// stop stops the world for a collection. self is the calling Mutator if
// it is running (it counts as stopped), or nil. If another collection
// holds the world, stop waits for it to end: a running self parks and
// then returns false without stopping the world, while a caller that is
// no Mutator (self nil) stops the world for itself afterwards. It returns
// errClosed once the Heap's Close has begun. On true, the caller owns the
// world until it calls start, and t0 is when it began to stop it.
func (w *world) stop(self *Mutator) (t0 time.Time, stopped bool, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	waited := false
	for w.stopping && !w.closed {
		waited = true
		if self != nil {
			w.parkLocked()
		} else {
			gen := w.gen
			for w.gen == gen {
				w.cond.Wait()
			}
		}
	}
	if w.closed {
		return t0, false, errClosed
	}
	if waited && self != nil {
		return t0, false, nil
	}
	t0 = time.Now()
	w.stopping = true
	w.stopReq.Store(1)
	me := 0
	if self != nil {
		me = 1
	}
	for w.parked < w.running-me && !w.closed {
		w.cond.Wait()
	}
	if w.closed {
		// The Heap's Close has begun: let parked Mutators go.
		w.stopping = false
		w.stopReq.Store(0)
		w.gen++
		w.cond.Broadcast()
		return t0, false, errClosed
	}
	return t0, true, nil
}

// start ends a stop: parked Mutators go on, and released ones may be
// acquired again.
func (w *world) start() {
	w.mu.Lock()
	w.stopping = false
	w.stopReq.Store(0)
	w.gen++
	w.cond.Broadcast()
	w.mu.Unlock()
}

// generation returns the count of starts so far. A collector that holds
// the world reads the generation it will end.
func (w *world) generation() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.gen
}

// wedge is called by a collector that panicked after it stopped the
// world in generation gen. If the world is still stopped in gen, the
// collector holds it, and it stays stopped, since the heap is half way
// through a change that no other goroutine may see. The heap code that
// the panic unwinds through asks isWedged before it waits for the world
// to start.
func (w *world) wedge(gen uint64) {
	w.mu.Lock()
	if w.stopping && w.gen == gen {
		w.wedged = true
	}
	w.mu.Unlock()
}

// wedgeOnPanic is deferred by a collector that holds the world, stopped
// in generation gen, and runs no user code: if it panics, it wedges the
// world and panics again with the same value.
func (w *world) wedgeOnPanic(gen uint64) {
	if v := recover(); v != nil {
		w.wedge(gen)
		panic(v)
	}
}

// isWedged reports whether a collector panicked holding the world.
func (w *world) isWedged() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.wedged
}

// park waits at a safepoint while a collection stops the world. The
// caller is a running Mutator.
func (w *world) park() {
	w.mu.Lock()
	for w.stopping {
		w.parkLocked()
	}
	w.mu.Unlock()
}

// parkLocked counts the caller, a running Mutator, as parked until the
// world starts again. Called and returns with mu held.
func (w *world) parkLocked() {
	gen := w.gen
	w.parked++
	w.cond.Broadcast()
	for w.gen == gen {
		w.cond.Wait()
	}
	w.parked--
}

// waitStartedLocked waits until no collection holds the world. Called and
// returns with mu held.
func (w *world) waitStartedLocked() {
	for w.stopping {
		w.cond.Wait()
	}
}

// add registers m as a running Mutator once no collection holds the
// world. It returns errClosed once Close has begun.
func (w *world) add(m *Mutator) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	// Not waitStartedLocked: once Close has begun, add returns without
	// touching the heap, so it need not wait for a world that a wedged
	// collector holds for good. acquire and removeMayWait change the
	// Mutator's state, so they wait.
	for w.stopping && !w.closed {
		w.cond.Wait()
	}
	if w.closed {
		return errClosed
	}
	m.state = mutatorRunning
	w.mutators[m] = struct{}{}
	w.running++
	return nil
}

// release moves m, running, to mutatorReleased: collections stop waiting
// for it.
func (w *world) release(m *Mutator) {
	w.mu.Lock()
	m.state = mutatorReleased
	w.running--
	w.cond.Broadcast()
	w.mu.Unlock()
}

// acquire moves m, released, back to mutatorRunning once no collection
// holds the world.
func (w *world) acquire(m *Mutator) {
	w.mu.Lock()
	w.waitStartedLocked()
	m.state = mutatorRunning
	w.running++
	w.mu.Unlock()
}

// removeMayWait unregisters m once no collection holds the world, and
// calls done with mu held (and so with no collection running). A running
// m is released first, so that a collection stopping the world does not
// wait for it while it waits for the collection.
func (w *world) removeMayWait(m *Mutator, done func(heapClosed bool)) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if m.state == mutatorRunning {
		m.state = mutatorReleased
		w.running--
		w.cond.Broadcast()
	}
	w.waitStartedLocked()
	m.state = mutatorClosed
	delete(w.mutators, m)
	done(w.closed)
}

// close marks the world closed, so that no Mutator is added and no
// collection starts, and calls each open Mutator's cleanup with mu held.
// It reports false if it was closed already.
func (w *world) close(each func(*Mutator)) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return false
	}
	w.closed = true
	for m := range w.mutators {
		each(m)
	}
	w.cond.Broadcast()
	return true
}
