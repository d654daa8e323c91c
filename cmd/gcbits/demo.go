package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/gcbits/gcbits/internal/workload"
	"github.com/gcbits/gcbits/sweep"
)

const demoUsage = `Usage: gcbits demo NAME [flags]

Programs that allocate on a sweep.Heap: objects in off-heap spans whose
mark bitmaps come from a gcbits arena, collected by parallel marking and
concurrent sweeping.

Demos:
  binarytrees  the Computer Language Benchmarks Game's binary-trees
               (-depth N, default 10); stdout is the benchmark's output
  gcbench      Boehm's GCBench: top-down and bottom-up trees, a long-lived
               tree and a large array, with its checks

Both print figures on stderr, beside the same program on Go's own garbage
collector, run in a child process (gcbits demo NAME -gc go) for a clean
peak RSS; -compare=false skips it.

Flags:
`

// demoFlags are the flags shared by the demos.
type demoFlags struct {
	depth     int    // binarytrees: maximum depth
	gc        string // "heap" (sweep.Heap) or "go" (Go's collector)
	compare   bool   // also run the Go version in a child process
	unchecked bool   // sweep.Options.Unchecked
	gcPercent int    // sweep.Options.GCPercent
	minHeap   int64  // sweep.Options.MinHeapBytes
	stretch   int    // gcbench: depth of the stretch tree
	longLived int    // gcbench: depth of the long-lived tree
	minDepth  int    // gcbench: smallest tree depth
	maxDepth  int    // gcbench: largest tree depth
	array     int    // gcbench: doubles in the long-lived array
}

// runDemo is gcbits demo: it runs the demo named by args[0] with the
// flags that follow and returns the exit status.
func runDemo(args []string) int {
	return runDemoIO(args, os.Stdout, os.Stderr)
}

// runDemoIO is runDemo with the output streams as parameters.
func runDemoIO(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "-help" || args[0] == "help" {
		fmt.Fprint(stderr, demoUsage)
		newDemoFlagSet(&demoFlags{}, stderr).PrintDefaults()
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	name := args[0]
	var f demoFlags
	fs := newDemoFlagSet(&f, stderr)
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "gcbits demo %s: unexpected argument %q\n", name, fs.Arg(0))
		return 2
	}
	if f.minHeap < 0 {
		fmt.Fprintf(stderr, "gcbits demo %s: -minheap %d is negative\n", name, f.minHeap)
		return 2
	}
	if f.gc != "heap" && f.gc != "go" {
		fmt.Fprintf(stderr, "gcbits demo %s: -gc is heap or go, not %q\n", name, f.gc)
		return 2
	}
	switch name {
	case "binarytrees":
		if f.depth < 0 || f.depth > 30 {
			fmt.Fprintf(stderr, "gcbits demo binarytrees: -depth %d is outside 0..30\n", f.depth)
			return 2
		}
		return runBinaryTrees(&f, stdout, stderr)
	case "gcbench":
		if err := f.gcbench().Check(); err != nil {
			fmt.Fprintf(stderr, "gcbits demo gcbench: %v\n", err)
			return 2
		}
		return runGCBench(&f, stdout, stderr)
	default:
		fmt.Fprintf(stderr, "gcbits demo: unknown demo %q\n\n", name)
		fmt.Fprint(stderr, demoUsage)
		return 2
	}
}

// gcbench returns the GCBench configuration of the flags.
func (f *demoFlags) gcbench() workload.GCBench {
	return workload.GCBench{Stretch: f.stretch, LongLived: f.longLived, MinDepth: f.minDepth, MaxDepth: f.maxDepth, Array: f.array}
}

