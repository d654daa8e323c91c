package gcbits

import (
	"fmt"
	"unsafe"

	"github.com/gcbits/gcbits/internal/mem"
)

// Cache is a per-worker front end to an [Arena], in the manner of the Go
// runtime's mcache or a HotSpot TLAB: it carves a slab from the arena with
// one shared atomic operation, then serves requests from it with a private
// bump pointer. Its fast path does no atomic read-modify-write and takes no
// lock: a bounds check, an epoch check (one atomic load of a word that only
// [Arena.Advance] and [Arena.Close] write) and a bump. Make one with
// [Arena.NewCache].
//
// A Cache is not safe for concurrent use: give each worker goroutine its
// own. It is worth it when a goroutine makes many small requests (up to a
// sixteenth of a slab, which is [Options.BlockSize]/8 up to 8 KiB: 512
// bytes with the default 64 KiB blocks; larger requests go to the arena);
// for occasional requests from many goroutines, [Arena.Alloc] is simpler
// and wastes no slab ends.
//
// Epochs: a slab belongs to the epoch it was carved in, and the Cache uses
// it only while Epoch() still equals that epoch. So every request it serves
// began in the slab's epoch, and the arena recycles the slab no earlier
// than Retain+1 epochs later. When Advance runs, the next request refills,
// and what was left of the slab counts as waste (Stats.WastedBytes): with
// epochs that turn after a handful of requests per Cache, most of every
// slab is wasted, and [Arena.Alloc] serves better.
type Cache struct {
	cacheFields
	// Caches of different workers must not share a line: pos is written
	// on every Alloc.
	_ [cacheLine - unsafe.Sizeof(cacheFields{})%cacheLine]byte
}

// cacheFields are the fields of a Cache. Every field belongs to the
// Cache's goroutine; only the arena's epoch, read through the arena
// pointer, is shared (read atomically).
type cacheFields struct {
	arena *Arena
	shard *shard  // where refills carve
	small uintptr // requests of 1..small bytes are served from the slab
	// base is the address of the current slab's block as an integer, not
	// a pointer: the Cache keeps it after its epoch ends, the block may be
	// unmapped meanwhile, and if the Go heap later maps that range the
	// garbage collector must not find a pointer into it.
	base uintptr
	// heap is the same block where Map takes memory from the Go heap
	// (systems without mmap): a pointer the garbage collector must see.
	// Nil elsewhere.
	heap  unsafe.Pointer
	start uintptr // offset in the block of the slab's first byte
	pos   uintptr // offset in the block of the slab's next free byte
	end   uintptr // offset in the block of the slab's end
	gen   uint64  // epoch the slab belongs to
}

// at returns the address off bytes into the slab's block.
func (c *Cache) at(off uintptr) unsafe.Pointer {
	if mem.OffHeap {
		return unsafe.Add(unsafe.Pointer(nil), c.base+off)
	}
	return unsafe.Add(c.heap, off)
}

// NewCache returns a [Cache] drawing on a. Caches need no closing;
// [Cache.Flush] hands back the unused part of the slab in the books.
func (a *Arena) NewCache() *Cache {
	if len(a.shards) == 0 { // not made by New: every Alloc goes to a.Alloc
		return &Cache{cacheFields: cacheFields{arena: a}}
	}
	i := a.nextShard.Add(1) - 1
	return &Cache{cacheFields: cacheFields{
		arena: a,
		shard: &a.shards[uint(i)%uint(len(a.shards))],
		small: a.slabSize / 16,
	}}
}

// Alloc has the contract of [Arena.Alloc].
func (c *Cache) Alloc(nbits int) (Bits, error) {
	if b, ok := c.fromCurrentSlab(nbits); ok {
		return b, nil
	}
	b, _, err := c.allocSlow(nbits)
	return b, err
}

// AllocEpoch has the contract of [Arena.AllocEpoch]: it returns the bitmap
// and the epoch it belongs to, for a request served from a slab the
// epoch of the slab.
func (c *Cache) AllocEpoch(nbits int) (Bits, uint64, error) {
	if b, ok := c.fromCurrentSlab(nbits); ok {
		return b, c.gen, nil
	}
	return c.allocSlow(nbits)
}

// fromCurrentSlab is the fast path of Alloc and AllocEpoch: a size check,
// an epoch check and a bump. It serves nbits from the current slab if the
// request is one for slabs, the slab is of the current epoch and it has
// room; otherwise it reports false, and the caller goes to allocSlow.
func (c *Cache) fromCurrentSlab(nbits int) (Bits, bool) {
	// bytesFor written out: with the call, this function is over the
	// inlining budget and Alloc would pay for a call. n-1 < small rejects
	// nbits <= 0 (n is 0, or huge once nbits+63 is negative) and requests
	// too large for slabs, in one comparison.
	n := uintptr(nbits+63) >> 6 << 3
	// A zero Cache has small 0 and stops at the first test, before its nil
	// arena is read.
	if n-1 < c.small && c.gen == c.arena.epoch.Load() && c.pos+n <= c.end {
		p := c.at(c.pos)
		c.pos += n
		return unsafe.Slice((*uint64)(p), n>>3), true
	}
	return nil, false
}

// fromSlab reports whether a request of nbits is served from slabs.
func (c *Cache) fromSlab(nbits int) bool { return nbits > 0 && bytesFor(nbits) <= c.small }

// allocSlow serves what the fast path cannot: a refill, a request too
// large for slabs, or a bad one. It returns the epoch as AllocEpoch does.
func (c *Cache) allocSlow(nbits int) (Bits, uint64, error) {
	if !c.fromSlab(nbits) {
		return c.passOn(nbits)
	}
	b, err := c.refill(bytesFor(nbits))
	if err != nil {
		return nil, 0, err
	}
	return b, c.gen, nil // refill served b from the new slab
}

// passOn serves a request that slabs do not: it goes to the arena.
func (c *Cache) passOn(nbits int) (Bits, uint64, error) {
	if c.arena == nil {
		return nil, 0, fmt.Errorf("%w: Cache not made by Arena.NewCache", ErrClosed)
	}
	return c.arena.AllocEpoch(nbits)
}

// refill drops the current slab, carves a new one and serves n bytes
// from it.
func (c *Cache) refill(n uintptr) (Bits, error) {
	c.Flush()
	a := c.arena
	size := a.slabSize
	ch, start, ok := (*chunk)(nil), uintptr(0), false
	if h := c.shard.head.Load(); h != nil {
		start, ok = c.shard.tryAdd(h, size)
		ch = h
	}
	if !ok {
		var err error
		if ch, start, err = a.carveSlow(c.shard, size); err != nil {
			return nil, err
		}
	}
	c.shard.slabBytes.Add(uint64(size))
	c.base = uintptr(ch.region.Base())
	if !mem.OffHeap {
		c.heap = ch.region.Base()
	}
	c.start, c.pos, c.end = start, start+n, start+size
	c.gen = ch.gen
	return ch.take(start, n), nil
}

// Flush drops the Cache's slab, counting its unused bytes as waste, and
// adds the bytes it served to the arena's [Stats]. The next Alloc refills.
// Call it when a worker stops for a while; it is never needed for safety.
func (c *Cache) Flush() {
	s := c.shard
	if s == nil {
		return
	}
	if c.end > c.pos {
		s.slabWaste.Add(uint64(c.end - c.pos))
	}
	if c.pos > c.start {
		s.cacheBytes.Add(uint64(c.pos - c.start))
	}
	c.start, c.pos, c.end = 0, 0, 0
	c.heap = nil
}
