package gcbits_test

import (
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"unsafe"

	"go.uber.org/goleak"

	"github.com/gcbits/gcbits"
	"github.com/gcbits/gcbits/internal/mem"
)

// errInjected is the cause the fault hooks report.
var errInjected = errors.New("injected fault")

// faults replaces an arena's hooks to the operating system with ones that
// fail while the matching flag is set, and count their calls (protects
// counts the protection changes either way: Guard and Unprotect).
type faults struct {
	failMap, failUnmap, failGuard, failUnprotect atomic.Bool
	maps, unmaps, protects                       atomic.Int64
}

func injectFaults(a *gcbits.Arena) *faults {
	f := &faults{}
	h := a.Hooks()
	mapFn, unmap := h.Map, h.Unmap
	h.Map = func(size uintptr) (mem.Region, error) {
		f.maps.Add(1)
		if f.failMap.Load() {
			return mem.Region{}, errInjected
		}
		return mapFn(size)
	}
	h.Unmap = func(r mem.Region) error {
		f.unmaps.Add(1)
		// Unmap anyway, so the test itself leaks nothing.
		if err := unmap(r); err != nil {
			return err
		}
		if f.failUnmap.Load() {
			return errInjected
		}
		return nil
	}
	h.Guard = f.protection(h.Guard, &f.failGuard)
	h.Unprotect = f.protection(h.Unprotect, &f.failUnprotect)
	a.SetHooks(h)
	return f
}

// protection wraps hook, a protection change, to count its calls and to
// fail while fail is set.
func (f *faults) protection(hook func(mem.Region) error, fail *atomic.Bool) func(mem.Region) error {
	return func(r mem.Region) error {
		f.protects.Add(1)
		if fail.Load() {
			return errInjected
		}
		return hook(r)
	}
}

// TestFaultMap makes every map fail and checks each way of allocating:
// the error wraps the cause, nothing is mapped or leaked, the failure is
// counted, and once maps work again the same call succeeds.
func TestFaultMap(t *testing.T) {
	defer goleak.VerifyNone(t)
	ways := []struct {
		name  string
		alloc func(a *gcbits.Arena) func(int) (gcbits.Bits, error)
		nbits int
	}{
		{"Alloc", func(a *gcbits.Arena) func(int) (gcbits.Bits, error) { return a.Alloc }, 100},
		{"Cache.Alloc", func(a *gcbits.Arena) func(int) (gcbits.Bits, error) { return a.NewCache().Alloc }, 100},
		{"Cache.Alloc/large", func(a *gcbits.Arena) func(int) (gcbits.Bits, error) { return a.NewCache().Alloc }, 20000},
		{"Alloc/large", func(a *gcbits.Arena) func(int) (gcbits.Bits, error) { return a.Alloc }, 1 << 20},
	}
	for _, w := range ways {
		t.Run(w.name, func(t *testing.T) {
			a, err := gcbits.New(gcbits.Options{BlockSize: gcbits.MinBlockSize, MaxBytes: 1 << 30})
			if err != nil {
				t.Fatal(err)
			}
			f := injectFaults(a)
			alloc := w.alloc(a)
			// Map a dedicated block first, so that there are books to
			// keep, but no head or free block the requests could use.
			if _, err := a.Alloc(1 << 16); err != nil {
				t.Fatal(err)
			}
			before := checkBooks(t, a)
			f.failMap.Store(true)
			for i := 1; i <= 3; i++ {
				b, err := alloc(w.nbits)
				if !errors.Is(err, errInjected) || b != nil {
					t.Fatalf("try %d: %v, %v; want an error wrapping the injected one", i, b, err)
				}
				if errors.Is(err, gcbits.ErrLimit) || errors.Is(err, gcbits.ErrClosed) || errors.Is(err, gcbits.ErrSize) {
					t.Errorf("try %d: %v also wraps a sentinel", i, err)
				}
				s := checkBooks(t, a)
				if s.MappedBytes != before.MappedBytes || s.MapErrors != before.MapErrors+uint64(i) {
					t.Fatalf("try %d: mapped %d (was %d), %d map errors (was %d)", i, s.MappedBytes, before.MappedBytes, s.MapErrors, before.MapErrors)
				}
			}
			if n := f.maps.Load(); n != 4 {
				t.Errorf("%d maps, want 1 + 3 failed", n)
			}
			f.failMap.Store(false)
			b, err := alloc(w.nbits)
			if err != nil {
				t.Fatalf("after the fault cleared: %v", err)
			}
			if b.Count() != 0 {
				t.Fatal("not zeroed")
			}
			fill(b, 1)
			if err := a.Close(); err != nil {
				t.Fatal(err)
			}
			if s := a.Stats(); s.MappedBytes != 0 || f.unmaps.Load() != f.maps.Load()-3 {
				t.Errorf("after Close: %d bytes mapped, %d unmaps of %d maps", s.MappedBytes, f.unmaps.Load(), f.maps.Load()-3)
			}
		})
	}
}

