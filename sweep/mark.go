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
//
// Grey objects are queued by span, as in Go's collector since 1.26:
// marking an object queues its span unless the span is queued already,
// and scanning a span scans every object of it that is marked and not yet
// scanned (span.scans), in address order. Spans wait in a first-in,
// first-out queue, so that marks accumulate in them meanwhile: the mark
// reads memory span by span, at the speed of a sequential pass, rather
// than object by object in the order of the graph, at the speed of a
// cache miss. A queue holds each span at most once.

// markQueue is the mark's shared state: batches of spans with grey
// objects that workers take when their own ring of spans runs dry, the count of workers, and
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
	cond     sync.Cond // on mu; signaled when a batch comes, broadcast when an idle worker, a departure or the end comes
	batches  [][]*span // under mu
	nworkers int       // workers marking in this cycle; under mu
	idle     int       // workers waiting in get; under mu
	over     bool      // the mark is over (or abandoned): workers leave; under mu
	err      error     // the failure that stopped marking, or nil; under mu
	// owned is set for a collection run in the foreground: its
	// controller ends the mark. Otherwise a Mutator that takes a span,
	// or a goroutine that helped, ends it once it is drained. Stored with
	// the world stopped at the start of the mark; read atomically, as
	// goroutines that are not running Mutators read it at any time.
	owned   atomic.Bool
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

// maxUnsure caps the unsure Refs a worker keeps between handing its
// totals to the queue, and those the queue keeps per mark; beyond it they
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
	q.over, q.err = false, nil
	q.owned.Store(owned)
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

// put adds a batch of spans to scan.
func (q *markQueue) put(b []*span) {
	q.mu.Lock()
	q.putLocked(b)
	q.mu.Unlock()
}

// putLocked is put with mu held.
func (q *markQueue) putLocked(b []*span) {
	q.batches = append(q.batches, b)
	q.updateLocked()
	q.cond.Signal()
}

// get returns a batch for a worker whose ring of spans is empty. It waits
// while other workers are busy; it returns false when the mark is over or
// has failed, and, if untilDrained, when the mark is drained.
func (q *markQueue) get(untilDrained bool) ([]*span, bool) {
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
// worker that took one since.
func (q *markQueue) busy() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.batches) > 0 || q.idle < q.nworkers
}

// join counts one more worker of the mark in progress and reports
// whether it did: not once the mark is over or has failed.
func (q *markQueue) join() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.over || q.err != nil {
		return false
	}
	q.nworkers++
	return true
}

// workAs marks with w, a worker of the mark, until the mark is over (or,
// if untilDrained, drained) or has failed, and then removes w from the
// workers, adding its totals: also when a Tracer ends the goroutine
// with runtime.Goexit.
func (q *markQueue) workAs(w *marker, untilDrained bool) {
	defer q.leave(w)
	w.guard(func() { w.work(untilDrained) })
}

// help joins the mark in progress, if any, as a worker with a spare
// marker, and returns when it is drained, over or has failed.
func (q *markQueue) help(h *Heap) {
	if !q.join() {
		return
	}
	q.mu.Lock()
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
		q.mu.Lock()
		q.spare = append(q.spare, w)
		q.mu.Unlock()
	}()
	q.workAs(w, true)
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
	q.unsure = append(q.unsure, w.unsure[:min(len(w.unsure), maxUnsure-len(q.unsure))]...)
	clear(w.unsure)
	w.unsure = w.unsure[:0]
	w.slots, w.bytes, w.bad, w.expired = 0, 0, 0, 0
}

// flush hands w's queued spans and totals to q: the write barrier's work
// of a Mutator that parks, is released or closed, or has queued enough.
func (q *markQueue) flush(w *marker) {
	q.mu.Lock()
	if w.spans.len() > 0 {
		q.putLocked(w.spans.take(w.spans.len()))
	}
	q.addLocked(w)
	q.mu.Unlock()
}

// finish ends the mark: workers waiting in get leave. It waits until
// they all have.
func (q *markQueue) finish() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.over = true
	q.cond.Broadcast()
	for q.nworkers > 0 {
		q.cond.Wait()
	}
}

// spanRing is a first-in, first-out queue of spans, growing as needed.
type spanRing struct {
	buf        []*span // len is a power of two, or 0
	head, size int     // the spans are buf[head], … buf[head+size-1], modulo len(buf)
}

