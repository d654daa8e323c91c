package sweep

import (
	"cmp"
	"fmt"
	"slices"
	"time"
	"unsafe"

	"github.com/gcbits/gcbits"
	"github.com/gcbits/gcbits/internal/mem"
)

// regionInfo is a dedicated mapping: one large object's span, unmapped
// when the memory of its freed span is released (Heap.releaseRetired),
// never while a sweep may run. Its field is set by mapDedicated and
// read-only afterwards.
type regionInfo struct {
	region mem.Region
}

// region is a shared mapping, carved into spans a page at a time.
//
// Every field but mem and npages is under Heap.mu. A page is free, or in
// a span (or a retired span), or taken by the scavenger while it releases
// it. released ⊆ zero; released and freedAt matter only for free pages.
type region struct {
	mem      mem.Region  // read-only
	npages   int         // read-only
	free     gcbits.Bits // page i is free
	zero     gcbits.Bits // page i holds only zeros: unused since it was mapped, or released since
	released gcbits.Bits // page i is free and returned to the OS
	freedAt  []int64     // when page i became free, in the page allocator's clock
	nfree    int         // free pages
	nrel     int         // free pages returned to the OS
}

// base returns the address of page i.
func (r *region) base(i int) unsafe.Pointer { return unsafe.Add(r.mem.Base(), i*PageSize) }

// page returns the index of the page at p, which lies in r.
func (r *region) page(p unsafe.Pointer) int {
	return int((uintptr(p) - uintptr(r.mem.Base())) / PageSize)
}

// countRange returns the number of set bits in [i, i+n) of b.
func countRange(b gcbits.Bits, i, n int) int {
	c := 0
	for j := b.NextSet(i); j >= 0 && j < i+n; j = b.NextSet(j + 1) {
		c++
	}
	return c
}

// findRun returns the first page of the lowest run of n free pages, or -1.
func (r *region) findRun(n int) int {
	for i := r.free.NextSet(0); i >= 0 && i+n <= r.npages; {
		end := r.free.NextClear(i)
		if end < 0 || end > r.npages {
			end = r.npages
		}
		if end-i >= n {
			return i
		}
		i = r.free.NextSet(end)
	}
	return -1
}

// pageAlloc is the heap's page allocator. It maps shared regions and
// carves spans from them, first fit at the lowest address, so that free
// pages next to each other always form one run (they coalesce as they are
// freed) and memory at the high end stays free to be returned to the OS.
// Spans of more than largeBytes get a dedicated mapping of their own.
//
// It is guarded by Heap.mu: every field is under mu, except the
// read-only ones.
type pageAlloc struct {
	regionBytes int       // bytes per shared region; read-only
	largeBytes  int       // spans of more bytes get a dedicated region; read-only
	maxBytes    int64     // cap on mapped bytes, 0 for none; read-only
	softLimit   int64     // Options.MemoryLimit, 0 for none; read-only
	osPages     int       // heap pages per OS page (releases are whole OS pages); read-only
	start       time.Time // the clock's origin; read-only

	regions    []*region                // shared regions, by address
	dedicated  map[*regionInfo]struct{} // dedicated regions in use (or retired)
	searchFrom int                      // regions below it have no free page
	mapped     int64                    // bytes mapped, shared and dedicated
	inSpans    int64                    // bytes of pages in spans, retired ones included
	free       int64                    // bytes of free pages (released ones included)
	released   int64                    // bytes of free pages returned to the OS
	relTotal   uint64                   // bytes returned to the OS since the heap was made
}

func (p *pageAlloc) init(regionBytes, largeBytes int, maxBytes, softLimit int64) {
	p.regionBytes, p.largeBytes, p.maxBytes, p.softLimit = regionBytes, largeBytes, maxBytes, softLimit
	p.osPages = max(1, mem.PageSize()/PageSize)
	p.start = time.Now()
	p.dedicated = make(map[*regionInfo]struct{})
}

// now returns the allocator's clock: nanoseconds since start.
func (p *pageAlloc) now() int64 { return int64(time.Since(p.start)) }

