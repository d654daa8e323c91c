package seed_test

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"unsafe"

	"github.com/gcbits/gcbits/internal/mem"
	"github.com/gcbits/gcbits/internal/seed"
)

// allocator is what Before and After have in common.
type allocator interface {
	Alloc(nbits int) ([]uint64, error)
	Advance()
	Close() error
	Blocks() int
	OffsetOf(p []uint64) (int, uintptr)
}

var impls = []struct {
	name string
	new  func() allocator
}{
	{"Before", func() allocator { return seed.NewBefore() }},
	{"After", func() allocator { return seed.NewAfter() }},
}

// forEach runs f as a subtest for each implementation, closing the
// allocator afterwards.
func forEach(t *testing.T, f func(t *testing.T, a allocator)) {
	for _, impl := range impls {
		t.Run(impl.name, func(t *testing.T) {
			a := impl.new()
			defer func() {
				if err := a.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			}()
			f(t, a)
		})
	}
}

// spanBits are bitmap sizes the runtime asks for: objects per 8 KiB span
// for the small size classes, then a few multi-page spans.
var spanBits = []int{
	1024, 512, 341, 256, 204, 170, 146, 128, 113, 102, 93, 85, 78, 73, 68, 64,
	56, 51, 46, 42, 39, 36, 34, 32, 28, 25, 23, 21, 18, 16, 14, 12, 10, 8,
	7, 6, 5, 4, 3, 2, 1,
}

// live is a bitmap handed out by Alloc, with the canary written into it.
type live struct {
	p   []uint64
	tag uint64
}

func canary(tag uint64, i int) uint64 { return tag*0x9e3779b97f4a7c15 ^ uint64(i) }

// take checks a fresh bitmap (length, alignment, zeroes) and writes a
// canary into it.
func take(t *testing.T, p []uint64, nbits int, tag uint64) live {
	t.Helper()
	want := (nbits + 63) / 64
	if len(p) != want {
		t.Fatalf("Alloc(%d): %d words, want %d", nbits, len(p), want)
	}
	if addr := uintptr(unsafe.Pointer(unsafe.SliceData(p))); addr%8 != 0 {
		t.Fatalf("Alloc(%d): address %#x not 8-byte aligned", nbits, addr)
	}
	for i, w := range p {
		if w != 0 {
			t.Fatalf("Alloc(%d): word %d = %#x, want 0", nbits, i, w)
		}
	}
	for i := range p {
		p[i] = canary(tag, i)
	}
	return live{p, tag}
}

// verify checks that every bitmap still holds its canary and that no two
// overlap.
func verify(t *testing.T, ls []live) {
	t.Helper()
	type span struct{ lo, hi uintptr }
	spans := make([]span, 0, len(ls))
	for _, l := range ls {
		for i, w := range l.p {
			if w != canary(l.tag, i) {
				t.Fatalf("bitmap %#x word %d = %#x, want canary %#x", l.tag, i, w, canary(l.tag, i))
			}
		}
		lo := uintptr(unsafe.Pointer(unsafe.SliceData(l.p)))
		spans = append(spans, span{lo, lo + uintptr(len(l.p))*8})
	}
	slices.SortFunc(spans, func(a, b span) int {
		switch {
		case a.lo < b.lo:
			return -1
		case a.lo > b.lo:
			return 1
		}
		return 0
	})
	for i := 1; i < len(spans); i++ {
		if spans[i].lo < spans[i-1].hi {
			t.Fatalf("bitmaps [%#x,%#x) and [%#x,%#x) overlap",
				spans[i-1].lo, spans[i-1].hi, spans[i].lo, spans[i].hi)
		}
	}
}

func TestAllocDisjointZeroedAligned(t *testing.T) {
	forEach(t, func(t *testing.T, a allocator) {
		var ls []live
		for i := range 20000 {
			n := spanBits[i%len(spanBits)]
			p, err := a.Alloc(n)
			if err != nil {
				t.Fatal(err)
			}
			ls = append(ls, take(t, p, n, uint64(i)))
		}
		verify(t, ls)
		if a.Blocks() < 2 {
			t.Fatalf("Blocks() = %d; the test should fill several blocks", a.Blocks())
		}
	})
}

