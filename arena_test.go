package gcbits_test

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"unsafe"

	"github.com/gcbits/gcbits"
	"github.com/gcbits/gcbits/internal/arenatest"
	"github.com/gcbits/gcbits/internal/mem"
)

func TestNewOptions(t *testing.T) {
	bad := []gcbits.Options{
		{BlockSize: -1}, {BlockSize: 1000}, {BlockSize: 2048}, {BlockSize: 3 << 12},
		{BlockSize: int(min(2<<30, math.MaxInt))}, {Retain: -1}, {Retain: gcbits.MaxRetain + 1},
		{MaxBytes: -5}, {MaxBytes: 100},
	}
	for _, o := range bad {
		if a, err := gcbits.New(o); !errors.Is(err, gcbits.ErrOption) {
			t.Errorf("New(%+v) = %v, %v; want ErrOption", o, a, err)
		}
	}
	good := []gcbits.Options{{}, {BlockSize: gcbits.MinBlockSize}, {BlockSize: 1 << 20, Retain: 1}, {Retain: gcbits.MaxRetain}, {MaxBytes: 1 << 20}}
	for _, o := range good {
		a, err := gcbits.New(o)
		if err != nil {
			t.Errorf("New(%+v): %v", o, err)
			continue
		}
		a.Close()
	}
}

// TestOptionsPageSize checks the options against the page size of systems
// with 4, 16 and 64 KiB pages: BlockSize is raised to a page, and MaxBytes
// must hold the raised BlockSize, or every Alloc would fail with ErrLimit.
func TestOptionsPageSize(t *testing.T) {
	for _, page := range []int{4 << 10, 16 << 10, 64 << 10} {
		o, err := gcbits.ResolveOptions(gcbits.Options{BlockSize: 4 << 10, MaxBytes: 8 << 10}, page)
		if page > 8<<10 {
			if !errors.Is(err, gcbits.ErrOption) {
				t.Errorf("page %d: MaxBytes 8 KiB with BlockSize 4 KiB = %+v, %v; want ErrOption", page, o, err)
			}
		} else if err != nil || o.BlockSize != page {
			t.Errorf("page %d: %+v, %v", page, o, err)
		}
		o, err = gcbits.ResolveOptions(gcbits.Options{BlockSize: 4 << 10, MaxBytes: int64(page)}, page)
		if err != nil || o.BlockSize != page {
			t.Errorf("page %d: MaxBytes of one page = %+v, %v; want BlockSize %d", page, o, err, page)
		}
	}
	// On this system: a limit of one page serves an Alloc.
	page := mem.PageSize()
	a := arenatest.New(t, gcbits.Options{BlockSize: gcbits.MinBlockSize, MaxBytes: int64(page)})
	if bs := a.Options().BlockSize; bs != page {
		t.Errorf("block size %d on a system with %d-byte pages", bs, page)
	}
	if _, err := a.Alloc(64); err != nil {
		t.Errorf("Alloc under a limit of one page: %v", err)
	}
}

func TestAllocSizes(t *testing.T) {
	a := arenatest.New(t, gcbits.Options{})
	for _, n := range []int{1, 63, 64, 65, 1000, 8191, 8192 * 8, 16 << 10 * 8, 16<<10*8 + 1, 1 << 20, 1 << 24} {
		b, err := a.Alloc(n)
		if err != nil {
			t.Fatalf("Alloc(%d): %v", n, err)
		}
		if want := (n + 63) / 64; len(b) != want {
			t.Fatalf("Alloc(%d): %d words, want %d", n, len(b), want)
		}
		if uintptr(unsafe.Pointer(&b[0]))%8 != 0 {
			t.Fatalf("Alloc(%d) not 8-byte aligned", n)
		}
		for i, w := range b {
			if w != 0 {
				t.Fatalf("Alloc(%d): word %d = %#x", n, i, w)
			}
		}
		b[len(b)-1] = math.MaxUint64 // must be writable to the end
	}
}

func TestAllocBadSizes(t *testing.T) {
	a := arenatest.New(t, gcbits.Options{})
	if b, err := a.Alloc(0); err != nil || len(b) != 0 {
		t.Fatalf("Alloc(0) = %v, %v", b, err)
	}
	for _, n := range append([]int{-1, -64, math.MinInt}, arenatest.AboveInt64(gcbits.MaxBits)...) {
		if _, err := a.Alloc(n); !errors.Is(err, gcbits.ErrSize) {
			t.Errorf("Alloc(%d) err = %v, want ErrSize", n, err)
		}
		if _, err := a.NewCache().Alloc(n); !errors.Is(err, gcbits.ErrSize) {
			t.Errorf("Cache.Alloc(%d) err = %v, want ErrSize", n, err)
		}
	}
}

