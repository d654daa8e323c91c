package sweep

import (
	"math/bits"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"unsafe"
)

// The mark runs concurrently with the Mutators: it starts with the world
// stopped (markStart marks the roots), goes on with the world running
// (mark workers drain the grey objects while the Mutators' write barrier
// shades what they overwrite), and ends with the world stopped again
// (gc.go). It keeps the snapshot invariant of a deletion barrier (Yuasa):
// every object reachable when the mark began is marked. An object
// reachable then is either found by the markers along a path that still
// exists, or the barrier shaded it when its path was cut. Objects
// allocated during the mark are black: the sweep counts them as marked
// (span.blacken), and the markers never scan them; what they point to was
// reachable when the mark began or is black itself.

// markQueue is the mark's shared state: batches of grey objects that
// workers take when their own stack runs dry, the count of workers, and
// the totals of the workers that are done. It lives in the Heap and is
// reset at the start of each mark.
//
// Workers are the heap's mark goroutines, the caller of a collection run
// in the foreground (its controller), and goroutines that help a mark
// because they wait for it to end: Mutators that reached the heap goal
// (released meanwhile), callers of GC. The mark is drained when every
// worker waits for work and no batch is left; only the world-stopped
// check at the end of the mark makes it final, since the write barriers
// of running Mutators may still shade objects.
type markQueue struct {
	mu       sync.Mutex
	cond     sync.Cond    // on mu; broadcast when a batch, an idle worker, a departure or the end comes
	batches  [][]markItem // under mu
	nworkers int          // workers marking in this cycle; under mu
	idle     int          // workers waiting in get; under mu
	over     bool         // the mark is over (or abandoned): workers leave; under mu
	err      error        // the failure that stopped marking, or nil; under mu
	// owned is set for a collection run in the foreground: its
	// controller ends the mark. Otherwise a Mutator that takes a span,
	// or a goroutine that helped, ends it once it is drained. Written
	// with the world stopped at the start of the mark; read-only while it
	// runs.
	owned   bool
	hungry  atomic.Int32 // idle workers not yet served a batch; stored under mu, read atomically so busy workers know when to share
	drained atomic.Bool  // every worker is idle and no batch is left; stored under mu, read atomically
	aborted atomic.Bool  // a worker failed: the others stop; stored under mu, read atomically
	// ending is claimed by compare-and-swap by the goroutine that tries
	// to end a mark run in the background, so that one does at a time.
	ending atomic.Bool

	// The totals of workers that left and of flushed write barriers;
	// under mu.
	slots, bytes int64
	bad, expired uint64
	unsure       []unsureRef

	// oldest is the arena epoch before which a bitmap is past its
	// lifetime: stored with the world stopped at the start of a mark,
	// read-only while it runs.
	oldest uint64
	// spare are the markers of goroutines that joined marks, for reuse;
	// under mu.
	spare []*marker
}

// unsureRef is a Ref met while marking to a slot that was free when the
// mark began: an object allocated since, or a stale Ref. The end of the
// mark tells them apart, with the world stopped.
type unsureRef struct {
	s *span
	j int
}

// maxUnsure caps the unsure Refs a worker keeps per mark; beyond it they
// are taken for objects allocated during the mark, not counted as bad.
const maxUnsure = 1 << 12

// reset readies q for a mark in arena epoch epoch with nworkers workers,
// owned by its controller or run in the background. The world is
// stopped.
func (q *markQueue) reset(nworkers int, owned bool, epoch, retain uint64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	clear(q.batches)
	q.batches = q.batches[:0]
	q.nworkers, q.idle = nworkers, 0
	q.over, q.err, q.owned = false, nil, owned
	q.hungry.Store(0)
	q.drained.Store(false)
	q.aborted.Store(false)
	q.slots, q.bytes, q.bad, q.expired = 0, 0, 0, 0
	clear(q.unsure)
	q.unsure = q.unsure[:0]
	q.oldest = 0
	if epoch > retain {
		q.oldest = epoch - retain
	}
}

// fail stops marking with err, unless it has failed already.
func (q *markQueue) fail(err error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.err == nil {
		q.err = err
	}
	q.aborted.Store(true)
	q.cond.Broadcast()
}

// failure returns the error that stopped marking, or nil.
func (q *markQueue) failure() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.err
}

// updateLocked stores hungry and drained after a change. Called with mu
// held.
func (q *markQueue) updateLocked() {
	q.hungry.Store(int32(q.idle - len(q.batches)))
	q.drained.Store(q.idle == q.nworkers && len(q.batches) == 0)
}

