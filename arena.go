package gcbits

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/gcbits/gcbits/internal/mem"
)

const (
	// cacheLine is the padding unit for fields written by different cores.
	// 128 bytes covers the adjacent-line prefetcher of x86 and the 128-byte
	// lines of some arm64 parts. The convention is sync.Pool's: a value v
	// that must not share a line with others of its kind is followed by
	// _ [cacheLine - unsafe.Sizeof(v)%cacheLine]byte, so that it fills
	// whole units (a struct's fields go in an embedded struct for that);
	// one that must not share a line with the fields before it in a larger
	// struct is also preceded by a full unit.
	cacheLine = 128

	// sealed is stored into a chunk's free offset (in words) when it
	// stops taking allocations, so that every Add that follows fails.
	// No code but the tests' view (export_test.go) reads the offset to
	// tell whether a chunk is sealed: a chunk is sealed exactly once, as
	// it stops being its shard's head (see sealLocked), and an offset is
	// bounded (see chunk.free) but may pass 2^62 unsealed.
	sealed = uint64(1) << 62

	// closedBit is set in Arena.epoch by Close.
	closedBit = uint64(1) << 63

	// trimHistory is how many past generations' sizes Advance remembers
	// when deciding how many free blocks to keep.
	trimHistory = 8

	// maxSlab caps the slab a Cache carves in one refill.
	maxSlab = 8 << 10

	// shardProbes is how many shards, from its home shard on, a goroutine
	// tries to claim before it settles for sharing its home shard.
	shardProbes = 8
)

// Arena hands out zeroed bitmaps whose memory is recycled a fixed number
// of epochs after the one they were allocated in. See the package
// documentation for the lifetime rule and the concurrency contract. Make
// one with [New]; the zero Arena serves nothing (its Allocs return
// [ErrClosed]).
type Arena struct {
	// Set by New; read-only afterwards.
	blockSize      uintptr         // Options.BlockSize: bytes per ordinary block
	dedicatedMin   uintptr         // requests above this get a dedicated block
	slabSize       uintptr         // bytes a Cache carves per refill
	retain         uint64          // Options.Retain
	guardFor       uint64          // Options.GuardEpochs with Guard, else 0: Guard is on when it is not 0
	maxBytes       int64           // Options.MaxBytes, 0 for none
	shardShift     uint            // 64 - log2(len(shards))
	shards         []shard         // the slice is read-only; see shard for its fields
	sys            hooks           // calls to the OS; replaced only by tests, before the arena is used
	_              [cacheLine]byte // keeps epoch off the lines of the fields above
	epoch          atomic.Uint64   // current epoch, with closedBit once closed; read atomically, written atomically under mu
	_              [cacheLine - unsafe.Sizeof(atomic.Uint64{})%cacheLine]byte
	nextShard      atomic.Uint32 // round-robin shard for NewCache; atomic
	_              [cacheLine - unsafe.Sizeof(atomic.Uint32{})%cacheLine]byte
	mu             sync.Mutex       // guards the fields below and every head change
	gens           []genList        // ring of live generations, indexed by epoch % (retain+1); under mu
	history        [trimHistory]int // chunks published in each recent epoch, indexed by epoch % trimHistory; under mu
	free           chunkList        // sealed chunks whose blocks are free; under mu
	guarded        []genList        // Guard: blocks recycled at epoch e, inaccessible, in slot e % guardFor until the Advance to e+guardFor; under mu
	mapped         int64            // bytes mapped from the OS, including reservations in flight; under mu
	released       uint64           // bytes of free and guarded blocks returned to the OS before Close; under mu
	consumed       uint64           // bytes taken from sealed chunks (min(free, words) words); under mu
	tailWaste      uint64           // bytes left at the ends of sealed chunks; under mu
	dedicatedBytes uint64           // bytes handed out from dedicated blocks; under mu
	dedicatedWaste uint64           // page rounding of dedicated blocks; under mu
	cleared        uint64           // bytes of recycled blocks cleared; under mu
	slowPaths      uint64           // times an allocation took mu; under mu
	mapErrs        uint64           // failed maps; under mu
	unmapErrs      atomic.Uint64    // failed unmaps and protection changes; atomic

	// inflight counts the operations that hold blocks off every list
	// while mu is released for system calls or a clear (a map, a scrub,
	// Guard protecting a dead generation): their outcome may serve a
	// request or free room under MaxBytes. Under mu.
	inflight int
	// settled is broadcast, under mu, whenever inflight drops; requests
	// that would fail with ErrLimit wait on it. Its L is &mu.
	settled sync.Cond
}

