package sweep

import "time"

// A collection, as the runtime's, has three phases:
//
//  1. Mark start, with the world stopped (markStart): finish the last
//     sweep, release the memory of the spans it freed, flush the
//     Mutators' span caches, note where allocation stands in every span
//     (span.markFrom), mark the roots, and turn the write barrier on.
//  2. Mark, with the world running: mark workers scan grey objects,
//     goroutines that wait for the mark to end help them, and the write
//     barrier shades what Mutators overwrite.
//  3. Mark end, once the workers have drained the mark, with the world
//     stopped again (endMark, from tryEndMark or markAndEnd): flush the
//     write barriers; if they held grey objects, start the world and go
//     back to 2; otherwise flip to the sweep (markEnd), turn the barrier
//     off and start the world. The sweep then runs concurrently with the
//     program.
//
// A collection starts in the background when an allocation finds the
// heap past its trigger: the Mutator runs phase 1 and goes on, and the
// heap's mark goroutines run phase 2. Phase 3 is run by the first
// Mutator that takes a span once the mark is drained, or by a goroutine
// that waits for the mark to end. A collection runs in the foreground for
// GC, Mutator.GC, FreeOSMemory and an allocation that hit MaxBytes: the
// caller runs the three phases, marking with the heap's goroutines, and
// waits. Either way the world is only ever stopped on behalf of an
// allocation or of a call that collects.

// The collector's phase, Heap.phase.
const (
	phaseIdle uint32 = iota // no mark: Mutators allocate and the last sweep runs
	phaseMark               // from mark start to mark end: the write barrier is on
)

// cycle is the record of the collection in progress. Written with the
// world stopped, by the goroutines that start and end it.
type cycle struct {
	full      bool          // a full collection: sweep everything before the world starts
	pause     time.Duration // the world stopped for it so far
	start     time.Time     // when its mark started
	heapLive0 int64         // heapLive at mark start, span caches flushed
	allocs0   uint64        // objects allocated before mark start
	allocated int64         // slot bytes allocated at mark start
	roots     int64         // roots marked at mark start
}

// GC runs a complete collection and returns when its mark phase is
// over; sweeping goes on in the background. A collection in progress is
// finished first, so that the one GC runs starts after the call, as
// runtime.GC does. If a Tracer or the Roots function panics, the
// collection is abandoned and GC returns a *TraceError. The caller must
// not own a running Mutator (use Mutator.GC): GC waits for every running
// Mutator to reach a safepoint.
func (h *Heap) GC() error {
	if h == nil || h.arena == nil {
		return errClosed
	}
	return h.collect(nil, false)
}

// collect runs a collection in the foreground and returns when its mark
// is over. self is the calling Mutator, if it runs: it is released
// meanwhile. A mark in progress is finished first; the caller helps it.
// A full collection also sweeps every span and releases the memory of
// the empty ones before it starts the world, so that an allocation that
// hit MaxBytes can retry with everything freed.
func (h *Heap) collect(self *Mutator, full bool) error {
	if self != nil && self.state == mutatorRunning {
		self.release()
		defer func() {
			if !h.world.isWedged() {
				self.acquire()
			}
		}()
	}
	for {
		if err := h.helpEndMark(); err != nil {
			return err
		}
		if h.closed.Load() {
			return errClosed
		}
		// Sweep what is left before stopping the world, as gcStart does.
		for h.phase.Load() == phaseIdle && h.sweepOne(h.arena) {
		}
		t0, _, err := h.world.stop(nil)
		if err != nil {
			return err
		}
		if h.phase.Load() != phaseIdle { // a collection started meanwhile
			h.world.start()
			continue
		}
		if err := h.markStart(full, true, t0); err != nil {
			return err
		}
		return h.markAndEnd()
	}
}