// TestFaultUnmap makes unmaps fail at trimming and at Close: they are
// counted, Close reports the cause, and the arena keeps working.
func TestFaultUnmap(t *testing.T) {
	defer goleak.VerifyNone(t)
	a, err := gcbits.New(gcbits.Options{BlockSize: gcbits.MinBlockSize, Retain: 1})
	if err != nil {
		t.Fatal(err)
	}
	f := injectFaults(a)
	f.failUnmap.Store(true)
	for range 40 { // ten blocks or so
		if _, err := a.Alloc(8 * 1024); err != nil {
			t.Fatal(err)
		}
	}
	held := checkBooks(t, a).MappedBytes
	// Recycle the blocks into empty generations until the memory of the
	// full epoch is forgotten and every free block is trimmed.
	for range gcbits.TrimHistory + 8 {
		a.Advance()
	}
	s := checkBooks(t, a)
	if s.UnmapErrors == 0 || s.UnmapErrors != uint64(f.unmaps.Load()) || s.MappedBytes != 0 || s.ReleasedBytes != uint64(held) {
		t.Errorf("after trimming with failing unmaps: %+v, %d unmaps", s, f.unmaps.Load())
	}
	if _, err := a.Alloc(1 << 20); err != nil { // a dedicated block, unmapped at Close
		t.Fatal(err)
	}
	if err := a.Close(); !errors.Is(err, errInjected) {
		t.Errorf("Close with a failing unmap = %v, want the injected error", err)
	}
	if s := a.Stats(); s.MappedBytes != 0 || s.UnmapErrors != uint64(f.unmaps.Load()) {
		t.Errorf("after Close: %+v", s)
	}
}

