package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
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
		if f.minDepth < 1 || f.maxDepth < f.minDepth || f.maxDepth > 24 || f.stretch < f.maxDepth || f.stretch > 26 ||
			f.longLived < 0 || f.longLived > 24 || f.array < 2002 || f.array > 1<<27 {
			fmt.Fprintf(stderr, "gcbits demo gcbench: need 1 <= -min <= -max <= 24, -max <= -stretch <= 26, 0 <= -long <= 24, 2002 <= -array <= 2^27 (GCBench checks element 1000 of the half it fills)\n")
			return 2
		}
		return runGCBench(&f, stdout, stderr)
	default:
		fmt.Fprintf(stderr, "gcbits demo: unknown demo %q\n\n", name)
		fmt.Fprint(stderr, demoUsage)
		return 2
	}
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
func newDemoHeap(f *demoFlags, trace sweep.Tracer) (*sweep.Heap, error) {
	return sweep.New(sweep.Options{
		Trace:        trace,
		GCPercent:    f.gcPercent,
		MinHeapBytes: f.minHeap,
		Unchecked:    f.unchecked,
		Timing:       true,
	})
}

// ---- binary-trees ----

// treeTrace is the Tracer of binary-tree nodes: two Ref fields.
func treeTrace(o sweep.Object, visit func(sweep.Ref)) {
	visit(o.Field(0))
	visit(o.Field(1))
}

// goNode is a binary-tree node on the Go heap.
type goNode struct{ left, right *goNode }

func goTree(depth int) *goNode {
	if depth <= 0 {
		return &goNode{}
	}
	return &goNode{goTree(depth - 1), goTree(depth - 1)}
}

func (n *goNode) check() int {
	if n.left == nil {
		return 1
	}
	return 1 + n.left.check() + n.right.check()
}

// binaryTreesGo is binary-trees on Go's collector, as the benchmark's Go
// programs run it: one goroutine per depth.
func binaryTreesGo(n int, out io.Writer) {
	maxDepth := max(workload.MinDepth+2, n)
	fmt.Fprintf(out, "stretch tree of depth %d\t check: %d\n", maxDepth+1, goTree(maxDepth+1).check())
	long := goTree(maxDepth)
	lines := make([]string, maxDepth+1)
	var wg sync.WaitGroup
	for d := workload.MinDepth; d <= maxDepth; d += 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			iters := 1 << (maxDepth - d + workload.MinDepth)
			check := 0
			for range iters {
				check += goTree(d).check()
			}
			lines[d] = fmt.Sprintf("%d\t trees of depth %d\t check: %d\n", iters, d, check)
		}()
	}
	wg.Wait()
	for d := workload.MinDepth; d <= maxDepth; d += 2 {
		fmt.Fprint(out, lines[d])
	}
	fmt.Fprintf(out, "long lived tree of depth %d\t check: %d\n", maxDepth, long.check())
}

func runBinaryTrees(f *demoFlags, stdout, stderr io.Writer) int {
	if f.gc == "go" {
		t0 := time.Now()
		binaryTreesGo(f.depth, stdout)
		reportChild(stderr, time.Since(t0))
		return 0
	}
	return runOnHeap("binarytrees", f, treeTrace, stderr, func(h *sweep.Heap) ([]byte, error) {
		var out bytes.Buffer
		err := workload.BinaryTrees(h, f.depth, &out)
		stdout.Write(out.Bytes())
		return out.Bytes(), err
	})
}

// ---- GCBench ----

// GCBench's node: left and right children and two integers, 32 bytes.
const (
	gbLeft, gbRight, gbI, gbJ = 0, 1, 2, 3
	gbNodeSize                = 32
)

// gcbenchTrace is the Tracer of GCBench: nodes have two Ref fields, and
// the array (any larger object) has none.
func gcbenchTrace(o sweep.Object, visit func(sweep.Ref)) {
	if o.Size() == gbNodeSize {
		visit(o.Field(gbLeft))
		visit(o.Field(gbRight))
	}
}

func treeSize(depth int) int { return 1<<(depth+1) - 1 }

// numIters is GCBench's: as many trees of a depth as the stretch tree's
// nodes, twice over.
func numIters(stretch, depth int) int { return 2 * treeSize(stretch) / treeSize(depth) }

// gcBench is GCBench on a sweep.Heap.
type gcBench struct {
	h *sweep.Heap
	m *sweep.Mutator
}

func (g *gcBench) node() (sweep.Ref, error) { return g.m.Alloc(gbNodeSize) }

// populate builds a tree top-down under n, which must be reachable.
func (g *gcBench) populate(depth int, n sweep.Ref) error {
	if depth <= 0 {
		return nil
	}
	depth--
	for _, f := range []int{gbLeft, gbRight} {
		c, err := g.node()
		if err != nil {
			return err
		}
		if err := g.h.SetField(n, f, c); err != nil {
			return err
		}
	}
	for _, f := range []int{gbLeft, gbRight} {
		c, err := g.h.Field(n, f)
		if err != nil {
			return err
		}
		if err := g.populate(depth, c); err != nil {
			return err
		}
	}
	return nil
}