func TestSizes(t *testing.T) {
	forEach(t, func(t *testing.T, a allocator) {
		for _, n := range []int{-1, -64, math.MinInt, seed.MaxBits + 1, seed.MaxBits + 64, math.MaxInt, math.MaxInt - 62} {
			p, err := a.Alloc(n)
			if !errors.Is(err, seed.ErrSize) || p != nil {
				t.Errorf("Alloc(%d) = %d words, %v; want ErrSize", n, len(p), err)
			}
		}
		p, err := a.Alloc(0)
		if p != nil || err != nil {
			t.Errorf("Alloc(0) = %v, %v; want nil, nil", p, err)
		}
		var ls []live
		for i, n := range []int{1, 63, 64, 65, 128, 129, seed.MaxBits, seed.MaxBits - 63, 1} {
			p, err := a.Alloc(n)
			if err != nil {
				t.Fatalf("Alloc(%d): %v", n, err)
			}
			ls = append(ls, take(t, p, n, uint64(i)))
		}
		verify(t, ls)
	})
}

// TestFullBlock checks the capacity: a block holds exactly MaxBits bits,
// as the runtime's does (64 KiB less its 16-byte header).
func TestFullBlock(t *testing.T) {
	forEach(t, func(t *testing.T, a allocator) {
		for range seed.MaxWords {
			if _, err := a.Alloc(64); err != nil {
				t.Fatal(err)
			}
		}
		if got := a.Blocks(); got != 1 {
			t.Fatalf("after %d one-word bitmaps: %d blocks, want 1", seed.MaxWords, got)
		}
		p, err := a.Alloc(1)
		if err != nil {
			t.Fatal(err)
		}
		if got := a.Blocks(); got != 2 {
			t.Fatalf("one word past capacity: %d blocks, want 2", got)
		}
		if i, off := a.OffsetOf(p); i != 1 || off != 0 {
			t.Fatalf("bitmap at block %d offset %d, want block 1 offset 0", i, off)
		}
	})
}

func TestClosed(t *testing.T) {
	forEach(t, func(t *testing.T, a allocator) {
		if _, err := a.Alloc(100); err != nil {
			t.Fatal(err)
		}
		if err := a.Close(); err != nil {
			t.Fatal(err)
		}
		for _, n := range []int{1, 100, seed.MaxBits} {
			if p, err := a.Alloc(n); !errors.Is(err, seed.ErrClosed) || p != nil {
				t.Errorf("Alloc(%d) after Close = %d words, %v; want ErrClosed", n, len(p), err)
			}
		}
		if _, err := a.Alloc(-1); !errors.Is(err, seed.ErrSize) {
			t.Errorf("Alloc(-1) after Close: %v, want ErrSize", err)
		}
		a.Advance()
		if n := a.Blocks(); n != 0 {
			t.Errorf("Blocks() after Close = %d, want 0", n)
		}
		if err := a.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
	})
}

func TestMapError(t *testing.T) {
	cause := errors.New("no memory today")
	forEach(t, func(t *testing.T, a allocator) {
		fail := true
		seed.SetMapBlock(t, func() (mem.Region, error) {
			if fail {
				return mem.Region{}, cause
			}
			return mem.Map(seed.BlockBytes)
		})
		if p, err := a.Alloc(64); !errors.Is(err, cause) || p != nil {
			t.Fatalf("Alloc with failing map = %v, %v; want error wrapping %v", p, err, cause)
		}
		fail = false
		p, err := a.Alloc(64)
		if err != nil {
			t.Fatalf("Alloc after map recovers: %v", err)
		}
		verify(t, []live{take(t, p, 64, 1)})
	})
}