// put adds a batch of grey objects.
func (q *markQueue) put(b []markItem) {
	q.mu.Lock()
	q.batches = append(q.batches, b)
	q.updateLocked()
	q.cond.Signal()
	q.mu.Unlock()
}

// get returns a batch for a worker whose stack is empty. It waits while
// other workers are busy; it returns false when the mark is over or has
// failed, and, if until is set, when the mark is drained.
func (q *markQueue) get(untilDrained bool) ([]markItem, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.idle++
	defer func() {
		q.idle--
		q.updateLocked()
	}()
	for {
		if n := len(q.batches); n > 0 {
			b := q.batches[n-1]
			q.batches[n-1] = nil
			q.batches = q.batches[:n-1]
			return b, true
		}
		if q.over || q.err != nil {
			return nil, false
		}
		q.updateLocked()
		if q.idle == q.nworkers {
			if untilDrained {
				return nil, false
			}
			q.cond.Broadcast() // wake those that wait for the drain
		}
		q.cond.Wait()
	}
}

// busy reports whether work is left after the mark was found drained,
// with the world stopped and the write barriers flushed: a batch, or a
// worker (but the first keep, which stopped waiting for work to end the
// mark) that took one since.
func (q *markQueue) busy(keep int) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.batches) > 0 || q.idle < q.nworkers-keep
}

// help joins the mark in progress, if any, as a worker with a spare
// marker, and returns when it is drained, over or has failed.
func (q *markQueue) help(h *Heap) {
	q.mu.Lock()
	if q.over || q.err != nil {
		q.mu.Unlock()
		return
	}
	q.nworkers++
	var w *marker
	if n := len(q.spare); n > 0 {
		w = q.spare[n-1]
		q.spare = q.spare[:n-1]
	} else {
		w = newMarker(h)
	}
	q.mu.Unlock()
	w.reset()
	defer func() {
		q.leave(w)
		q.mu.Lock()
		q.spare = append(q.spare, w)
		q.mu.Unlock()
	}()
	w.guard(func() { w.work(true) })
}

// leave removes worker w, adding its totals.
func (q *markQueue) leave(w *marker) {
	q.mu.Lock()
	q.nworkers--
	q.addLocked(w)
	q.updateLocked()
	q.cond.Broadcast()
	q.mu.Unlock()
}

// addLocked adds w's totals to q's and zeroes them. Called with mu held.
func (q *markQueue) addLocked(w *marker) {
	q.slots += w.slots
	q.bytes += w.bytes
	q.bad += w.bad
	q.expired += w.expired
	q.unsure = append(q.unsure, w.unsure...)
	clear(w.unsure)
	w.unsure = w.unsure[:0]
	w.slots, w.bytes, w.bad, w.expired = 0, 0, 0, 0
}

// flush hands w's grey objects and totals to q: the write barrier's work
// of a Mutator that parks, is released or closed.
func (q *markQueue) flush(w *marker) {
	q.mu.Lock()
	if len(w.stack) > 0 {
		q.batches = append(q.batches, append([]markItem(nil), w.stack...))
		clear(w.stack)
		w.stack = w.stack[:0]
		q.updateLocked()
		q.cond.Signal()
	}
	q.addLocked(w)
	q.mu.Unlock()
}

