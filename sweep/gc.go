package sweep

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// emptySweepsToFree is the number of consecutive sweeps that must find a
// small-object span empty before its pages go back to the page heap: a
// span that empties once is kept for its class, which will likely need it
// again soon; one that stays empty for a whole cycle is returned.
const emptySweepsToFree = 2

// gcWanted reports whether the heap has reached its collection goal.
func (h *Heap) gcWanted() bool {
	return h.gcPercent > 0 && h.liveBytes.Load() >= h.goal.Load()
}

// GC runs a full collection and returns when its mark phase is over;
// sweeping goes on in the background. If another collection is in
// progress, GC waits for it instead. The caller must not own a running
// Mutator (use Mutator.GC): GC waits for every running Mutator to reach a
// safepoint.
func (h *Heap) GC() error {
	if h == nil || h.arena == nil {
		return fmt.Errorf("%w: heap", ErrClosed)
	}
	return h.collect(nil, false)
}

// collect stops the world, collects and restarts the world. self is the
// calling Mutator, if any: it counts as stopped. If another collection
// holds the world, collect waits for it to end (parked, for a running
// self) and returns, unless full is set: it then runs a collection of its
// own afterwards. A full collection also sweeps every span and releases
// the memory of the empty ones before it restarts the world, so that an
// allocation that hit MaxBytes can retry with everything freed.
func (h *Heap) collect(self *Mutator, full bool) error {
	selfRunning := self != nil && self.state == running
	h.wmu.Lock()
	waited := false
	for h.stopping && !h.wclosed {
		waited = true
		if selfRunning {
			h.parkLocked()
		} else {
			gen := h.worldGen
			for h.worldGen == gen {
				h.wcond.Wait()
			}
		}
	}
	if h.wclosed {
		h.wmu.Unlock()
		return ErrClosed
	}
	if waited && !full {
		h.wmu.Unlock()
		return nil
	}
	t0 := time.Now()
	h.stopping = true
	h.stopReq.Store(1)
	me := 0
	if selfRunning {
		me = 1
	}
	for h.parked < h.running-me {
		h.wcond.Wait()
	}
	// The world is stopped: every running Mutator other than self is
	// parked, released ones stay away until we restart it, and no Mutator
	// can be made or closed. Their fields are ours until then.
	h.wmu.Unlock()

	h.gcStopped(full)

	h.wmu.Lock()
	h.stopping = false
	h.stopReq.Store(0)
	h.worldGen++
	h.wcond.Broadcast()
	h.wmu.Unlock()
	h.st.pauseNs.Add(int64(time.Since(t0)))
	return nil
}

// gcStopped is a collection with the world stopped: finish the previous
// sweep, flush the Mutators' span caches, mark, and start the sweep; if
// full, also finish that sweep, freeing every empty span, and release
// the memory it freed.
func (h *Heap) gcStopped(full bool) {
	// Finish the previous cycle's sweep (the runtime's finishsweep_m):
	// help the background sweepers, then wait for the spans others are
	// sweeping and for the arena's Advance.
	h.waitSweepStopped()
	// No running Mutator is between resolving a Ref and using it: the
	// memory of the spans that sweep freed can be reused.
	h.releaseRetired()

	// Every span is now swept, so it is either cached by a Mutator or on
	// a swept list. Put the cached ones on the lists too: after the flip
	// below they all need sweeping.
	sg := h.sweepgen.Load()
	for m := range h.mutators {
		for c, s := range m.spans {
			if s != nil {
				m.spans[c] = nil
				h.uncache(s)
			}
		}
		m.flushAllocs()
	}
	h.countAllocated()

	tm := time.Now()
	slots, bytes := h.mark()
	h.st.markNs.Add(int64(time.Since(tm)))
	h.st.liveSlots.Store(slots)
	h.st.liveBytes.Store(bytes)

	// The flip: every swept list becomes an unswept list, every span in
	// use needs sweeping.
	h.sgLock.Lock()
	h.mu.Lock()
	n := h.inUse
	h.mu.Unlock()
	h.sweepgen.Store(sg + 2)
	h.sweepCursor.Store(0)
	h.st.sweepStart.Store(time.Now().UnixNano())
	h.cycle.Add(1)
	h.sweepLeft.Store(int64(n))
	if h.onFlip != nil {
		h.onFlip(sg+2, n)
	}
	h.sgLock.Unlock()

	h.liveBytes.Store(bytes)
	h.goal.Store(max(h.minHeap, bytes+bytes/100*int64(h.gcPercent)))
	if n == 0 {
		h.finishSweep()
		return
	}
	if full {
		h.pressure.Store(true)
		h.waitSweepStopped()
		h.pressure.Store(false)
		h.releaseRetired()
		return
	}
	for range h.nsweep {
		select {
		case h.wake <- struct{}{}:
		default:
		}
	}
}