func TestClosed(t *testing.T) {
	a, err := gcbits.New(gcbits.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c := a.NewCache()
	if _, err := c.Alloc(100); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Alloc(1 << 20); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); !errors.Is(err, gcbits.ErrClosed) {
		t.Errorf("second Close = %v", err)
	}
	wantClosed(t, "Alloc after Close", a.Alloc, 1, 100, 1<<20)
	wantClosed(t, "Cache.Alloc after Close", c.Alloc, 1, 100, 1<<20)
	if e := a.Advance(); e != 0 {
		t.Errorf("Advance after Close = %d", e)
	}
	if s := a.Stats(); s.MappedBytes != 0 {
		t.Errorf("MappedBytes after Close = %d", s.MappedBytes)
	}
	var zero gcbits.Cache
	if _, err := zero.Alloc(10); !errors.Is(err, gcbits.ErrClosed) {
		t.Errorf("zero Cache Alloc = %v", err)
	}
}

func TestEpochs(t *testing.T) {
	a := arenatest.New(t, gcbits.Options{})
	for i := uint64(1); i <= 5; i++ {
		if e := a.Advance(); e != i || a.Epoch() != i {
			t.Fatalf("Advance = %d, Epoch = %d, want %d", e, a.Epoch(), i)
		}
	}
}

// fill writes a canary derived from id into every word of b.
func fill(b gcbits.Bits, id uint64) {
	for i := range b {
		b[i] = id*0x9E3779B97F4A7C15 + uint64(i)
	}
}

func intact(b gcbits.Bits, id uint64) bool {
	for i := range b {
		if b[i] != id*0x9E3779B97F4A7C15+uint64(i) {
			return false
		}
	}
	return true
}

type live struct {
	b     gcbits.Bits
	id    uint64
	epoch uint64
}

// TestLifetimeAndRecycling checks the lifetime rule with canaries, for
// every Retain, and that memory is recycled: the mapped bytes stay bounded.
func TestLifetimeAndRecycling(t *testing.T) {
	for _, retain := range []int{1, 2, 3} {
		a := arenatest.New(t, gcbits.Options{BlockSize: gcbits.MinBlockSize, Retain: retain})
		c := a.NewCache()
		var all []live
		id := uint64(0)
		for epoch := range uint64(40) {
			for i := range 300 {
				id++
				n := 1 + int(id*7919%2000)
				var b gcbits.Bits
				var err error
				if i%2 == 0 {
					b, err = a.Alloc(n)
				} else {
					b, err = c.Alloc(n)
				}
				if err != nil {
					t.Fatal(err)
				}
				for j, w := range b {
					if w != 0 {
						t.Fatalf("retain %d: fresh bitmap word %d = %#x", retain, j, w)
					}
				}
				fill(b, id)
				all = append(all, live{b, id, epoch})
			}
			kept := all[:0]
			for _, l := range all {
				if epoch < l.epoch+uint64(retain)+1 {
					if !intact(l.b, l.id) {
						t.Fatalf("retain %d: bitmap of epoch %d overwritten in epoch %d", retain, l.epoch, epoch)
					}
					kept = append(kept, l)
				}
			}
			all = kept
			a.Advance()
		}
		s := a.Stats()
		// 300 requests of up to 250 bytes need about 16 blocks of 4 KiB a
		// generation; recycling keeps the total near (retain+2) times that.
		if limit := int64(retain+3) * 40 * gcbits.MinBlockSize; s.MappedBytes > limit {
			t.Errorf("retain %d: %d bytes mapped after 40 epochs, want <= %d (no recycling?)", retain, s.MappedBytes, limit)
		}
		if len(s.Generations) != retain+1 {
			t.Errorf("retain %d: %d generations in Stats", retain, len(s.Generations))
		}
	}
}