// shard is one head of the shared path, padded to its own cache lines so
// that goroutines on different shards never share a line.
type shard struct {
	shardFields
	_ [cacheLine - unsafe.Sizeof(shardFields{})%cacheLine]byte
}

// shardFields are the fields of a shard. The books of the allocations made
// through it live here too, rather than in Arena, so that a Cache refill
// writes only lines of its own shard: a counter shared by all workers
// would be the one cache line every refill contends for.
type shardFields struct {
	head       atomic.Pointer[chunk] // current chunk of this epoch or nil; read atomically, written atomically under mu
	owner      atomic.Uint64         // stack key of the goroutine that claimed it this epoch, 0 if none; claimed by CAS, reset under mu by Advance and Close
	straddle   atomic.Uint64         // bytes lost by Adds that straddled a chunk's end; atomic
	slabBytes  atomic.Uint64         // bytes carved for Caches; atomic
	slabWaste  atomic.Uint64         // slab bytes Caches dropped unused; atomic
	cacheBytes atomic.Uint64         // bytes Caches handed out, as flushed at refill; atomic
}

// chunk is one life of a block: the header through which a block of
// memory (Options.BlockSize bytes, or a dedicated block) serves the bitmaps
// of one generation. The docs speak of blocks only; the code says chunk
// for a block's header and life. A block that is recycled gets a new
// chunk, so a goroutine that still holds the old pointer cannot allocate
// from the block's new life: the old chunk stays sealed forever. Each
// chunk fills whole cache lines: allocators on different shards add to
// the free offsets of different chunks.
type chunk struct {
	chunkFields
	_ [cacheLine - unsafe.Sizeof(chunkFields{})%cacheLine]byte
}

// newChunk returns a chunk over r of epoch gen, with words usable words
// (0 for a dedicated block, which is not carved).
func newChunk(r mem.Region, words, gen uint64) *chunk {
	return &chunk{chunkFields: chunkFields{region: r, words: words, gen: gen}}
}

// chunkFields are the fields of a chunk.
type chunkFields struct {
	// free is the offset of the next free word: added atomically by
	// allocators, swapped to sealed under mu. It never wraps. Once it
	// passes words, the next step of the goroutine whose Add failed is
	// carveSlow, which, under mu, retires a full head (seals it and stores
	// nil) and claims only by compare-and-swap within words. So after a
	// chunk fills, each goroutine adds to it at most once more, n/8 <=
	// MaxBlockSize/32 = 2^25 words; a goroutine holds a stack of at least
	// 2 KiB in the Go heap, which spans at most 2^48 bytes, so at most
	// 2^37 goroutines add, together below 2^62 words: the offset stays
	// below 2^63, sealed or not. Counting words rather than bytes is what
	// keeps that sum below 2^64.
	free   atomic.Uint64
	region mem.Region // the block; read-only
	words  uint64     // usable words, 0 for a dedicated block (and only for one); read-only
	gen    uint64     // epoch this chunk was published in; read-only
	next   *chunk     // list link; under mu, or by the goroutine holding the list off the arena
	dirty  uintptr    // on the free list: leading bytes that may hold old data; under mu, or by the goroutine holding the block off every list
	locked bool       // on the free list: PROT_NONE, pages released, by Guard; as dirty
}

// chunkList is a singly linked list with a tail, so lists splice in O(1).
// A list of the Arena's is under mu; one that a goroutine has taken off
// the Arena (Advance's dead blocks, the blocks a map makes give way) is
// that goroutine's alone.
type chunkList struct {
	head, tail *chunk
	n          int
	bytes      int64
}

