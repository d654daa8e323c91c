package sweep

import "math"

// The pacer decides when the next collection starts: when heapLive, the
// bytes of slots in use or handed to Mutators, reaches goal.

// gcWanted reports whether the heap has reached its collection goal.
func (h *Heap) gcWanted() bool {
	return h.heapLive.Load() >= h.goal.Load()
}

// limitRunway is the least growth the memory limit leaves the heap after
// a collection, as a fraction of the marked bytes (1/limitRunway), so that
// a live heap above the limit is not collected at every allocation.
const limitRunway = 16

// setGoal sets the goal of the next collection, after a mark that found
// marked bytes live and roots roots, with allocated bytes of slots
// allocated before it (live or dead). As GOGC sets the Go heap's goal:
// the marked bytes plus GCPercent percent of the marked bytes and the
// roots (8 bytes each), but at least MinHeapBytes×GCPercent/100; none if
// GCPercent is negative. Then lowered to what keeps the heap's memory
// under MemoryLimit, but at least the marked bytes plus a sixteenth.
func (h *Heap) setGoal(marked, roots, allocated int64) {
	h.pacerMu.Lock()
	defer h.pacerMu.Unlock()
	h.lastMarked, h.lastRoots, h.lastAllocated = marked, roots, allocated
	goal := int64(math.MaxInt64)
	if p := int64(h.gcPercent.Load()); p >= 0 {
		goal = max(h.minHeap/100*p, marked+(marked+8*roots)/100*p)
	}
	if h.memoryLimit > 0 {
		// Memory that is not slots: bitmaps, and span pages no slot in
		// use covers (free slots, span tails).
		h.mu.Lock()
		frag := max(h.pages.inSpans-allocated, 0)
		h.mu.Unlock()
		limitGoal := h.memoryLimit - h.arena.Stats().MappedBytes - frag
		goal = min(goal, max(limitGoal, marked+marked/limitRunway+PageSize))
	}
	h.goal.Store(goal)
}

// SetGCPercent sets GCPercent with GOGC's meaning, as
// runtime/debug.SetGCPercent does, and returns the previous setting: 0
// collects whenever the heap grows past what the last collection found
// live, a negative value turns automatic collection off. The new goal
// applies at once.
func (h *Heap) SetGCPercent(percent int) int {
	if h.usable() != nil {
		return 0
	}
	old := int(h.gcPercent.Swap(int64(percent)))
	h.pacerMu.Lock()
	marked, roots, allocated := h.lastMarked, h.lastRoots, h.lastAllocated
	h.pacerMu.Unlock()
	h.setGoal(marked, roots, allocated)
	return old
}