// makeTree builds a tree bottom-up: the finished left subtree waits on
// the root stack while the right one is built.
func (g *gcBench) makeTree(depth int) (sweep.Ref, error) {
	if depth <= 0 {
		return g.node()
	}
	l, err := g.makeTree(depth - 1)
	if err != nil {
		return sweep.Nil, err
	}
	g.m.Push(l)
	defer g.m.Pop(1)
	r, err := g.makeTree(depth - 1)
	if err != nil {
		return sweep.Nil, err
	}
	g.m.Push(r)
	defer g.m.Pop(1)
	n, err := g.node()
	if err != nil {
		return sweep.Nil, err
	}
	if err := g.h.SetField(n, gbLeft, l); err != nil {
		return sweep.Nil, err
	}
	return n, g.h.SetField(n, gbRight, r)
}

// count returns the number of nodes of the tree n.
func (g *gcBench) count(n sweep.Ref) (int, error) {
	if n == sweep.Nil {
		return 0, nil
	}
	l, err := g.h.Field(n, gbLeft)
	if err != nil {
		return 0, err
	}
	r, err := g.h.Field(n, gbRight)
	if err != nil {
		return 0, err
	}
	a, err := g.count(l)
	if err != nil {
		return 0, err
	}
	b, err := g.count(r)
	return 1 + a + b, err
}

// gbNode is GCBench's node on the Go heap.
type gbNode struct {
	left, right *gbNode
	//lint:ignore U1000 GCBench's nodes carry two ints it never reads, for their size
	i, j int
}

func gbPopulate(depth int, n *gbNode) {
	if depth <= 0 {
		return
	}
	depth--
	n.left, n.right = &gbNode{}, &gbNode{}
	gbPopulate(depth, n.left)
	gbPopulate(depth, n.right)
}

func gbMakeTree(depth int) *gbNode {
	if depth <= 0 {
		return &gbNode{}
	}
	return &gbNode{left: gbMakeTree(depth - 1), right: gbMakeTree(depth - 1)}
}

func gbCount(n *gbNode) int {
	if n == nil {
		return 0
	}
	return 1 + gbCount(n.left) + gbCount(n.right)
}

// gcBenchRun holds what one run of GCBench does with its trees and array,
// for both collectors.
type gcBenchRun struct {
	out     io.Writer
	f       *demoFlags
	fail    []string                                 // failed checks
	stretch func() (int, error)                      // builds the stretch tree, returns its size
	long    func() (int, error)                      // builds the long-lived tree, returns its size
	array   func() error                             // builds the array
	topDown func(depth int, check bool) (int, error) // one top-down tree, its size if check
	botUp   func(depth int, check bool) (int, error) // one bottom-up tree, its size if check
	final   func() (longSize int, a1000 float64, err error)
	diag    func()
}

func (r *gcBenchRun) run() error {
	f, out := r.f, r.out
	fmt.Fprintln(out, "Garbage Collector Test")
	fmt.Fprintf(out, " Live storage will peak at %d bytes.\n\n", 2*gbNodeSize*treeSize(f.longLived)+8*f.array)
	fmt.Fprintf(out, " Stretching memory with a binary tree of depth %d\n", f.stretch)
	t0 := time.Now()
	n, err := r.stretch()
	if err != nil {
		return err
	}
	r.expect(n == treeSize(f.stretch), "stretch tree has %d nodes, want %d", n, treeSize(f.stretch))
	fmt.Fprintf(out, " Creating a long-lived binary tree of depth %d\n", f.longLived)
	if _, err := r.long(); err != nil {
		return err
	}
	fmt.Fprintf(out, " Creating a long-lived array of %d doubles\n", f.array)
	if err := r.array(); err != nil {
		return err
	}
	r.diag()
	for d := f.minDepth; d <= f.maxDepth; d += 2 {
		iters := numIters(f.stretch, d)
		fmt.Fprintf(out, "Creating %d trees of depth %d\n", iters, d)
		for _, c := range []struct {
			name  string
			build func(int, bool) (int, error)
		}{{"Top down", r.topDown}, {"Bottom up", r.botUp}} {
			ts := time.Now()
			for i := range iters {
				n, err := c.build(d, i == 0)
				if err != nil {
					return err
				}
				if i == 0 {
					r.expect(n == treeSize(d), "%s tree of depth %d has %d nodes, want %d", c.name, d, n, treeSize(d))
				}
			}
			fmt.Fprintf(out, "\t%s construction took %d msec\n", c.name, time.Since(ts).Milliseconds())
		}
	}
	longSize, a1000, err := r.final()
	if err != nil {
		return err
	}
	// GCBench's own check, which also keeps the long-lived data alive.
	r.expect(longSize == treeSize(f.longLived), "long-lived tree has %d nodes, want %d", longSize, treeSize(f.longLived))
	r.expect(a1000 == 1.0/1000, "array[1000] = %v, want %v", a1000, 1.0/1000)
	if len(r.fail) > 0 {
		fmt.Fprintln(out, "Failed")
		return fmt.Errorf("checks failed: %s", strings.Join(r.fail, "; "))
	}
	r.diag()
	fmt.Fprintf(out, "Completed in %d msec.\n", time.Since(t0).Milliseconds())
	return nil
}

