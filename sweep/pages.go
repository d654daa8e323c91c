package sweep

import (
	"fmt"
	"sort"
	"unsafe"

	"github.com/gcbits/gcbits/internal/mem"
)

// regionInfo is one mapping of heap memory. Both fields are set by
// mapRegion and read-only afterwards; the pageHeap's books that list
// regions (regions, mapped) are under Heap.mu.
type regionInfo struct {
	// region is the mapping: its base and size. Unmapped by Close, or,
	// for a dedicated region, when the memory of its freed span is
	// released (Heap.releaseRetired), never while a sweep may run.
	region mem.Region
	// dedicated: the region holds one large object's span and is
	// unmapped with it; otherwise it is carved into free page runs and
	// stays mapped until Close.
	dedicated bool
}

// pageRun is a run of free pages.
type pageRun struct {
	base   unsafe.Pointer // first byte, in a shared region
	npages int
	clean  bool // never used since it was mapped, so still zero
}

// pageHeap carves spans from regions mapped with mem.Map. It is guarded
// by Heap.mu: every field is under mu.
//
// Free runs are kept in buckets by length and reused by spans of the same
// length first, then split from the shortest longer run; runs are not
// coalesced, which suits heaps whose classes keep their shape.
type pageHeap struct {
	regionBytes int                               // bytes per shared region; read-only
	largeBytes  int                               // spans of more bytes get a dedicated region; read-only
	maxBytes    int64                             // cap on mapped bytes, 0 for none; read-only
	regions     []*regionInfo                     // every live region, shared and dedicated
	free        map[int][]pageRun                 // free runs by length in pages
	mapped      int64                             // bytes mapped
	mapFn       func(uintptr) (mem.Region, error) // mem.Map; replaced by tests to inject faults
}

// alloc returns npages pages and reports whether they are zero. A
// request above largeBytes gets a dedicated region, returned as ri.
func (p *pageHeap) alloc(npages int) (base unsafe.Pointer, clean bool, ri *regionInfo, err error) {
	bytes := npages * PageSize
	if bytes > p.largeBytes {
		ri, err = p.mapRegion(bytes, true)
		if err != nil {
			return nil, false, nil, err
		}
		return ri.region.Base(), true, ri, nil
	}
	if runs := p.free[npages]; len(runs) > 0 {
		r := runs[len(runs)-1]
		p.setBucket(npages, runs[:len(runs)-1])
		return r.base, r.clean, nil, nil
	}
	best := 0
	for n := range p.free {
		if n > npages && (best == 0 || n < best) {
			best = n
		}
	}
	var r pageRun
	if best > 0 {
		runs := p.free[best]
		r = runs[len(runs)-1]
		p.setBucket(best, runs[:len(runs)-1])
	} else {
		ri, err := p.mapRegion(p.regionBytes, false)
		if err != nil {
			return nil, false, nil, err
		}
		r = pageRun{base: ri.region.Base(), npages: int(ri.region.Size()) / PageSize, clean: true}
	}
	if r.npages > npages {
		p.put(pageRun{base: unsafe.Add(r.base, bytes), npages: r.npages - npages, clean: r.clean})
	}
	return r.base, r.clean, nil, nil
}

// setBucket stores a bucket, dropping it when empty so that the search
// for a longer run only sees lengths that have runs.
func (p *pageHeap) setBucket(n int, runs []pageRun) {
	if len(runs) == 0 {
		delete(p.free, n)
		return
	}
	p.free[n] = runs
}

// put adds a free run.
func (p *pageHeap) put(r pageRun) { p.free[r.npages] = append(p.free[r.npages], r) }

// release gives back the pages of a span: a dedicated region is removed
// from the books and returned for unmapping outside the lock.
func (p *pageHeap) release(base unsafe.Pointer, npages int, ri *regionInfo) *regionInfo {
	if ri != nil {
		for i, r := range p.regions {
			if r == ri {
				p.regions = append(p.regions[:i], p.regions[i+1:]...)
				break
			}
		}
		p.mapped -= int64(ri.region.Size())
		return ri
	}
	p.put(pageRun{base: base, npages: npages})
	return nil
}

// mapRegion maps a region of at least bytes bytes.
func (p *pageHeap) mapRegion(bytes int, dedicated bool) (*regionInfo, error) {
	size := int64(mem.RoundUp(uintptr(bytes)))
	if p.maxBytes > 0 && p.mapped+size > p.maxBytes {
		return nil, fmt.Errorf("%w: %d bytes mapped, %d more would pass MaxBytes %d", ErrLimit, p.mapped, size, p.maxBytes)
	}
	r, err := p.mapFn(uintptr(size))
	if err != nil {
		return nil, fmt.Errorf("sweep: map heap region: %w", err)
	}
	ri := &regionInfo{region: r, dedicated: dedicated}
	p.regions = append(p.regions, ri)
	p.mapped += int64(r.Size())
	return ri, nil
}

// freePages returns the number of free pages, for Stats.
func (p *pageHeap) freePages() int {
	n := 0
	lens := make([]int, 0, len(p.free))
	for l := range p.free {
		lens = append(lens, l)
	}
	sort.Ints(lens)
	for _, l := range lens {
		n += l * len(p.free[l])
	}
	return n
}
