package sweep

import (
	"fmt"
	"sync/atomic"
	"unsafe"

	"github.com/gcbits/gcbits"
)

// spanTable is an immutable-length array of span slots. A table that a
// larger one replaced keeps the spans it held but for those freed since,
// whose slots freeSpan clears in every table: an old table gives the
// right span or nil, never another, so a Mutator may resolve Refs with a
// table it read earlier and read the table again only on a miss.
type spanTable struct {
	spans []atomic.Pointer[span]
}

// lookup returns the span t holds at r's index, if r is a Ref of the heap
// whose tag is tag: nil for another heap's Ref (or Nil), an index past
// t's end, or a span freed.
func (t *spanTable) lookup(r Ref, tag uint8) *span {
	i := r.spanIdx()
	if r.tag() != tag || uint(i) >= uint(len(t.spans)) {
		return nil
	}
	return t.spans[i].Load()
}

// freeSpanIdx is a retired span index with the sequence number its next
// span starts its slots at, above those of the old span, so that Refs to
// the old span's objects stay stale.
type freeSpanIdx struct {
	idx uint32
	seq uint16
}

// retiredSpan is the memory of a freed span awaiting release: its pages
// and, for a dedicated region, the region. Its fields are under Heap.mu.
type retiredSpan struct {
	base      unsafe.Pointer
	npages    int
	region    *regionInfo
	at        int64 // when the span was freed, in the page allocator's clock
	released  bool  // the scavenger returned its pages to the OS
	releasing bool  // the scavenger is returning them: releaseRetired leaves it
}

// bytes returns the bytes of memory r holds.
func (r *retiredSpan) bytes() int64 {
	if r.region != nil {
		return int64(r.region.region.Size())
	}
	return int64(r.npages * PageSize)
}

// newSpan makes a span of span class sc, with bitmaps from src, swept in
// generation sg, and publishes it in the table. Its slots are all free.
// For class 0, it holds one large object of npages pages laid out by l.
func (h *Heap) newSpan(sc *spanClass, npages int, l *layout, src bitSource, sg uint32) (*span, error) {
	var size uintptr
	var nelems int
	c := sc.class
	if c == 0 {
		size, nelems = uintptr(npages)*PageSize, 1
	} else {
		l = sc.layout
		npages = h.classes.classes[c].Pages
		size, nelems = uintptr(h.classes.classes[c].Size), h.classes.nelems(c)
	}
	h.mu.Lock()
	if h.closed.Load() {
		h.mu.Unlock()
		return nil, errClosed
	}
	base, clean, ri, err := h.pages.alloc(npages)
	if err != nil {
		h.mu.Unlock()
		return nil, err
	}
	var fi freeSpanIdx
	if len(h.freeIdx) > 0 {
		// First in, first out: an index comes back as late as possible.
		fi = h.freeIdx[0]
		h.freeIdx = h.freeIdx[1:]
	} else {
		t := h.table.Load()
		fi.idx = h.nextIdx
		if int(fi.idx) >= maxSpans {
			h.pages.release(base, npages, ri, false)
			h.mu.Unlock()
			if ri != nil {
				ri.region.Unmap()
			}
			return nil, fmt.Errorf("%w: %d spans", ErrLimit, maxSpans-1)
		}
		if int(fi.idx) >= len(t.spans) {
			nt := &spanTable{spans: make([]atomic.Pointer[span], 2*len(t.spans))}
			for i := range t.spans {
				nt.spans[i].Store(t.spans[i].Load())
			}
			h.oldTables = append(h.oldTables, t)
			h.table.Store(nt)
		}
		h.nextIdx++
	}
	h.inUse++
	h.mu.Unlock()
	h.st.spansMade.Add(1)

	s := &span{
		idx:      fi.idx,
		cls:      sc,
		layout:   l,
		nelems:   nelems,
		elemSize: size,
		npages:   npages,
		base:     base,
		tag:      h.tag,
		needzero: !clean,
		region:   ri,
		scans:    make([]uint64, (nelems+63)/64),
	}
	if h.checked {
		s.seqs = newSlotSeqs(nelems, fi.seq)
	}
	t0 := h.bitsStart()
	ab, ae := h.newBits(src, nelems)
	mb, me := h.newBits(src, nelems)
	h.bitsDone(t0)
	s.reset(ab, ae, mb, me)
	s.setSwept(sg)
	h.mu.Lock()
	h.table.Load().spans[fi.idx].Store(s)
	h.mu.Unlock()
	return s, nil
}