func newDemoFlagSet(f *demoFlags, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("gcbits demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&f.depth, "depth", 10, "binarytrees: maximum tree depth")
	fs.StringVar(&f.gc, "gc", "heap", "collector: heap (sweep.Heap) or go (Go's own, pointers on the Go heap)")
	fs.BoolVar(&f.compare, "compare", true, "also run the program on Go's collector in a child process")
	fs.BoolVar(&f.unchecked, "unchecked", false, "turn off stale-Ref detection (sequence numbers)")
	fs.IntVar(&f.gcPercent, "gcpercent", 100, "heap growth between collections, in percent, as GOGC")
	fs.Int64Var(&f.minHeap, "minheap", 0, "heap bytes below which no collection starts (0: sweep's default, 4 MiB)")
	fs.IntVar(&f.stretch, "stretch", 18, "gcbench: depth of the stretch tree")
	fs.IntVar(&f.longLived, "long", 16, "gcbench: depth of the long-lived tree")
	fs.IntVar(&f.minDepth, "min", 4, "gcbench: smallest depth of the short-lived trees")
	fs.IntVar(&f.maxDepth, "max", 16, "gcbench: largest depth of the short-lived trees")
	fs.IntVar(&f.array, "array", 500000, "gcbench: doubles in the long-lived array")
	return fs
}

// statsPrefix starts the line a child run writes on stderr for its
// parent: its run time in nanoseconds and its peak RSS in KiB.
const statsPrefix = "gcbits-demo-child:"

// newDemoHeap makes the heap the demos allocate on.
func newDemoHeap(f *demoFlags) (*sweep.Heap, error) {
	return sweep.New(sweep.Options{
		GCPercent:    f.gcPercent,
		MinHeapBytes: f.minHeap,
		Unchecked:    f.unchecked,
		Timing:       true,
	})
}

// ---- the demos ----

func runBinaryTrees(f *demoFlags, stdout, stderr io.Writer) int {
	if f.gc == "go" {
		t0 := time.Now()
		workload.BinaryTreesGo(f.depth, stdout)
		reportChild(stderr, time.Since(t0))
		return 0
	}
	return runOnHeap("binarytrees", f, stderr, func(h *sweep.Heap) ([]byte, error) {
		var out bytes.Buffer
		err := workload.BinaryTrees(h, f.depth, &out)
		stdout.Write(out.Bytes())
		return out.Bytes(), err
	})
}

func runGCBench(f *demoFlags, stdout, stderr io.Writer) int {
	if f.gc == "go" {
		t0 := time.Now()
		if err := f.gcbench().RunGo(stdout, io.Discard); err != nil {
			fmt.Fprintf(stderr, "gcbits demo gcbench: %v\n", err)
			return 1
		}
		reportChild(stderr, time.Since(t0))
		return 0
	}
	return runOnHeap("gcbench", f, stderr, func(h *sweep.Heap) ([]byte, error) {
		return nil, f.gcbench().RunHeap(h, stdout, stderr)
	})
}

// runOnHeap times run on a new demo heap, then writes the
// figures of the heap (and of Go's collector, if f.compare) to stderr and
// returns the exit status. run returns the program's output when Go's run
// must print the same, or nil.
func runOnHeap(name string, f *demoFlags, stderr io.Writer, run func(*sweep.Heap) ([]byte, error)) int {
	fail := func(err error) int {
		fmt.Fprintf(stderr, "gcbits demo %s: %v\n", name, err)
		return 1
	}
	h, err := newDemoHeap(f)
	if err != nil {
		return fail(err)
	}
	t0 := time.Now()
	want, err := run(h)
	elapsed := time.Since(t0)
	if err != nil {
		h.Close()
		return fail(err)
	}
	st, err := finalStats(h)
	if err != nil {
		return fail(err)
	}
	report(stderr, name, f, elapsed, st, want)
	return 0
}

// ---- reporting ----

// finalStats runs a last collection, so that the peak of allocated slots
// (counted at the start of each collection) includes the end of the run,
// waits for its sweep, and closes h.
func finalStats(h *sweep.Heap) (sweep.Stats, error) {
	err := h.GC()
	h.WaitSweep()
	st := h.Stats()
	return st, errors.Join(err, h.Close())
}

// peakRSS returns the peak resident set size of this process in KiB, from
// /proc/self/status (VmHWM), or -1 where that is unavailable.
func peakRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err == nil {
				return kb
			}
		}
	}
	return -1
}

// reportChild writes a child run's figures for its parent.
func reportChild(stderr io.Writer, elapsed time.Duration) {
	fmt.Fprintf(stderr, "%s %d %d\n", statsPrefix, elapsed.Nanoseconds(), peakRSS())
}