// TestRecycledIsZeroedOnlyWhereUsed checks that recycled memory comes back
// zeroed, whichever part of it was written in its previous lives.
func TestRecycledIsZeroed(t *testing.T) {
	a := arenatest.New(t, gcbits.Options{BlockSize: gcbits.MinBlockSize, Retain: 1})
	for epoch := range 20 {
		// Alternate heavy and light epochs so that blocks are partly
		// used in one life and used further in the next.
		n := 2 + 30*(epoch%3)
		for i := range n {
			b, err := a.Alloc(64 * (1 + i%7))
			if err != nil {
				t.Fatal(err)
			}
			for j, w := range b {
				if w != 0 {
					t.Fatalf("epoch %d: word %d = %#x", epoch, j, w)
				}
			}
			fill(b, uint64(i+1))
		}
		a.Advance()
	}
}

func TestStatsBooks(t *testing.T) {
	a := arenatest.New(t, gcbits.Options{})
	c := a.NewCache()
	var want uint64
	for i := range 5000 {
		n := 1 + i%1024
		if _, err := a.Alloc(n); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Alloc(n); err != nil {
			t.Fatal(err)
		}
		want += 2 * uint64(gcbits.BytesFor(n))
	}
	big, err := a.Alloc(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	want += uint64(len(big) * 8)
	c.Flush()
	s := a.Stats()
	if s.AllocatedBytes != want {
		t.Errorf("AllocatedBytes = %d, want %d", s.AllocatedBytes, want)
	}
	if s.SlowPaths == 0 || s.Generations[0].Blocks == 0 || s.Generations[0].Dedicated != 1 {
		t.Errorf("stats: %+v", s)
	}
	// Within an epoch, waste is block tails and slab ends only.
	if s.WastedBytes*100 > s.AllocatedBytes*3 {
		t.Errorf("waste %d of %d bytes", s.WastedBytes, s.AllocatedBytes)
	}
	a.Advance()
	s = a.Stats()
	if s.AllocatedBytes != want {
		t.Errorf("after Advance AllocatedBytes = %d, want %d", s.AllocatedBytes, want)
	}
	// Everything carved is either handed out or wasted.
	var carved int64
	for _, g := range s.Generations {
		carved += g.Bytes + g.DedicatedBytes
	}
	if got := int64(s.AllocatedBytes + s.WastedBytes); got != carved {
		t.Errorf("allocated+wasted = %d, carved = %d", got, carved)
	}
}

// TestConcurrentAdvance runs allocators, with and without Caches, while
// another goroutine advances the epoch, with and without Guard and
// MaxBytes (where blocks in flight, guarded blocks giving way and
// requests waiting for them all happen concurrently). Each allocator
// checks that every bitmap it got keeps its canary for as long as the
// lifetime rule says, judged by the epoch read before the Alloc began.
func TestConcurrentAdvance(t *testing.T) {
	for _, o := range []gcbits.Options{
		{BlockSize: gcbits.MinBlockSize, Retain: 2},
		{BlockSize: gcbits.MinBlockSize, Retain: 2, MaxBytes: 12 * gcbits.MinBlockSize},
		{BlockSize: gcbits.MinBlockSize, Retain: 2, Guard: mem.OffHeap, GuardEpochs: 2},
		{BlockSize: gcbits.MinBlockSize, Retain: 2, Guard: mem.OffHeap, MaxBytes: 12 * gcbits.MinBlockSize},
	} {
		t.Run(fmt.Sprintf("MaxBytes=%d/Guard=%v", o.MaxBytes, o.Guard), func(t *testing.T) {
			testConcurrentAdvance(t, o)
		})
	}
}

func testConcurrentAdvance(t *testing.T, o gcbits.Options) {
	a := arenatest.New(t, o)
	const workers = 4
	iters := 20000
	if testing.Short() {
		iters = 4000
	}
	var wg sync.WaitGroup
	// Checking a bitmap at the very end of its lifetime would race with
	// the Advance that ends it, so checks hold pin for reading and the
	// advancer takes it for writing. Allocs run outside pin, concurrently
	// with Advance.
	var pin sync.RWMutex
	stop := make(chan struct{})
	var advWG sync.WaitGroup
	advWG.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
				pin.Lock()
				a.Advance()
				pin.Unlock()
			}
		}
	})
	errs := make(chan error, workers)
	var limited atomic.Int64
	for w := range workers {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			c := a.NewCache()
			var mine []live
			for i := 0; i < iters; i++ {
				id := uint64(w)<<32 | uint64(i+1)
				// Half the bitmaps are judged by the epoch read before
				// their Alloc began, half by the one AllocEpoch returns.
				e := a.Epoch()
				var b gcbits.Bits
				var g uint64
				var err error
				switch n := 1 + i%700; i % 4 {
				case 0:
					b, err = c.Alloc(n)
				case 1:
					b, err = a.Alloc(n)
				case 2:
					b, g, err = c.AllocEpoch(n)
				case 3:
					b, g, err = a.AllocEpoch(n)
				}
				if err == nil && i%4 >= 2 {
					if after := a.Epoch(); g < e || g > after {
						errs <- fmt.Errorf("AllocEpoch begun in epoch %d and returned in %d: epoch %d", e, after, g)
						return
					}
					e = g
				}
				if errors.Is(err, gcbits.ErrLimit) && o.MaxBytes > 0 {
					limited.Add(1) // the other workers' live bitmaps fill the limit
					continue
				}
				if err != nil {
					errs <- err
					return
				}
				pin.RLock()
				now := a.Epoch()
				if a.Live(e) != (now < e+3) {
					pin.RUnlock()
					errs <- fmt.Errorf("Live(%d) = %v in epoch %d", e, a.Live(e), now)
					return
				}
				if !a.Live(e) {
					// The Alloc overlapped three Advances: by the rule
					// the bitmap is already dead, and may be unmapped.
					pin.RUnlock()
					continue
				}
				for _, x := range b {
					if x != 0 {
						pin.RUnlock()
						errs <- errors.New("bitmap not zeroed")
						return
					}
				}
				fill(b, id)
				mine = append(mine, live{b, id, e})
				kept := mine[:0]
				for _, l := range mine {
					if !a.Live(l.epoch) {
						continue
					}
					if !intact(l.b, l.id) {
						pin.RUnlock()
						errs <- errors.New("live bitmap overwritten")
						return
					}
					kept = append(kept, l)
				}
				pin.RUnlock()
				mine = kept
			}
		}(w)
	}
	wg.Wait()
	close(stop)
	advWG.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if a.Epoch() < 10 {
		t.Logf("only %d epochs advanced", a.Epoch())
	}
	if n := limited.Load(); n > 0 {
		t.Logf("%d requests refused with ErrLimit", n)
	}
	checkBooks(t, a)
}