// waitSweepStopped finishes the current sweep phase with the world
// stopped (the runtime's finishsweep_m): it helps the background
// sweepers, then waits for the spans others are sweeping and for the
// arena's Advance.
func (h *Heap) waitSweepStopped() {
	for h.sweepOne(h.arena) {
	}
	h.smu.Lock()
	for h.sweptCycle != h.cycle.Load() {
		h.scond.Wait()
	}
	h.smu.Unlock()
}

// countAllocated adds up the allocated slots of every span, with the
// world stopped and no sweep in progress, and records the peak. The
// peak's load-then-store is safe because only one collection at a time
// runs this.
func (h *Heap) countAllocated() {
	var slots, bytes int64
	t := h.table.Load()
	for i := range t.spans {
		if s := t.spans[i].Load(); s != nil {
			slots += int64(s.allocCount)
			bytes += int64(s.allocCount) * int64(s.elemSize)
		}
	}
	if slots > h.st.peakSlots.Load() {
		h.st.peakSlots.Store(slots)
	}
	if bytes > h.st.peakBytes.Load() {
		h.st.peakBytes.Store(bytes)
	}
}

// finishSweep ends a sweep phase: every span in use at its start has been
// swept, so the arena moves to the next epoch.
//
// Lifetime argument. Number the sweep phases c = 1, 2, …; phase c runs
// in arena epoch c-1, because the Advance that ends phase c-1 (here) is
// the only Advance between them, and the next collection waits for it
// before it marks. So epoch c-1 spans the end of sweep c-1, the
// Mutators' run, mark c and all of sweep c.
//
// Take a bitmap B whose Alloc began in epoch e. Either a sweep of phase
// e+1 allocated it as a span's new mark bitmap, or a new span got it
// during epoch e (before or during sweep e+1; a span made during sweep
// e+1 is already swept for it). Mark e+2 at the latest writes B (it is
// the mark bitmap until then); sweep e+2 at the latest makes it the
// allocation bitmap, read by allocation until sweep e+3, which reads it
// once more (freed slots) and drops it. Sweep e+3 runs in epoch e+2 and
// this function runs only after it, so B is last used in epoch e+2 or
// earlier. The arena keeps B until Epoch reaches e+Retain+1 = e+3 with
// the default Retain = 2: every span bitmap is within its lifetime. With
// Retain = 1, B would be recycled at e+2 while still in use, which New
// rejects. sweepSpan checks this for every span it sweeps and Stats
// reports LifetimeViolations, which the tests require to be 0.
func (h *Heap) finishSweep() {
	h.arena.Advance()
	h.st.sweepWallNs.Add(time.Now().UnixNano() - h.st.sweepStart.Load())
	h.smu.Lock()
	h.sweptCycle = h.cycle.Load()
	h.scond.Broadcast()
	h.smu.Unlock()
}

// WaitSweep helps sweep the spans of the current cycle and returns once
// they are all swept. It may run concurrently with Mutators.
func (h *Heap) WaitSweep() {
	if h.usable() != nil {
		return
	}
	for h.sweepOne(h.arena) {
	}
	want := h.cycle.Load()
	h.smu.Lock()
	for h.sweptCycle < want {
		h.scond.Wait()
	}
	h.smu.Unlock()
}

// sweptOne counts one span of this cycle swept; the goroutine that
// sweeps the last one ends the sweep phase. Call it after the span is
// placed (on a list, in a cache or freed).
func (h *Heap) sweptOne() {
	if h.sweepLeft.Add(-1) == 0 {
		h.finishSweep()
	}
}

// sweepSpan sweeps s, which the caller acquired for generation sg, with
// a new mark bitmap from src, and marks it swept. It returns the number
// of slots freed.
func (h *Heap) sweepSpan(s *Span, src BitSource, sg uint32) int {
	var t0 time.Time
	if h.timing {
		t0 = time.Now()
	}
	if h.onSweep != nil {
		h.onSweep(s, sg)
	}
	// The bitmaps are used for the last time right here: check them.
	if now := h.arena.Epoch(); now >= s.allocEpoch+h.retain+1 || now >= s.markEpoch+h.retain+1 {
		h.st.lifetimeViolations.Add(1)
	}
	nb, e := h.newBits(src, s.nelems)
	freed := s.sweepWith(nb, e)
	s.SetSwept(sg)
	h.st.spansSwept.Add(1)
	if freed > 0 {
		h.st.slotsFreed.Add(uint64(freed))
	}
	if h.timing {
		h.st.sweepNs.Add(int64(time.Since(t0)))
	}
	return freed
}

