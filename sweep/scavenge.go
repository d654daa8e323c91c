package sweep

import (
	"time"
	"unsafe"

	"github.com/gcbits/gcbits/internal/mem"
)

// The scavenger returns memory the heap does not use to the operating
// system, as the runtime's background scavenger does, in the background
// once it has been unused for scavengeDelay:
//
//   - empty spans kept on a partial set for their size class (a sweep
//     keeps a span that empties for one more cycle) are freed;
//   - the pages of freed spans waiting for the next stop-the-world
//     (retired) are released in place: a stale access then reads zeros,
//     and the mapping stays until the world is stopped;
//   - free pages of the page allocator are released, in whole OS pages.
//
// Released pages stay mapped and read as zero; the heap counts them in
// Stats.Released until they are used again. FreeOSMemory does all of this
// at once after a full collection; so does the scavenger while the heap
// holds more than Options.MemoryLimit.

// wakeScavenger tells the scavenger that memory may have become unused.
func (h *Heap) wakeScavenger() {
	select {
	case h.scavWake <- struct{}{}:
	default:
	}
}

// bgScavenge is the background scavenger: it sleeps until memory becomes
// unused, then releases what has been unused for scavengeDelay, and
// sleeps until the next such memory is due, until Close stops it. It
// works at most four times per delay.
func (h *Heap) bgScavenge() {
	defer h.wg.Done()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	gap := max(h.scavengeDelay/4, time.Millisecond)
	var last time.Time
	for {
		select {
		case <-h.quit:
			timer.Stop()
			return
		case <-h.scavWake:
		case <-timer.C:
		}
		if h.scavengeDelay < 0 && !h.overLimit() {
			continue // only the memory limit scavenges in the background
		}
		if since := time.Since(last); since < gap {
			timer.Reset(gap - since)
			continue
		}
		last = time.Now()
		if wait := h.scavenge(false, h.overLimit()); wait > 0 {
			timer.Reset(max(wait, gap))
		}
	}
}

// overLimit reports whether the heap holds more memory than its soft
// limit.
func (h *Heap) overLimit() bool {
	if h.memoryLimit <= 0 {
		return false
	}
	h.mu.Lock()
	held := h.pages.mapped - h.pages.released - h.retiredReleased
	h.mu.Unlock()
	return held+h.arena.Stats().MappedBytes > h.memoryLimit
}

// scavenge returns to the OS the memory unused since scavengeDelay ago,
// or all unused memory if all is set, and returns how long until more
// becomes due (0 if nothing is waiting). With pages set, it releases
// every free page and freed span whatever their age, but frees only the
// empty spans kept for their class that are due: under the memory limit
// those are the spans allocation takes next.
func (h *Heap) scavenge(all, pages bool) time.Duration {
	now := h.pages.now()
	cutoff := now - int64(h.scavengeDelay)
	spanCutoff := cutoff
	switch {
	case all:
		cutoff, spanCutoff = now, now
	case pages:
		cutoff = now
	}
	next := int64(-1)
	if h.scavengeDelay >= 0 || all {
		next = h.freeIdleSpans(spanCutoff)
	}
	h.mu.Lock()
	if h.closed.Load() {
		h.mu.Unlock()
		return 0
	}
	var spans []*retiredSpan
	var regions []mem.Region
	for _, r := range h.retired {
		switch {
		case r.released || r.releasing:
		case r.at > cutoff:
			next = earliest(next, r.at)
		case r.region != nil:
			r.releasing = true
			spans = append(spans, r)
			regions = append(regions, r.region.region)
		case h.pages.osPages == 1:
			// A span in a shared region is whole OS pages only when an
			// OS page is no larger than ours; otherwise its pages are
			// released once they are free.
			r.releasing = true
			spans = append(spans, r)
			_, reg := h.pages.regionOf(r.base)
			regions = append(regions, reg.mem.Sub(uintptr(r.base)-uintptr(reg.mem.Base()), uintptr(r.npages*PageSize)))
		}
	}
	runs, due := h.pages.takeToRelease(cutoff)
	next = earliest(next, due)
	h.mu.Unlock()

	spanFailed := make([]bool, len(spans))
	for i, m := range regions {
		spanFailed[i] = m.Release() != nil
	}
	runFailed := make([]bool, len(runs))
	for i, run := range runs {
		m := run.r.mem.Sub(uintptr(unsafe.Pointer(run.r.base(run.i)))-uintptr(run.r.mem.Base()), uintptr(run.n*PageSize))
		runFailed[i] = m.Release() != nil
	}

	h.mu.Lock()
	for i, r := range spans {
		r.releasing = false
		if !spanFailed[i] {
			r.released = true
			h.retiredReleased += r.bytes()
			h.pages.relTotal += uint64(r.bytes())
		}
	}
	h.pages.putReleased(runs, runFailed)
	h.mu.Unlock()
	if next < 0 {
		return 0
	}
	return time.Duration(next + int64(h.scavengeDelay) - now)
}

// earliest returns the earlier of two times, where -1 is none.
func earliest(a, b int64) int64 {
	switch {
	case a < 0:
		return b
	case b < 0:
		return a
	}
	return min(a, b)
}

// freeIdleSpans frees the empty spans kept on partial sets since cutoff
// or earlier, and returns when the next one is due (-1 if none waits).
// It holds sgLock for reading, so the sets keep their roles: the spans
// it takes are swept in this cycle and counted by no sweep phase.
func (h *Heap) freeIdleSpans(cutoff int64) int64 {
	next := int64(-1)
	var idle []*span
	h.sgLock.RLock()
	defer h.sgLock.RUnlock()
	sg := h.sweepgen.Load()
	for _, c := range *h.types.classes.Load() {
		idle = c.central.partialSwept(sg).removeIf(idle, func(s *span) bool {
			if s.allocCount != 0 || s.emptySince == 0 {
				return false
			}
			if s.emptySince > cutoff {
				next = earliest(next, s.emptySince)
				return false
			}
			return true
		})
	}
	for _, s := range idle {
		// Unused since it emptied: the pass that freed it may release it.
		h.freeSpanUnusedSince(s, s.emptySince)
	}
	return next
}

// FreeOSMemory runs a full collection, frees every empty span and returns
// all unused memory to the operating system at once, as
// runtime/debug.FreeOSMemory does for Go's heap. Like GC, it waits for
// every running Mutator to reach a safepoint: its caller must not hold a
// running Mutator.
func (h *Heap) FreeOSMemory() error {
	if err := h.usable(); err != nil {
		return err
	}
	if err := h.collect(nil, true); err != nil {
		return err
	}
	h.scavenge(true, true)
	return nil
}