func mib(kb int64) string {
	if kb < 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.1f MiB", float64(kb)/1024)
}

// report writes the heap run's figures and, if f.compare, runs the same
// demo on Go's collector in a child process and writes its figures too.
// If want is not nil, the child's stdout must equal it.
func report(w io.Writer, name string, f *demoFlags, elapsed time.Duration, st sweep.Stats, want []byte) {
	rss := peakRSS()
	fmt.Fprintf(w, "\n%s on sweep.Heap: %v, peak RSS %s (this process, VmHWM)\n", name, elapsed.Round(time.Millisecond), mib(rss))
	if f.compare {
		compareGo(w, name, f, want)
	}
	fmt.Fprintf(w, "collections: %d; world stopped %v in all, of which marking %v\n",
		st.Cycles, st.PauseTime.Round(time.Microsecond), st.MarkTime.Round(time.Microsecond))
	fmt.Fprintf(w, "sweeping: %v of span sweeps (summed over sweepers, %d spans), %v wall in sweep phases; bitmap allocation (sweeps and new spans) %v\n",
		st.SweepTime.Round(time.Microsecond), st.SpansSwept, st.SweepWall.Round(time.Microsecond), st.BitsTime.Round(time.Microsecond))
	ratio := 0.0
	if st.PeakSlots > 0 {
		ratio = float64(st.Allocs) / float64(st.PeakSlots)
	}
	fmt.Fprintf(w, "slots: peak %d in use (%.1f MiB, at collection starts) vs %d allocated in total (%.0fx); %d freed by sweeps\n",
		st.PeakSlots, float64(st.PeakBytes)/(1<<20), st.Allocs, ratio, st.SlotsFreed)
	fmt.Fprintf(w, "memory: %.1f MiB of spans mapped, %.1f MiB of bitmap arenas; arena epoch %d, %.1f MiB of bitmaps served\n",
		float64(st.Mapped)/(1<<20), float64(st.Arena.MappedBytes)/(1<<20), st.Arena.Epoch, float64(st.Arena.AllocatedBytes)/(1<<20))
	p := st.Protocol
	fmt.Fprintf(w, "checks: %d bad refs, %d bitmap lifetime violations, %d unswept spans taken, %d double-cached spans, %d lost claims, %d bitmap fallbacks\n",
		st.BadRefs, p.LifetimeViolations, p.UnsweptTaken, p.DoubleCached, p.AcquireLost, st.BitsFallbacks)
}

// childCommand returns the command that runs gcbits with args in a child
// process: this executable. Tests replace it.
var childCommand = func(args []string) (*exec.Cmd, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	return exec.Command(exe, args...), nil
}

// compareGo runs the demo with -gc go in a child process.
func compareGo(w io.Writer, name string, f *demoFlags, want []byte) {
	args := []string{"demo", name, "-gc", "go", "-compare=false",
		"-depth", strconv.Itoa(f.depth), "-stretch", strconv.Itoa(f.stretch), "-long", strconv.Itoa(f.longLived),
		"-min", strconv.Itoa(f.minDepth), "-max", strconv.Itoa(f.maxDepth), "-array", strconv.Itoa(f.array)}
	cmd, err := childCommand(args)
	if err != nil {
		fmt.Fprintf(w, "Go GC run skipped: %v\n", err)
		return
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		fmt.Fprintf(w, "Go GC run (%s) failed: %v\n%s", strings.Join(cmd.Args, " "), err, errb.String())
		return
	}
	var ns, kb int64 = -1, -1
	for _, line := range strings.Split(errb.String(), "\n") {
		if rest, ok := strings.CutPrefix(line, statsPrefix); ok {
			fmt.Sscan(rest, &ns, &kb)
		}
	}
	same := ""
	if want != nil {
		same = ", output identical"
		if !bytes.Equal(out.Bytes(), want) {
			same = ", OUTPUT DIFFERS"
		}
	}
	fmt.Fprintf(w, "%s on Go's GC:     %v, peak RSS %s (child process, VmHWM, GOGC=%s%s)\n",
		name, time.Duration(ns).Round(time.Millisecond), mib(kb), envOr("GOGC", "100"), same)
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
