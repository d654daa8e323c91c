package sweep

import (
	"sync"
	"sync/atomic"
)

// spanSet is a stack of spans under its own lock.
type spanSet struct {
	mu    sync.Mutex
	spans []*Span      // under mu
	n     atomic.Int32 // len(spans); written under mu, read atomically to skip empty sets without locking
}

func (q *spanSet) push(s *Span) {
	q.mu.Lock()
	q.spans = append(q.spans, s)
	q.n.Store(int32(len(q.spans)))
	q.mu.Unlock()
}

// pop removes and returns a span, or nil when the set is empty.
func (q *spanSet) pop() *Span {
	if q.n.Load() == 0 {
		return nil
	}
	q.mu.Lock()
	var s *Span
	if n := len(q.spans); n > 0 {
		s = q.spans[n-1]
		q.spans[n-1] = nil
		q.spans = q.spans[:n-1]
		q.n.Store(int32(n - 1))
	}
	q.mu.Unlock()
	return s
}

// central holds the spans of one size class that no Mutator caches, as
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