// startBackground starts a collection for self, a running Mutator that
// found the heap past its trigger: it runs the mark start and hands the
// mark to the heap's mark goroutines. It returns the error of the mark
// start (a Roots function that panicked).
func (h *Heap) startBackground(self *Mutator) error {
	for h.phase.Load() == phaseIdle && h.heapLive.Load() >= h.trigger.Load() && h.sweepOne(self.bits) {
	}
	self.expire() // the stop may park self, or collect
	t0, stopped, err := h.world.stop(self)
	if err != nil || !stopped {
		return err
	}
	if h.phase.Load() != phaseIdle || h.heapLive.Load() < h.trigger.Load() {
		// Another collection started, or ended, while this one swept.
		h.world.start()
		return nil
	}
	if err := h.markStart(false, false, t0); err != nil {
		return err
	}
	h.startWorkers(h.markers)
	return nil
}

// startWorkers starts a mark goroutine for each of ws, workers of the
// mark since markStart.
func (h *Heap) startWorkers(ws []*marker) {
	q := &h.work
	for _, w := range ws {
		h.wg.Go(func() { q.workAs(w, false) })
	}
}

// setPhase stores the collector's phase and wakes those waiting for a
// mark to end.
func (h *Heap) setPhase(p uint32) {
	h.cycMu.Lock()
	h.phase.Store(p)
	h.cycCond.Broadcast()
	h.cycMu.Unlock()
}

// helpEndMark is for a goroutine that is no running Mutator and waits for
// the mark in progress, if any, to end: it helps the mark until it is
// drained, then ends it if it runs in the background and nobody else is
// ending it, and waits for its end otherwise. It returns the mark's
// error if it abandoned it.
func (h *Heap) helpEndMark() error {
	q := &h.work
	for h.phase.Load() == phaseMark {
		q.help(h)
		if err := h.tryEndMark(nil); err != nil {
			return err
		}
		h.cycMu.Lock()
		for h.phase.Load() == phaseMark && (q.owned.Load() || q.ending.Load()) {
			h.cycCond.Wait()
		}
		h.cycMu.Unlock()
	}
	return nil
}

// tryEndMark ends the mark in progress if it runs in the background, is
// drained (or has failed) and nobody else is ending it: it stops the
// world (self, a running Mutator, counts as stopped; nil for a caller
// that is none), flushes the write barriers and, if they held no grey
// objects, ends the mark; otherwise it starts the world again and the
// mark goes on. It returns the mark's error if it abandoned it.
func (h *Heap) tryEndMark(self *Mutator) error {
	q := &h.work
	if h.phase.Load() != phaseMark || q.owned.Load() || !(q.drained.Load() || q.aborted.Load()) || !q.ending.CompareAndSwap(false, true) {
		return nil
	}
	defer func() {
		h.cycMu.Lock()
		q.ending.Store(false)
		h.cycCond.Broadcast()
		h.cycMu.Unlock()
	}()
	if self != nil {
		self.expire() // the stop may park self, or end the mark
	}
	t0, stopped, err := h.world.stop(self)
	if err != nil || !stopped {
		return err
	}
	if h.phase.Load() != phaseMark || q.owned.Load() {
		h.world.start() // ended meanwhile
		return nil
	}
	_, err = h.endMark(t0)
	return err
}

// endMark is phase 3 of a collection, run with the world stopped since
// t0 by a goroutine that is no worker of the mark: it abandons a mark
// that failed; it flushes the write barriers and, if they held grey
// objects or a worker took work since the mark drained, starts the world
// again for the mark to go on; otherwise it ends the mark. It reports
// whether the mark is over, and returns the error that abandoned it.
func (h *Heap) endMark(t0 time.Time) (over bool, err error) {
	defer h.world.wedgeOnPanic(h.world.generation()) // no user code runs here: only a bug panics
	q := &h.work
	if q.aborted.Load() {
		return true, h.abandon(t0)
	}
	if h.flushBarriers() || q.busy() {
		h.cyc.pause += time.Since(t0)
		h.world.start()
		return false, nil
	}
	q.finish()
	h.markEnd(t0)
	return true, nil
}

