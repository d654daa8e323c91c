package gcbits_test

import (
	"errors"
	"math/rand/v2"
	"sort"
	"testing"
	"unsafe"

	"github.com/gcbits/gcbits"
	"github.com/gcbits/gcbits/internal/seed"
)

// design is one allocator under differential test.
type design struct {
	name    string
	alloc   func(int) ([]uint64, error)
	advance func()
	close   func() error
	errSize error
}

func designs(t *testing.T) []design {
	a, err := gcbits.New(gcbits.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ca, err := gcbits.New(gcbits.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c := ca.NewCache()
	b := seed.NewBefore()
	f := seed.NewAfter()
	return []design{
		{"seed-before", b.Alloc, b.Advance, b.Close, seed.ErrSize},
		{"seed-after", f.Alloc, f.Advance, f.Close, seed.ErrSize},
		{"gcbits", func(n int) ([]uint64, error) { return a.Alloc(n) }, func() { a.Advance() }, a.Close, gcbits.ErrSize},
		{"gcbits-cache", func(n int) ([]uint64, error) { return c.Alloc(n) }, func() { ca.Advance() }, ca.Close, gcbits.ErrSize},
	}
}

type span struct {
	lo, hi uintptr
}

// TestDifferential drives the seed's two designs and gcbits (shared path
// and Cache) through the same requests and epoch turns, and checks that
// they agree on every observable result: length, error class, zeroed
// memory, and that every bitmap keeps its contents for Retain = 2 epochs.
// The seeds need quiescent Advance, so the test is sequential.
func TestDifferential(t *testing.T) {
	ds := designs(t)
	defer func() {
		for _, d := range ds {
			d.close()
		}
	}()
	rng := rand.New(rand.NewPCG(1, 2))
	type rec struct {
		b     []uint64
		epoch int
		id    uint64
	}
	lives := make([][]rec, len(ds))
	id := uint64(0)
	for epoch := range 30 {
		for range 500 {
			var n int
			switch r := rng.IntN(100); {
			case r < 2:
				n = -1 - rng.IntN(100)
			case r < 4:
				n = 0
			case r < 6:
				n = 8190*64 + 1 + rng.IntN(1000) // beyond one seed arena
			default:
				n = 1 + rng.IntN(3*1024) // up to three spans' worth of mark bits
			}
			id++
			for i, d := range ds {
				b, err := d.alloc(n)
				seedLimit := n > 8190*64
				switch {
				case n < 0 || (seedLimit && d.errSize == seed.ErrSize):
					if !errors.Is(err, d.errSize) {
						t.Fatalf("%s: Alloc(%d) err = %v, want size error", d.name, n, err)
					}
					continue
				case err != nil:
					t.Fatalf("%s: Alloc(%d): %v", d.name, n, err)
				}
				if len(b) != (n+63)/64 {
					t.Fatalf("%s: Alloc(%d) gave %d words", d.name, n, len(b))
				}
				for _, w := range b {
					if w != 0 {
						t.Fatalf("%s: Alloc(%d) not zeroed", d.name, n)
					}
				}
				fill(b, id)
				lives[i] = append(lives[i], rec{b, epoch, id})
			}
		}
		for i, d := range ds {
			kept := lives[i][:0]
			var spans []span
			for _, r := range lives[i] {
				if epoch > r.epoch+2 {
					continue // past its lifetime
				}
				if !intact(r.b, r.id) {
					t.Fatalf("%s: bitmap of epoch %d changed in epoch %d", d.name, r.epoch, epoch)
				}
				if len(r.b) > 0 {
					lo := uintptr(unsafe.Pointer(&r.b[0]))
					spans = append(spans, span{lo, lo + uintptr(len(r.b))*8})
				}
				kept = append(kept, r)
			}
			lives[i] = kept
			if err := disjoint(spans); err != nil {
				t.Fatalf("%s: epoch %d: %v", d.name, epoch, err)
			}
			d.advance()
		}
	}
}

// disjoint reports an error if any two spans overlap.
func disjoint(s []span) error {
	sort.Slice(s, func(i, j int) bool { return s[i].lo < s[j].lo })
	for i := 1; i < len(s); i++ {
		if s[i].lo < s[i-1].hi {
			return errors.New("live bitmaps overlap")
		}
	}
	return nil
}
