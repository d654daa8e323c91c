package sweep

import (
	"errors"
	"fmt"
	"sync"
	"unsafe"

	"github.com/gcbits/gcbits"
)

// mutatorState is the state of a Mutator.
type mutatorState uint8

const (
	mutatorClosed   mutatorState = iota // after Close, or never opened (the zero Mutator)
	mutatorRunning                      // allocates; counted in world.running
	mutatorReleased                     // between Release and Acquire: not using the heap
)

// Mutator is one goroutine's access to a Heap, in the manner of the Go
// runtime's mcache and of a thread known to the collector: it allocates,
// loads and stores objects, and holds a root stack, whose objects survive
// collections. It caches one span per span class, so that most
// allocations take no lock.
//
// A Mutator is not safe for concurrent use: give each goroutine its own.
// Objects are read and written only through a running Mutator, whose
// stores carry the write barrier that lets a collection mark while
// Mutators run.
//
// # Safepoints
//
// A collection stops the world twice, briefly, at the start and at the
// end of its mark: it waits until every running Mutator is parked at a
// safepoint, which New, Alloc, GC and Safepoint are. A Mutator that will
// not call them for a while (it blocks on a channel, waits for other
// goroutines, does long work outside the heap) must call Release first
// and Acquire afterwards, or collections started meanwhile by other
// goroutines wait for it, and if it waits for them, forever.
//
// # Which Refs survive
//
// Objects reachable from the root stacks of all Mutators and from
// Options.Roots, through the Ref words of Types and Options.Trace, survive
// a collection. A Ref the Mutator holds only in Go variables is safe until
// its next safepoint: no collection can run in between. So link a new
// object into a reachable one, or Push it, before the next Alloc.
type Mutator struct {
	h *Heap // read-only
	// spans[c] is the span this Mutator allocates span class c from, or
	// nil.
	// A cached span is swept in the current cycle and has no other holder.
	// Owned by the Mutator while it runs; flushed by the collector while
	// it is parked or released, and cleared by Heap.Close.
	spans []*span
	// bits serves the bitmaps of spans this Mutator makes or sweeps.
	// Owned by the Mutator.
	bits *gcbits.Cache
	// roots is the root stack. Written by the Mutator's goroutine: while
	// it runs without a lock (the collector reads it only while the
	// Mutator is parked), while it is released under rootsMu, which the
	// collector holds while it reads the stack.
	roots   []Ref
	rootsMu sync.Mutex
	// allocs counts allocations not yet added to the heap's total. Owned
	// by the Mutator; flushed by the collector while it is parked.
	allocs uint64
	// epoch counts the times the Mutator parked, collected, was released
	// or closed, in steps of epochStep: a View is valid while it holds.
	// Owned by the Mutator; Heap.Close also advances it, under world.mu,
	// which the contract makes concurrent with no use of the Mutator.
	epoch uint64
	// gcw holds the objects the write barrier shaded and not yet handed
	// to the mark workers, and its counts. Owned by the Mutator while it
	// runs; the collector flushes and resets it while the Mutator is
	// parked or released (a released Mutator flushed it first).
	gcw *marker
	// wbLast is the object traced by Options.Trace that the write barrier
	// shaded last in this mark (barrier.go). Owned like gcw.
	wbLast unsafe.Pointer
	// table is the span table as the Mutator read it last, read again
	// when a Ref is not found in it (spanTable). Owned by the Mutator.
	table *spanTable
	// state is written under world.mu by the Mutator's own goroutine (and
	// by Heap.Close, concurrent with no use of the Mutator) and read by
	// that goroutine without the lock (collect reads it, too, on the
	// calling Mutator's goroutine). Collectors never read other
	// Mutators' state: they count running and parked Mutators in the
	// world's fields under its lock.
	state mutatorState
	// wb is true while a mark runs: stores go through the write barrier.
	// Written by collectors while the Mutator is parked or released, and
	// by its goroutine when it starts running (NewMutator, Acquire).
	wb  bool
	tag uint8 // the heap's tag; read-only
	// A Mutator writes allocs and roots all the time: keep other
	// goroutines' Mutators off its cache lines (TestMutatorLayout).
	_ [128 - 120]byte
}

// expire ends the Mutator's Views: it parks, collects, or stops running.
func (m *Mutator) expire() { m.epoch += epochStep }

// NewMutator returns a running Mutator of h. If a collection is in
// progress, it waits for its end.
func (h *Heap) NewMutator() (*Mutator, error) {
	if h == nil || h.arena == nil {
		return nil, errClosed
	}
	m := &Mutator{h: h, tag: h.tag, table: h.table.Load(), spans: make([]*span, len(*h.types.classes.Load())), bits: h.arena.NewCache(), gcw: newMarker(h)}
	if err := h.world.add(m); err != nil {
		return nil, err
	}
	m.startRunning()
	return m, nil
}