// markStart is phase 1 of a collection, with the world stopped since t0,
// for a mark run in the foreground by its caller (owned) or in the
// background. It starts the world again, and returns the error of a
// Roots function that panicked (the collection is then abandoned).
func (h *Heap) markStart(full, owned bool, t0 time.Time) error {
	// The Roots functions run guarded: a panic in one fails the mark, and
	// a runtime.Goexit fails it and goes on unwinding. Either way the
	// start is undone here, and the world started. Any other panic is a
	// bug: the world stays stopped (see wedge).
	gen, started := h.world.generation(), false
	defer func() {
		if started {
			return
		}
		if v := recover(); v != nil {
			h.world.wedge(gen)
			panic(v)
		}
		h.failStart(t0)
	}()
	// Finish the previous cycle's sweep (the runtime's finishsweep_m):
	// help the background sweepers, then wait for the spans others are
	// sweeping and for the arena's Advance.
	h.waitSweepStopped()
	// No running Mutator is between resolving a Ref and using it: the
	// memory of the spans that sweep freed can be reused.
	h.releaseRetired()
	// Every span is now swept, so it is either cached by a Mutator or on
	// a swept list. Put the cached ones on the lists too, so that their
	// allocation cursors hold still while markFrom is taken.
	for m := range h.world.mutators {
		m.uncacheAll()
		m.flushAllocs()
	}
	allocated := h.prepareSpans()

	q := &h.work
	q.reset(len(h.markers), owned, h.arena.Epoch(), h.retain)
	for _, w := range h.markers {
		w.reset()
	}
	h.cyc = cycle{
		full:      full,
		heapLive0: h.heapLive.Load(),
		allocs0:   h.st.allocs.Load(),
		allocated: allocated,
		start:     t0,
	}
	h.cyc.roots = h.markRoots(h.markers[0])
	if err := q.failure(); err != nil {
		return err // the deferred failStart undoes the start
	}
	h.setPhase(phaseMark)
	h.st.started.Add(1)
	h.setBarriers(!h.noBarrier)
	h.cyc.pause = time.Since(t0)
	started = true
	h.world.start()
	return nil
}

// failStart undoes a mark start whose roots failed (a panic or a
// runtime.Goexit in a Roots function), with the world stopped since t0,
// and starts the world again.
func (h *Heap) failStart(t0 time.Time) {
	h.clearMarks()
	h.recordPause(time.Since(t0))
	h.world.start()
}

// prepareSpans notes in every span where allocation stands (markFrom),
// with the world stopped, every span swept and uncached; adds up the
// allocated slots, records the peak and returns their bytes. Every
// span's pubFree, which markers read, is its freeindex already: the
// sweep, uncache and allocLarge published it. The peak's load-then-store
// is safe because only one collection at a time runs this.
func (h *Heap) prepareSpans() int64 {
	var slots, bytes int64
	t := h.table.Load()
	for i := range t.spans {
		s := t.spans[i].Load()
		if s == nil {
			continue
		}
		slots += int64(s.allocCount)
		bytes += int64(s.allocCount) * int64(s.elemSize)
		s.markFrom = s.freeindex
	}
	if slots > h.st.peakSlots.Load() {
		h.st.peakSlots.Store(slots)
	}
	if bytes > h.st.peakBytes.Load() {
		h.st.peakBytes.Store(bytes)
	}
	return bytes
}

// markAndEnd is phases 2 and 3 of a collection run in the foreground, by
// its caller, the controller, with the world running and the roots
// marked on markers[0], a worker of the mark since markStart. The
// controller marks until the mark is drained, leaves it to end it, and
// joins it again if the end found more work. It returns the error that
// abandoned the collection, if one did.
func (h *Heap) markAndEnd() error {
	q := &h.work
	h.startWorkers(h.markers[1:])
	w0 := h.markers[0]
	ended := false
	defer func() {
		if ended || h.world.isWedged() {
			return
		}
		// The heap is closing, or this goroutine is exiting in the
		// middle of the mark (a runtime.Goexit in a Tracer): undo the
		// mark and let the world go on.
		if q.failure() == nil {
			q.fail(&TraceError{Value: ErrGoexit})
		}
		if t0, _, err := h.world.stop(nil); err == nil {
			h.abandon(t0)
		} else {
			q.finish()
			h.setPhase(phaseIdle)
		}
	}()
	for joined := true; ; joined = q.join() {
		if joined {
			q.workAs(w0, true)
		}
		t0, _, err := h.world.stop(nil)
		if err != nil { // the heap is closing
			q.fail(err)
			return err
		}
		if ended, err = h.endMark(t0); ended {
			return err
		}
	}
}

