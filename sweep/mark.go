package sweep

import (
	"math/bits"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"unsafe"
)

// mark marks every object reachable from the roots, with h.nmark
// workers, and returns the number and bytes of the objects marked and
// the number of roots. The
// world is stopped and every span swept. If a Tracer or the Roots
// function panics, marking stops and mark returns a *TraceError; the
// mark bits are then partial (see clearMarks).
func (h *Heap) mark() (slots, bytes, roots int64, err error) {
	q := &markQueue{workers: h.nmark}
	q.cond.L = &q.mu
	t := h.table.Load()
	epoch := h.arena.Epoch()
	if h.markers == nil {
		h.markers = make([]*marker, h.nmark)
		for i := range h.markers {
			w := &marker{h: h}
			w.visitFn = w.visit
			h.markers[i] = w
		}
	}
	ws := h.markers
	for _, w := range ws {
		w.reset(q, t, epoch)
	}
	w0 := ws[0]
	w0.guard(func() {
		for m := range h.world.mutators {
			// A released Mutator's goroutine may change its roots.
			m.rootsMu.Lock()
			for _, r := range m.roots {
				w0.visit(r)
			}
			roots += int64(len(m.roots))
			m.rootsMu.Unlock()
		}
		if h.rootsFn != nil {
			h.rootsFn(func(r Ref) {
				roots++
				w0.visit(r)
			})
		}
	})
	var wg sync.WaitGroup
	// The workers are done when mark returns, and when this goroutine
	// unwinds (a runtime.Goexit in a Tracer).
	defer wg.Wait()
	if q.failure() == nil {
		for _, w := range ws[1:] {
			wg.Go(func() { w.guard(w.run) })
		}
		w0.guard(w0.run)
	}
	wg.Wait()
	if err := q.failure(); err != nil {
		for _, w := range ws {
			w.done()
		}
		return 0, 0, 0, err
	}
	for _, w := range ws {
		w.done()
		slots += w.slots
		bytes += w.bytes
		if w.bad > 0 {
			h.st.badRefs.Add(w.bad)
		}
		if w.expired > 0 {
			h.st.lifetimeViolations.Add(w.expired)
		}
	}
	return slots, bytes, roots, nil
}

// clearMarks clears the mark bitmap of every span, undoing an abandoned
// mark. The world is stopped and every span swept.
func (h *Heap) clearMarks() {
	t := h.table.Load()
	for i := range t.spans {
		if s := t.spans[i].Load(); s != nil {
			s.markBits.ClearAll()
		}
	}
}

// guard runs f, a part of the mark that calls user code, and turns a
// panic or a runtime.Goexit in it into the failure of the mark, which
// stops the other workers. A Goexit goes on unwinding afterwards.
func (w *marker) guard(f func()) {
	finished := false
	defer func() {
		if finished {
			return
		}
		v := recover()
		if v == nil { // panic(nil) recovers a *runtime.PanicNilError
			v = errGoexit
		}
		w.q.fail(&TraceError{Value: v, Stack: debug.Stack()})
	}()
	f()
	finished = true
}

// markQueue shares work between mark workers: batches of marked objects
// still to trace. A worker that runs dry waits here; when all of them
// wait and no batch is left, marking is done.
type markQueue struct {
	mu      sync.Mutex
	cond    sync.Cond    // on mu
	batches [][]markItem // under mu
	idle    int          // workers waiting in get; under mu
	workers int          // read-only
	done    bool         // under mu
	err     error        // the failure that stopped marking, or nil; under mu
	hungry  atomic.Int32 // idle workers not yet served a batch; stored under mu, read atomically so busy workers know when to share
	aborted atomic.Bool  // a worker failed: the others stop; stored under mu, read atomically
}

// fail stops marking with err, unless it has failed already.
func (q *markQueue) fail(err error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.err == nil {
		q.err = err
	}
	q.done = true
	q.aborted.Store(true)
	q.cond.Broadcast()
}

// failure returns the error that stopped marking, or nil.
func (q *markQueue) failure() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.err
}

func (q *markQueue) put(b []markItem) {
	q.mu.Lock()
	q.batches = append(q.batches, b)
	q.hungry.Store(int32(q.idle - len(q.batches)))
	q.cond.Signal()
	q.mu.Unlock()
}

// get returns a batch, or false when marking is done.
func (q *markQueue) get() ([]markItem, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for {
		if n := len(q.batches); n > 0 {
			b := q.batches[n-1]
			q.batches = q.batches[:n-1]
			q.hungry.Store(int32(q.idle - len(q.batches)))
			return b, true
		}
		if q.done {
			return nil, false
		}
		if q.idle+1 == q.workers {
			q.done = true
			q.cond.Broadcast()
			return nil, false
		}
		q.idle++
		q.hungry.Store(int32(q.idle - len(q.batches)))
		q.cond.Wait()
		q.idle--
	}
}

