package gcbits_test

import (
	"errors"
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"go.uber.org/goleak"

	"github.com/gcbits/gcbits"
	"github.com/gcbits/gcbits/internal/arenatest"
	"github.com/gcbits/gcbits/internal/mem"
)

// checkBooks checks the relations between Stats fields that hold while no
// Alloc runs: everything mapped is in a live generation, on the free list
// or guarded, the free bytes are the free blocks', and nothing passes
// MaxBytes.
func checkBooks(t testing.TB, a *gcbits.Arena) gcbits.Stats {
	t.Helper()
	s := a.Stats()
	var held int64
	for _, g := range s.Generations {
		held += g.Bytes + g.DedicatedBytes
	}
	if s.MappedBytes != held+s.FreeBytes+s.GuardedBytes {
		t.Fatalf("MappedBytes %d != %d in generations + %d free + %d guarded", s.MappedBytes, held, s.FreeBytes, s.GuardedBytes)
	}
	o := a.Options()
	if !o.Guard && (s.GuardedBlocks != 0 || s.GuardedBytes != 0) {
		t.Fatalf("%d blocks, %d bytes guarded without Guard", s.GuardedBlocks, s.GuardedBytes)
	}
	if s.FreeBytes != int64(s.FreeBlocks)*int64(o.BlockSize) {
		t.Fatalf("%d free blocks but %d free bytes", s.FreeBlocks, s.FreeBytes)
	}
	if o.MaxBytes > 0 && s.MappedBytes > o.MaxBytes {
		t.Fatalf("MappedBytes %d > MaxBytes %d", s.MappedBytes, o.MaxBytes)
	}
	return s
}

// trimmer advances an arena and checks the trimming policy: the free list
// keeps twice the blocks that the largest of the last trimHistory
// generations (and of the live ones) held, and Advance returns half of any excess,
// rounded up, to the operating system.
type trimmer struct {
	hist []int // blocks of the generations that ended, newest last
}

func (tr *trimmer) advance(t testing.TB, a *gcbits.Arena) gcbits.Stats {
	t.Helper()
	before := checkBooks(t, a)
	recycled := 0
	if len(before.Generations) == a.Options().Retain+1 {
		recycled = before.Generations[len(before.Generations)-1].Blocks
	}
	a.Advance()
	s := checkBooks(t, a)
	tr.hist = append(tr.hist, before.Generations[0].Blocks)
	if len(tr.hist) > gcbits.TrimHistory {
		tr.hist = tr.hist[1:]
	}
	keep := 0
	for _, n := range tr.hist {
		keep = max(keep, n)
	}
	for _, g := range s.Generations {
		keep = max(keep, g.Blocks)
	}
	keep *= 2
	free := before.FreeBlocks + recycled
	if free > keep {
		free -= (free - keep + 1) / 2
	}
	if s.FreeBlocks != free {
		t.Fatalf("epoch %d: %d free blocks after Advance, want %d (keep %d of %d)", s.Epoch, s.FreeBlocks, free, keep, before.FreeBlocks+recycled)
	}
	return s
}