// TestClearing shows where zeroing happens: never for fresh memory, only
// up to the bytes a recycled block handed out in its previous life, and
// never while the arena's lock is held.
func TestClearing(t *testing.T) {
	a := arenatest.New(t, gcbits.Options{BlockSize: gcbits.MinBlockSize, Retain: 1})
	var cleared []int
	h := a.Hooks()
	clearFn := h.Clear
	h.Clear = func(b []byte) {
		if a.LockHeld() {
			t.Error("recycled memory cleared under the lock")
		}
		cleared = append(cleared, len(b))
		clearFn(b)
	}
	a.SetHooks(h)
	// Epoch 0: one block, three 512-byte slabs of its 4096 bytes carved
	// by a Cache (a Cache keeps to one shard; a goroutine whose stack
	// grows may move to another).
	c := a.NewCache()
	for range 40 {
		if _, err := c.Alloc(200); err != nil { // 32 bytes, 16 a slab
			t.Fatal(err)
		}
	}
	if len(cleared) != 0 {
		t.Fatalf("fresh memory cleared: %v", cleared)
	}
	a.Advance()
	a.Advance() // epoch 0's block is free now
	b, err := c.Alloc(200)
	if err != nil {
		t.Fatal(err)
	}
	if len(cleared) != 1 || cleared[0] != 3*512 {
		t.Fatalf("cleared %v bytes when reusing the block, want [1536]", cleared)
	}
	if s := a.Stats(); s.ClearedBytes != 3*512 {
		t.Fatalf("ClearedBytes = %d, want 1536", s.ClearedBytes)
	}
	fill(b, 1)
}

// TestLayout checks the padding that keeps cores off each other's cache
// lines: every shard (head and its books), every chunk header and every
// Cache fills exactly one padding unit, and the epoch word, which every
// Cache.Alloc reads, has a full unit of padding on either side.
func TestLayout(t *testing.T) {
	sizes, before, epochToNext, nextToMu := gcbits.Layout()
	for name, n := range sizes {
		if n != gcbits.CacheLine {
			t.Errorf("%s is %d bytes, want %d", name, n, gcbits.CacheLine)
		}
	}
	if before < gcbits.CacheLine || epochToNext < gcbits.CacheLine {
		t.Errorf("epoch has %d bytes of padding before it and starts %d bytes before nextShard, want %d", before, epochToNext, gcbits.CacheLine)
	}
	if nextToMu < gcbits.CacheLine {
		t.Errorf("nextShard and mu are %d bytes apart, want %d", nextToMu, gcbits.CacheLine)
	}
}

