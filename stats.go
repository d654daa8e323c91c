package gcbits

// Stats is a snapshot of an [Arena]'s books, from [Arena.Stats]. Byte
// counts of memory are of memory mapped from the operating system;
// AllocatedBytes and WastedBytes count since [New].
type Stats struct {
	Epoch uint64
	// Generations[0] is the current epoch, Generations[i] the epoch i
	// before it; there are Retain+1 of them (fewer in the first epochs).
	Generations []GenStats
	FreeBlocks  int   // blocks on the free list, ready for reuse
	FreeBytes   int64 // their bytes
	// GuardedBlocks counts the blocks, ordinary and dedicated, that
	// [Options.Guard] keeps inaccessible after their generation was
	// recycled; GuardedBytes is their address space (their pages are
	// returned to the OS). Both are 0 without Guard.
	GuardedBlocks int
	GuardedBytes  int64
	// MappedBytes is all memory the arena holds from the OS: the live
	// generations, the free blocks and the guarded ones (while no Alloc
	// or Advance runs; one in progress holds blocks off these lists).
	MappedBytes int64
	// ReleasedBytes counts bytes of free blocks returned to the OS: by
	// Advance, when the free list held more than twice the largest of the
	// last few generations, and under MaxBytes, to make room for a
	// dedicated block; and of guarded blocks given up under MaxBytes.
	ReleasedBytes uint64
	// AllocatedBytes counts bytes handed out by [Arena.Alloc] and
	// [Cache.Alloc]. A Cache reports its share when it refills or is
	// flushed ([Cache.Flush]).
	AllocatedBytes uint64
	// WastedBytes counts block bytes that were never handed out: tails
	// left when a block filled or its epoch ended, slab remainders
	// dropped by Caches, and page rounding of dedicated blocks.
	WastedBytes uint64
	SlowPaths   uint64 // allocations that took the lock, Cache refills included
	// ClearedBytes counts bytes of recycled blocks cleared before reuse:
	// only what their previous life handed out. Fresh memory from the OS
	// is never cleared.
	ClearedBytes uint64
	MapErrors    uint64 // failed requests for memory from the OS
	// UnmapErrors counts failed unmaps, page releases and protection
	// changes, wherever they happened (Advance, Alloc, Close).
	UnmapErrors uint64
}

// GenStats describes the memory published in one live epoch: its entry
// in [Stats.Generations].
type GenStats struct {
	Epoch          uint64
	Blocks         int   // ordinary blocks, shared by the bitmaps of the epoch
	Bytes          int64 // their bytes
	Dedicated      int   // dedicated blocks, one per request above BlockSize/4
	DedicatedBytes int64 // their bytes
}

// Stats returns a snapshot of a's books. It takes the arena's lock.
func (a *Arena) Stats() Stats {
	a.mu.Lock()
	defer a.mu.Unlock()
	e := a.Epoch()
	s := Stats{
		Epoch:         e,
		FreeBlocks:    a.free.n,
		FreeBytes:     a.free.bytes,
		MappedBytes:   a.mapped,
		ReleasedBytes: a.released,
		SlowPaths:     a.slowPaths,
		ClearedBytes:  a.cleared,
		MapErrors:     a.mapErrs,
		UnmapErrors:   a.unmapErrs.Load(),
	}
	s.GuardedBlocks, s.GuardedBytes = a.guardedLocked()
	for i := uint64(0); i < uint64(len(a.gens)) && i <= e; i++ {
		g := &a.gens[(e-i)%uint64(len(a.gens))]
		s.Generations = append(s.Generations, GenStats{
			Epoch: e - i, Blocks: g.chunks.n, Bytes: g.chunks.bytes,
			Dedicated: g.dedicated.n, DedicatedBytes: g.dedicated.bytes,
		})
	}
	// Blocks still taking allocations count as far as they are used now.
	taken := a.consumed
	var straddle, slabs, slabWaste, cached uint64
	for i := range a.shards {
		sh := &a.shards[i]
		if c := sh.head.Load(); c != nil {
			taken += min(c.free.Load(), c.words) << 3
		}
		straddle += sh.straddle.Load()
		slabs += sh.slabBytes.Load()
		slabWaste += sh.slabWaste.Load()
		cached += sh.cacheBytes.Load()
	}
	// The counters move while we read them; a slab or straddle counted
	// before its block's offset is read could push this below zero.
	alloc := int64(taken) - int64(straddle) - int64(slabs) + int64(cached) + int64(a.dedicatedBytes)
	s.AllocatedBytes = uint64(max(alloc, 0))
	s.WastedBytes = a.tailWaste + straddle + slabWaste + a.dedicatedWaste
	return s
}