func (l *chunkList) push(c *chunk) {
	c.next = nil
	if l.tail == nil {
		l.head = c
	} else {
		l.tail.next = c
	}
	l.tail = c
	l.n++
	l.bytes += int64(c.region.Size())
}

// pushFront puts c first, so the next pop returns it.
func (l *chunkList) pushFront(c *chunk) {
	c.next = l.head
	l.head = c
	if l.tail == nil {
		l.tail = c
	}
	l.n++
	l.bytes += int64(c.region.Size())
}

func (l *chunkList) pop() *chunk {
	c := l.head
	if c == nil {
		return nil
	}
	l.head = c.next
	if l.head == nil {
		l.tail = nil
	}
	c.next = nil
	l.n--
	l.bytes -= int64(c.region.Size())
	return c
}

// splice moves all of src to the end of l.
func (l *chunkList) splice(src *chunkList) {
	if src.head == nil {
		return
	}
	if l.tail == nil {
		l.head = src.head
	} else {
		l.tail.next = src.head
	}
	l.tail = src.tail
	l.n += src.n
	l.bytes += src.bytes
	*src = chunkList{}
}

// genList holds what one live epoch published.
type genList struct {
	chunks    chunkList // ordinary chunks, recycled onto the free list
	dedicated chunkList // dedicated blocks, unmapped when recycled
}

// New returns an Arena configured by opts. Options outside their
// documented ranges give an error wrapping [ErrOption]. The arena maps no
// memory until the first Alloc.
func New(opts Options) (*Arena, error) {
	o, err := opts.resolve(mem.PageSize())
	if err != nil {
		return nil, err
	}
	if o.Guard && !mem.OffHeap {
		return nil, fmt.Errorf("%w: Guard needs mmap, not available on %s", ErrOption, runtime.GOOS)
	}
	// Shards: 8 per P (at most 256), so that goroutines find shards of
	// their own (see shardFor) within a few probes; only the shards in use
	// hold memory.
	n := 1
	for n < 8*runtime.GOMAXPROCS(0) && n < 256 {
		n *= 2
	}
	a := &Arena{
		blockSize:    uintptr(o.BlockSize),
		dedicatedMin: uintptr(o.BlockSize) / 4,
		slabSize:     min(uintptr(o.BlockSize)/8, maxSlab),
		retain:       uint64(o.Retain),
		guardFor:     uint64(o.GuardEpochs),
		maxBytes:     o.MaxBytes,
		shards:       make([]shard, n),
		gens:         make([]genList, o.Retain+1),
		sys:          defaultHooks(),
	}
	if o.Guard {
		a.guarded = make([]genList, o.GuardEpochs)
	}
	a.settled.L = &a.mu
	a.shardShift = 64
	for s := n; s > 1; s >>= 1 {
		a.shardShift--
	}
	return a, nil
}

// Epoch returns the current epoch number. The first epoch is 0.
func (a *Arena) Epoch() uint64 { return a.epoch.Load() &^ closedBit }

// closed reports whether Close has run.
func (a *Arena) closed() bool { return a.epoch.Load()&closedBit != 0 }

// Options returns the options a was made with, defaults filled in and
// [Options.BlockSize] raised to the page size: Options().Retain is how
// many epochs a bitmap outlives its own. For an Arena not made by [New]
// it returns the zero Options.
func (a *Arena) Options() Options {
	return Options{
		BlockSize:   int(a.blockSize),
		Retain:      int(a.retain),
		MaxBytes:    a.maxBytes,
		Guard:       a.guardFor != 0,
		GuardEpochs: int(a.guardFor),
	}
}

// Live reports whether the bitmaps of epoch, as returned by
// [Arena.AllocEpoch] or [Cache.AllocEpoch], are within their lifetime:
// whether Epoch() < epoch+Retain+1 and a is open. Once false it stays
// false; a true answer holds until the next [Arena.Advance]. A goroutine
// that uses a bitmap while others may advance must keep Advance out, by
// its own synchronization, from the check to its last use of the bitmap.
func (a *Arena) Live(epoch uint64) bool {
	e := a.epoch.Load()
	if e&closedBit != 0 || a.retain == 0 { // closed, or not made by New
		return false
	}
	return e <= epoch || e-epoch <= a.retain
}

