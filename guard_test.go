package gcbits_test

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"unsafe"

	"github.com/gcbits/gcbits"
	"github.com/gcbits/gcbits/internal/arenatest"
	"github.com/gcbits/gcbits/internal/mem"
)

// guardEnv selects the scenario TestGuardChild plays in a child process.
const guardEnv = "GCBITS_GUARD_CHILD"

// Exit codes of TestGuardChild beyond the test binary's own (0 pass,
// 1 fail, 2 runtime crash).
const (
	guardExitFault = 3 // the planted access faulted at the expected address
	guardExitSetup = 4 // the scenario could not be set up as intended
	guardExitWrong = 5 // a fault at an unexpected address, or no fault
)

// TestGuard runs TestGuardChild in child processes, one per scenario, and
// checks how each ends. With Guard, a bitmap used from the epoch its
// lifetime ends until GuardEpochs epochs later must fault at once, at its
// own address; used within its lifetime it must not. The steady scenarios
// allocate every epoch, so that blocks are reused, and probe every
// bitmap they kept, each epoch, recovering from the faults.
func TestGuard(t *testing.T) {
	if !mem.OffHeap {
		t.Skip("Guard needs mmap")
	}
	if os.Getenv(guardEnv) != "" {
		t.Skip("in the child")
	}
	cases := []struct {
		scenario string
		code     int      // expected exit code
		output   []string // expected in the output
		addrLine string   // prefix of the runtime's line that must name the bitmap's address
	}{
		{scenario: "live", code: 0, output: []string{"guard-child: live bitmaps intact", "PASS"}},
		{scenario: "stale", code: guardExitFault, output: []string{"guard-child: fault at the stale bitmap", "invalid memory address"}},
		{scenario: "stale-cache", code: guardExitFault, output: []string{"guard-child: fault at the stale bitmap"}},
		{scenario: "stale-read", code: guardExitFault, output: []string{"guard-child: fault at the stale bitmap"}},
		// Without SetPanicOnFault the runtime dies: exit status 2 and
		// its report of a SIGSEGV at the bitmap's address.
		{scenario: "stale-crash", code: 2, output: []string{"fatal error: fault", "signal SIGSEGV"}, addrLine: "unexpected fault address "},
		{scenario: "steady-alloc", code: 0, output: []string{"guard-child: steady: ", "PASS"}},
		{scenario: "steady-cache", code: 0, output: []string{"guard-child: steady: ", "PASS"}},
		{scenario: "steady-dedicated", code: 0, output: []string{"guard-child: steady: ", "PASS"}},
	}
	for _, tc := range cases {
		t.Run(tc.scenario, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestGuardChild$", "-test.v", "-test.count=1")
			cmd.Env = append(os.Environ(), guardEnv+"="+tc.scenario, "GOTRACEBACK=single")
			out, err := cmd.CombinedOutput()
			code := 0
			if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatalf("running child: %v", err)
			}
			if code != tc.code {
				t.Fatalf("child exited with %d, want %d; output:\n%s", code, tc.code, out)
			}
			for _, s := range tc.output {
				if !strings.Contains(string(out), s) {
					t.Errorf("child output lacks %q:\n%s", s, out)
				}
			}
			if line := childLine(out, "guard-child: steady: "); line != "" {
				t.Log(line)
			}
			if tc.addrLine != "" {
				target := childValue(out, "guard-child: stale bitmap at ")
				fault := childValue(out, tc.addrLine)
				if target == "" || fault != target {
					t.Errorf("fault address %q, stale bitmap at %q; output:\n%s", fault, target, out)
				}
				// On Linux, si_code 2 (SEGV_ACCERR) tells a protected
				// page from an unmapped one (SEGV_MAPERR, 1).
				if want := "code=0x2 addr=" + target; runtime.GOOS == "linux" && !strings.Contains(string(out), want) {
					t.Errorf("child output lacks %q (a fault on a PROT_NONE page):\n%s", want, out)
				}
			}
		})
	}
}

