package gcbits_test

import (
	"errors"
	"fmt"
	"math"
	"testing"

	"github.com/gcbits/gcbits"
	"github.com/gcbits/gcbits/internal/arenatest"
	"github.com/gcbits/gcbits/internal/mem"
)

// TestAllocEpoch follows bitmaps of every kind (from a Cache's slab, the
// shared path and a dedicated block, through the Arena and the Cache)
// over the epochs: AllocEpoch returns the current epoch, Live says true
// for exactly Retain epochs after it, and a bitmap keeps what was written
// to it for as long as Live says so.
func TestAllocEpoch(t *testing.T) {
	for _, o := range []gcbits.Options{
		{BlockSize: gcbits.MinBlockSize, Retain: 1},
		{Retain: 3},
		{BlockSize: gcbits.MinBlockSize, Retain: 2, Guard: mem.OffHeap},
	} {
		t.Run(fmt.Sprintf("Retain=%d/Guard=%v", o.Retain, o.Guard), func(t *testing.T) {
			testAllocEpoch(t, o)
		})
	}
}

func testAllocEpoch(t *testing.T, o gcbits.Options) {
	a := arenatest.New(t, o)
	c := a.NewCache()
	retain := uint64(a.Options().Retain)
	type kept struct {
		b     gcbits.Bits
		epoch uint64
		id    uint64
	}
	var all []kept
	ways := []struct {
		name  string
		alloc func(int) (gcbits.Bits, uint64, error)
	}{{"Arena", a.AllocEpoch}, {"Cache", c.AllocEpoch}}
	id := uint64(0)
	for e := uint64(0); e < 3*(retain+1); e++ {
		for _, w := range ways {
			for _, nbits := range []int{1 << 20, a.Options().BlockSize, 100} { // dedicated, shared, slab (the Cache's last slab is of the epoch before)
				id++
				b, g, err := w.alloc(nbits)
				if err != nil {
					t.Fatalf("epoch %d: %s.AllocEpoch(%d): %v", e, w.name, nbits, err)
				}
				if g != e || !a.Live(g) {
					t.Fatalf("epoch %d: %s.AllocEpoch(%d) = epoch %d, Live %v", e, w.name, nbits, g, a.Live(g))
				}
				fill(b, id)
				all = append(all, kept{b, g, id})
			}
		}
		for _, k := range all {
			live := e <= k.epoch+retain
			if a.Live(k.epoch) != live {
				t.Fatalf("epoch %d: Live(%d) = %v with Retain %d", e, k.epoch, a.Live(k.epoch), retain)
			}
			if live && !intact(k.b, k.id) {
				t.Fatalf("epoch %d: a bitmap of epoch %d changed while Live", e, k.epoch)
			}
		}
		if e2 := a.Advance(); e2 != e+1 {
			t.Fatalf("Advance = %d, want %d", e2, e+1)
		}
	}
	if !a.Live(a.Epoch() + 5) {
		t.Error("Live of a later epoch is false")
	}

	// Bad and empty requests.
	for _, w := range ways {
		if b, g, err := w.alloc(0); err != nil || len(b) != 0 || g != a.Epoch() {
			t.Errorf("%s.AllocEpoch(0) = %v, %d, %v; want an empty bitmap of epoch %d", w.name, b, g, err, a.Epoch())
		}
		for _, n := range append([]int{-1, math.MinInt}, arenatest.AboveInt64(gcbits.MaxBits)...) {
			if b, g, err := w.alloc(n); !errors.Is(err, gcbits.ErrSize) || b != nil || g != 0 {
				t.Errorf("%s.AllocEpoch(%d) = %v, %d, %v; want ErrSize and epoch 0", w.name, n, b, g, err)
			}
		}
	}

	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if a.Live(a.Epoch()) {
		t.Error("Live after Close")
	}
	for _, w := range ways {
		if _, g, err := w.alloc(100); !errors.Is(err, gcbits.ErrClosed) || g != 0 {
			t.Errorf("%s.AllocEpoch after Close = epoch %d, %v; want ErrClosed", w.name, g, err)
		}
	}
}

// TestOptionsResolved checks what Arena.Options reports: the options
// given, with defaults filled in and BlockSize raised to the page size.
func TestOptionsResolved(t *testing.T) {
	page := mem.PageSize()
	cases := []struct{ in, want gcbits.Options }{
		{gcbits.Options{}, gcbits.Options{BlockSize: max(gcbits.DefaultBlockSize, page), Retain: gcbits.DefaultRetain}},
		{gcbits.Options{BlockSize: gcbits.MinBlockSize, Retain: 5, MaxBytes: 1 << 20},
			gcbits.Options{BlockSize: max(gcbits.MinBlockSize, page), Retain: 5, MaxBytes: 1 << 20}},
	}
	if mem.OffHeap {
		cases = append(cases,
			struct{ in, want gcbits.Options }{gcbits.Options{Guard: true},
				gcbits.Options{BlockSize: max(gcbits.DefaultBlockSize, page), Retain: gcbits.DefaultRetain, Guard: true, GuardEpochs: gcbits.DefaultGuardEpochs}},
			struct{ in, want gcbits.Options }{gcbits.Options{Guard: true, GuardEpochs: 3},
				gcbits.Options{BlockSize: max(gcbits.DefaultBlockSize, page), Retain: gcbits.DefaultRetain, Guard: true, GuardEpochs: 3}})
	}
	for _, c := range cases {
		if got := arenatest.New(t, c.in).Options(); got != c.want {
			t.Errorf("New(%+v).Options() = %+v, want %+v", c.in, got, c.want)
		}
	}
	var zero gcbits.Arena
	if got := zero.Options(); got != (gcbits.Options{}) || zero.Live(0) {
		t.Errorf("zero Arena: Options() = %+v, Live(0) = %v", got, zero.Live(0))
	}
}