// bytesFor converts a bit count to bytes, rounded up to whole words.
func bytesFor(nbits int) uintptr { return uintptr(nbits+63) >> 6 << 3 }

// checkBits returns the error for a request of nbits outside 1..MaxBits,
// or nil for nbits == 0.
func checkBits(nbits int) error {
	if nbits == 0 {
		return nil
	}
	return fmt.Errorf("%w: %d bits is outside 0..%d", ErrSize, nbits, MaxBits)
}

// Alloc returns a zeroed bitmap of at least nbits bits: ceil(nbits/64)
// words, 8-byte aligned, disjoint from every other live bitmap. nbits == 0
// gives an empty [Bits] and a nil error; a negative nbits or one above
// [MaxBits] gives [ErrSize]; a request that could only be served by
// mapping past [Options.MaxBytes] gives [ErrLimit]; after [Arena.Close],
// [ErrClosed]. Alloc is safe for concurrent use, also concurrently with
// [Arena.Advance]; a caller that advances concurrently learns the
// bitmap's lifetime from [Arena.AllocEpoch].
func (a *Arena) Alloc(nbits int) (Bits, error) {
	b, _, err := a.AllocEpoch(nbits)
	return b, err
}

// AllocEpoch is [Arena.Alloc] that also returns the epoch the bitmap
// belongs to: the bitmap is valid while [Arena.Live](epoch) holds, until
// Epoch() reaches epoch+Retain+1. The epoch is at least the one in which AllocEpoch began
// (it is later if an Advance ran meanwhile), so the lifetime is never
// shorter than the lifetime rule promises. An AllocEpoch preempted
// across Retain+1 Advances returns a bitmap whose lifetime is already
// over: Live(epoch) is false, and the caller must not touch it. For
// nbits == 0 the epoch is the current one; on error it is 0.
func (a *Arena) AllocEpoch(nbits int) (Bits, uint64, error) {
	if uint(nbits-1) >= MaxBits {
		if err := checkBits(nbits); err != nil {
			return nil, 0, err
		}
		return nil, a.Epoch(), nil
	}
	n := bytesFor(nbits)
	if n > a.dedicatedMin {
		return a.allocDedicated(n)
	}
	// The common case of shardFor, written out here: as a call it would
	// not be inlined, and every Alloc would pay for the call.
	key := stackKey()
	s := &a.shards[a.home(key)]
	if s.owner.Load() != key {
		s = a.shardFor(key)
	}
	if c := s.head.Load(); c != nil {
		if start, ok := s.tryAdd(c, n); ok {
			return c.take(start, n), c.gen, nil
		}
	}
	c, start, err := a.carveSlow(s, n)
	if err != nil {
		return nil, 0, err
	}
	return c.take(start, n), c.gen, nil
}

// stackKey identifies the calling goroutine without any shared state: the
// address of its stack, in units of 2 KiB. Stacks are at least 2 KiB and
// 2 KiB-aligned, so goroutines alive together never share a key; a
// goroutine keeps its key while it calls from one depth (and its stack
// does not move). It is never 0.
func stackKey() uint64 {
	var x byte
	return uint64(uintptr(unsafe.Pointer(&x)) >> 11)
}

// home is the shard index that key hashes to. shardShift is below 64;
// masking it says so to the compiler, which then shifts without a check.
func (a *Arena) home(key uint64) uint64 { return key * 0x9E3779B97F4A7C15 >> (a.shardShift & 63) }

