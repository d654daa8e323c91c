package sweep

import "time"

// emptySweepsToFree is the number of consecutive sweeps that must find a
// small-object span empty before its pages go back to the page heap: a
// span that empties once is kept for its class, which will likely need it
// again soon; one that stays empty for a whole cycle is returned.
const emptySweepsToFree = 2

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
	if h.memoryLimit > 0 {
		h.wakeScavenger()
	}
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

// spanSwept counts one span of this cycle as swept; the goroutine that
// sweeps the last one ends the sweep phase. Call it after the span is
// placed (on a list, in a cache or freed).
func (h *Heap) spanSwept() {
	if h.sweepLeft.Add(-1) == 0 {
		h.finishSweep()
	}
}

// sweepSpan sweeps s, which the caller acquired for generation sg, with
// a new mark bitmap from src, and marks it swept.
func (h *Heap) sweepSpan(s *span, src bitSource, sg uint32) {
	if h.onSweep != nil {
		h.onSweep(s, sg)
	}
	// The bitmaps are used for the last time right here: check them.
	if now := h.arena.Epoch(); now >= s.allocEpoch+h.retain+1 || now >= s.markEpoch+h.retain+1 {
		h.st.lifetimeViolations.Add(1)
	}
	nb, e, t0 := h.newBitsTimed(src, s.nelems)
	s.blacken()
	clear(s.scans)
	freed := s.sweepWith(nb, e)
	s.setSwept(sg)
	h.st.spansSwept.Add(1)
	if freed > 0 {
		h.st.slotsFreed.Add(uint64(freed))
	}
	if h.timing {
		h.st.sweepNs.Add(h.pages.now() - t0)
	}
}

// place puts s, swept in generation sg and held by the caller (its
// sweeper, or uncache), where it belongs: the
// retired list if it stays empty (or is empty while a full collection
// looks for memory), else the swept full or partial set. An empty span
// kept on a partial set waits there for the scavenger.
func (h *Heap) place(s *span, sg uint32) {
	c := &s.cls.central
	switch {
	case s.allocCount == 0 && (s.cls.class == 0 || s.emptySweeps >= emptySweepsToFree || h.sweepFull.Load()):
		h.freeSpan(s)
	case s.allocCount == s.nelems:
		c.fullSwept(sg).push(s)
	default:
		if s.allocCount == 0 {
			s.emptySince = h.pages.now()
			h.wakeScavenger()
		}
		c.partialSwept(sg).push(s)
	}
}

// sweepOne sweeps one span of this cycle that nobody has taken, with
// bitmaps from src, and reports whether it found one.
func (h *Heap) sweepOne(src bitSource) bool {
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
	if !s.tryAcquire(sg) {
		// A span on an unswept list has no holder, so this does not
		// happen; the span's sweeper will place it.
		h.st.acquireLost.Add(1)
		return true
	}
	h.sweepSpan(s, src, sg)
	h.place(s, sg)
	h.spanSwept()
	return true
}

// nextUnswept pops a span from the unswept sets, in class order.
func (h *Heap) nextUnswept(sg uint32) *span {
	cs := *h.types.classes.Load()
	n := int32(2 * len(cs))
	for {
		k := h.sweepCursor.Load()
		if k >= n {
			return nil
		}
		c := &cs[k/2].central
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
func (h *Heap) bgSweep() {
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