// startRunning readies m, which has just become running, for the
// collector's phase: no collection can start or end before m parks.
func (m *Mutator) startRunning() {
	m.wb = m.h.phase.Load() == phaseMark && !m.h.noBarrier
	m.wbLast = nil
	if m.wb {
		m.gcw.reset()
	}
}

// stateErr returns the error for a Mutator that is not running.
func (m *Mutator) stateErr() error { return stateErr(m.state) }

// stateErr returns the error for a Mutator in state st, not running.
func stateErr(st mutatorState) error {
	if st == mutatorReleased {
		return ErrReleased
	}
	return errMutatorClosed
}

// Alloc returns a new object of at least size bytes, zeroed, with no
// Type: the heap traces it with Options.Trace if it has one, and it is
// pointer-free otherwise (use New for objects with a layout). Sizes up to
// the largest size class are rounded up to their class; larger objects
// get pages of their own. Alloc is a safepoint: it may first wait for, or
// run, a collection.
func (m *Mutator) Alloc(size int) (Ref, error) {
	if m.state != mutatorRunning {
		return Nil, m.stateErr()
	}
	h := m.h
	if h.world.stopReq.Load() != 0 {
		m.park()
	}
	if uint(size-1) >= uint(h.classes.maxSize) {
		if size < 1 || size > maxObjectBytes {
			return Nil, fmt.Errorf("%w: %d bytes", ErrSize, size)
		}
		r, _, err := m.allocLarge(size, h.untypedLarge)
		return r, err
	}
	// The untyped objects of size class c have span class c.
	c := int(h.classes.lookup[(size+7)>>3])
	if s := m.spans[c]; s != nil {
		if i, ok := s.nextFreeFast(); ok {
			m.allocs++
			return s.take(i), nil
		}
	}
	r, _, err := m.allocSlow(c)
	return r, err
}

// New returns a new object of Type t, zeroed, traced by t's layout. It
// is a safepoint, as Alloc is. It returns an error wrapping ErrType for
// the zero Type or a Type of another heap.
func (m *Mutator) New(t Type) (Ref, error) {
	r, _, err := m.newObject(t)
	return r, err
}

// NewView returns a View of a new object of Type t, as New and then View
// would, without checking the new Ref again. The object's Ref is
// v.Ref(); it is a safepoint, as New is.
func (m *Mutator) NewView(t Type) (View, error) {
	r, s, err := m.newObject(t)
	if err != nil {
		return View{}, err
	}
	return m.view(s, r.slot()), nil
}

// newObject is New, and returns the object's span too.
func (m *Mutator) newObject(t Type) (Ref, *span, error) {
	if m.state == mutatorRunning && t.h == m.h && m.h.world.stopReq.Load() == 0 && uint(t.id) < uint(len(m.spans)) {
		if s := m.spans[t.id]; s != nil {
			if i, ok := s.nextFreeFast(); ok {
				m.allocs++
				return s.take(i), s, nil
			}
		}
	}
	return m.newObjectSlow(t)
}

// newObjectSlow is newObject when the cached span's cache word has no
// free slot, or the Mutator must park, or something is wrong.
func (m *Mutator) newObjectSlow(t Type) (Ref, *span, error) {
	if m.state != mutatorRunning {
		return Nil, nil, m.stateErr()
	}
	h := m.h
	if t.h != h {
		return Nil, nil, fmt.Errorf("%w: a Type of another heap, or none", ErrType)
	}
	if h.world.stopReq.Load() != 0 {
		m.park()
	}
	if t.id < 0 {
		return m.allocLarge(t.l.size, t.l)
	}
	return m.allocSlow(t.id)
}

// allocSlow allocates an object of span class c when nextFreeFast found
// no slot in the Mutator's span of that class (or was not tried): from
// the rest of the span, or from a new one if it is full or missing.
func (m *Mutator) allocSlow(c int) (Ref, *span, error) {
	if c < len(m.spans) {
		if s := m.spans[c]; s != nil {
			if i, ok := s.nextFree(); ok {
				m.allocs++
				return s.take(i), s, nil
			}
		}
	}
	return m.refill(c)
}

// refill replaces the Mutator's span of span class id, which is full or
// missing, starting a collection first if the heap has reached its goal,
// and allocates from the new span.
func (m *Mutator) refill(id int) (Ref, *span, error) {
	h := m.h
	if h.closed.Load() {
		return Nil, nil, errClosed
	}
	m.flushAllocs()
	if id >= len(m.spans) {
		// A Type made after the Mutator: room for every class so far.
		m.spans = append(m.spans, make([]*span, len(*h.types.classes.Load())-len(m.spans))...)
	}
	if s := m.spans[id]; s != nil {
		m.spans[id] = nil
		h.uncache(s)
	}
	if err := m.pace(); err != nil {
		return Nil, nil, err
	}
	c := h.spanClassOf(id)
	s, err := h.cacheSpan(c, m.bits)
	if errors.Is(err, ErrLimit) {
		// Out of memory: collect, sweep and release everything, and try
		// once more. (The collection expires the Mutator's Views.)
		if err := h.collect(m, true); err != nil {
			return Nil, nil, err
		}
		s, err = h.cacheSpan(c, m.bits)
	}
	if err != nil {
		return Nil, nil, err
	}
	m.spans[id] = s
	i, ok := s.nextFree()
	if !ok {
		return Nil, nil, fmt.Errorf("sweep: internal error: span %d of class %d handed out full", s.idx, id)
	}
	m.allocs++
	return s.take(i), s, nil
}