// childValue returns the first word after prefix on the first line of out
// that starts with prefix.
func childValue(out []byte, prefix string) string {
	if line := childLine(out, prefix); line != "" {
		return strings.Fields(strings.TrimPrefix(line, prefix) + " x")[0]
	}
	return ""
}

// childLine returns the first line of out that starts with prefix, or "".
func childLine(out []byte, prefix string) string {
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), prefix) {
			return sc.Text()
		}
	}
	return ""
}

// guardSetup builds, in a Guard arena, a bitmap of epoch 0 and advances
// to epoch Retain, the last of its lifetime. Epoch 1 allocates too, so
// that the bitmap's block is not the only one. alloc is Arena.Alloc or a
// Cache's Alloc, of nbits each.
func guardSetup(a *gcbits.Arena, alloc func(int) (gcbits.Bits, error), nbits int) (stale gcbits.Bits, err error) {
	perEpoch := 4 * gcbits.MinBlockSize / int(gcbits.BytesFor(nbits)) // about four blocks a generation
	// first holds the first bitmap of each epoch.
	var first [2]gcbits.Bits
	for e := range 2 {
		for i := range perEpoch {
			b, err := alloc(nbits)
			if err != nil {
				return nil, err
			}
			if i == 0 {
				first[e] = b
			}
			fill(b, uint64(e*perEpoch+i+1))
		}
		a.Advance()
	}
	for a.Epoch() < uint64(a.Options().Retain) {
		a.Advance()
	}
	if !intact(first[0], 1) || !intact(first[1], uint64(perEpoch+1)) {
		return nil, errors.New("bitmaps changed within their lifetime")
	}
	return first[0], nil
}

// protNone reports whether the block holding p is guarded: in a guard
// slot, protected, and on Linux whether /proc/self/maps shows no access
// to p.
func protNone(a *gcbits.Arena, p unsafe.Pointer) error {
	switch guarded, locked := a.Guarded(uintptr(p)); {
	case !guarded:
		return fmt.Errorf("%p is on no guarded block", p)
	case !locked:
		return fmt.Errorf("the block of %p is guarded but not protected", p)
	}
	if runtime.GOOS != "linux" {
		return nil
	}
	perm, err := mapsPerm(uintptr(p))
	if err != nil {
		return err
	}
	if perm != "---p" {
		return fmt.Errorf("%p is mapped with permissions %s", p, perm)
	}
	return nil
}

// mapsPerm returns the permissions /proc/self/maps gives the mapping that
// holds address p.
func mapsPerm(p uintptr) (string, error) {
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		lo, hi, _ := strings.Cut(fields[0], "-")
		l, _ := strconv.ParseUint(lo, 16, 64)
		h, _ := strconv.ParseUint(hi, 16, 64)
		if uint64(p) >= l && uint64(p) < h {
			return fields[1], nil
		}
	}
	return "", fmt.Errorf("%#x not in /proc/self/maps", p)
}