// claimShards starts n goroutines that stay alive together and returns
// the stack key of each and the shard it was given for that key.
func claimShards(a *gcbits.Arena, n int) ([]uint64, []int) {
	keys, got := make([]uint64, n), make([]int, n)
	var ready, done sync.WaitGroup
	ready.Add(n)
	done.Add(n)
	for i := range n {
		go func() {
			defer done.Done()
			keys[i] = gcbits.StackKey()
			got[i] = a.ShardFor(keys[i])
			ready.Done()
			ready.Wait() // no goroutine exits, freeing its stack, before all have claimed
		}()
	}
	done.Wait()
	return keys, got
}

// TestShardClaims checks that goroutines alive together get shards of
// their own, epoch after epoch, as long as there are shards to spare, and
// that they share rather than fail when there are not.
func TestShardClaims(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(16))
	a := arenatest.New(t, gcbits.Options{})
	if a.Shards() != 128 {
		t.Fatalf("%d shards with GOMAXPROCS 16, want 128", a.Shards())
	}
	moved := 0
	for trial := range 200 {
		for _, n := range []int{2, 8, 16} {
			keys, got := claimShards(a, n)
			owner := map[int]uint64{}
			for i, s := range got {
				if k, ok := owner[s]; ok {
					if k != keys[i] {
						t.Fatalf("trial %d: goroutines with stack keys %#x and %#x got one shard", trial, k, keys[i])
					}
					// A stack moved (grew or shrank) after its goroutine
					// claimed, and another goroutine's stack took its
					// place: the first one's next call claims anew.
					moved++
				}
				owner[s] = keys[i]
			}
			a.Advance() // clears the claims of goroutines now gone
		}
	}
	t.Logf("%d keys taken over from a moved stack", moved)
	for i := range a.Shards() {
		if a.Claimed(i) {
			t.Fatalf("shard %d still claimed after Advance", i)
		}
	}
	// More goroutines than shards: some share, none fails.
	_, got := claimShards(a, 3*a.Shards())
	seen := map[int]bool{}
	for _, s := range got {
		if s < 0 || s >= a.Shards() {
			t.Fatalf("shard %d of %d", s, a.Shards())
		}
		seen[s] = true
	}
	if len(seen) < a.Shards()/2 {
		t.Fatalf("%d goroutines used only %d of %d shards", len(got), len(seen), a.Shards())
	}
}

// TestShardClaimsStructured gives shardFor the stack keys of goroutines
// as the runtime lays out stacks, runs of 2, 4 and 8 KiB apart in a few
// clusters, which collide far more often under hashing alone than random
// keys would: each key must get a shard of its own.
func TestShardClaimsStructured(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(16))
	a := arenatest.New(t, gcbits.Options{})
	hashOnly := 0
	for trial := range 1000 {
		rng := rand.New(rand.NewPCG(uint64(trial), 1))
		var keys []uint64
		for range 1 + rng.IntN(4) { // clusters
			base, stride := 0x18000000+rng.Uint64N(1<<16), uint64(1)<<rng.IntN(3)
			for j := range 1 + rng.IntN(8) {
				keys = append(keys, base+uint64(j)*stride)
			}
		}
		slices.Sort(keys)
		keys = slices.Compact(keys)[:min(len(keys), 16)]
		owner, homes := map[int]uint64{}, map[int]bool{}
		for _, k := range keys {
			s := a.ShardFor(k)
			if o, ok := owner[s]; ok {
				t.Fatalf("trial %d: keys %#x and %#x got one shard", trial, o, k)
			}
			owner[s] = k
			if a.ShardFor(k) != s {
				t.Fatalf("trial %d: key %#x changed shards within an epoch", trial, k)
			}
			home := a.Home(k)
			if homes[home] {
				hashOnly++
			}
			homes[home] = true
		}
		a.Advance()
	}
	t.Logf("hashing alone would have put two keys on one shard %d times in 1000 trials", hashOnly)
}