// shardFor returns the shard for the goroutine whose stack key is key.
// A hash of the key names its home shard. Hashing alone lets two
// goroutines share a shard by chance, more often than for random keys
// since stacks sit in runs a few KiB apart, and two goroutines on one
// shard contend for its chunk on every Alloc (doc/BENCHMARKS.md has how
// often). So a goroutine claims a shard for the epoch: the first of
// shardProbes shards from its home that is unclaimed or already its own.
// Advance (and Close) clear the claims, so those of goroutines that have
// exited or moved their stacks last one epoch. The claim is a hint for
// speed only: any shard is correct for any goroutine. When every probed
// shard is taken (more goroutines than shards), the goroutine shares its
// home shard.
//
// Alloc checks the common case, a goroutine that owns its home shard,
// before it calls shardFor. A goroutine that claimed a shard further on
// calls it on every Alloc and loads one shard line per probe until its
// own; Caches do not claim (each keeps the shard NewCache gave it).
//
//go:noinline
func (a *Arena) shardFor(key uint64) *shard {
	home, mask := a.home(key), uint64(len(a.shards)-1)
	for i := range uint64(shardProbes) {
		s := &a.shards[(home+i)&mask]
		switch o := s.owner.Load(); {
		case o == key:
			return s
		case o == 0 && s.owner.CompareAndSwap(0, key):
			return s
		}
	}
	return &a.shards[home]
}

// tryAdd claims n bytes of c, a chunk published on s, with one atomic add,
// and returns their offset in bytes. It fails when c is full or sealed; an
// add that straddles the end loses the tail, counted as waste. A goroutine
// whose add failed must go to carveSlow before it adds again (see
// chunk.free).
func (s *shard) tryAdd(c *chunk, n uintptr) (uintptr, bool) {
	w := uint64(n >> 3)
	end := c.free.Add(w)
	if end <= c.words {
		return uintptr(end-w) << 3, true
	}
	if start := end - w; start < c.words {
		s.straddle.Add((c.words - start) << 3)
	}
	return 0, false
}

// claim takes n bytes of c if it has room for them, by compare-and-swap,
// and returns their offset in bytes. Unlike tryAdd it leaves the offset of
// a chunk without room as it is, so the slow path can try a head any
// number of times.
func claim(c *chunk, n uintptr) (uintptr, bool) {
	w := uint64(n >> 3)
	for {
		v := c.free.Load()
		if v > c.words || c.words-v < w {
			return 0, false
		}
		if c.free.CompareAndSwap(v, v+w) {
			return uintptr(v) << 3, true
		}
	}
}

// take returns the n bytes at start as Bits. A published chunk is all
// zeros where it has not been handed out, so take writes nothing: an Alloc
// that is preempted after its add and wakes after the block was recycled
// must not touch memory that has a new owner.
func (c *chunk) take(start, n uintptr) Bits {
	return unsafe.Slice((*uint64)(unsafe.Add(c.region.Base(), start)), n>>3)
}

// carveSlow takes n bytes from shard s under mu, replacing its head with a
// fresh chunk when the head is missing or full.
func (a *Arena) carveSlow(s *shard, n uintptr) (*chunk, uintptr, error) {
	a.mu.Lock()
	defer a.mu.Unlock() // the MayUnlock calls return with mu held
	a.slowPaths++
	for {
		if a.closed() {
			return nil, 0, fmt.Errorf("%w: Alloc", ErrClosed)
		}
		// The head cannot change while we hold mu, but its offset can.
		if c := s.head.Load(); c != nil {
			if start, ok := claim(c, n); ok {
				return c, start, nil
			}
			// Retire the full head now, whatever happens next: if no
			// block can replace it (ErrLimit, a failed map), the
			// requests that follow come here without adding to it.
			s.head.Store(nil)
			a.sealLocked(c)
		}
		f := a.free.pop()
		if f == nil {
			// Map a fresh block without holding mu. It goes on the free
			// list and round the loop: another goroutine may have
			// refilled the shard meanwhile.
			r, err := a.mapMayUnlock(a.blockSize)
			if errors.Is(err, ErrLimit) {
				// Under the limit, another shard's head may have room:
				// every head is of the current epoch (invariant H).
				if c, start, ok := a.tryAnyHeadLocked(n); ok {
					return c, start, nil
				}
				if a.awaitInflightMayUnlock() {
					continue
				}
			}
			if err != nil {
				return nil, 0, err
			}
			a.free.pushFront(newChunk(r, uint64(a.blockSize>>3), 0)) // a fresh block: clean, no life yet
			continue
		}
		if f.dirty > 0 || f.locked {
			if err := a.scrubMayUnlock(f); err != nil {
				return nil, 0, err
			}
			continue
		}
		// s has no head: the top of the loop retired it, and mu has
		// been held since.
		return a.publishLocked(s, f.region, n), 0, nil
	}
}