func (r *spanRing) len() int { return r.size }

func (r *spanRing) push(s *span) {
	if r.size == len(r.buf) {
		nb := make([]*span, max(64, 2*len(r.buf)))
		for i := range r.size {
			nb[i] = r.buf[(r.head+i)&(len(r.buf)-1)]
		}
		r.buf, r.head = nb, 0
	}
	r.buf[(r.head+r.size)&(len(r.buf)-1)] = s
	r.size++
}

// pop removes and returns the oldest span, or nil.
func (r *spanRing) pop() *span {
	if r.size == 0 {
		return nil
	}
	s := r.buf[r.head]
	r.buf[r.head] = nil
	r.head = (r.head + 1) & (len(r.buf) - 1)
	r.size--
	return s
}

// peek returns the oldest span, or nil.
func (r *spanRing) peek() *span {
	if r.size == 0 {
		return nil
	}
	return r.buf[r.head]
}

// take removes the n oldest spans and returns them in a new slice.
func (r *spanRing) take(n int) []*span {
	out := make([]*span, n)
	for i := range out {
		out[i] = r.pop()
	}
	return out
}

// clear empties r.
func (r *spanRing) clear() {
	for r.size > 0 {
		r.pop()
	}
}

// marker is one mark worker's state: the heap's mark goroutines' (kept
// between collections, so that their queues are reused), the spare ones
// of goroutines that help a mark (markQueue.help), and each Mutator's,
// which its write barrier fills. A marker belongs to one goroutine at a
// time.
type marker struct {
	h       *Heap
	q       *markQueue
	tag     uint8       // the heap's tag
	oldest  uint64      // q.oldest
	spans   spanRing    // spans with grey objects, queued by this worker
	ptrs    []Ref       // scanSpan's buffer of the Refs to visit
	todos   []uint64    // scanSpan's buffer: pairs of a bitmap word and the objects of it to scan
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
	w.spans.clear()
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
			v = ErrGoexit
		}
		w.q.fail(&TraceError{Value: v, Stack: debug.Stack()})
	}()
	f()
	finished = true
}

// lookup returns the span of r and its slot, or nil if r names no slot
// of a span of this heap.
func (w *marker) lookup(r Ref) (*span, int) {
	s := w.h.table.Load().lookup(r, w.tag)
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
	if !s.allocatedAtMark(j) {
		if j >= int(s.pubFree.Load()) {
			// Perhaps allocated since, perhaps free: the end of the mark
			// tells.
			if len(w.unsure) < maxUnsure {
				w.unsure = append(w.unsure, unsureRef{s, j})
			}
		}
		return
	}
	w.greyen(s, j)
}

// shade is the write barrier's visit: it marks r, an old value
// overwritten during the mark, if r names an object allocated when the
// mark began. Anything else is skipped without a count: the word may
// have held data.
func (w *marker) shade(r Ref) {
	s, j := w.lookup(r)
	if s == nil || !s.allocatedAtMark(j) {
		return
	}
	w.greyen(s, j)
}

// greyen marks slot j of s, allocated when the mark began, and queues s
// for scanning if this call marked it, its objects may hold Refs and it
// is not queued yet.
func (w *marker) greyen(s *span, j int) { w.setMarks(s, j>>6, 1<<(j&63)) }