// place puts s, just swept by a background sweeper, where it belongs: the
// retired list if it stays empty (or is empty while a full collection
// looks for memory), else the swept full or partial set.
func (h *Heap) place(s *Span, sg uint32) {
	c := &h.central[s.class]
	switch {
	case s.allocCount == 0 && (s.class == 0 || s.emptySweeps >= emptySweepsToFree || h.pressure.Load()):
		h.freeSpan(s)
	case s.allocCount == s.nelems:
		c.fullSwept(sg).push(s)
	default:
		c.partialSwept(sg).push(s)
	}
}

// sweepOne sweeps one span of this cycle that nobody has taken, with
// bitmaps from src, and reports whether it found one.
func (h *Heap) sweepOne(src BitSource) bool {
	if h.sweepLeft.Load() <= 0 {
		return false
	}
	h.sgLock.RLock()
	defer h.sgLock.RUnlock()
	sg := h.sweepgen.Load()
	s := h.nextUnswept(sg)
	if s == nil {
		return false
	}
	if !s.TryAcquire(sg) {
		// A span on an unswept list has no holder, so this does not
		// happen; the span's sweeper will place it.
		h.st.acquireLost.Add(1)
		return true
	}
	h.sweepSpan(s, src, sg)
	h.place(s, sg)
	h.sweptOne()
	return true
}

// nextUnswept pops a span from the unswept sets, in class order.
func (h *Heap) nextUnswept(sg uint32) *Span {
	n := int32(2 * len(h.central))
	for {
		k := h.sweepCursor.Load()
		if k >= n {
			return nil
		}
		c := &h.central[k/2]
		set := c.partialUnswept(sg)
		if k%2 == 1 {
			set = c.fullUnswept(sg)
		}
		if s := set.pop(); s != nil {
			return s
		}
		h.sweepCursor.CompareAndSwap(k, k+1)
	}
}

// bgSweep is a background sweeper: it sleeps until a sweep phase starts,
// then sweeps spans until none is left or Close stops it.
func (h *Heap) bgSweep(int) {
	defer h.wg.Done()
	bits := h.arena.NewCache()
	for {
		select {
		case <-h.quit:
			return
		case <-h.wake:
		}
		for h.sweepOne(bits) {
			select {
			case <-h.quit:
				return
			default:
			}
		}
	}
}

// cacheSpan returns a swept span of class c with a free slot for a
// Mutator, with bitmaps from src: a swept partial span, else an unswept
// one it sweeps (partial, then full ones that sweeping frees), else a
// new span.
func (h *Heap) cacheSpan(c int, src BitSource) (*Span, error) {
	sg := h.sweepgen.Load()
	s, err := h.findSpan(c, src, sg)
	if err != nil {
		return nil, err
	}
	if s.sweepgen.Load() != sg {
		h.st.unsweptTaken.Add(1)
	}
	if !s.cached.CompareAndSwap(false, true) {
		h.st.doubleCached.Add(1)
	}
	h.liveBytes.Add(int64(s.nelems-s.allocCount) * int64(s.elemSize))
	return s, nil
}

// findSpan is cacheSpan's search.
func (h *Heap) findSpan(c int, src BitSource, sg uint32) (*Span, error) {
	cen := &h.central[c]
	if s := cen.partialSwept(sg).pop(); s != nil {
		return s, nil
	}
	// Sweeping is lazy too: an allocator sweeps what it needs. At most
	// 100 spans each, so that a heap of full spans does not stall it.
	for range 100 {
		s := cen.partialUnswept(sg).pop()
		if s == nil {
			break
		}
		if s.TryAcquire(sg) {
			h.sweepSpan(s, src, sg)
			h.sweptOne()
			return s, nil
		}
		h.st.acquireLost.Add(1)
	}
	for range 100 {
		s := cen.fullUnswept(sg).pop()
		if s == nil {
			break
		}
		if !s.TryAcquire(sg) {
			h.st.acquireLost.Add(1)
			continue
		}
		h.sweepSpan(s, src, sg)
		if s.allocCount < s.nelems {
			h.sweptOne()
			return s, nil
		}
		cen.fullSwept(sg).push(s)
		h.sweptOne()
	}
	return h.newSpan(c, 0, src, sg)
}