// TestLimit fills an arena to MaxBytes: Alloc, Cache.Alloc and a large
// Alloc then fail with ErrLimit, without mapping more and without harming
// live bitmaps; once the generations holding the memory are recycled,
// allocation works again.
func TestLimit(t *testing.T) {
	const limit = 16 * gcbits.MinBlockSize
	a := arenatest.New(t, gcbits.Options{BlockSize: gcbits.MinBlockSize, Retain: 1, MaxBytes: limit})

	// A request larger than the limit by itself maps nothing.
	for _, n := range []int{gcbits.MaxBits, limit*8 + 1} {
		if _, err := a.Alloc(n); !errors.Is(err, gcbits.ErrLimit) {
			t.Fatalf("Alloc(%d) = %v, want ErrLimit", n, err)
		}
	}
	if s := checkBooks(t, a); s.MappedBytes != 0 || s.MapErrors != 0 {
		t.Fatalf("after refused requests: %+v", s)
	}

	var mine []live
	var err error
	for i := 1; ; i++ {
		var b gcbits.Bits
		if b, err = a.Alloc(8 * 1024); err != nil { // 1 KiB, four to a block
			break
		}
		fill(b, uint64(i))
		mine = append(mine, live{b, uint64(i), 0})
		if i > 2*limit/1024 {
			t.Fatalf("%d KiB allocated under a limit of %d KiB", i, limit/1024)
		}
	}
	if !errors.Is(err, gcbits.ErrLimit) {
		t.Fatalf("Alloc past the limit = %v, want ErrLimit", err)
	}
	if len(mine) < limit/1024*3/4 {
		t.Errorf("only %d KiB allocated under a limit of %d KiB", len(mine), limit/1024)
	}
	c := a.NewCache()
	for i := 0; ; i++ {
		if _, err = c.Alloc(256); err != nil {
			break
		}
		if i > limit/32 {
			t.Fatal("Cache.Alloc never reached the limit")
		}
	}
	if !errors.Is(err, gcbits.ErrLimit) {
		t.Errorf("Cache.Alloc past the limit = %v, want ErrLimit", err)
	}
	if _, err := a.Alloc(16 * 1024); !errors.Is(err, gcbits.ErrLimit) { // a dedicated block
		t.Errorf("large Alloc past the limit = %v, want ErrLimit", err)
	}
	if b, err := a.Alloc(0); err != nil || len(b) != 0 {
		t.Errorf("Alloc(0) at the limit = %v, %v", b, err)
	}
	s := checkBooks(t, a)
	if s.MappedBytes > limit || s.MappedBytes < limit-gcbits.MinBlockSize || s.MapErrors != 0 {
		t.Fatalf("at the limit: %+v", s)
	}

	// Epoch 1: epoch 0 is still live (Retain 1), so the limit holds.
	var tr trimmer
	tr.advance(t, a)
	if _, err := a.Alloc(64); !errors.Is(err, gcbits.ErrLimit) {
		t.Errorf("Alloc in epoch 1 = %v, want ErrLimit: epoch 0 still holds the memory", err)
	}
	for _, l := range mine {
		if !intact(l.b, l.id) {
			t.Fatal("live bitmap changed by refused requests")
		}
	}

	// Epoch 2 recycles epoch 0: memory is back, kept on the free list
	// since epoch 0 was recent.
	tr.advance(t, a)
	for i := 0; i < len(mine); i++ {
		b, err := a.Alloc(8 * 1024)
		if err != nil {
			t.Fatalf("Alloc %d after recycling: %v", i, err)
		}
		if b.Count() != 0 {
			t.Fatal("recycled bitmap not zeroed")
		}
	}
	tr.advance(t, a)
	tr.advance(t, a)
	// The free list holds the whole limit; a dedicated block needs fresh
	// memory, so free blocks go back to the OS to make room.
	if _, err := a.Alloc(16 * 1024); err != nil {
		t.Errorf("large Alloc after recycling: %v", err)
	}
	if _, err := c.Alloc(256); err != nil {
		t.Errorf("Cache.Alloc after recycling: %v", err)
	}
	checkBooks(t, a)
}

// TestLimitTrim checks that Advance returns free blocks beyond what the
// live generations hold to the operating system: after one heavy epoch
// and light ones, the footprint shrinks to the light load's.
func TestLimitTrim(t *testing.T) {
	a := arenatest.New(t, gcbits.Options{BlockSize: gcbits.MinBlockSize, Retain: 2})
	load := func(blocks int) {
		for i := 0; i < 4*blocks; i++ {
			b, err := a.Alloc(8 * 1024)
			if err != nil {
				t.Fatal(err)
			}
			b[0] = 1
		}
	}
	load(64)
	heavy := checkBooks(t, a).MappedBytes
	var tr trimmer
	for e := 1; e <= gcbits.TrimHistory+8; e++ {
		tr.advance(t, a)
		load(2)
	}
	s := checkBooks(t, a)
	if s.MappedBytes > heavy/4 || s.ReleasedBytes < uint64(heavy/2) {
		t.Errorf("after light epochs: %d bytes mapped, %d released; heavy epoch mapped %d", s.MappedBytes, s.ReleasedBytes, heavy)
	}
}

// rss returns the resident set size of the process in bytes, or -1 where
// /proc/self/statm is not available.
func rss() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return -1
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return -1
	}
	pages, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return -1
	}
	return pages * int64(os.Getpagesize())
}

