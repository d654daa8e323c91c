package sweep

import "math"

// The pacer decides when a collection starts and when Mutators must help
// it, from heapLive: the bytes marked by the last collection (with the
// objects allocated during its mark, which it counts as marked, as the
// runtime does) plus the free slots of the spans Mutators took since
// (counted as used when taken) and large objects.
//
//   - goal is GOGC's: heapLive may grow to the marked bytes plus
//     GCPercent percent of them and of the roots.
//   - trigger is where the next collection starts, ahead of the goal by
//     what the last mark saw allocated while it ran, so that a mark
//     ends near the goal: between 70% and 95% of the way from the
//     marked bytes to the goal, as the runtime bounds its trigger.
//   - A Mutator that takes a span with heapLive past the goal while a
//     mark runs joins the mark until it ends.

// Trigger bounds, as fractions of the runway from the marked bytes to the
// goal (the runtime's are 0.7 and 0.95).
const (
	minTriggerPercent = 70
	maxTriggerPercent = 95
)

// pace is called by a Mutator that takes a new span: it starts a
// collection at the trigger, ends a mark that is drained, and joins the
// mark at the goal until it ends. It returns the error of a collection it
// started or ended that failed.
func (m *Mutator) pace() error {
	h := m.h
	for {
		switch h.phase.Load() {
		case phaseIdle:
			if h.heapLive.Load() < h.trigger.Load() {
				return nil
			}
			return h.startBackground(m)
		case phaseMark:
			if q := &h.work; q.drained.Load() || q.aborted.Load() {
				if err := h.tryEndMark(m); err != nil {
					return err
				}
				if h.phase.Load() != phaseMark {
					continue
				}
			}
			if h.heapLive.Load() < h.goal.Load() {
				return nil
			}
			m.release()
			err := h.helpEndMark()
			m.acquire()
			if err != nil {
				return err
			}
		}
	}
}

// limitRunway is the least growth the memory limit leaves the heap after
// a collection, as a fraction of the marked bytes (1/limitRunway), so that
// a live heap above the limit is not collected at every allocation.
const limitRunway = 16

// setGoal sets the goal and trigger of the next collection, after a mark
// that found marked bytes live (those allocated during it included) and
// roots roots, with allocated bytes of slots allocated when it began
// (live or dead), and markAlloc bytes allocated while it ran. The goal is
// GOGC's: the marked bytes plus GCPercent percent of the marked bytes
// and the roots (8 bytes each), but at least MinHeapBytes×GCPercent/100;
// none if GCPercent is negative. Then lowered to what keeps the heap's
// memory under MemoryLimit, but at least the marked bytes plus a
// sixteenth.
func (h *Heap) setGoal(marked, roots, allocated, markAlloc int64) {
	h.pacerMu.Lock()
	defer h.pacerMu.Unlock()
	h.lastMarked, h.lastRoots, h.lastAllocated, h.lastMarkAlloc = marked, roots, allocated, markAlloc
	h.updateGoalLocked()
}

// updateGoalLocked sets the goal and trigger from the last mark's results
// and the current settings, as setGoal describes. h.pacerMu must be held.
func (h *Heap) updateGoalLocked() {
	marked, roots, allocated, markAlloc := h.lastMarked, h.lastRoots, h.lastAllocated, h.lastMarkAlloc
	goal := int64(math.MaxInt64)
	if p := int64(h.gcPercent); p >= 0 {
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
	trigger := goal
	if goal != math.MaxInt64 {
		runway := goal - marked
		lo := marked + runway/100*minTriggerPercent
		hi := marked + runway/100*maxTriggerPercent
		trigger = min(max(goal-markAlloc-markAlloc/8, lo), hi)
	}
	h.trigger.Store(trigger)
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
	// Under pacerMu, so that a mark ending meanwhile cannot have its
	// results replaced by the previous mark's.
	h.pacerMu.Lock()
	defer h.pacerMu.Unlock()
	old := h.gcPercent
	h.gcPercent = percent
	h.updateGoalLocked()
	return old
}