// TestFaultProtect makes Guard's protection changes fail. A failed
// guard at Advance is counted and leaves the block usable (cleared when
// reused); a failed unprotect fails the Alloc that needed the block with
// the cause, keeps the block, and the next Alloc after the fault clears
// gets it zeroed. Blocks are guarded for one epoch, so that they come
// back within a few.
func TestFaultProtect(t *testing.T) {
	if !mem.OffHeap {
		t.Skip("Guard needs mmap")
	}
	defer goleak.VerifyNone(t)
	a, err := gcbits.New(gcbits.Options{BlockSize: gcbits.MinBlockSize, Retain: 1, Guard: true, GuardEpochs: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	f := injectFaults(a)
	// fillEpochs allocates two blocks' worth in each of n epochs,
	// leaving canaries, and advances.
	fillEpochs := func(n int) {
		for range n {
			for i := range 8 {
				b, err := a.Alloc(8 * 1024)
				if err != nil {
					t.Fatal(err)
				}
				if b.Count() != 0 {
					t.Fatal("not zeroed")
				}
				fill(b, uint64(i+1))
			}
			a.Advance()
		}
	}

	// Guard fails at Advance: counted, not fatal.
	f.failGuard.Store(true)
	fillEpochs(3)
	s := checkBooks(t, a)
	if s.UnmapErrors == 0 || s.UnmapErrors != uint64(f.protects.Load()) {
		t.Fatalf("failed protects: %d counted, %d calls", s.UnmapErrors, f.protects.Load())
	}
	f.failGuard.Store(false)
	fillEpochs(3) // the unprotected blocks are reused, cleared
	errs := a.Stats().UnmapErrors

	// Unprotect fails when a protected block is handed out again.
	fillEpochs(1) // the free list now holds protected blocks
	if s := a.Stats(); s.FreeBlocks == 0 {
		t.Fatalf("no free blocks to reuse: %+v", s)
	}
	before := checkBooks(t, a)
	f.failUnprotect.Store(true)
	for range 3 {
		if b, err := a.Alloc(8 * 1024); !errors.Is(err, errInjected) || b != nil {
			t.Fatalf("Alloc with a failing unprotect = %v, %v; want the injected error", b, err)
		}
		if b, err := a.NewCache().Alloc(64); !errors.Is(err, errInjected) || b != nil {
			t.Fatalf("Cache.Alloc with a failing unprotect = %v, %v; want the injected error", b, err)
		}
	}
	s = checkBooks(t, a)
	if s.MappedBytes != before.MappedBytes || s.FreeBlocks != before.FreeBlocks || s.UnmapErrors != errs {
		t.Fatalf("failed unprotects changed the books: %+v, before %+v", s, before)
	}
	f.failUnprotect.Store(false)
	fillEpochs(4)
	if s := checkBooks(t, a); s.UnmapErrors != errs {
		t.Errorf("errors after the fault cleared: %d, was %d", s.UnmapErrors, errs)
	}
}

// TestFaultCloseDuringMap closes the arena while an Alloc is mapping
// memory, outside its lock (the hook stands for a slow mmap). The contract
// forbids Close concurrent with Alloc, but the arena still must not leak:
// the Alloc gets ErrClosed and the fresh block is unmapped.
func TestFaultCloseDuringMap(t *testing.T) {
	defer goleak.VerifyNone(t)
	for _, nbits := range []int{64, 1 << 20} {
		a, err := gcbits.New(gcbits.Options{BlockSize: gcbits.MinBlockSize})
		if err != nil {
			t.Fatal(err)
		}
		f := injectFaults(a)
		h := a.Hooks()
		mapFn := h.Map
		h.Map = func(size uintptr) (mem.Region, error) {
			if err := a.Close(); err != nil {
				t.Error(err)
			}
			return mapFn(size)
		}
		a.SetHooks(h)
		if _, err := a.Alloc(nbits); !errors.Is(err, gcbits.ErrClosed) {
			t.Errorf("Alloc(%d) closed during its map = %v, want ErrClosed", nbits, err)
		}
		if s := a.Stats(); s.MappedBytes != 0 || f.unmaps.Load() != f.maps.Load() || f.maps.Load() != 1 {
			t.Errorf("Alloc(%d): %d bytes mapped, %d unmaps of %d maps", nbits, s.MappedBytes, f.unmaps.Load(), f.maps.Load())
		}
	}
}

// TestZeroValues uses an Arena and a Cache that New and NewCache did not
// make: every method returns ErrClosed or does nothing, as on a closed
// arena, instead of crashing.
func TestZeroValues(t *testing.T) {
	var a gcbits.Arena
	if e := a.Epoch(); e != 0 {
		t.Errorf("Epoch = %d", e)
	}
	wantClosed(t, "zero Arena: Alloc", a.Alloc, 1, 100, 1<<20)
	wantSizeChecked(t, "zero Arena: Alloc", a.Alloc, -1)
	c := a.NewCache()
	wantClosed(t, "zero Arena: Cache.Alloc", c.Alloc, 1, 100, 1<<20)
	c.Flush()
	if e := a.Advance(); e != 0 {
		t.Errorf("zero Arena: Advance = %d", e)
	}
	if s := a.Stats(); s.Epoch != 0 || s.MappedBytes != 0 || s.AllocatedBytes != 0 {
		t.Errorf("zero Arena: Stats = %+v", s)
	}
	if err := a.Close(); err != nil {
		t.Errorf("zero Arena: Close = %v", err)
	}
	if err := a.Close(); !errors.Is(err, gcbits.ErrClosed) {
		t.Errorf("zero Arena: second Close = %v, want ErrClosed", err)
	}

	var zc gcbits.Cache
	wantClosed(t, "zero Cache: Alloc", zc.Alloc, 0, -1, 1, 100, 1<<20)
	zc.Flush()
}

// wantClosed checks that alloc serves none of the requests of sizes: each
// gets ErrClosed and a nil bitmap.
func wantClosed(t *testing.T, what string, alloc func(int) (gcbits.Bits, error), sizes ...int) {
	t.Helper()
	for _, n := range sizes {
		if b, err := alloc(n); !errors.Is(err, gcbits.ErrClosed) || b != nil {
			t.Errorf("%s(%d) = %v, %v; want ErrClosed", what, n, b, err)
		}
	}
}

// wantSizeChecked checks that alloc, of an arena that serves nothing,
// still answers as for sizes alone: an empty bitmap for 0 bits, and
// ErrSize for bad, a bad size.
func wantSizeChecked(t *testing.T, what string, alloc func(int) (gcbits.Bits, error), bad int) {
	t.Helper()
	if b, err := alloc(0); err != nil || len(b) != 0 {
		t.Errorf("%s(0) = %v, %v", what, b, err)
	}
	if _, err := alloc(bad); !errors.Is(err, gcbits.ErrSize) {
		t.Errorf("%s(%d) = %v, want ErrSize", what, bad, err)
	}
}

// TestNewCacheAfterClose makes a Cache of a closed arena: it serves
// nothing, and bad sizes still report ErrSize.
func TestNewCacheAfterClose(t *testing.T) {
	a, err := gcbits.New(gcbits.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	c := a.NewCache()
	wantClosed(t, "Cache.Alloc", c.Alloc, 1, 100, 1<<20)
	wantSizeChecked(t, "Cache.Alloc", c.Alloc, -3)
	wantSizeChecked(t, "after Close: Alloc", a.Alloc, -3)
	c.Flush()
	if s := a.Stats(); s.MappedBytes != 0 || s.AllocatedBytes != 0 {
		t.Errorf("Stats = %+v", s)
	}
}

// TestNilReceivers documents the one exception to "bad input never
// panics": methods on a nil *Arena or *Cache dereference it, as methods on
// nil pointers do. Bits methods accept a nil Bits as an empty bitmap
// (TestBitsOutOfRange).
func TestNilReceivers(t *testing.T) {
	var a *gcbits.Arena
	var c *gcbits.Cache
	calls := map[string]func(){
		"Arena.Alloc":      func() { a.Alloc(1) },
		"Arena.Advance":    func() { a.Advance() },
		"Arena.Epoch":      func() { a.Epoch() },
		"Arena.Stats":      func() { a.Stats() },
		"Arena.Close":      func() { a.Close() },
		"Arena.NewCache":   func() { a.NewCache() },
		"Cache.Alloc":      func() { c.Alloc(1) },
		"Cache.Flush":      func() { c.Flush() },
		"Arena.AllocEpoch": func() { a.AllocEpoch(1) },
		"Arena.Live":       func() { a.Live(0) },
		"Arena.Options":    func() { a.Options() },
		"Cache.AllocEpoch": func() { c.AllocEpoch(1) },
	}
	for name, f := range calls {
		func() {
			defer func() {
				if r := recover(); r == nil {
					t.Errorf("%s on nil did not panic", name)
				}
			}()
			f()
		}()
	}
}

// TestFaultMapGiveWay fails the map of a dedicated block for which free
// blocks, or with Guard guarded ones, give way under MaxBytes: they must
// stay mapped and where they were (guarded blocks still inaccessible), so
// that the books are unchanged and nothing is lost; once maps work, the
// same request succeeds and they are returned to the OS.
func TestFaultMapGiveWay(t *testing.T) {
	defer goleak.VerifyNone(t)
	for _, guard := range []bool{false, true} {
		if guard && !mem.OffHeap {
			continue
		}
		t.Run(fmt.Sprintf("guard=%v", guard), func(t *testing.T) {
			testFaultMapGiveWay(t, guard)
		})
	}
}

func testFaultMapGiveWay(t *testing.T, guard bool) {
	const blocks = 4
	a, err := gcbits.New(gcbits.Options{BlockSize: gcbits.MinBlockSize, Retain: 1, MaxBytes: blocks * gcbits.MinBlockSize, Guard: guard})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	f := injectFaults(a)
	var first []gcbits.Bits     // the first bitmap of each block
	for i := range 4 * blocks { // 1 KiB each: every block, written
		b, err := a.Alloc(8 * 1024)
		if err != nil {
			t.Fatal(err)
		}
		fill(b, uint64(i+1))
		if i%4 == 0 {
			first = append(first, b)
		}
	}
	a.Advance()
	a.Advance() // the blocks are free (or guarded), and the limit is reached
	// idle returns the blocks that can give way, free or guarded.
	idle := func(s gcbits.Stats) int { return s.FreeBlocks + s.GuardedBlocks }
	before := checkBooks(t, a)
	if idle(before) != blocks || before.MappedBytes != blocks*gcbits.MinBlockSize {
		t.Fatalf("setup: %+v", before)
	}
	const large = 2 * gcbits.MinBlockSize * 8 // bits: two blocks must give way
	f.failMap.Store(true)
	for i := 1; i <= 3; i++ {
		if b, err := a.Alloc(large); !errors.Is(err, errInjected) || b != nil {
			t.Fatalf("try %d: %v, %v; want the injected fault", i, b, err)
		}
		s := checkBooks(t, a)
		if s.MappedBytes != before.MappedBytes || s.FreeBlocks != before.FreeBlocks || s.GuardedBlocks != before.GuardedBlocks ||
			s.ReleasedBytes != before.ReleasedBytes || s.MapErrors != before.MapErrors+uint64(i) {
			t.Fatalf("try %d: books changed: %+v, before %+v", i, s, before)
		}
		if n := f.unmaps.Load(); n != 0 {
			t.Fatalf("try %d: %d blocks unmapped by a request that failed", i, n)
		}
		for _, b := range first {
			if err := protNone(a, unsafe.Pointer(&b[0])); guard && err != nil {
				t.Fatalf("try %d: %v", i, err)
			}
		}
	}
	f.failMap.Store(false)
	b, err := a.Alloc(large)
	if err != nil {
		t.Fatal(err)
	}
	fill(b, 99)
	s := checkBooks(t, a)
	if idle(s) != blocks-2 || s.ReleasedBytes != before.ReleasedBytes+2*gcbits.MinBlockSize || f.unmaps.Load() != 2 {
		t.Fatalf("after the fault cleared: %+v, %d unmaps", s, f.unmaps.Load())
	}
	if guard {
		return // the blocks left are guarded, not to be reused yet
	}
	for range 4 * (blocks - 2) { // the blocks kept serve, cleared
		b, err := a.Alloc(8 * 1024)
		if err != nil {
			t.Fatal(err)
		}
		if b.Count() != 0 {
			t.Fatal("not zeroed")
		}
	}
}
