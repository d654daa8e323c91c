package sweep

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/gcbits/gcbits"
)

// Stats is a snapshot of a Heap's books. Durations and counts are totals
// since New.
type Stats struct {
	Cycles    uint64 // collections started (their roots were marked; the last may still run, and one a Tracer failed counts)
	Allocs    uint64 // objects allocated (Mutators report theirs at span refills and safepoints)
	LiveSlots int64  // objects marked by the last collection
	LiveBytes int64  // their slot bytes
	PeakSlots int64  // the most allocated slots seen at the start of a collection
	PeakBytes int64  // the most slot bytes allocated seen at the start of a collection
	Mutators  int    // Mutators made and not closed
	Spans     int    // spans in use
	Mapped    int64  // bytes of object memory mapped
	FreePages int    // pages of mapped memory in no span
	HeapGoal  int64  // slot bytes in use at which the next collection's mark should end (it starts earlier, at 70–95% of the way from the last mark's live bytes)
	// Released is the bytes of object memory returned to the operating
	// system and not used since: mapped, but not resident. ReleasedTotal
	// counts the bytes returned since New.
	Released      int64
	ReleasedTotal uint64
	SpansMade     uint64 // spans made, each on pages from the page allocator
	SpansSwept    uint64 // span sweeps
	SlotsFreed    uint64 // slots freed by sweeps

	// MarkTime is the wall time of the mark phases, from the world
	// stopped for a mark's start to the world started after its end, with
	// Mutators running in between; PauseTime the time the world was
	// stopped, from each request to stop it to its start again.
	MarkTime, PauseTime time.Duration
	// PauseMax is the longest time a collection stopped the world, and
	// Pauses those of the last collections (at most 256), oldest first.
	// As in runtime.MemStats.PauseNs, a collection's pause is the sum of
	// its stops: at its mark's start and end (and at ends that found more
	// work).
	PauseMax time.Duration
	Pauses   []time.Duration
	// SweepWall is the time from the start of each sweep phase to its
	// end, with Mutators running meanwhile.
	SweepWall time.Duration
	// SweepTime is the time spent sweeping spans, summed over the
	// goroutines that swept, and BitsTime the part of it and of span
	// creation spent allocating bitmaps. Both need Options.Timing.
	SweepTime, BitsTime time.Duration

	// BadRefs counts Refs that roots or tracers reported during marking
	// that named no allocated slot; they were skipped, so a stale Ref
	// never resurrects a freed slot.
	BadRefs uint64
	// BitsFallbacks counts bitmaps taken from the Go heap because the
	// arena failed.
	BitsFallbacks uint64

	// Protocol counts failures of the heap's own protocols, checked as it
	// runs; each stays 0 unless the heap has a bug.
	Protocol ProtocolStats

	Arena gcbits.Stats // the bitmap arena's books
}

// HeldBytes returns the memory the heap holds from the operating system
// and has not returned: object memory and bitmaps, the figure
// Options.MemoryLimit bounds.
func (s Stats) HeldBytes() int64 { return s.Mapped - s.Released + s.Arena.MappedBytes }

// ProtocolStats counts violations of the invariants the heap's
// protocols keep. Every field stays 0; the tests and the demos check it.
type ProtocolStats struct {
	// LifetimeViolations counts spans found holding a bitmap past its
	// arena lifetime when swept or marked (the lifetime argument in the
	// package documentation).
	LifetimeViolations uint64
	// UnsweptTaken counts spans a Mutator took without their being swept
	// in the current cycle (the sweep-generation protocol).
	UnsweptTaken uint64
	// DoubleCached counts spans a Mutator took while another held them.
	DoubleCached uint64
	// AcquireLost counts spans found on an unswept set that a sweeper
	// failed to claim: a span on a set has no holder, so the claim cannot
	// fail.
	AcquireLost uint64
}

// Clean reports whether every counter is 0.
func (p ProtocolStats) Clean() bool { return p == ProtocolStats{} }

// Stats returns a snapshot of h's books.
func (h *Heap) Stats() Stats {
	if h == nil || h.arena == nil {
		return Stats{}
	}
	s := Stats{
		Cycles:        h.st.started.Load(),
		HeapGoal:      h.goal.Load(),
		Allocs:        h.st.allocs.Load(),
		LiveSlots:     h.st.markedSlots.Load(),
		LiveBytes:     h.st.markedBytes.Load(),
		PeakSlots:     h.st.peakSlots.Load(),
		PeakBytes:     h.st.peakBytes.Load(),
		SpansMade:     h.st.spansMade.Load(),
		SpansSwept:    h.st.spansSwept.Load(),
		SlotsFreed:    h.st.slotsFreed.Load(),
		MarkTime:      time.Duration(h.st.markNs.Load()),
		PauseTime:     time.Duration(h.st.pauseNs.Load()),
		SweepWall:     time.Duration(h.st.sweepWallNs.Load()),
		SweepTime:     time.Duration(h.st.sweepNs.Load()),
		BitsTime:      time.Duration(h.st.bitsNs.Load()),
		BadRefs:       h.st.badRefs.Load(),
		BitsFallbacks: h.st.bitsFallbacks.Load(),
		Protocol: ProtocolStats{
			LifetimeViolations: h.st.lifetimeViolations.Load(),
			UnsweptTaken:       h.st.unsweptTaken.Load(),
			DoubleCached:       h.st.doubleCached.Load(),
			AcquireLost:        h.st.acquireLost.Load(),
		},
		Arena: h.arena.Stats(),
	}
	h.world.mu.Lock()
	s.Mutators = len(h.world.mutators)
	h.world.mu.Unlock()
	s.PauseMax, s.Pauses = h.pauses.snapshot()
	h.mu.Lock()
	s.Spans = h.inUse
	s.Mapped = h.pages.mapped
	s.FreePages = h.pages.freePages()
	s.Released = h.pages.released + h.retiredReleased
	s.ReleasedTotal = h.pages.relTotal
	h.mu.Unlock()
	return s
}

// counters are the heap's statistics, all updated atomically. peakSlots
// and peakBytes are raised by a load and then a store, not a
// compare-and-swap: that is correct only because one collector at a time
// updates them (prepareSpans, with the world stopped).
type counters struct {
	started                                                           atomic.Uint64 // collections whose mark began
	allocs, spansMade, spansSwept, slotsFreed, badRefs, bitsFallbacks atomic.Uint64
	lifetimeViolations, unsweptTaken, doubleCached, acquireLost       atomic.Uint64
	markNs, pauseNs, sweepWallNs, sweepNs, bitsNs                     atomic.Int64
	markedSlots, markedBytes, peakSlots, peakBytes                    atomic.Int64
	sweepStart                                                        atomic.Int64 // unix nanos of the current sweep phase's start
}

// pauseLog keeps the most recent stops of the world.
type pauseLog struct {
	mu   sync.Mutex
	ring [256]time.Duration // ring[n%256] is stop n; under mu
	n    int                // stops recorded; under mu
	max  time.Duration      // the longest; under mu
}

func (p *pauseLog) record(d time.Duration) {
	p.mu.Lock()
	p.ring[p.n%len(p.ring)] = d
	p.n++
	p.max = max(p.max, d)
	p.mu.Unlock()
}

// snapshot returns the longest stop and the recent ones, oldest first.
func (p *pauseLog) snapshot() (time.Duration, []time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	k := min(p.n, len(p.ring))
	out := make([]time.Duration, 0, k)
	for i := p.n - k; i < p.n; i++ {
		out = append(out, p.ring[i%len(p.ring)])
	}
	return p.max, out
}
