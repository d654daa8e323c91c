package gcbits

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
// checks how each ends. With Guard, a bitmap written Retain+1 epochs after
// its own must fault at once, at its own address; written within its
// lifetime it must not.
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
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), prefix); ok {
			return strings.Fields(rest + " x")[0]
		}
	}
	return ""
}

// guardSetup builds a Guard arena and a bitmap of epoch 0 that sits on a
// block that is recycled — on the free list, PROT_NONE — once the arena
// reaches epoch Retain+1, which it returns at epoch Retain (the last of
// the bitmap's lifetime). alloc is Arena.Alloc or a Cache's Alloc, of
// nbits each.
//
// The arena recycles blocks only to its free list, and Advance unmaps
// free blocks beyond what the largest live generation holds. So epoch 1
// allocates as much as epoch 0: when epoch 0 is recycled, generation 1 is
// live and its size keeps epoch 0's blocks on the free list, PROT_NONE.
// Nothing allocates after epoch 1, so no block is handed out again.
func guardSetup(a *Arena, alloc func(int) (Bits, error), nbits int) (stale Bits, err error) {
	perEpoch := 4 * MinChunkSize / int(bytesFor(nbits)) // about four blocks a generation
	// first holds the first bitmap of each epoch.
	var first [2]Bits
	for e := 0; e < 2; e++ {
		for i := 0; i < perEpoch*(1+e); i++ {
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
	for a.Epoch() < a.retain {
		a.Advance()
	}
	if !intact(first[0], 1) || !intact(first[1], uint64(perEpoch+1)) {
		return nil, errors.New("bitmaps changed within their lifetime")
	}
	return first[0], nil
}

// protNone reports whether the block holding p is on the free list,
// protected, and on Linux whether /proc/self/maps shows no access to p.
func protNone(a *Arena, p unsafe.Pointer) error {
	a.mu.Lock()
	found := false
	for c := a.free.head; c != nil; c = c.next {
		base := uintptr(c.region.Base())
		if uintptr(p) >= base && uintptr(p) < base+c.region.Size() {
			if !c.locked {
				a.mu.Unlock()
				return fmt.Errorf("block %#x is free but not protected", base)
			}
			found = true
		}
	}
	a.mu.Unlock()
	if !found {
		return fmt.Errorf("%p is on no free block", p)
	}
	if runtime.GOOS != "linux" {
		return nil
	}
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		lo, hi, _ := strings.Cut(fields[0], "-")
		l, _ := strconv.ParseUint(lo, 16, 64)
		h, _ := strconv.ParseUint(hi, 16, 64)
		if uint64(uintptr(p)) >= l && uint64(uintptr(p)) < h {
			if fields[1] != "---p" {
				return fmt.Errorf("mapping %s has permissions %s", fields[0], fields[1])
			}
			return nil
		}
	}
	return fmt.Errorf("%p not in /proc/self/maps", p)
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
	a, err := New(Options{ChunkSize: MinChunkSize, Retain: 2, Guard: true})
	if err != nil {
		setupFail("%v", err)
	}
	alloc, nbits := a.Alloc, 8192 // four bitmaps to a block
	if scenario == "stale-cache" {
		alloc, nbits = a.NewCache().Alloc, 256 // served from slabs
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

// TestGuardReuse checks in process that Guard costs no correctness: blocks
// recycled and protected are unprotected, zeroed and writable when handed
// out again, over many epochs, with and without a Cache.
func TestGuardReuse(t *testing.T) {
	if !mem.OffHeap {
		t.Skip("Guard needs mmap")
	}
	a := newArena(t, Options{ChunkSize: MinChunkSize, Retain: 1, Guard: true})
	c := a.NewCache()
	for e := 0; e < 30; e++ {
		n := 10 + 40*(e%3)
		for i := 0; i < n; i++ {
			var b Bits
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
	}
	if s := a.Stats(); s.UnmapErrors != 0 {
		t.Errorf("%d protect or unmap errors", s.UnmapErrors)
	}
}

func TestGuardOption(t *testing.T) {
	a, err := New(Options{Guard: true})
	if mem.OffHeap {
		if err != nil {
			t.Fatalf("New with Guard: %v", err)
		}
		a.Close()
		return
	}
	if !errors.Is(err, ErrOption) {
		t.Fatalf("New with Guard without mmap = %v, want ErrOption", err)
	}
}

// TestGuardLargeNotReused: a recycled dedicated block stays reserved in
// Guard mode, so the next large Alloc cannot get its address and a stale
// bitmap cannot alias a live one.
func TestGuardLargeNotReused(t *testing.T) {
	a := newArena(t, Options{Guard: true})
	old, err := a.Alloc(1 << 20) // 128 KiB, a dedicated block
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i <= DefaultRetain; i++ {
		a.Advance()
	}
	for i := 0; i < 4; i++ {
		b, err := a.Alloc(1 << 20)
		if err != nil {
			t.Fatal(err)
		}
		if unsafe.SliceData(b) == unsafe.SliceData(old) {
			t.Fatalf("Guard: a new dedicated bitmap reuses the address %p of a recycled one", unsafe.SliceData(old))
		}
	}
	if s := a.Stats(); s.UnmapErrors != 0 {
		t.Errorf("UnmapErrors = %d", s.UnmapErrors)
	}
}
