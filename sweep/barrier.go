package sweep

import "unsafe"

// The write barrier. While a mark runs, every store into an object
// shades the Refs it overwrites (a deletion barrier, Yuasa's): an object
// that was reachable when the mark began, and whose last path the store
// cuts, is marked all the same, so that a Mutator that loaded its Ref
// before the store may keep using it. Stores of Refs need nothing more:
// the Ref stored names an object reachable when the mark began (the
// Mutator found it along a path the markers will follow or the barrier
// will shade) or one allocated since, which is black. Root stacks need
// no barrier either, as they were marked when the mark began. The
// barrier costs a load and a test of the old word; the old word of a
// new object is Nil.
//
// Objects traced by Options.Trace have no known Ref words: the Tracer
// may report any word, and which ones may depend on the others. Before
// the first store into such an object during a mark, the barrier shades
// every word of it that names an object, so that whatever the Tracer
// would have reported at the start of the mark is marked.

// wbFlush is the number of spans with grey objects a Mutator's write
// barrier keeps before it hands them to the mark workers.
const wbFlush = 256

// shade marks r, overwritten during a mark, and hands the barrier's spans
// of grey objects to the mark workers once there are wbFlush of them.
func (m *Mutator) shade(r Ref) {
	w := m.gcw
	w.shade(r)
	if w.spans.len() >= wbFlush {
		m.h.work.flush(w)
	}
}

// wbWords is the barrier for a store into the words [lo, hi) of the
// object at base in span s, during a mark: it shades the Refs they hold.
func (m *Mutator) wbWords(s *span, base unsafe.Pointer, lo, hi int) {
	l := s.layout
	switch l.scan {
	case scanMask:
		for i := lo; i < hi; i++ {
			if l.isRef(i) {
				if old := Ref(*(*uint64)(unsafe.Add(base, i*8))); old != Nil {
					m.shade(old)
				}
			}
		}
	case scanTracer:
		if base == m.wbLast {
			return // shaded already in this mark
		}
		m.wbLast = base
		for i := range int(s.elemSize / 8) {
			if old := Ref(*(*uint64)(unsafe.Add(base, i*8))); old.tag() == m.h.tag {
				m.shade(old)
			}
		}
	}
}

// flushBarrier hands the write barrier's grey objects and counts to the
// mark workers when the Mutator stops running (Release, Close): running
// again resets its barrier's work (startRunning), and a closed Mutator
// leaves the set whose barriers the mark's end flushes. (A mark into an
// expired bitmap always counts a slot too.)
func (m *Mutator) flushBarrier() {
	if w := m.gcw; w.spans.len() > 0 || w.slots > 0 {
		m.h.work.flush(w)
	}
}