// TestLimitSoak runs 1,000 epochs of a load that rises and falls as a
// sine, with a peak that needs somewhat more than MaxBytes. The mapped
// bytes never pass the limit; requests past it fail with ErrLimit and
// nothing else; the footprint follows the load down at every trough, in
// the books and in the resident set size.
func TestLimitSoak(t *testing.T) {
	const (
		period = 100      // epochs per cycle of the load
		bits   = 8 << 13  // 8 KiB bitmaps, eight to a 64 KiB block
		peak   = 512      // bitmaps at the peak: 4 MiB per epoch
		limit  = 10 << 20 // three live epochs at the peak would need 12 MiB
	)
	epochs := 1000
	if testing.Short() {
		epochs = 300
	}
	haveRSS := rss() >= 0
	a := arenatest.New(t, gcbits.Options{Retain: 2, MaxBytes: limit})
	var tr trimmer
	var (
		limited      int    // epochs where an Alloc hit the limit
		cycleMax     int64  // the largest MappedBytes in this cycle
		rssPeak      int64  // RSS at the last peak
		mappedPeak   int64  // MappedBytes then
		firsts       []live // the first bitmap of each epoch
		lastTroughAt int64
	)
	for e := 0; e < epochs; e++ {
		want := int(math.Round(peak * (1 - math.Cos(2*math.Pi*float64(e)/period)) / 2))
		for i := range want {
			b, err := a.Alloc(bits)
			if err != nil {
				if !errors.Is(err, gcbits.ErrLimit) {
					t.Fatalf("epoch %d: %v", e, err)
				}
				s := a.Stats()
				if s.MappedBytes+int64(a.Options().BlockSize) <= limit || s.FreeBlocks != 0 {
					t.Fatalf("epoch %d: ErrLimit with %d bytes mapped and %d free blocks", e, s.MappedBytes, s.FreeBlocks)
				}
				if want < peak/2 {
					t.Fatalf("epoch %d: ErrLimit at a load of %d of %d", e, want, peak)
				}
				limited++
				break // back off until the next epoch
			}
			// Touch every page so that the resident set follows.
			for w := 0; w < len(b); w += 512 {
				b[w] = uint64(e)
			}
			if i == 0 {
				firsts = append(firsts, live{b, uint64(e), uint64(e)})
			}
		}
		s := checkBooks(t, a)
		cycleMax = max(cycleMax, s.MappedBytes)
		if e%period == period/2 && e+period > epochs && haveRSS {
			rssPeak, mappedPeak = settledRSS(), s.MappedBytes
		}
		for len(firsts) > 0 && firsts[0].epoch+uint64(a.Options().Retain) < uint64(e) {
			firsts = firsts[1:]
		}
		for _, l := range firsts {
			if l.b[0] != l.id {
				t.Fatalf("epoch %d: bitmap of epoch %d overwritten", e, l.epoch)
			}
		}

		s = tr.advance(t, a)
		// Three epochs into a trough, the live generations are nearly
		// empty and so is the free list.
		if e%period == 2 && e > period {
			if s.MappedBytes > cycleMax/8 {
				t.Fatalf("epoch %d: %d bytes mapped at the trough, %d at the peak", e, s.MappedBytes, cycleMax)
			}
			lastTroughAt = s.MappedBytes
			cycleMax = 0
		}
	}
	if limited == 0 {
		t.Errorf("the load never reached the limit")
	}
	t.Logf("%d epochs, %d limited; trough %d bytes mapped", epochs, limited, lastTroughAt)

	// The footprint at the end (a trough) in the resident set size: the
	// peak's pages went back to the operating system. The rest of the
	// process (the Go heap, the race detector) only adds noise that makes
	// the RSS grow, so the drop from the last peak must be at least half
	// of what the arena's books dropped by.
	for range 3 {
		a.Advance()
	}
	if !haveRSS {
		t.Log("no /proc/self/statm: RSS not checked")
		return
	}
	rssEnd, mappedEnd := settledRSS(), checkBooks(t, a).MappedBytes
	t.Logf("RSS %d KiB at the last peak with %d KiB mapped, %d KiB at the end with %d KiB mapped",
		rssPeak>>10, mappedPeak>>10, rssEnd>>10, mappedEnd>>10)
	if mappedPeak-mappedEnd < limit/2 {
		t.Fatalf("the books show no trough: %d bytes mapped at the peak, %d at the end", mappedPeak, mappedEnd)
	}
	if drop := rssPeak - rssEnd; drop < (mappedPeak-mappedEnd)/2 {
		t.Errorf("RSS dropped by %d bytes from the last peak, the arena's books by %d: memory not returned", drop, mappedPeak-mappedEnd)
	}
}

