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
// marked bytes live, with allocated bytes of slots allocated before it
// (live or dead). The goal is the marked bytes plus GCPercent percent
// (never below MinHeapBytes, none if GCPercent is negative), lowered to
// what keeps the heap's memory under MemoryLimit, but at least the marked
// bytes plus a sixteenth. The world is stopped.
func (h *Heap) setGoal(marked, allocated int64) {
	goal := int64(math.MaxInt64)
	if h.gcPercent >= 0 {
		goal = max(h.minHeap, marked+marked/100*int64(h.gcPercent))
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