// alloc returns npages pages and reports whether they are all zero. A
// span of more than largeBytes gets a dedicated region, returned as ri.
func (p *pageAlloc) alloc(npages int) (base unsafe.Pointer, zero bool, ri *regionInfo, err error) {
	bytes := npages * PageSize
	if bytes > p.largeBytes {
		ri, err = p.mapDedicated(bytes)
		if err != nil {
			return nil, false, nil, err
		}
		p.inSpans += int64(ri.region.Size())
		return ri.region.Base(), true, ri, nil
	}
	for k := p.searchFrom; k < len(p.regions); k++ {
		r := p.regions[k]
		if r.nfree < npages {
			if r.nfree == 0 && k == p.searchFrom {
				p.searchFrom++
			}
			continue
		}
		if i := r.findRun(npages); i >= 0 {
			return r.base(i), p.take(r, i, npages), nil, nil
		}
	}
	r, err := p.mapShared(npages)
	if err != nil {
		return nil, false, nil, err
	}
	return r.base(0), p.take(r, 0, npages), nil, nil
}

// take moves the free pages [i, i+n) of r into a span and reports whether
// they are all zero.
func (p *pageAlloc) take(r *region, i, n int) bool {
	zero := countRange(r.zero, i, n) == n
	rel := countRange(r.released, i, n)
	r.free.ClearRange(i, i+n)
	r.zero.ClearRange(i, i+n)
	r.released.ClearRange(i, i+n)
	r.nfree -= n
	r.nrel -= rel
	p.free -= int64(n * PageSize)
	p.released -= int64(rel * PageSize)
	p.inSpans += int64(n * PageSize)
	return zero
}

// release gives back the pages of a span: a dedicated region is removed
// from the books and returned for unmapping outside the lock; shared
// pages become free, zero and returned to the OS if released says so.
func (p *pageAlloc) release(base unsafe.Pointer, npages int, ri *regionInfo, released bool) *regionInfo {
	if ri != nil {
		delete(p.dedicated, ri)
		p.mapped -= int64(ri.region.Size())
		p.inSpans -= int64(ri.region.Size())
		return ri
	}
	k, r := p.regionOf(base)
	i := r.page(base)
	p.inSpans -= int64(npages * PageSize)
	p.putFree(r, i, npages, released)
	p.searchFrom = min(p.searchFrom, k)
	return nil
}

// putFree makes pages [i, i+n) of r free, freed now.
func (p *pageAlloc) putFree(r *region, i, n int, released bool) {
	r.free.SetRange(i, i+n)
	t := p.now()
	for j := i; j < i+n; j++ {
		r.freedAt[j] = t
	}
	r.nfree += n
	p.free += int64(n * PageSize)
	if released {
		r.zero.SetRange(i, i+n)
		r.released.SetRange(i, i+n)
		r.nrel += n
		p.released += int64(n * PageSize)
	}
}

// regionOf returns the shared region holding p and its index.
func (p *pageAlloc) regionOf(ptr unsafe.Pointer) (int, *region) {
	k, _ := slices.BinarySearchFunc(p.regions, uintptr(ptr), func(r *region, a uintptr) int {
		switch b := uintptr(r.mem.Base()); {
		case a < b:
			return 1
		case a >= b+r.mem.Size():
			return -1
		}
		return 0
	})
	return k, p.regions[k]
}

// reserve checks that size more bytes may be mapped.
func (p *pageAlloc) reserve(size int64) error {
	if p.maxBytes > 0 && p.mapped+size > p.maxBytes {
		return fmt.Errorf("%w: %d bytes mapped, %d more would pass MaxBytes %d", ErrLimit, p.mapped, size, p.maxBytes)
	}
	return nil
}