// finish ends the mark: workers waiting in get leave. It waits until
// only keep workers are left (the controller of a foreground
// collection).
func (q *markQueue) finish(keep int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.over = true
	q.cond.Broadcast()
	for q.nworkers > keep {
		q.cond.Wait()
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

// marker is one mark worker's state: the heap's workers (kept between
// collections, so that their stacks are reused) and each Mutator's, which
// its write barrier fills and which it marks with when it joins a mark.
// A marker belongs to one goroutine at a time.
type marker struct {
	h       *Heap
	q       *markQueue
	tag     uint8      // the heap's tag
	oldest  uint64     // q.oldest
	stack   []markItem // marked objects still to scan
	ring    [prefetchDepth]markItem
	head, n uint        // the objects in ring: n of them from head on
	visitFn func(Ref)   // visit as a func value, made once
	slots   int64       // objects this worker marked
	bytes   int64       // their slot bytes
	bad     uint64      // Refs that named no allocated slot
	expired uint64      // marks into a bitmap past its lifetime
	unsure  []unsureRef // Refs to slots free when the mark began
}

// newMarker returns a marker of h.
func newMarker(h *Heap) *marker {
	w := &marker{h: h, q: &h.work, tag: h.tag}
	w.visitFn = w.visit
	return w
}

// reset readies w for the mark that q was reset for.
func (w *marker) reset() {
	w.oldest = w.q.oldest
	clear(w.stack)
	w.stack = w.stack[:0]
	w.ring = [prefetchDepth]markItem{}
	w.head, w.n = 0, 0
	w.slots, w.bytes, w.bad, w.expired = 0, 0, 0, 0
	clear(w.unsure)
	w.unsure = w.unsure[:0]
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

// lookup returns the span of r and its slot, or nil if r names no slot
// of a span of this heap.
func (w *marker) lookup(r Ref) (*span, int) {
	i := r.spanIdx()
	t := w.h.table.Load()
	if r.tag() != w.tag || uint(i) >= uint(len(t.spans)) {
		return nil, 0
	}
	s := t.spans[i].Load()
	j := r.slot()
	if s == nil || j >= s.nelems {
		return nil, 0
	}
	return s, j
}

// visit marks r, met in a root or an object, and queues it for scanning
// if this call marked it. A Ref that names no slot allocated when the
// mark began is skipped: it names an object allocated during the mark
// (black already), or it is stale (counted in Stats.BadRefs), so that it
// never resurrects a free slot.
func (w *marker) visit(r Ref) {
	if r == Nil {
		return
	}
	s, j := w.lookup(r)
	if s == nil {
		w.bad++
		return
	}
	// Mark only slots allocated when the mark began: markFrom and
	// allocBits are fixed while it runs. (A stale Ref to a slot that was
	// allocated again keeps the new object alive one more cycle; resolve
	// still rejects it.)
	if !(j < s.markFrom || s.allocBits.Test(j)) {
		if j >= int(s.pubFree.Load()) {
			// Perhaps allocated since, perhaps free: the end of the mark
			// tells.
			if len(w.unsure) < maxUnsure {
				w.unsure = append(w.unsure, unsureRef{s, j})
			}
		}
		return
	}
	w.greyen(s, j, r)
}

// shade is the write barrier's visit: it marks r, an old value
// overwritten during the mark, if r names an object allocated when the
// mark began. Anything else is skipped without a count: the word may
// have held data.
func (w *marker) shade(r Ref) {
	s, j := w.lookup(r)
	if s == nil || !(j < s.markFrom || s.allocBits.Test(j)) {
		return
	}
	w.greyen(s, j, r)
}

// greyen marks slot j of s, allocated when the mark began, and queues
// it for scanning if this call marked it and it may hold Refs.
func (w *marker) greyen(s *span, j int, r Ref) {
	if s.markBits.TestAtomic(j) || !s.markBits.SetAtomic(j) {
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

// drain scans objects from w's stack until it is empty or the mark
// fails. It shares half its stack when a worker is hungry.
func (w *marker) drain() {
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
			return
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
		w.ring[w.head] = markItem{}
		w.head = (w.head + 1) % prefetchDepth
		w.n--
		w.scan(it)
	}
}

// work marks until the mark is over (or, if untilDrained, drained),
// taking batches from the queue when its stack is empty.
func (w *marker) work(untilDrained bool) {
	for {
		w.drain()
		if w.q.aborted.Load() {
			return
		}
		b, ok := w.q.get(untilDrained)
		if !ok {
			return
		}
		w.stack = append(w.stack, b...)
	}
}

// markRoots marks the roots with w: every Mutator's root stack and
// Options.Roots. The world is stopped. It returns the number of roots.
func (h *Heap) markRoots(w *marker) (roots int64) {
	w.guard(func() {
		for m := range h.world.mutators {
			// A released Mutator's goroutine may change its roots.
			m.rootsMu.Lock()
			for _, r := range m.roots {
				w.visit(r)
			}
			roots += int64(len(m.roots))
			m.rootsMu.Unlock()
		}
		if h.rootsFn != nil {
			h.rootsFn(func(r Ref) {
				roots++
				w.visit(r)
			})
		}
	})
	return roots
}

// clearMarks clears the mark bitmap of every span, undoing an abandoned
// mark. The world is stopped and no sweep is in progress.
func (h *Heap) clearMarks() {
	t := h.table.Load()
	for i := range t.spans {
		if s := t.spans[i].Load(); s != nil {
			s.markBits.ClearAll()
		}
	}
}