// scanSpan scans the objects of s that are marked and not yet scanned,
// in address order. It gives up s's place in the queues first, so that a
// mark made meanwhile queues s again; a scan claims the objects it scans
// in s.scans, so that two scans of s never scan one object.
func (w *marker) scanSpan(s *span) {
	s.queued.Store(false)
	l := s.layout
	// The objects to scan are claimed and prefetched first, word by word
	// of the bitmaps, so that their cache misses overlap. Objects with a
	// pointer mask are then scanned in two passes, as the runtime's
	// scanObjectsSmall does: the first reads every Ref word of the
	// objects into a buffer, the second marks.
	ptrs := w.ptrs[:0]
	todos := w.todos[:0]
	for k := range s.scans {
		marks := atomic.LoadUint64(&s.markBits[k])
		if marks&^atomic.LoadUint64(&s.scans[k]) == 0 {
			continue
		}
		if todo := marks &^ atomic.OrUint64(&s.scans[k], marks); todo != 0 {
			prefetchSlots(s.addr(k<<6), s.elemSize, todo)
			todos = append(todos, uint64(k), todo)
		}
	}
	w.todos = todos
	for x := 0; x < len(todos); x += 2 {
		k, todo := int(todos[x]), todos[x+1]
		for ; todo != 0; todo &= todo - 1 {
			j := k<<6 + bits.TrailingZeros64(todo)
			base := s.addr(j)
			if l.scan == scanMask {
				for k, m := range l.mask {
					for ; m != 0; m &= m - 1 {
						ptrs = append(ptrs, Ref(*(*uint64)(unsafe.Add(base, (k<<6+bits.TrailingZeros64(m))*8))))
					}
				}
				continue
			}
			w.h.trace(Object{ref: makeRef(s.tag, s.idx, j, s.seq(j)), base: base, size: s.elemSize}, w.visitFn)
		}
	}
	// visit, inlined for Refs to objects allocated when the mark began.
	// Refs into one span, and into one word of its mark bitmap, tend to
	// follow one another (a subtree's nodes share spans): the last span
	// found is kept, and the marks of one word are gathered and set with
	// one atomic OR.
	tag, t := w.tag, w.h.table.Load()
	// c is the span the last Ref was looked up in, at index ci: nil if
	// there was none, or the Ref was of another heap (a Ref of this heap
	// at ci is then left to visit); ci 0 names no span.
	var c *span
	ci := uint32(0)
	cw, marks := -1, uint64(0)
	for _, r := range ptrs {
		if r == Nil {
			continue
		}
		if i := r.spanIdx(); i != ci || r.tag() != tag {
			w.setMarks(c, cw, marks)
			cw, marks = -1, 0
			c, ci = t.lookup(r, tag), i
		}
		j := r.slot()
		if c == nil || j >= c.nelems || !c.allocatedAtMark(j) {
			w.visit(r) // bad, or allocated since the mark began
			continue
		}
		if j>>6 != cw {
			w.setMarks(c, cw, marks)
			cw, marks = j>>6, 0
		}
		marks |= 1 << (j & 63)
	}
	w.setMarks(c, cw, marks)
	w.ptrs = ptrs[:0]
}

// setMarks marks the objects of marks in word k of s's mark bitmap, all
// allocated when the mark began, counts those it marked and queues s if
// it marked some, their objects may hold Refs and s is not queued yet.
// k < 0 marks nothing.
func (w *marker) setMarks(s *span, k int, marks uint64) {
	if k < 0 {
		return
	}
	word := &s.markBits[k]
	if marks &^= atomic.LoadUint64(word); marks == 0 {
		return
	}
	if marks &^= atomic.OrUint64(word, marks); marks == 0 {
		return
	}
	if s.markEpoch < w.oldest {
		w.expired++
	}
	n := int64(bits.OnesCount64(marks))
	w.slots += n
	w.bytes += n * int64(s.elemSize)
	if s.layout.scan != scanNone && !s.queued.Load() && s.queued.CompareAndSwap(false, true) {
		w.spans.push(s)
	}
}

// drain scans the spans of w's queue until it is empty or the mark
// fails. It shares half its queue when a worker is hungry.
func (w *marker) drain() {
	for {
		s := w.spans.pop()
		if s == nil || w.q.aborted.Load() {
			return
		}
		if n := w.spans.len(); n >= 2 && w.q.hungry.Load() > 0 {
			w.q.put(w.spans.take(n / 2))
		}
		if next := w.spans.peek(); next != nil {
			prefetch(unsafe.Pointer(next))
		}
		w.scanSpan(s)
	}
}

// work marks until the mark is over (or, if untilDrained, drained),
// taking batches from the queue when its ring of spans is empty.
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
		for _, s := range b {
			w.spans.push(s)
		}
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

// clearMarks clears the mark and scan bitmaps of every span and takes
// it off the queues, undoing an abandoned mark. The world is stopped, no
// sweep is in progress, and the queues are dropped.
func (h *Heap) clearMarks() {
	t := h.table.Load()
	for i := range t.spans {
		if s := t.spans[i].Load(); s != nil {
			s.markBits.ClearAll()
			clear(s.scans)
			s.queued.Store(false)
		}
	}
}