// TestGuardChild plays one scenario of TestGuard; it is skipped unless
// GCBITS_GUARD_CHILD names one.
func TestGuardChild(t *testing.T) {
	scenario := os.Getenv(guardEnv)
	if scenario == "" {
		t.Skip("run by TestGuard in a child process")
	}
	setupFail := func(format string, args ...any) {
		fmt.Printf("guard-child: setup: "+format+"\n", args...)
		os.Exit(guardExitSetup)
	}
	a, err := gcbits.New(gcbits.Options{BlockSize: gcbits.MinBlockSize, Retain: 2, Guard: true})
	if err != nil {
		setupFail("%v", err)
	}
	alloc, nbits := a.Alloc, 8192 // four bitmaps to a block
	switch scenario {
	case "stale-cache", "steady-cache":
		alloc, nbits = a.NewCache().Alloc, 256 // served from slabs
	case "steady-dedicated":
		nbits = 2 * 8 * 1024 // 2 KiB, above a quarter block: a page of its own
	}
	if strings.HasPrefix(scenario, "steady-") {
		guardSteady(t, a, alloc, nbits)
		return
	}
	stale, err := guardSetup(a, alloc, nbits)
	if err != nil {
		setupFail("%v", err)
	}
	p := unsafe.Pointer(&stale[0])

	if scenario == "live" {
		// Epoch Retain is the last of the bitmap's lifetime: it is
		// readable and writable, and keeps what it holds.
		if !intact(stale, 1) {
			t.Fatal("bitmap changed within its lifetime")
		}
		stale.Set(5)
		fill(stale, 99)
		a.Advance() // recycles the bitmap; the next generation's stay live
		b, err := a.Alloc(nbits)
		if err != nil {
			t.Fatal(err)
		}
		if b.Count() != 0 {
			t.Fatal("recycled bitmap not zeroed")
		}
		fill(b, 7)
		if !intact(b, 7) {
			t.Fatal("write to a reused block lost")
		}
		fmt.Println("guard-child: live bitmaps intact")
		return
	}

	a.Advance() // epoch Retain+1: the bitmap's block is recycled
	if err := protNone(a, p); err != nil {
		setupFail("%v", err)
	}
	fmt.Printf("guard-child: stale bitmap at %#x\n", uintptr(p))
	if scenario != "stale-crash" {
		debug.SetPanicOnFault(true)
		defer func() {
			r := recover()
			re, ok := r.(interface{ Addr() uintptr })
			if !ok {
				fmt.Printf("guard-child: recovered %v, not a memory fault\n", r)
				os.Exit(guardExitWrong)
			}
			fmt.Printf("guard-child: recovered %q at %#x\n", fmt.Sprint(r), re.Addr())
			if re.Addr() != uintptr(p) {
				os.Exit(guardExitWrong)
			}
			fmt.Println("guard-child: fault at the stale bitmap")
			os.Exit(guardExitFault)
		}()
	}
	switch scenario {
	case "stale", "stale-cache", "stale-crash":
		stale[0] = 1
	case "stale-read":
		fmt.Println(stale[0])
	default:
		setupFail("unknown scenario %q", scenario)
	}
	fmt.Println("guard-child: no fault")
	os.Exit(guardExitWrong)
}

// sink keeps the loads of probe.
var sink uint64

// probe loads *p, or stores to it, and returns the address of the memory
// fault that caused, or 0 if there was none. debug.SetPanicOnFault must be
// on.
func probe(p *uint64, store bool) (addr uintptr) {
	defer func() {
		if r := recover(); r != nil {
			re, ok := r.(interface{ Addr() uintptr })
			if !ok {
				panic(r)
			}
			addr = re.Addr()
		}
	}()
	if store {
		*p = 1
	} else {
		sink += *p
	}
	return 0
}