// settledRSS returns the RSS after returning the Go heap's free memory to
// the operating system, so that two readings differ mostly by what the
// arena holds.
func settledRSS() int64 {
	debug.FreeOSMemory()
	return rss()
}

// TestLimitAnyShard: under MaxBytes, a goroutine whose shard has no head
// is served from another shard's head rather than refused: the limit
// counts memory, not shards.
func TestLimitAnyShard(t *testing.T) {
	a := arenatest.New(t, gcbits.Options{MaxBytes: 2 * gcbits.DefaultBlockSize})
	const goroutines = 16
	var wg, hold sync.WaitGroup
	hold.Add(1)
	errs := make(chan error, goroutines)
	for range goroutines {
		wg.Go(func() {
			if _, err := a.Alloc(64); err != nil {
				errs <- err
			}
			errs <- nil
			hold.Wait() // keep every goroutine's stack, so they spread over shards
		})
	}
	for range goroutines {
		if err := <-errs; err != nil {
			t.Errorf("Alloc(64) with %d of %d bytes mapped: %v", a.Stats().MappedBytes, 2*gcbits.DefaultBlockSize, err)
			<-errs
		}
	}
	hold.Done()
	wg.Wait()
}

// TestFullHeadOffset makes requests fail over and over on a full head,
// for want of memory (ErrLimit) and because the OS refuses it (a failed
// map), from several goroutines at once, through Alloc and Cache refills
// on the full head's shard. A full chunk's offset may grow by at most one
// request per goroutine (see chunk.free): failed requests must not keep
// adding to it, or with 1 GiB blocks a goroutine that retries would push
// it past any bound within hours.
func TestFullHeadOffset(t *testing.T) {
	const (
		goroutines = 8
		tries      = 500
		n          = 8 * 1024 // bits: 1 KiB, four to a block
	)
	for _, cause := range []string{"limit", "map"} {
		t.Run(cause, func(t *testing.T) {
			o := gcbits.Options{BlockSize: gcbits.MinBlockSize}
			if cause == "limit" {
				o.MaxBytes = gcbits.MinBlockSize
			}
			a := arenatest.New(t, o)
			f := injectFaults(a)
			// Fill one block through a Cache, which keeps to one shard:
			// 128 requests of 32 bytes, 8 slabs of 512.
			full := a.NewCache()
			for range gcbits.MinBlockSize / 32 {
				if _, err := full.Alloc(256); err != nil {
					t.Fatal(err)
				}
			}
			if cause == "map" {
				f.failMap.Store(true)
			}
			var wg sync.WaitGroup
			for range goroutines {
				wg.Go(func() {
					c := a.NewCache()
					c.ShareShard(full) // refills add to the full head
					for range tries {
						if _, err := a.Alloc(n); err == nil {
							t.Error("Alloc succeeded with no memory to serve it")
						}
						if _, err := c.Alloc(64); err == nil {
							t.Error("Cache.Alloc succeeded with no memory to serve it")
						}
					}
				})
			}
			wg.Wait()
			chunks := a.Chunks()
			for _, c := range chunks {
				bound := c.Words
				if c.Sealed {
					bound = gcbits.Sealed
				}
				if c.Free > bound+goroutines*n/64 {
					t.Errorf("chunk offset %d words after %d failed requests, bound %d + %d goroutines' requests", c.Free, 2*goroutines*tries, bound, goroutines)
				}
			}
			if len(chunks) != 1 {
				t.Errorf("%d chunks published, want 1", len(chunks))
			}
		})
	}
}

