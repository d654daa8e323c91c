package sweep

import (
	"sync"
	"sync/atomic"
)

// spanSet is a stack of spans under its own lock.
type spanSet struct {
	mu    sync.Mutex
	spans []*span      // under mu
	n     atomic.Int32 // len(spans); written under mu, read atomically to skip empty sets without locking
}

func (q *spanSet) push(s *span) {
	q.mu.Lock()
	q.spans = append(q.spans, s)
	q.n.Store(int32(len(q.spans)))
	q.mu.Unlock()
}

// pop removes and returns a span, or nil when the set is empty.
func (q *spanSet) pop() *span {
	if q.n.Load() == 0 {
		return nil
	}
	q.mu.Lock()
	var s *span
	if n := len(q.spans); n > 0 {
		s = q.spans[n-1]
		q.spans[n-1] = nil
		q.spans = q.spans[:n-1]
		q.n.Store(int32(n - 1))
	}
	q.mu.Unlock()
	return s
}

// removeIf removes the spans for which f is true, appends them to out
// and returns it. f runs under the set's lock, while the spans have no
// holder.
func (q *spanSet) removeIf(out []*span, f func(*span) bool) []*span {
	if q.n.Load() == 0 {
		return out
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	kept := q.spans[:0]
	for _, s := range q.spans {
		if f(s) {
			out = append(out, s)
		} else {
			kept = append(kept, s)
		}
	}
	clear(q.spans[len(kept):])
	q.spans = kept
	q.n.Store(int32(len(kept)))
	return out
}

// central holds the spans of one span class that no Mutator caches, as
// the runtime's mcentral does: partial spans have a free slot, full spans
// had none when they were put there. Each kind has two sets, and the
// heap's sweep generation sg picks their roles:
//
//   - partial[sg/2%2] and full[sg/2%2] hold spans swept in this cycle;
//   - the other two hold spans that still need sweeping.
//
// When the heap adds 2 to sg at the start of a sweep, every swept set
// becomes an unswept set at once; the unswept sets are empty by then,
// because the previous sweep finished, and become the new swept sets.
// A span is in at most one set, and a span in a set has no holder.
type central struct {
	partial [2]spanSet
	full    [2]spanSet
}

func (c *central) partialSwept(sg uint32) *spanSet   { return &c.partial[sg/2%2] }
func (c *central) partialUnswept(sg uint32) *spanSet { return &c.partial[1-sg/2%2] }
func (c *central) fullSwept(sg uint32) *spanSet      { return &c.full[sg/2%2] }
func (c *central) fullUnswept(sg uint32) *spanSet    { return &c.full[1-sg/2%2] }

// cacheSpan returns a swept span of class c with a free slot for a
// Mutator, with bitmaps from src: a swept partial span, else an unswept
// one it sweeps (partial, then full ones that sweeping frees), else a
// new span.
func (h *Heap) cacheSpan(c *spanClass, src bitSource) (*span, error) {
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
	s.emptySince = 0
	h.heapLive.Add(int64(s.nelems-s.allocCount) * int64(s.elemSize))
	return s, nil
}

// sweepBudget is the most full spans an allocation sweeps in search of
// a free slot before it makes a new span.
const sweepBudget = 1024

// findSpan is cacheSpan's search.
func (h *Heap) findSpan(c *spanClass, src bitSource, sg uint32) (*span, error) {
	cen := &c.central
	if s := cen.partialSwept(sg).pop(); s != nil {
		return s, nil
	}
	// Sweeping is lazy too: an allocator sweeps what it needs. A partial
	// span has a free slot once swept.
	for {
		s := cen.partialUnswept(sg).pop()
		if s == nil {
			break
		}
		if s.tryAcquire(sg) {
			h.sweepSpan(s, src, sg)
			h.spanSwept()
			return s, nil
		}
		h.st.acquireLost.Add(1)
	}
	// A full span may be full of live objects. Sweeping it is work this
	// cycle must do anyway, and a new span instead would grow the heap for
	// good, but up to sweepBudget of them, so that an allocation does not
	// stall on a heap of live spans.
	for range sweepBudget {
		s := cen.fullUnswept(sg).pop()
		if s == nil {
			break
		}
		if !s.tryAcquire(sg) {
			h.st.acquireLost.Add(1)
			continue
		}
		h.sweepSpan(s, src, sg)
		if s.allocCount < s.nelems {
			h.spanSwept()
			return s, nil
		}
		cen.fullSwept(sg).push(s)
		h.spanSwept()
	}
	return h.newSpan(c, 0, nil, src, sg)
}

// uncache returns s, a span a Mutator cached in this cycle, to the
// heap: it publishes the span's allocation cursor, takes its free slots
// out of heapLive, and places it as a sweep does. (A Mutator allocates
// from a span as soon as it takes it, so s is never empty.)
func (h *Heap) uncache(s *span) {
	s.cached.Store(false)
	s.publishFree()
	h.heapLive.Add(-int64(s.nelems-s.allocCount) * int64(s.elemSize))
	h.place(s, h.sweepgen.Load())
}