// tryAnyHeadLocked claims n bytes from whichever shard head has room.
func (a *Arena) tryAnyHeadLocked(n uintptr) (*chunk, uintptr, bool) {
	for i := range a.shards {
		if c := a.shards[i].head.Load(); c != nil {
			if start, ok := claim(c, n); ok {
				return c, start, true
			}
		}
	}
	return nil, 0, false
}

// awaitInflightMayUnlock waits, if any block is in flight, until one
// settles, and reports whether it waited: a request that would fail with
// ErrLimit must look again, since what was in flight may serve it or free
// room. ErrLimit means the request cannot be served without mapping past
// MaxBytes, whatever the requests in progress do.
func (a *Arena) awaitInflightMayUnlock() bool {
	if a.inflight == 0 {
		return false
	}
	a.settled.Wait()
	return true
}

// inFlightMayUnlock runs work with mu released, counted in flight: work
// is a system call or a clear on blocks held off every list. When it is
// done, mu is taken back and the requests waiting for blocks in flight
// are woken.
func (a *Arena) inFlightMayUnlock(work func()) {
	a.inflight++
	a.mu.Unlock()
	work()
	a.mu.Lock()
	a.inflight--
	a.settled.Broadcast()
}

// scrubMayUnlock makes a block taken off the free list ready for use,
// without holding mu: it unprotects it in Guard mode and clears the bytes
// its previous life used. The block is private meanwhile: on no list, and
// no chunk of it is published. It goes back to the front of the free
// list, clean, unless the arena closed meanwhile.
func (a *Arena) scrubMayUnlock(f *chunk) error {
	var err error
	a.inFlightMayUnlock(func() {
		if f.locked {
			err = a.sys.Unprotect(f.region)
		}
		if err == nil {
			a.sys.Clear(unsafe.Slice((*byte)(f.region.Base()), f.dirty))
		}
	})
	if err == nil {
		a.cleared += uint64(f.dirty)
	}
	if a.closed() {
		a.mapped -= int64(f.region.Size())
		if a.sys.Unmap(f.region) != nil {
			a.unmapErrs.Add(1)
		}
		return fmt.Errorf("%w: Alloc", ErrClosed)
	}
	if err != nil {
		// To the back, behind any other free block, so that those serve
		// first. A block the OS will not unprotect is tried again, and
		// the Alloc fails again, once no other free block is left.
		a.free.push(f)
		return fmt.Errorf("gcbits: unprotect block: %w", err)
	}
	f.dirty, f.locked = 0, false
	a.free.pushFront(f)
	return nil
}

// mapMayUnlock maps size bytes, releasing mu during the system call. The
// bytes are reserved against MaxBytes before mu is released. To make room
// under the limit, free blocks give way, then blocks Guard holds, oldest
// first. They are unmapped only once the new block is mapped: if the map
// fails they go back where they were, and nothing is lost. Meanwhile the
// address space exceeds MaxBytes by those blocks, but not the memory: the
// fresh mapping has no pages until it is written, after mapMayUnlock
// returns.
func (a *Arena) mapMayUnlock(size uintptr) (mem.Region, error) {
	size = mem.RoundUp(size)
	// Only dedicated blocks get here with blocks on the free list.
	if a.maxBytes > 0 {
		_, guardedBytes := a.guardedLocked()
		if a.mapped-a.free.bytes-guardedBytes+int64(size) > a.maxBytes {
			return mem.Region{}, fmt.Errorf("%w: %d bytes mapped, %d more would pass MaxBytes %d", ErrLimit, a.mapped, size, a.maxBytes)
		}
	}
	var free, guarded chunkList // blocks that give way
	for a.maxBytes > 0 && a.mapped+int64(size) > a.maxBytes {
		c := a.free.pop()
		if c != nil {
			free.push(c)
		} else {
			c = a.popGuardedLocked()
			guarded.push(c)
		}
		a.mapped -= int64(c.region.Size())
	}
	a.mapped += int64(size)
	var r mem.Region
	var err error
	a.inFlightMayUnlock(func() {
		r, err = a.sys.Map(size)
		if err == nil {
			a.unmapAll(free.head)
			a.unmapAll(guarded.head)
		}
	})
	closed := a.closed()
	if err != nil {
		a.mapped -= int64(size)
		a.mapErrs++
		if closed { // Close ran: the blocks go nowhere but back to the OS
			a.unmapAll(free.head)
			a.unmapAll(guarded.head)
		} else {
			a.mapped += free.bytes + guarded.bytes
			free.splice(&a.free) // back at the front, in order
			a.free = free
			a.reguardLocked(&guarded)
		}
		return mem.Region{}, fmt.Errorf("gcbits: map block: %w", err)
	}
	a.released += uint64(free.bytes + guarded.bytes)
	if closed {
		a.mapped -= int64(size)
		if a.sys.Unmap(r) != nil {
			a.unmapErrs.Add(1)
		}
		return mem.Region{}, fmt.Errorf("%w: Alloc", ErrClosed)
	}
	return r, nil
}