// TestSealRecordsUse gives a head an offset past the sealed value without
// sealing it (the bound of chunk.free rules this out in use). The seal must
// still record how much of the block was used, so that the block's next
// life clears it: it must not take the offset for a seal.
func TestSealRecordsUse(t *testing.T) {
	a := arenatest.New(t, gcbits.Options{BlockSize: gcbits.MinBlockSize, Retain: 1})
	b, err := a.Alloc(8 * 1024)
	if err != nil {
		t.Fatal(err)
	}
	fill(b, 1)
	if !a.SetHeadFree(gcbits.Sealed + 5) {
		t.Fatal("no head")
	}
	a.Advance()
	a.Advance() // the block is free
	for i := range 4 {
		b, err := a.Alloc(8 * 1024)
		if err != nil {
			t.Fatal(err)
		}
		if b.Count() != 0 {
			t.Fatalf("bitmap %d of the recycled block not cleared: %d bits set", i, b.Count())
		}
	}
}

// TestLimitInFlight holds one request inside a system call or a clear
// (through the test hooks) while a second request needs the memory that
// the first one holds in flight. ErrLimit means that the request cannot be
// served without mapping past MaxBytes: the second request must wait for
// the first to settle and then be served, by the block the first brings
// or by the room its failure frees, never fail because a block is on its
// way.
func TestLimitInFlight(t *testing.T) {
	defer goleak.VerifyNone(t)
	const small, large = 64, 2 * 8 * 1024 // bits; large gets a dedicated block of one page
	cases := []struct {
		name        string
		dirty       bool // first recycle a used block, so the first request clears it
		hold        string
		first, next int  // bits
		firstFails  bool // the held call fails (an injected fault)
	}{
		{name: "map", hold: "map", first: small, next: small},
		{name: "clear", dirty: true, hold: "clear", first: small, next: small},
		{name: "map-fails/large-waits", hold: "map", first: small, next: large, firstFails: true},
		{name: "large-map-fails", hold: "map", first: large, next: small, firstFails: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := arenatest.New(t, gcbits.Options{BlockSize: gcbits.MinBlockSize, Retain: 1, MaxBytes: gcbits.MinBlockSize})
			if tc.dirty {
				b, err := a.Alloc(small)
				if err != nil {
					t.Fatal(err)
				}
				fill(b, 1)
				a.Advance()
				a.Advance() // the block is free and dirty
			}
			entered, release := make(chan struct{}), make(chan struct{})
			var held atomic.Bool
			// hold blocks the first call of a hook until release.
			hold := func() bool {
				if held.CompareAndSwap(false, true) {
					close(entered)
					<-release
					return true
				}
				return false
			}
			h := a.Hooks()
			mapFn, clearFn := h.Map, h.Clear
			h.Map = func(size uintptr) (mem.Region, error) {
				if tc.hold == "map" && hold() && tc.firstFails {
					return mem.Region{}, errInjected
				}
				return mapFn(size)
			}
			h.Clear = func(b []byte) {
				if tc.hold == "clear" {
					hold()
				}
				clearFn(b)
			}
			a.SetHooks(h)
			base := a.Stats().SlowPaths
			type result struct {
				b   gcbits.Bits
				err error
			}
			first, next := make(chan result, 1), make(chan result, 1)
			go func() {
				b, err := a.Alloc(tc.first)
				first <- result{b, err}
			}()
			<-entered
			go func() {
				b, err := a.Alloc(tc.next)
				next <- result{b, err}
			}()
			// The second request has decided once Stats, which takes the
			// lock after it, counts its slow path: it has failed, or it
			// waits for the first.
			for a.Stats().SlowPaths < base+2 {
				runtime.Gosched()
			}
			close(release)
			r1, r2 := <-first, <-next
			if tc.firstFails {
				if !errors.Is(r1.err, errInjected) {
					t.Errorf("held request: %v, want the injected fault", r1.err)
				}
			} else if r1.err != nil {
				t.Errorf("held request: %v", r1.err)
			}
			if r2.err != nil {
				t.Fatalf("request made while the first was in flight: %v", r2.err)
			}
			if r2.b.Count() != 0 {
				t.Fatal("not zeroed")
			}
			fill(r2.b, 2)
			if r1.err == nil && (!intact(r2.b, 2) || r1.b.Count() != 0) {
				t.Fatal("the two bitmaps overlap")
			}
			checkBooks(t, a)
		})
	}
}