// setBarriers turns every Mutator's write barrier on or off, with the
// world stopped, and empties the barrier's work.
func (h *Heap) setBarriers(on bool) {
	for m := range h.world.mutators {
		m.wb, m.wbLast = on, nil
		m.gcw.reset()
	}
}

// flushBarriers moves the grey objects and counts of every Mutator's
// write barrier to the queue, with the world stopped, and reports whether
// there were grey objects.
func (h *Heap) flushBarriers() bool {
	grey := false
	for m := range h.world.mutators {
		if m.gcw.spans.len() > 0 {
			grey = true
		}
		h.work.flush(m.gcw)
	}
	return grey
}

// abandon ends a mark that failed, with the world stopped since t0: it
// waits for the workers to leave, undoes the marks and starts the world
// again. It returns the mark's error.
func (h *Heap) abandon(t0 time.Time) error {
	q := &h.work
	err := q.failure()
	q.finish()
	h.clearMarks()
	h.setBarriers(false)
	h.setPhase(phaseIdle)
	h.recordPause(h.cyc.pause + time.Since(t0))
	h.st.markNs.Add(int64(time.Since(h.cyc.start)))
	h.world.start()
	return err
}

// markEnd is the end of a mark, with the world stopped since t0 and every
// worker gone: it counts what was marked, with the objects allocated
// during the mark, flips to the sweep, sets the next goal and, for a full
// collection, sweeps everything; then it starts the world.
func (h *Heap) markEnd(t0 time.Time) {
	q := &h.work
	q.mu.Lock()
	bad := q.bad
	for _, u := range q.unsure {
		if !(u.j < u.s.freeindex || u.s.allocBits.Test(u.j)) {
			bad++
		}
	}
	clear(q.unsure)
	q.unsure = q.unsure[:0]
	slots, bytes, expired := q.slots, q.bytes, q.expired
	q.mu.Unlock()
	if bad > 0 {
		h.st.badRefs.Add(bad)
	}
	if expired > 0 {
		h.st.lifetimeViolations.Add(expired)
	}

	// Every span goes back to a swept list: after the flip they all need
	// sweeping. What Mutators allocated during the mark is black.
	for m := range h.world.mutators {
		m.uncacheAll()
		m.flushAllocs()
	}
	h.setBarriers(false)
	blackBytes := h.heapLive.Load() - h.cyc.heapLive0
	slots += int64(h.st.allocs.Load() - h.cyc.allocs0)
	bytes += blackBytes
	h.st.markedSlots.Store(slots)
	h.st.markedBytes.Store(bytes)

	// The flip: every swept list becomes an unswept list, every span in
	// use needs sweeping.
	sg := h.sweepgen.Load()
	h.sgLock.Lock()
	h.mu.Lock()
	n := h.inUse
	h.mu.Unlock()
	h.sweepgen.Store(sg + 2)
	h.sweepCursor.Store(0)
	h.st.sweepStart.Store(time.Now().UnixNano())
	h.cycle.Add(1)
	h.sweepLeft.Store(int64(n))
	h.sweepFull.Store(h.cyc.full)
	if h.onFlip != nil {
		h.onFlip(sg+2, n)
	}
	h.sgLock.Unlock()

	h.heapLive.Store(bytes)
	h.setGoal(bytes, h.cyc.roots, h.cyc.allocated, blackBytes)
	h.setPhase(phaseIdle)
	full := h.cyc.full
	switch {
	case n == 0:
		h.finishSweep()
	case full:
		h.waitSweepStopped()
		h.releaseRetired()
	}
	h.recordPause(h.cyc.pause + time.Since(t0))
	h.st.markNs.Add(int64(time.Since(h.cyc.start)))
	h.world.start()
	if n > 0 && !full {
		for range h.nsweep {
			select {
			case h.wake <- struct{}{}:
			default:
			}
		}
	}
}

// recordPause records the world stopped for d in one collection.
func (h *Heap) recordPause(d time.Duration) {
	h.st.pauseNs.Add(int64(d))
	h.pauses.record(d)
}
