package gcbits_test

import (
	"math"
	"testing"

	"pgregory.net/rapid"

	"github.com/gcbits/gcbits"
	"github.com/gcbits/gcbits/internal/arenatest"
	"github.com/gcbits/gcbits/internal/mem"
)

// TestRapidArena is a property-based state-machine test of an Arena and
// two Caches against the model of fuzz_test.go. Rapid draws the options
// and a sequence of actions, and shrinks a failing sequence to a minimal
// one. After every action it checks the invariants: live bitmaps are
// disjoint and hold what our own operations left in them, and Stats agrees
// with the model (AllocatedBytes equals the bytes handed out, less what
// the Caches served since their last flush). Each Alloc checks that its
// bitmap is zeroed and that its error is the one the model predicts.
func TestRapidArena(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		o := gcbits.Options{
			BlockSize: rapid.SampledFrom([]int{gcbits.MinBlockSize, 2 * gcbits.MinBlockSize}).Draw(rt, "BlockSize"),
			Retain:    rapid.IntRange(1, 3).Draw(rt, "Retain"),
			MaxBytes:  rapid.SampledFrom([]int64{0, 8 * gcbits.MinBlockSize, 32 * gcbits.MinBlockSize}).Draw(rt, "MaxBytes"),
			Guard:     mem.OffHeap && rapid.Bool().Draw(rt, "Guard"),
		}
		bad := append([]int{0, -1, -64, math.MinInt}, arenatest.AboveInt64(gcbits.MaxBits)...)
		if o.MaxBytes > 0 {
			bad = append(bad, gcbits.MaxBits) // refused by the limit, not mapped
		}
		size := rapid.OneOf(
			rapid.IntRange(1, 256),   // Cache slabs
			rapid.IntRange(1, 20000), // shared blocks and dedicated ones
			rapid.SampledFrom(bad),
		)
		m := newModel(rt, o)
		defer func() {
			if !m.closed {
				m.a.Close()
			}
		}()
		// pick draws a live bitmap and an index in it or just outside.
		pick := func(t *rapid.T) (int, int) {
			if len(m.live) == 0 {
				t.Skip("no live bitmap")
			}
			w := rapid.IntRange(0, len(m.live)-1).Draw(t, "bitmap")
			n := m.live[w].b.Len()
			return w, rapid.IntRange(-2, n+64).Draw(t, "bit")
		}
		rt.Repeat(map[string]func(*rapid.T){
			"Alloc": func(t *rapid.T) {
				m.alloc(-1, size.Draw(t, "nbits"))
			},
			"CacheAlloc": func(t *rapid.T) {
				m.alloc(rapid.IntRange(0, 1).Draw(t, "cache"), size.Draw(t, "nbits"))
			},
			"CacheAllocBurst": func(t *rapid.T) {
				c, n := rapid.IntRange(0, 1).Draw(t, "cache"), rapid.IntRange(1, 64).Draw(t, "count")
				for i := range n {
					m.alloc(c, 1+i%200)
				}
			},
			"Advance": func(t *rapid.T) {
				m.advance()
			},
			"SetBit": func(t *rapid.T) {
				w, i := pick(t)
				m.bitsOp(w, rapid.SampledFrom([]int{0, 3}).Draw(t, "Set or SetAtomic"), i)
			},
			"ClearBit": func(t *rapid.T) {
				w, i := pick(t)
				m.bitsOp(w, 1, i)
			},
			"ReadBits": func(t *rapid.T) {
				w, i := pick(t)
				m.bitsOp(w, rapid.SampledFrom([]int{2, 4, 5, 6, 7, 8}).Draw(t, "op"), i)
			},
			"Flush": func(t *rapid.T) {
				m.caches[rapid.IntRange(0, 1).Draw(t, "cache")].Flush()
			},
			"StatsFlushed": func(t *rapid.T) {
				m.stats(true)
			},
			"": func(t *rapid.T) {
				m.checkLive()
				m.checkDisjoint()
				m.stats(false)
			},
		})
		m.close()
	})
}