// uncache returns s, a span a Mutator cached in this cycle, to its swept
// set.
func (h *Heap) uncache(s *Span) {
	s.cached.Store(false)
	h.liveBytes.Add(-int64(s.nelems-s.allocCount) * int64(s.elemSize))
	sg := h.sweepgen.Load()
	c := &h.central[s.class]
	if s.allocCount < s.nelems {
		c.partialSwept(sg).push(s)
	} else {
		c.fullSwept(sg).push(s)
	}
}

// mark marks every object reachable from the roots, with h.nmark
// workers, and returns the number and bytes of the objects marked. The
// world is stopped and every span swept.
func (h *Heap) mark() (slots, bytes int64) {
	q := &markQueue{workers: h.nmark}
	q.cond.L = &q.mu
	t := h.table.Load()
	epoch := h.arena.Epoch()
	ws := make([]*marker, h.nmark)
	for i := range ws {
		w := &marker{h: h, q: q, table: t, epoch: epoch}
		w.visitFn = w.visit
		ws[i] = w
	}
	w0 := ws[0]
	for m := range h.mutators {
		for _, r := range m.roots {
			w0.visit(r)
		}
	}
	if h.rootsFn != nil {
		h.rootsFn(w0.visitFn)
	}
	var wg sync.WaitGroup
	for _, w := range ws[1:] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.run()
		}()
	}
	w0.run()
	wg.Wait()
	for _, w := range ws {
		slots += w.slots
		bytes += w.bytes
		if w.bad > 0 {
			h.st.badRefs.Add(w.bad)
		}
		if w.expired > 0 {
			h.st.lifetimeViolations.Add(w.expired)
		}
	}
	return slots, bytes
}

// markQueue shares work between mark workers: batches of marked objects
// still to trace. A worker that runs dry waits here; when all of them
// wait and no batch is left, marking is done.
type markQueue struct {
	mu      sync.Mutex
	cond    sync.Cond    // on mu
	batches [][]Ref      // under mu
	idle    int          // workers waiting in get; under mu
	workers int          // read-only
	done    bool         // under mu
	hungry  atomic.Int32 // idle workers not yet served a batch; stored under mu, read atomically so busy workers know when to share
}

func (q *markQueue) put(b []Ref) {
	q.mu.Lock()
	q.batches = append(q.batches, b)
	q.hungry.Store(int32(q.idle - len(q.batches)))
	q.cond.Signal()
	q.mu.Unlock()
}

// get returns a batch, or false when marking is done.
func (q *markQueue) get() ([]Ref, bool) {
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

// marker is one mark worker's state.
type marker struct {
	h       *Heap
	q       *markQueue
	table   *spanTable // the span table, fixed while the world is stopped
	epoch   uint64     // the arena epoch during this mark
	stack   []Ref      // marked objects still to trace
	visitFn func(Ref)  // visit as a func value, made once
	slots   int64      // objects this worker marked
	bytes   int64      // their slot bytes
	bad     uint64     // Refs that named no live object
	expired uint64     // marks into a bitmap past its lifetime
}

// visit marks r and queues it for tracing if this call marked it.
func (w *marker) visit(r Ref) {
	if r == Nil {
		return
	}
	i := r.spanIdx()
	if int(i) >= len(w.table.spans) {
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
	if w.epoch >= s.markEpoch+w.h.retain+1 {
		w.expired++
	}
	w.slots++
	w.bytes += int64(s.elemSize)
	w.stack = append(w.stack, r)
}

// run traces objects until the queue says marking is done.
func (w *marker) run() {
	for {
		for n := len(w.stack); n > 0; n = len(w.stack) {
			if n >= 2 && w.q.hungry.Load() > 0 {
				// Give the oldest half away: near the roots, it is
				// likely the larger share of the work.
				half := n / 2
				w.q.put(append([]Ref(nil), w.stack[:half]...))
				w.stack = w.stack[:copy(w.stack, w.stack[half:])]
				n = len(w.stack)
			}
			r := w.stack[n-1]
			w.stack = w.stack[:n-1]
			s := w.table.spans[r.spanIdx()].Load()
			w.h.trace(Object{ref: r, base: s.addr(r.slot()), size: s.elemSize}, w.visitFn)
		}
		b, ok := w.q.get()
		if !ok {
			return
		}
		w.stack = append(w.stack, b...)
	}
}
