package sweep

import "time"

// GC runs a full collection and returns when its mark phase is over;
// sweeping goes on in the background. If another collection is in
// progress, GC waits for it instead. If a Tracer or the Roots function
// panics, the collection is abandoned and GC returns a *TraceError. The caller must not own a running
// Mutator (use Mutator.GC): GC waits for every running Mutator to reach a
// safepoint.
func (h *Heap) GC() error {
	if h == nil || h.arena == nil {
		return errClosed
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
	if self != nil && self.state != mutatorRunning {
		self = nil
	}
	t0, stopped, err := h.world.stop(self, full)
	if err != nil || !stopped {
		return err
	}
	finished := false
	defer func() {
		if !finished {
			// This goroutine is exiting in the middle of the mark (a
			// runtime.Goexit in a Tracer): undo it and let the world go on.
			h.clearMarks()
			h.world.start()
		}
	}()
	// The world is stopped: every running Mutator other than self is
	// parked, released ones stay away until we start it, and no Mutator
	// can be made or closed. Their fields are ours until then.
	err = h.gcStopped(full)
	finished = true
	h.world.start()
	pause := time.Since(t0)
	h.st.pauseNs.Add(int64(pause))
	h.pauses.record(pause)
	return err
}

// gcStopped is a collection with the world stopped: finish the previous
// sweep, flush the Mutators' span caches, mark, and start the sweep; if
// full, also finish that sweep, freeing every empty span, and release
// the memory it freed. If the mark fails (a Tracer panicked), the
// collection is abandoned before the flip, its marks undone, and the
// mark's error returned.
func (h *Heap) gcStopped(full bool) error {
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
	for m := range h.world.mutators {
		for c, s := range m.spans {
			if s != nil {
				m.spans[c] = nil
				h.uncache(s)
			}
		}
		m.flushAllocs()
	}
	allocated := h.countAllocated()

	tm := time.Now()
	slots, bytes, roots, err := h.mark()
	h.st.markNs.Add(int64(time.Since(tm)))
	if err != nil {
		h.clearMarks()
		return err
	}
	h.st.markedSlots.Store(slots)
	h.st.markedBytes.Store(bytes)

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
	h.sweepFull.Store(full)
	if h.onFlip != nil {
		h.onFlip(sg+2, n)
	}
	h.sgLock.Unlock()

	h.heapLive.Store(bytes)
	h.setGoal(bytes, roots, allocated)
	if n == 0 {
		h.finishSweep()
		return nil
	}
	if full {
		h.waitSweepStopped()
		h.releaseRetired()
		return nil
	}
	for range h.nsweep {
		select {
		case h.wake <- struct{}{}:
		default:
		}
	}
	return nil
}

// countAllocated adds up the allocated slots of every span, with the
// world stopped and no sweep in progress, records the peak and returns
// their bytes. The peak's load-then-store is safe because only one
// collection at a time runs this.
func (h *Heap) countAllocated() int64 {
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
	return bytes
}