// allocLarge allocates an object of size bytes, too large for a size
// class, laid out by l, in a span of its own.
func (m *Mutator) allocLarge(size int, l *layout) (Ref, *span, error) {
	h := m.h
	if h.closed.Load() {
		return Nil, nil, errClosed
	}
	m.flushAllocs()
	npages := (size + PageSize - 1) / PageSize
	if err := m.pace(); err != nil {
		return Nil, nil, err
	}
	large := h.spanClassOf(0)
	s, err := h.newSpan(large, npages, l, m.bits, h.sweepgen.Load())
	if errors.Is(err, ErrLimit) {
		if err := h.collect(m, true); err != nil {
			return Nil, nil, err
		}
		s, err = h.newSpan(large, npages, l, m.bits, h.sweepgen.Load())
	}
	if err != nil {
		return Nil, nil, err
	}
	h.heapLive.Add(int64(s.elemSize))
	i, _ := s.nextFree()
	r := s.take(i)
	s.publishFree()
	// The span goes on the swept full list at once, where the next sweep
	// finds it; the Mutator does not cache it.
	large.central.fullSwept(h.sweepgen.Load()).push(s)
	m.allocs++
	return r, s, nil
}

// flushAllocs adds the Mutator's allocation count to the heap's.
func (m *Mutator) flushAllocs() {
	if m.allocs > 0 {
		m.h.st.allocs.Add(m.allocs)
		m.allocs = 0
	}
}

// park waits at a safepoint while a collection stops the world.
func (m *Mutator) park() {
	m.expire()
	m.flushAllocs()
	m.h.world.park()
}

// Safepoint parks the Mutator if a collection is stopping the world, and
// returns when it may go on. Call it in long loops that do not allocate.
func (m *Mutator) Safepoint() {
	if m.state == mutatorRunning && m.h.world.stopReq.Load() != 0 {
		m.park()
	}
}

// GC runs a complete collection, as Heap.GC does, and returns when its mark
// phase is over; sweeping goes on in the background. The Mutator is
// released meanwhile. It is a safepoint.
func (m *Mutator) GC() error {
	if m.state != mutatorRunning {
		return m.stateErr()
	}
	return m.h.collect(m, false)
}

// Release tells the heap that the Mutator will not use it until Acquire,
// so that collections need not wait for it. Its root stack still counts,
// and its goroutine may still change it (Push, Pop, SetRoot). Its other
// methods but Acquire and Close return ErrReleased, and its Views expire.
func (m *Mutator) Release() {
	if m.state == mutatorRunning {
		m.release()
	}
}

// release is Release of a running Mutator.
func (m *Mutator) release() {
	m.expire()
	m.flushAllocs()
	m.flushBarrier()
	m.h.world.release(m)
}

// Acquire makes a released Mutator running again, waiting for the end of
// a stop of the world in progress.
func (m *Mutator) Acquire() {
	if m.state == mutatorReleased {
		m.acquire()
	}
}

// acquire is Acquire of a released Mutator.
func (m *Mutator) acquire() {
	m.h.world.acquire(m)
	m.startRunning()
}

// uncacheAll gives the Mutator's cached spans back to their sets. Called
// by the Mutator, or by a collector while it is parked or released.
func (m *Mutator) uncacheAll() {
	for c, s := range m.spans {
		if s != nil {
			m.spans[c] = nil
			m.h.uncache(s)
		}
	}
}

// Close gives the Mutator's cached spans back to the heap and unregisters
// it; its root stack stops counting. Later calls return ErrClosed.
func (m *Mutator) Close() error {
	if m.state == mutatorClosed || m.h == nil {
		return errMutatorClosed
	}
	m.expire()
	m.flushAllocs()
	h := m.h
	if m.state == mutatorRunning {
		m.flushBarrier()
	}
	h.world.removeMayWait(m, func(heapClosed bool) {
		if heapClosed {
			return
		}
		// No collection can start while the world's lock is held, so
		// sweepgen holds.
		m.uncacheAll()
	})
	m.rootsMu.Lock()
	m.roots = nil
	m.rootsMu.Unlock()
	m.bits.Flush()
	return nil
}