// markItem is a marked object still to scan.
type markItem struct {
	base unsafe.Pointer // its first byte
	s    *span          // its span, for its layout
	r    Ref            // its Ref, for a Tracer
}

// prefetchDepth is how many objects (a power of two) a mark worker holds between taking
// them off its stack and scanning them: it prefetches each as it takes
// it, so that its cache line is on its way while the ones before it are
// scanned, and the misses of several objects overlap.
const prefetchDepth = 16

// marker is one mark worker's state. The markers live on the Heap
// between collections, so that their stacks are reused; only the
// collector, with the world stopped, uses them.
type marker struct {
	h       *Heap
	q       *markQueue
	tag     uint8      // the heap's tag
	table   *spanTable // the span table, fixed while the world is stopped
	oldest  uint64     // bitmaps allocated before this arena epoch are past their lifetime
	stack   []markItem // marked objects still to scan
	ring    [prefetchDepth]markItem
	head, n uint      // the objects in ring: n of them from head on
	visitFn func(Ref) // visit as a func value, made once
	slots   int64     // objects this worker marked
	bytes   int64     // their slot bytes
	bad     uint64    // Refs that named no live object
	expired uint64    // marks into a bitmap past its lifetime
}

// reset readies w for a mark with queue q, span table t in arena epoch
// epoch.
func (w *marker) reset(q *markQueue, t *spanTable, epoch uint64) {
	w.q, w.table, w.tag = q, t, w.h.tag
	w.oldest = 0
	if epoch > w.h.retain {
		w.oldest = epoch - w.h.retain
	}
	w.stack = w.stack[:0]
	w.head, w.n = 0, 0
	w.slots, w.bytes, w.bad, w.expired = 0, 0, 0, 0
}

// done drops the spans w's stack and ring still point to, so that they
// do not stay reachable between collections.
func (w *marker) done() {
	clear(w.stack[:cap(w.stack)])
	w.ring = [prefetchDepth]markItem{}
}

// visit marks r and queues it for scanning if this call marked it.
func (w *marker) visit(r Ref) {
	if r == Nil {
		return
	}
	i := r.spanIdx()
	if r.tag() != w.tag || uint(i) >= uint(len(w.table.spans)) {
		w.bad++
		return
	}
	s := w.table.spans[i].Load()
	// Mark only allocated slots, so that a stale or forged Ref never
	// resurrects a free one. With the world stopped and every span swept
	// and uncached, the allocation state is stable, and reading it costs
	// less than the slot's sequence number: its words share cache lines
	// with the mark bits. (A stale Ref to a slot that was allocated again
	// keeps the new object alive one more cycle; resolve still rejects
	// it.)
	j := r.slot()
	if s == nil || j >= s.nelems || !(j < s.freeindex || s.allocBits.Test(j)) {
		w.bad++
		return
	}
	if !s.markBits.SetAtomic(j) {
		return
	}
	if s.markEpoch < w.oldest {
		w.expired++
	}
	w.slots++
	w.bytes += int64(s.elemSize)
	if s.layout.scan != scanNone { // pointer-free objects are never scanned
		w.stack = append(w.stack, markItem{base: s.addr(j), s: s, r: r})
	}
}

// scan visits the Refs of the object it by its layout.
func (w *marker) scan(it markItem) {
	switch l := it.s.layout; l.scan {
	case scanMask:
		for k, m := range l.mask {
			for ; m != 0; m &= m - 1 {
				i := k<<6 + bits.TrailingZeros64(m)
				w.visit(Ref(*(*uint64)(unsafe.Add(it.base, i*8))))
			}
		}
	case scanTracer:
		w.h.trace(Object{ref: it.r, base: it.base, size: it.s.elemSize}, w.visitFn)
	}
}

// run scans objects until the queue says marking is done.
func (w *marker) run() {
	for {
		for {
			// Fill the ring from the stack, prefetching each object.
			for w.n < prefetchDepth && len(w.stack) > 0 {
				last := len(w.stack) - 1
				it := w.stack[last]
				w.stack = w.stack[:last]
				prefetch(it.base)
				w.ring[(w.head+w.n)%prefetchDepth] = it
				w.n++
			}
			if w.n == 0 {
				break
			}
			if w.q.aborted.Load() {
				return
			}
			if n := len(w.stack); n >= 2 && w.q.hungry.Load() > 0 {
				// Give the oldest half away: near the roots, it is
				// likely the larger share of the work.
				half := n / 2
				w.q.put(append([]markItem(nil), w.stack[:half]...))
				w.stack = w.stack[:copy(w.stack, w.stack[half:])]
			}
			it := w.ring[w.head]
			w.head = (w.head + 1) % prefetchDepth
			w.n--
			w.scan(it)
		}
		b, ok := w.q.get()
		if !ok {
			return
		}
		w.stack = append(w.stack, b...)
	}
}