// publishLocked makes a chunk over r the head of s, which has none, with
// its first n bytes taken by the caller.
func (a *Arena) publishLocked(s *shard, r mem.Region, n uintptr) *chunk {
	e := a.epoch.Load()
	c := newChunk(r, uint64(a.blockSize>>3), e)
	c.free.Store(uint64(n >> 3))
	a.gens[e%uint64(len(a.gens))].chunks.push(c)
	s.head.Store(c)
	return c
}

// sealLocked stops c from taking allocations and records how far it was
// used, which is how much of it the block's next life must clear. It runs
// once per chunk: a chunk is published as a shard's head and never becomes
// one again, and every caller seals the head it takes off its shard
// (carveSlow retiring a full head, sealHeadsLocked).
func (a *Arena) sealLocked(c *chunk) {
	v := c.free.Swap(sealed)
	used := uintptr(min(v, c.words)) << 3
	if v < c.words {
		a.tailWaste += (c.words - v) << 3
	}
	a.consumed += uint64(used)
	// A published chunk started all zero, so only the bytes handed out
	// need clearing in the block's next life.
	c.dirty = used
}

// allocDedicated serves a request above dedicatedMin from a dedicated
// block, kept on the current generation's list and unmapped when it is
// recycled, and returns it with its generation.
func (a *Arena) allocDedicated(n uintptr) (Bits, uint64, error) {
	a.mu.Lock()
	defer a.mu.Unlock() // the MayUnlock calls return with mu held
	a.slowPaths++
	if a.gens == nil { // every Alloc of a zero Arena comes here: dedicatedMin is 0
		return nil, 0, fmt.Errorf("%w: Arena not made by New", ErrClosed)
	}
	for {
		if a.closed() {
			return nil, 0, fmt.Errorf("%w: Alloc", ErrClosed)
		}
		r, err := a.mapMayUnlock(n)
		if errors.Is(err, ErrLimit) && a.awaitInflightMayUnlock() {
			continue
		}
		if err != nil {
			return nil, 0, err
		}
		e := a.epoch.Load()
		a.gens[e%uint64(len(a.gens))].dedicated.push(newChunk(r, 0, e))
		a.dedicatedBytes += uint64(n)
		a.dedicatedWaste += uint64(r.Size() - n)
		return unsafe.Slice((*uint64)(r.Base()), n>>3), e, nil
	}
}