// mapShared maps a shared region of regionBytes, or less where MaxBytes
// or the memory limit leaves less room (but at least npages pages, and
// 64 KiB under the memory limit).
func (p *pageAlloc) mapShared(npages int) (*region, error) {
	size := int64(p.regionBytes)
	unit := int64(p.osPages * PageSize)
	if p.softLimit > 0 {
		room := (p.softLimit - (p.mapped - p.released)) / unit * unit
		size = max(min(size, room), 64<<10)
	}
	if p.maxBytes > 0 {
		size = min(size, (p.maxBytes-p.mapped)/unit*unit)
	}
	size = max(size, int64(npages*PageSize))
	if err := p.reserve(int64(mem.RoundUp(uintptr(size)))); err != nil {
		return nil, err
	}
	m, err := mem.Map(uintptr(size))
	if err != nil {
		return nil, fmt.Errorf("sweep: map heap region: %w", err)
	}
	n := int(m.Size()) / PageSize
	words := (n + 63) / 64
	r := &region{
		mem: m, npages: n,
		free: make(gcbits.Bits, words), zero: make(gcbits.Bits, words), released: make(gcbits.Bits, words),
		freedAt: make([]int64, n),
	}
	r.zero.SetRange(0, n)
	k, _ := slices.BinarySearchFunc(p.regions, uintptr(m.Base()), func(r *region, a uintptr) int {
		return cmp.Compare(uintptr(r.mem.Base()), a)
	})
	p.regions = slices.Insert(p.regions, k, r)
	p.searchFrom = min(p.searchFrom, k)
	p.mapped += int64(m.Size())
	p.putFree(r, 0, n, false)
	return r, nil
}

// mapDedicated maps a region of at least bytes bytes for one span.
func (p *pageAlloc) mapDedicated(bytes int) (*regionInfo, error) {
	size := int64(mem.RoundUp(uintptr(bytes)))
	if err := p.reserve(size); err != nil {
		return nil, err
	}
	m, err := mem.Map(uintptr(size))
	if err != nil {
		return nil, fmt.Errorf("sweep: map heap region: %w", err)
	}
	ri := &regionInfo{region: m}
	p.dedicated[ri] = struct{}{}
	p.mapped += int64(m.Size())
	return ri, nil
}

// pageRun is a run of pages of a shared region taken by the scavenger.
type pageRun struct {
	r    *region
	i, n int
}

// takeToRelease takes out, for the scavenger, the free pages not yet
// returned to the OS that became free at or before cutoff, in runs of
// whole OS pages, and returns them; they are in no span and not free
// until putReleased. It also returns the earliest time at which a free
// page still held will be due, or -1 if none is.
func (p *pageAlloc) takeToRelease(cutoff int64) (runs []pageRun, next int64) {
	next = -1
	g := p.osPages
	for _, r := range p.regions {
		if r.nfree == r.nrel {
			continue
		}
		for i := 0; i+g <= r.npages; i += g {
			due := true
			for j := i; j < i+g && due; j++ {
				switch {
				case !r.free.Test(j) || r.released.Test(j):
					due = false
				case r.freedAt[j] > cutoff:
					due = false
					if next < 0 || r.freedAt[j] < next {
						next = r.freedAt[j]
					}
				}
			}
			if !due {
				continue
			}
			if n := len(runs); n > 0 && runs[n-1].r == r && runs[n-1].i+runs[n-1].n == i {
				runs[n-1].n += g
			} else {
				runs = append(runs, pageRun{r, i, g})
			}
		}
	}
	for _, run := range runs {
		run.r.free.ClearRange(run.i, run.i+run.n)
		run.r.nfree -= run.n
		p.free -= int64(run.n * PageSize)
	}
	return runs, next
}

// putReleased makes the runs taken by takeToRelease free again, returned
// to the OS (or, if failed, as they were).
func (p *pageAlloc) putReleased(runs []pageRun, failed []bool) {
	for k, run := range runs {
		p.putFree(run.r, run.i, run.n, !failed[k])
		if !failed[k] {
			p.relTotal += uint64(run.n * PageSize)
		}
	}
}

// unmapAll forgets every region and returns their mappings, for Close.
func (p *pageAlloc) unmapAll() []mem.Region {
	var all []mem.Region
	for _, r := range p.regions {
		all = append(all, r.mem)
	}
	for ri := range p.dedicated {
		all = append(all, ri.region)
	}
	p.regions, p.dedicated, p.mapped = nil, nil, 0
	return all
}

// freePages returns the number of free pages, for Stats.
func (p *pageAlloc) freePages() int { return int(p.free / PageSize) }
