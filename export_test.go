package gcbits

import "unsafe"

// What the tests, in package gcbits_test, see of the package's insides.
// It is their only way in: every seam they use is here.

// Constants and functions of the package.
const (
	CacheLine   = cacheLine
	TrimHistory = trimHistory
	Sealed      = sealed
)

var (
	BytesFor = bytesFor
	StackKey = stackKey
)

// ResolveOptions checks o and fills in its defaults as New does, on a
// system whose pages are pageSize bytes.
func ResolveOptions(o Options, pageSize int) (Options, error) { return o.resolve(pageSize) }

// Hooks are an arena's calls to the operating system and its clearing of
// recycled memory.
type Hooks = hooks

// Hooks returns a's hooks, so that a test can wrap them.
func (a *Arena) Hooks() Hooks { return a.sys }

// SetHooks replaces a's hooks. Call it before a is used.
func (a *Arena) SetHooks(h Hooks) { a.sys = h }

// LockHeld reports whether some goroutine holds a's lock: a hook calls it
// to check that it runs with the lock released.
func (a *Arena) LockHeld() bool {
	if a.mu.TryLock() {
		a.mu.Unlock()
		return false
	}
	return true
}

// Layout gives the sizes of the padded types and the padding around the
// epoch word: the bytes between the end of the fields before it and its
// start, and between its start and nextShard's, and between nextShard and
// the lock.
func Layout() (sizes map[string]uintptr, beforeEpoch, epochToNext, nextToMu uintptr) {
	var a Arena
	sizes = map[string]uintptr{
		"shard": unsafe.Sizeof(shard{}),
		"chunk": unsafe.Sizeof(chunk{}),
		"Cache": unsafe.Sizeof(Cache{}),
	}
	beforeEpoch = unsafe.Offsetof(a.epoch) - (unsafe.Offsetof(a.sys) + unsafe.Sizeof(a.sys))
	epochToNext = unsafe.Offsetof(a.nextShard) - unsafe.Offsetof(a.epoch)
	nextToMu = unsafe.Offsetof(a.mu) - unsafe.Offsetof(a.nextShard)
	return sizes, beforeEpoch, epochToNext, nextToMu
}

// Shards returns how many shards a has.
func (a *Arena) Shards() int { return len(a.shards) }

// Home returns the index of the shard that key hashes to.
func (a *Arena) Home(key uint64) int { return int(a.home(key)) }

// ShardFor returns the index of the shard the goroutine with stack key
// key is given, claiming it as Alloc does.
func (a *Arena) ShardFor(key uint64) int { return a.shardIndex(a.shardFor(key)) }

// Claimed reports whether shard i is claimed by a goroutine.
func (a *Arena) Claimed(i int) bool { return a.shards[i].owner.Load() != 0 }

func (a *Arena) shardIndex(s *shard) int {
	return int((uintptr(unsafe.Pointer(s)) - uintptr(unsafe.Pointer(&a.shards[0]))) / unsafe.Sizeof(shard{}))
}

// ChunkState is what a test sees of one chunk: its free offset and
// usable words, and whether it is sealed.
type ChunkState struct {
	Free, Words uint64
	Sealed      bool
}

// Chunks returns the state of every chunk published in the current
// epoch, under a's lock. Sealed reads the chunk's offset: sealLocked
// stores sealed (2^62) into it, and no test adds 2^62 words to a chunk
// it leaves unsealed.
func (a *Arena) Chunks() []ChunkState {
	a.mu.Lock()
	defer a.mu.Unlock()
	var cs []ChunkState
	for c := a.gens[a.Epoch()%uint64(len(a.gens))].chunks.head; c != nil; c = c.next {
		v := c.free.Load()
		cs = append(cs, ChunkState{Free: v, Words: c.words, Sealed: v >= sealed})
	}
	return cs
}

// SetHeadFree stores v into the free offset of the first shard head
// there is, without sealing it, and reports whether there was one.
func (a *Arena) SetHeadFree(v uint64) bool {
	for i := range a.shards {
		if c := a.shards[i].head.Load(); c != nil {
			c.free.Store(v)
			return true
		}
	}
	return false
}

// Guarded reports whether the block holding address p sits in one of
// Guard's slots, and whether it is protected.
func (a *Arena) Guarded(p uintptr) (guarded, locked bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for i := range a.guarded {
		for _, l := range []*chunkList{&a.guarded[i].chunks, &a.guarded[i].dedicated} {
			for c := l.head; c != nil; c = c.next {
				if base := uintptr(c.region.Base()); p >= base && p < base+c.region.Size() {
					return true, c.locked
				}
			}
		}
	}
	return false, false
}

// GuardSlotBlocks returns how many ordinary blocks Guard holds of the
// generation recycled by the Advance to epoch at.
func (a *Arena) GuardSlotBlocks(at uint64) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.guarded[at%a.guardFor].chunks.n
}

// Unreported returns the bytes the Cache served from its slab since its
// last refill or Flush, which Stats does not count yet.
func (c *Cache) Unreported() uintptr { return c.pos - c.start }

// ShareShard makes c carve its slabs from the shard d carves from.
func (c *Cache) ShareShard(d *Cache) { c.shard = d.shard }