// Advance starts the next epoch and returns its number. Memory allocated
// in epoch e-Retain, where e is the epoch being left, is recycled. Advance
// may run concurrently with [Arena.Alloc] and [Cache.Alloc]; see the
// package documentation, and the example of [Arena.AllocEpoch]. It holds
// the lock for O(1) work in the number of blocks it recycles, plus one
// list pop per block it returns to the OS: free blocks beyond twice what
// the largest of the last few epochs needed go back, half of the excess
// per Advance (none in a steady state), unmapped after the lock is
// released. With [Options.Guard] it also makes one system call per
// recycled block, with the lock released. After [Arena.Close] it returns
// the final epoch and does nothing.
func (a *Arena) Advance() uint64 {
	a.mu.Lock()
	e := a.epoch.Load()
	if e&closedBit != 0 || a.gens == nil { // closed, or not made by New
		a.mu.Unlock()
		return e &^ closedBit
	}
	a.sealHeadsLocked()
	// Publish the new epoch only after every head is sealed: an Add that
	// succeeds on a chunk of generation g then happened while epoch == g.
	e++
	a.epoch.Store(e)
	g := &a.gens[e%uint64(len(a.gens))] // generation e-retain-1, now dead
	dead := *g
	*g = genList{}
	var gone chunkList // dedicated blocks to unmap
	if a.guardFor != 0 {
		gone = a.unguardLocked(e)
	} else {
		a.free.splice(&dead.chunks)
		gone = dead.dedicated
	}
	a.mapped -= gone.bytes
	trim := a.trimLocked(e - 1)
	if a.guardFor != 0 {
		closed := a.guardMayUnlock(e, &dead)
		gone.splice(&closed)
	}
	a.mu.Unlock()
	a.unmapAll(gone.head)
	a.unmapAll(trim)
	return e
}

// sealHeadsLocked seals and clears every shard head, and clears the
// shards' claims.
func (a *Arena) sealHeadsLocked() {
	for i := range a.shards {
		s := &a.shards[i]
		if c := s.head.Load(); c != nil {
			s.head.Store(nil)
			a.sealLocked(c)
		}
		if s.owner.Load() != 0 {
			s.owner.Store(0)
		}
	}
}

// trimLocked takes off the free list, to be returned to the OS, half of the
// blocks beyond twice what the largest of the last trimHistory generations
// held, and returns them. Remembering several epochs keeps a dip in the
// load from giving back memory the next epoch maps again. The factor of
// two is room for a load that varies from epoch to epoch: the free list is
// refilled only by the generation that dies, Retain+1 epochs after it was
// allocated, so a free list capped at one generation runs dry after every
// run of larger epochs, and blocks are unmapped only to be mapped again
// (doc/BENCHMARKS.md has what that cost). Releasing half the excess at a
// time spreads the system calls over several Advances while the footprint
// still follows the load down geometrically.
func (a *Arena) trimLocked(ended uint64) *chunk {
	a.history[ended%trimHistory] = a.gens[ended%uint64(len(a.gens))].chunks.n
	keep := 0
	for _, n := range a.history {
		keep = max(keep, n)
	}
	for i := range a.gens {
		keep = max(keep, a.gens[i].chunks.n)
	}
	keep *= 2 // see above
	var out *chunk
	for release := (a.free.n - keep + 1) / 2; release > 0; release-- {
		c := a.free.pop()
		a.mapped -= int64(c.region.Size())
		a.released += uint64(c.region.Size())
		c.next = out
		out = c
	}
	return out
}

// unmapAll unmaps every block on the list starting at c.
func (a *Arena) unmapAll(c *chunk) error {
	var errs []error
	for ; c != nil; c = c.next {
		if err := a.sys.Unmap(c.region); err != nil {
			a.unmapErrs.Add(1)
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Close returns all memory to the operating system. Every bitmap from the
// arena becomes invalid: using one afterwards faults, or, once the OS has
// mapped the address again for something else, corrupts it. Close must
// not run concurrently with [Arena.Alloc] or [Cache.Alloc] on the same
// arena. Allocs after Close return [ErrClosed], and so does a second
// Close; it returns the errors of the unmaps that failed, joined.
func (a *Arena) Close() error {
	a.mu.Lock()
	e := a.epoch.Load()
	if e&closedBit != 0 {
		a.mu.Unlock()
		return fmt.Errorf("%w: Close", ErrClosed)
	}
	a.sealHeadsLocked()
	a.epoch.Store(e | closedBit)
	var all chunkList
	for i := range a.gens {
		all.splice(&a.gens[i].chunks)
		all.splice(&a.gens[i].dedicated)
	}
	all.splice(&a.free)
	for i := range a.guarded {
		all.splice(&a.guarded[i].chunks)
		all.splice(&a.guarded[i].dedicated)
	}
	a.mapped -= all.bytes
	a.mu.Unlock()
	return a.unmapAll(all.head)
}