// TestPublishedWhileMapping drives the path where the mutex is dropped to
// map a block and another Alloc publishes one meanwhile: the first Alloc
// must use the published block and keep its own on the free list.
func TestPublishedWhileMapping(t *testing.T) {
	forEach(t, func(t *testing.T, a allocator) {
		var inner []uint64
		nested := true
		seed.SetMapBlock(t, func() (mem.Region, error) {
			if nested {
				nested = false
				p, err := a.Alloc(64) // runs while the outer Alloc has the mutex dropped
				if err != nil {
					t.Error(err)
				}
				inner = p
			}
			return mem.Map(seed.BlockBytes)
		})
		outer, err := a.Alloc(128)
		if err != nil {
			t.Fatal(err)
		}
		if got := a.Blocks(); got != 2 {
			t.Fatalf("Blocks() = %d, want 2", got)
		}
		ci, offi := a.OffsetOf(inner)
		co, offo := a.OffsetOf(outer)
		if ci != co || offi != 0 || offo != 8 {
			t.Fatalf("inner at block %d+%d, outer at block %d+%d; want both in one block at 0 and 8", ci, offi, co, offo)
		}
		// Fill the published block; the next block must come from the
		// free list, not from the OS.
		for {
			p, err := a.Alloc(seed.MaxBits / 4)
			if err != nil {
				t.Fatal(err)
			}
			if i, _ := a.OffsetOf(p); i != ci {
				if i < 0 {
					t.Fatal("bitmap outside every block")
				}
				break
			}
		}
		if got := a.Blocks(); got != 2 {
			t.Fatalf("Blocks() = %d after filling a block, want 2 (the spare reused)", got)
		}
	})
}

// TestClosedWhileMapping covers a Close that slips into the window where
// the mutex is dropped to map memory. That is a caller bug, but it must
// end in ErrClosed rather than a crash or a leak.
func TestClosedWhileMapping(t *testing.T) {
	forEach(t, func(t *testing.T, a allocator) {
		seed.SetMapBlock(t, func() (mem.Region, error) {
			if err := a.Close(); err != nil {
				t.Error(err)
			}
			return mem.Map(seed.BlockBytes)
		})
		if p, err := a.Alloc(64); !errors.Is(err, seed.ErrClosed) || p != nil {
			t.Fatalf("Alloc = %v, %v; want ErrClosed", p, err)
		}
		if got := a.Blocks(); got != 0 {
			t.Fatalf("Blocks() = %d, want 0", got)
		}
	})
}

// TestLifetime checks the Retain 2 rule: bitmaps of epoch e keep their
// canary through two Advances, and the third Advance hands their blocks
// back out (zeroed), so the number of blocks mapped stays at three epochs'
// worth however many epochs pass.
func TestLifetime(t *testing.T) {
	forEach(t, func(t *testing.T, a allocator) {
		const epochs = 12
		const perEpoch = 6000 // about three blocks of the spanBits mix
		gens := make([][]live, epochs)
		blocksOf := make([]map[int]bool, epochs)
		for e := range epochs {
			blocksOf[e] = map[int]bool{}
			for i := range perEpoch {
				n := spanBits[i%len(spanBits)]
				p, err := a.Alloc(n)
				if err != nil {
					t.Fatal(err)
				}
				gens[e] = append(gens[e], take(t, p, n, uint64(e)<<32|uint64(i)))
				c, _ := a.OffsetOf(p)
				blocksOf[e][c] = true
			}
			// Epochs e-2, e-1 and e are all live and intact.
			var alive []live
			for g := max(0, e-2); g <= e; g++ {
				alive = append(alive, gens[g]...)
			}
			verify(t, alive)
			if e >= 3 {
				// Epoch e reused exactly the blocks of epoch e-3.
				if !mapsEqual(blocksOf[e], blocksOf[e-3]) {
					t.Fatalf("epoch %d used blocks %v, want those of epoch %d: %v",
						e, keys(blocksOf[e]), e-3, keys(blocksOf[e-3]))
				}
				gens[e-3] = nil
			}
			a.Advance()
		}
		k := len(blocksOf[0])
		if k < 2 {
			t.Fatalf("an epoch used %d blocks; the test wants several", k)
		}
		if got := a.Blocks(); got != 3*k {
			t.Fatalf("after %d epochs of %d blocks: %d mapped, want %d", epochs, k, got, 3*k)
		}
	})
}