// fallbackEpoch marks a bitmap from the Go heap, whose lifetime is
// unbounded.
const fallbackEpoch = ^uint64(0) >> 1

// newBitsTimed is newBits, with its time added to Stats' bitmap time
// when the heap measures time (Options.Timing); t0 is when it began then,
// 0 otherwise.
func (h *Heap) newBitsTimed(src bitSource, n int) (b gcbits.Bits, e uint64, t0 int64) {
	t0 = h.bitsStart()
	b, e = h.newBits(src, n)
	h.bitsDone(t0)
	return b, e, t0
}

// bitsStart returns the time at which bitmap allocations that bitsDone
// will add to Stats' bitmap time begin: 0 unless the heap measures time.
func (h *Heap) bitsStart() int64 {
	if h.timing {
		return h.pages.now()
	}
	return 0
}

// bitsDone adds the time since t0, from bitsStart, to Stats' bitmap time
// if the heap measures time.
func (h *Heap) bitsDone(t0 int64) {
	if h.timing {
		h.st.bitsNs.Add(h.pages.now() - t0)
	}
}

// newBits returns a zeroed bitmap of n bits from src and the arena epoch
// at which its Alloc began. If the arena fails (a memory limit, a failed
// map) or returns a bitmap too short, the bitmap comes from the Go heap
// instead, so that a sweep always completes; Stats counts these.
func (h *Heap) newBits(src bitSource, n int) (gcbits.Bits, uint64) {
	e := h.arena.Epoch()
	b, err := src.Alloc(n)
	if err != nil || b.Len() < n {
		h.st.bitsFallbacks.Add(1)
		return make(gcbits.Bits, (n+63)/64), fallbackEpoch
	}
	return b, e
}

// freeSpan retires s, which its caller holds and which has no allocated
// slot: it leaves the table at once, so that Refs to it fail to resolve,
// and its index goes to the free list. Its memory is only queued on
// h.retired: a Mutator may be between resolving a stale Ref into s and
// accessing the slot, so the pages stay mapped and unused until
// releaseRetired runs with the world stopped.
func (h *Heap) freeSpan(s *span) { h.freeSpanUnusedSince(s, h.pages.now()) }

// freeSpanUnusedSince is freeSpan for a span whose memory has been unused
// since t, in the page allocator's clock.
func (h *Heap) freeSpanUnusedSince(s *span, t int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed.Load() {
		return
	}
	h.table.Load().spans[s.idx].Store(nil)
	for _, old := range h.oldTables {
		if int(s.idx) < len(old.spans) {
			old.spans[s.idx].Store(nil)
		}
	}
	fi := freeSpanIdx{idx: s.idx}
	if s.seqs != nil {
		fi.seq = s.seqs.next(uint16(s.seqBase.Load()))
	}
	h.freeIdx = append(h.freeIdx, fi)
	h.inUse--
	h.retired = append(h.retired, &retiredSpan{base: s.base, npages: s.npages, region: s.region, at: t})
	h.wakeScavenger()
}

// releaseRetired gives the memory of the spans freed since the last call
// back to the page allocator, unmapping dedicated regions, except those
// the scavenger is returning to the OS right now (the next call takes
// them). The world must be stopped: no running Mutator is then between
// resolving a Ref and accessing its object, and every Ref into a retired
// span has failed to resolve since the span was freed.
func (h *Heap) releaseRetired() {
	h.mu.Lock()
	if h.closed.Load() || len(h.retired) == 0 {
		h.mu.Unlock()
		return
	}
	var unmap []*regionInfo
	kept := h.retired[:0]
	for _, r := range h.retired {
		if r.releasing {
			kept = append(kept, r)
			continue
		}
		if r.released {
			h.retiredReleased -= r.bytes()
		}
		if ri := h.pages.release(r.base, r.npages, r.region, r.released); ri != nil {
			unmap = append(unmap, ri)
		}
	}
	clear(h.retired[len(kept):])
	h.retired = kept
	h.mu.Unlock()
	for _, ri := range unmap {
		ri.region.Unmap()
	}
	h.wakeScavenger()
}