func (r *gcBenchRun) expect(ok bool, format string, args ...any) {
	if !ok {
		r.fail = append(r.fail, fmt.Sprintf(format, args...))
	}
}

// gcBenchHeap runs GCBench on h.
func gcBenchHeap(h *sweep.Heap, f *demoFlags, out, diag io.Writer) error {
	m, err := h.NewMutator()
	if err != nil {
		return err
	}
	defer m.Close()
	g := &gcBench{h: h, m: m}
	var long, array sweep.Ref
	r := &gcBenchRun{out: out, f: f}
	topDown := func(d int, check bool) (int, error) {
		t, err := g.node()
		if err != nil {
			return 0, err
		}
		m.Push(t)
		defer m.Pop(1)
		if err := g.populate(d, t); err != nil || !check {
			return 0, err
		}
		return g.count(t)
	}
	r.stretch = func() (int, error) { return topDown(f.stretch, true) }
	r.topDown = topDown
	r.botUp = func(d int, check bool) (int, error) {
		t, err := g.makeTree(d)
		if err != nil || !check {
			return 0, err
		}
		return g.count(t)
	}
	r.long = func() (int, error) {
		var err error
		if long, err = g.node(); err != nil {
			return 0, err
		}
		m.Push(long)
		return 0, g.populate(f.longLived, long)
	}
	r.array = func() error {
		var err error
		if array, err = m.Alloc(8 * f.array); err != nil {
			return err
		}
		m.Push(array)
		for i := range f.array / 2 {
			if err := h.SetWord(array, i, math.Float64bits(1.0/float64(i))); err != nil {
				return err
			}
		}
		return nil
	}
	r.final = func() (int, float64, error) {
		n, err := g.count(long)
		if err != nil {
			return 0, 0, err
		}
		w, err := h.Word(array, 1000)
		return n, math.Float64frombits(w), err
	}
	r.diag = func() {
		st := h.Stats()
		fmt.Fprintf(diag, " [heap: %d collections, %.1f MiB mapped, %d objects live at the last mark]\n",
			st.Cycles, float64(st.Mapped)/(1<<20), st.LiveSlots)
	}
	return r.run()
}

// gcBenchGo runs GCBench on Go's collector.
func gcBenchGo(f *demoFlags, out, diag io.Writer) error {
	var long *gbNode
	var array []float64
	r := &gcBenchRun{out: out, f: f}
	r.stretch = func() (int, error) { return gbCount(gbMakeTree(f.stretch)), nil }
	r.long = func() (int, error) {
		long = &gbNode{}
		gbPopulate(f.longLived, long)
		return 0, nil
	}
	r.array = func() error {
		array = make([]float64, f.array)
		for i := range f.array / 2 {
			array[i] = 1.0 / float64(i)
		}
		return nil
	}
	r.topDown = func(d int, check bool) (int, error) {
		t := &gbNode{}
		gbPopulate(d, t)
		if !check {
			return 0, nil
		}
		return gbCount(t), nil
	}
	r.botUp = func(d int, check bool) (int, error) {
		t := gbMakeTree(d)
		if !check {
			return 0, nil
		}
		return gbCount(t), nil
	}
	r.final = func() (int, float64, error) { return gbCount(long), array[1000], nil }
	r.diag = func() {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		fmt.Fprintf(diag, " [Go heap: %d collections, %.1f MiB in use]\n", ms.NumGC, float64(ms.HeapAlloc)/(1<<20))
	}
	return r.run()
}

func runGCBench(f *demoFlags, stdout, stderr io.Writer) int {
	if f.gc == "go" {
		t0 := time.Now()
		if err := gcBenchGo(f, stdout, io.Discard); err != nil {
			fmt.Fprintf(stderr, "gcbits demo gcbench: %v\n", err)
			return 1
		}
		reportChild(stderr, time.Since(t0))
		return 0
	}
	return runOnHeap("gcbench", f, gcbenchTrace, stderr, func(h *sweep.Heap) ([]byte, error) {
		return nil, gcBenchHeap(h, f, stdout, stderr)
	})
}

// runOnHeap times run on a new demo heap traced by trace, then writes the
// figures of the heap (and of Go's collector, if f.compare) to stderr and
// returns the exit status. run returns the program's output when Go's run
// must print the same, or nil.
func runOnHeap(name string, f *demoFlags, trace sweep.Tracer, stderr io.Writer, run func(*sweep.Heap) ([]byte, error)) int {
	fail := func(err error) int {
		fmt.Fprintf(stderr, "gcbits demo %s: %v\n", name, err)
		return 1
	}
	h, err := newDemoHeap(f, trace)
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
	fmt.Fprintf(w, "checks: %d bad refs, %d bitmap lifetime violations, %d unswept spans taken, %d double-cached spans, %d bitmap fallbacks\n",
		st.BadRefs, st.LifetimeViolations, st.UnsweptTaken, st.DoubleCached, st.BitsFallbacks)
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