func mapsEqual(a, b map[int]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

func keys(m map[int]bool) []int {
	var ks []int
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// TestConcurrent runs several allocating goroutines per epoch and advances
// only once they have all stopped (the WaitGroup is the stop-the-world).
func TestConcurrent(t *testing.T) {
	forEach(t, func(t *testing.T, a allocator) {
		const (
			workers  = 4
			epochs   = 16
			perEpoch = 1500 // per worker
		)
		var gens [][]live
		var maxBytes uintptr
		for e := range epochs {
			results := make([][]live, workers)
			var wg sync.WaitGroup
			for w := range workers {
				wg.Go(func() {
					rng := rand.New(rand.NewPCG(uint64(e), uint64(w)))
					var mine []live
					for i := range perEpoch {
						n := spanBits[rng.IntN(len(spanBits))]
						p, err := a.Alloc(n)
						if err != nil {
							t.Error(err)
							return
						}
						want := (n + 63) / 64
						if len(p) != want {
							t.Errorf("Alloc(%d): %d words, want %d", n, len(p), want)
							return
						}
						for j, v := range p {
							if v != 0 {
								t.Errorf("Alloc(%d): word %d = %#x, want 0", n, j, v)
								return
							}
						}
						tag := uint64(e)<<40 | uint64(w)<<32 | uint64(i)
						for j := range p {
							p[j] = canary(tag, j)
						}
						mine = append(mine, live{p, tag})
					}
					results[w] = mine
				})
			}
			wg.Wait()
			if t.Failed() {
				return
			}
			var gen []live
			var bytes uintptr
			for _, r := range results {
				gen = append(gen, r...)
				for _, l := range r {
					bytes += uintptr(len(l.p)) * 8
				}
			}
			maxBytes = max(maxBytes, bytes)
			gens = append(gens, gen)
			if len(gens) > 3 {
				gens = gens[1:]
			}
			verify(t, slices.Concat(gens...))
			a.Advance()
		}
		// A block is abandoned only when a request does not fit; with
		// requests of at most 128 bytes from 4 workers at most 4*128 bytes
		// of each block go unused. Three live epochs plus the blocks that
		// lost a publish race bound the total.
		perBlock := uintptr(seed.UsableBytes - workers*128)
		k := int((maxBytes + perBlock - 1) / perBlock)
		if got, limit := a.Blocks(), 4*(k+workers); got > limit {
			t.Fatalf("%d blocks mapped over %d epochs of at most %d blocks; want at most %d", got, epochs, k, limit)
		}
	})
}

// TestSameLayout is a differential test: driven sequentially by the same
// requests, Before and After place every bitmap at the same block and
// offset.
func TestSameLayout(t *testing.T) {
	b, a := seed.NewBefore(), seed.NewAfter()
	defer b.Close()
	defer a.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	for e := range 10 {
		for i := range 1000 + rng.IntN(6000) {
			n := spanBits[rng.IntN(len(spanBits))]
			if rng.IntN(500) == 0 {
				n = rng.IntN(seed.MaxBits + 1)
			}
			pb, errb := b.Alloc(n)
			pa, erra := a.Alloc(n)
			if errb != nil || erra != nil {
				t.Fatal(errb, erra)
			}
			cb, ob := b.OffsetOf(pb)
			ca, oa := a.OffsetOf(pa)
			if cb != ca || ob != oa || len(pb) != len(pa) {
				t.Fatalf("epoch %d alloc %d (%d bits): Before block %d+%d, After block %d+%d",
					e, i, n, cb, ob, ca, oa)
			}
		}
		if b.Blocks() != a.Blocks() {
			t.Fatalf("epoch %d: Before mapped %d blocks, After %d", e, b.Blocks(), a.Blocks())
		}
		b.Advance()
		a.Advance()
	}
}

func Example() {
	a := seed.NewAfter()
	defer a.Close()
	bits, err := a.Alloc(170) // a span of 170 objects
	fmt.Println(len(bits), err)
	_, err = a.Alloc(-1)
	fmt.Println(errors.Is(err, seed.ErrSize))
	// Output:
	// 3 <nil>
	// true
}