// guardSteady allocates as a program does every epoch, keeping the first
// and the last bitmap of each epoch, and after each epoch's allocations
// touches every kept bitmap at its first and last word, loading and
// storing. Within its lifetime a bitmap must not fault and must hold what
// was written; from the epoch its lifetime ends until GuardEpochs epochs
// later every touch must fault, at the address touched. Afterwards the
// memory may be reused and the bitmap is not touched. Blocks must be
// reused all the same: the arena's footprint stays bounded.
func guardSteady(t *testing.T, a *gcbits.Arena, alloc func(int) (gcbits.Bits, error), nbits int) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	perEpoch := uint64(6 * gcbits.MinBlockSize / gcbits.BytesFor(nbits)) // six blocks a generation
	var (
		retain, guard = uint64(a.Options().Retain), uint64(a.Options().GuardEpochs)
		epochs        = retain + 1 + guard + 8
		kept          []live // live.epoch is the bitmap's epoch
		faults, clean int
		maxMapped     int64
	)
	for e := range epochs {
		for i := range perEpoch {
			b, err := alloc(nbits)
			if err != nil {
				t.Fatalf("epoch %d: %v", e, err)
			}
			if b.Count() != 0 {
				t.Fatalf("epoch %d: bitmap not zeroed", e)
			}
			id := e*perEpoch + uint64(i) + 1
			fill(b, id)
			if i == 0 || uint64(i) == perEpoch-1 {
				kept = append(kept, live{b, id, e})
			}
		}
		for _, k := range kept {
			age := e - k.epoch
			if age > retain+guard {
				continue // the memory may have been reused
			}
			for _, w := range []*uint64{&k.b[0], &k.b[len(k.b)-1]} {
				for _, store := range []bool{false, true} {
					if age <= retain {
						if addr := probe(w, false); addr != 0 {
							t.Fatalf("epoch %d: live bitmap of epoch %d faulted at %#x", e, k.epoch, addr)
						}
						continue // a store would spoil the canary
					}
					addr := probe(w, store)
					if addr != uintptr(unsafe.Pointer(w)) {
						t.Fatalf("epoch %d: touching (store %v) the bitmap of epoch %d at %p, %d epochs after its lifetime ended, faulted at %#x (0: no fault)",
							e, store, k.epoch, w, age-retain-1, addr)
					}
					faults++
				}
			}
			if age <= retain {
				if !intact(k.b, k.id) {
					t.Fatalf("epoch %d: live bitmap of epoch %d changed", e, k.epoch)
				}
				clean++
			}
		}
		a.Advance()
		s := a.Stats()
		if s.GuardedBlocks == 0 && e > retain {
			t.Fatalf("epoch %d: nothing guarded", e)
		}
		maxMapped = max(maxMapped, s.MappedBytes)
	}
	// Live: retain+1 generations; guarded: guard more; free: what the
	// trimming keeps. Without reuse the footprint would grow every epoch.
	perGen := int64(perEpoch) * int64(mem.RoundUp(gcbits.BytesFor(nbits)))
	if bound := int64(retain+1+guard+4) * perGen; maxMapped > bound {
		t.Fatalf("%d bytes mapped at most, want <= %d: blocks are not reused", maxMapped, bound)
	}
	fmt.Printf("guard-child: steady: %d epochs, %d touches of stale bitmaps faulted at their address, %d checks of live ones passed, at most %d KiB mapped\n",
		epochs, faults, clean, maxMapped>>10)
}

// TestGuardLifecycle follows one block through Guard's lifecycle, with
// GuardEpochs 3: live in its generation until Retain+1 epochs after its
// own, then guarded (PROT_NONE, pages released, counted in the books) for
// three epochs, then on the free list, and reused by the next Alloc.
func TestGuardLifecycle(t *testing.T) {
	if !mem.OffHeap {
		t.Skip("Guard needs mmap")
	}
	const retain, guard = 1, 3
	a := arenatest.New(t, gcbits.Options{BlockSize: gcbits.MinBlockSize, Retain: retain, Guard: true, GuardEpochs: guard})
	b, err := a.Alloc(8 * 1024)
	if err != nil {
		t.Fatal(err)
	}
	fill(b, 1)
	p := unsafe.Pointer(&b[0])
	for e := uint64(1); e <= retain+guard+1; e++ {
		a.Advance()
		s := checkBooks(t, a)
		switch {
		case e <= retain:
			if s.GuardedBlocks != 0 || !intact(b, 1) {
				t.Fatalf("epoch %d: live block guarded or changed: %+v", e, s)
			}
		case e <= retain+guard:
			if err := protNone(a, p); err != nil {
				t.Fatalf("epoch %d: %v", e, err)
			}
			if s.GuardedBlocks != 1 || s.GuardedBytes != gcbits.MinBlockSize || s.FreeBlocks != 0 || s.MappedBytes != gcbits.MinBlockSize {
				t.Fatalf("epoch %d: books of one guarded block: %+v", e, s)
			}
		default:
			if s.GuardedBlocks != 0 || s.FreeBlocks != 1 {
				t.Fatalf("epoch %d: block not back on the free list: %+v", e, s)
			}
		}
	}
	c, err := a.Alloc(8 * 1024)
	if err != nil {
		t.Fatal(err)
	}
	if unsafe.Pointer(&c[0]) != p || c.Count() != 0 {
		t.Fatalf("the free block was not reused, zeroed: %p, %d bits set", &c[0], c.Count())
	}
	if s := a.Stats(); s.ClearedBytes != 0 {
		t.Errorf("%d bytes cleared: a guarded block has no pages to clear", s.ClearedBytes)
	}
}

// TestGuardUnlocked checks that Guard's system calls are made with the
// arena's lock released, at Advance and when a block is reused.
func TestGuardUnlocked(t *testing.T) {
	if !mem.OffHeap {
		t.Skip("Guard needs mmap")
	}
	a := arenatest.New(t, gcbits.Options{BlockSize: gcbits.MinBlockSize, Retain: 1, Guard: true, GuardEpochs: 1})
	calls := 0
	h := a.Hooks()
	unlocked := func(name string, hook func(mem.Region) error) func(mem.Region) error {
		return func(r mem.Region) error {
			calls++
			if a.LockHeld() {
				t.Errorf("%s under the arena's lock", name)
			}
			return hook(r)
		}
	}
	h.Guard, h.Unprotect = unlocked("guard", h.Guard), unlocked("unprotect", h.Unprotect)
	a.SetHooks(h)
	for range 6 {
		for range 8 {
			if _, err := a.Alloc(8 * 1024); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := a.Alloc(1 << 20); err != nil {
			t.Fatal(err)
		}
		a.Advance()
	}
	if calls == 0 {
		t.Fatal("no protection changes")
	}
}

// TestGuardReuse checks in process that Guard costs no correctness: blocks
// recycled and protected are unprotected, zeroed and writable when handed
// out again, over many epochs, with and without a Cache.
func TestGuardReuse(t *testing.T) {
	if !mem.OffHeap {
		t.Skip("Guard needs mmap")
	}
	a := arenatest.New(t, gcbits.Options{BlockSize: gcbits.MinBlockSize, Retain: 1, Guard: true, GuardEpochs: 2})
	c := a.NewCache()
	reused := 0
	for e := range 30 {
		n := 10 + 40*(e%3)
		for i := range n {
			var b gcbits.Bits
			var err error
			if i%2 == 0 {
				b, err = a.Alloc(64 * (1 + i%20))
			} else {
				b, err = c.Alloc(1 + i%256)
			}
			if err != nil {
				t.Fatal(err)
			}
			if b.Count() != 0 {
				t.Fatalf("epoch %d: reused bitmap not zeroed", e)
			}
			fill(b, uint64(i+1))
		}
		a.Advance()
		reused += a.Stats().FreeBlocks
	}
	if s := a.Stats(); s.UnmapErrors != 0 {
		t.Errorf("%d protect or unmap errors", s.UnmapErrors)
	}
	if reused == 0 {
		t.Error("no block came back to the free list")
	}
}

func TestGuardOption(t *testing.T) {
	a, err := gcbits.New(gcbits.Options{Guard: true})
	if mem.OffHeap {
		if err != nil {
			t.Fatalf("New with Guard: %v", err)
		}
		if g := a.Options().GuardEpochs; g != gcbits.DefaultGuardEpochs {
			t.Errorf("GuardEpochs %d by default, want %d", g, gcbits.DefaultGuardEpochs)
		}
		a.Close()
	} else if !errors.Is(err, gcbits.ErrOption) {
		t.Fatalf("New with Guard without mmap = %v, want ErrOption", err)
	}
	for _, o := range []gcbits.Options{
		{Guard: true, GuardEpochs: -1}, {Guard: true, GuardEpochs: gcbits.MaxGuardEpochs + 1}, {GuardEpochs: 3},
	} {
		if a, err := gcbits.New(o); !errors.Is(err, gcbits.ErrOption) {
			t.Errorf("New(%+v) = %v, %v; want ErrOption", o, a, err)
		}
	}
}

// TestGuardLargeNotReused: a recycled dedicated block stays reserved,
// inaccessible, for GuardEpochs epochs, so that no large Alloc meanwhile
// gets its address and a stale bitmap cannot alias a live one.
func TestGuardLargeNotReused(t *testing.T) {
	if !mem.OffHeap {
		t.Skip("Guard needs mmap")
	}
	a := arenatest.New(t, gcbits.Options{Guard: true})
	old, err := a.Alloc(1 << 20) // 128 KiB, a dedicated block
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i <= gcbits.DefaultRetain; i++ {
		a.Advance()
	}
	for e := range gcbits.DefaultGuardEpochs {
		if err := protNone(a, unsafe.Pointer(&old[0])); err != nil {
			t.Fatalf("%d epochs after recycling: %v", e, err)
		}
		for range 4 {
			b, err := a.Alloc(1 << 20)
			if err != nil {
				t.Fatal(err)
			}
			if unsafe.SliceData(b) == unsafe.SliceData(old) {
				t.Fatalf("Guard: a new dedicated bitmap reuses the address %p of one recycled %d epochs ago", unsafe.SliceData(old), e)
			}
		}
		a.Advance()
	}
	if s := a.Stats(); s.UnmapErrors != 0 {
		t.Errorf("UnmapErrors = %d", s.UnmapErrors)
	}
}

// TestGuardLimit runs Guard under MaxBytes. What Guard holds counts
// against the limit, and is given up, oldest first, before a request
// fails with ErrLimit: a program whose live bitmaps fit keeps being served,
// also once guarded blocks fill the limit, and the newest guarded
// generations stay guarded.
func TestGuardLimit(t *testing.T) {
	if !mem.OffHeap {
		t.Skip("Guard needs mmap")
	}
	const (
		retain = 1
		small  = 8 * 1024        // bits: 1 KiB, four to a block
		large  = 2 * 8 * 8 << 10 // bits: 16 KiB, a dedicated block of four pages
	)
	t.Run("dedicated-recovers", func(t *testing.T) {
		const limit = 8 * gcbits.MinBlockSize
		a := arenatest.New(t, gcbits.Options{BlockSize: gcbits.MinBlockSize, Retain: retain, MaxBytes: limit, Guard: true})
		for range 4 * limit / gcbits.MinBlockSize { // epoch 0 fills the limit
			b, err := a.Alloc(small)
			if err != nil {
				t.Fatal(err)
			}
			fill(b, 1)
		}
		for e := 1; e <= 30; e++ {
			a.Advance()
			b, err := a.Alloc(large)
			switch {
			case e <= retain: // epoch 0 is live and holds the limit
				if !errors.Is(err, gcbits.ErrLimit) {
					t.Fatalf("epoch %d: %v, want ErrLimit", e, err)
				}
			case err != nil:
				t.Fatalf("epoch %d: nothing live but the last dedicated bitmap, and %v (%+v)", e, err, a.Stats())
			default:
				fill(b, uint64(e))
			}
			checkBooks(t, a)
		}
	})
	t.Run("oldest-first", func(t *testing.T) {
		const perGen, limit = 4, 20 * gcbits.MinBlockSize // blocks; the live generations need 8 or so
		a := arenatest.New(t, gcbits.Options{BlockSize: gcbits.MinBlockSize, Retain: retain, MaxBytes: limit, Guard: true})
		guard := uint64(a.Options().GuardEpochs)
		recycled := map[uint64]int{} // blocks of the generation recycled at each epoch
		gaveUp := false
		for e := uint64(0); e < 3*guard; e++ {
			for range 4 * perGen {
				b, err := a.Alloc(small)
				if err != nil {
					t.Fatalf("epoch %d: %v (%+v)", e, err, a.Stats())
				}
				fill(b, e)
			}
			if gs := a.Stats().Generations; len(gs) == retain+1 {
				recycled[e+1] = gs[retain].Blocks
			}
			a.Advance()
			s := checkBooks(t, a)
			gaveUp = gaveUp || s.ReleasedBytes > 0
			// Walk the slots from the newest: whole generations, then at
			// most one partly given up, then empty ones.
			partial := false
			for at := e + 1; at+guard > e+1 && at >= retain+1; at-- {
				n := a.GuardSlotBlocks(at)
				switch {
				case at == e+1 && n != recycled[at]:
					t.Errorf("epoch %d: the generation just recycled has %d of %d blocks guarded", e+1, n, recycled[at])
				case partial && n != 0:
					t.Errorf("epoch %d: the guard slot of epoch %d holds %d blocks, after a newer slot gave some up", e+1, at, n)
				case n != recycled[at]:
					partial = true
				}
			}
		}
		if !gaveUp {
			t.Fatal("the load never needed guarded blocks to give way")
		}
	})
}
