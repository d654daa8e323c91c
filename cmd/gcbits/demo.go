package main

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gcbits/gcbits/cmd/gcbits/internal/machine"
	"github.com/gcbits/gcbits/internal/workload"
	"github.com/gcbits/gcbits/sweep"
)

const demoUsage = `Usage: gcbits demo NAME [flags]

Programs that allocate on a sweep.Heap: objects in off-heap spans whose
mark bitmaps come from a gcbits arena, collected by marking and sweeping
concurrently with the program.

Demos:
{{demos}}

Both print figures on stderr, beside the same program on Go's own garbage
collector, run in a child process for a clean peak RSS. A run whose
estimated peak passes half of the machine's memory is refused.
Run "gcbits demo NAME -h" for a demo's flags.
`

// demoUsageText returns the usage of gcbits demo, with the demos.
func demoUsageText() string {
	var b strings.Builder
	for _, d := range demos {
		usageItem(&b, d.name, d.summary+d.more)
	}
	return strings.Replace(demoUsage, "{{demos}}\n", b.String(), 1)
}

// demo is one program of gcbits demo.
type demo struct {
	// name is its command; summary names it in its usage and starts its
	// line in gcbits demo -h, which more ends (a newline in more breaks
	// that line).
	name, summary, more string
	// flags registers the demo's own flags.
	flags func(fs *flag.FlagSet, f *demoFlags)
	// check returns the error of flags out of range, which the demo's
	// usage error prints after its name.
	check func(f *demoFlags) error
	// peakBytes estimates the most memory a run holds, for either heap.
	peakBytes func(f *demoFlags) int64
	// onHeap runs the program on h, writing its output to out and
	// figures to diag, and returns its output when Go's run must print
	// the same, or nil.
	onHeap func(f *demoFlags, h *sweep.Heap, out, diag io.Writer) ([]byte, error)
	// onGo runs the program on Go's heap.
	onGo func(f *demoFlags, out io.Writer) error
}

// demoFlags are the flags of a demo run; each demo registers its own
// and the common ones.
type demoFlags struct {
	gc        string   // "heap" (sweep.Heap) or "go" (Go's collector)
	compare   bool     // also run the Go version in a child process
	unchecked bool     // sweep.Options.Unchecked
	gcPercent int      // GOGC: set with Heap.SetGCPercent, as the Go run's environment
	minHeap   int64    // sweep.Options.MinHeapBytes
	jsonPath  string   // write the comparison as JSON here
	cpuprof   string   // write a CPU profile of this process's run here
	args      []string // the flags set, but -gc, -compare, -json and -cpuprofile: those of a run like this one
	settings  []string // every flag as -name=value, default or not: what the JSON report records
	depth     int      // binarytrees: maximum depth
	bench     workload.GCBench
}

var demos = []demo{
	{
		name:    "binarytrees",
		summary: "the Computer Language Benchmarks Game's binary-trees",
		more:    ";\nstdout is the benchmark's output",
		flags: func(fs *flag.FlagSet, f *demoFlags) {
			fs.IntVar(&f.depth, "depth", 10, "maximum tree depth (the benchmark's N)")
		},
		check: func(f *demoFlags) error {
			if f.depth < 0 || f.depth > 30 {
				return fmt.Errorf("-depth %d is outside 0..30", f.depth)
			}
			return nil
		},
		peakBytes: func(f *demoFlags) int64 {
			return int64(workload.TreeNodeSize) * workload.BinaryTreesPeakNodes(f.depth)
		},
		onHeap: func(f *demoFlags, h *sweep.Heap, out, _ io.Writer) ([]byte, error) {
			var b bytes.Buffer
			err := workload.BinaryTrees(h, f.depth, &b)
			out.Write(b.Bytes())
			return b.Bytes(), err
		},
		onGo: func(f *demoFlags, out io.Writer) error {
			workload.BinaryTreesGo(f.depth, out)
			return nil
		},
	},
	{
		name:    "gcbench",
		summary: "Boehm's GCBench",
		more:    ": top-down and bottom-up trees, a long-lived\ntree and a large array, with its checks",
		flags: func(fs *flag.FlagSet, f *demoFlags) {
			d := workload.DefaultGCBench
			fs.IntVar(&f.bench.Stretch, "stretch", d.Stretch, "depth of the stretch tree")
			fs.IntVar(&f.bench.LongLived, "long", d.LongLived, "depth of the long-lived tree")
			fs.IntVar(&f.bench.MinDepth, "min", d.MinDepth, "smallest depth of the short-lived trees")
			fs.IntVar(&f.bench.MaxDepth, "max", d.MaxDepth, "largest depth of the short-lived trees")
			fs.IntVar(&f.bench.Array, "array", d.Array, "doubles in the long-lived array")
		},
		check:     func(f *demoFlags) error { return f.bench.Check() },
		peakBytes: func(f *demoFlags) int64 { return f.bench.PeakBytes() },
		onHeap: func(f *demoFlags, h *sweep.Heap, out, diag io.Writer) ([]byte, error) {
			return nil, f.bench.RunHeap(h, out, diag)
		},
		onGo: func(f *demoFlags, out io.Writer) error { return f.bench.RunGo(out, io.Discard) },
	},
}

// flagSet returns the flag set of d, with the common flags.
func (d *demo) flagSet(f *demoFlags) *flag.FlagSet {
	fs := newFlagSet("gcbits demo " + d.name)
	d.flags(fs, f)
	fs.StringVar(&f.gc, "gc", "heap", "collector: heap (sweep.Heap) or go (Go's own, pointers on the Go heap)")
	fs.BoolVar(&f.compare, "compare", true, "also run the program on Go's collector in a child process")
	fs.BoolVar(&f.unchecked, "unchecked", false, "turn off stale-Ref detection (sequence numbers)")
	fs.IntVar(&f.gcPercent, "gcpercent", 100, "GOGC of both runs: the heap's growth between collections, in percent (0 or more)")
	fs.Int64Var(&f.minHeap, "minheap", 0, "heap bytes below which no collection starts (0: sweep's default, 4 MiB)")
	fs.StringVar(&f.jsonPath, "json", "", "write the comparison as JSON to this file")
	fs.StringVar(&f.cpuprof, "cpuprofile", "", "write a CPU profile of the run in this process (the heap's, or Go's with -gc go) to `file`")
	return fs
}

// usage returns d's usage, which parseFlags prints before its flags.
func (d *demo) usage() string {
	return fmt.Sprintf("Usage: gcbits demo %s [flags]\n\nRuns %s on a sweep.Heap and, in a child process, on Go's collector.\n\nFlags:\n", d.name, d.summary)
}

// runDemo is gcbits demo: it runs the demo named by args[0] with the
// flags that follow and returns the exit status.
func runDemo(args []string, stdout, stderr io.Writer) int {
	if rc, done := noSubcommand("gcbits demo", demoUsageText(), errors.New("no demo named"), args, stdout, stderr); done {
		return rc
	}
	i := slices.IndexFunc(demos, func(d demo) bool { return d.name == args[0] })
	if i < 0 {
		return usageStatus(stderr, "gcbits demo", fmt.Errorf("unknown demo %q", args[0]))
	}
	d := &demos[i]
	f := &demoFlags{}
	fs := d.flagSet(f)
	usageErr := func(err error) int { return usageStatus(stderr, fs.Name(), err) }
	if err := parseFlags(fs, d.usage(), args[1:], stdout); err != nil {
		return usageErr(err)
	}
	fs.VisitAll(func(fl *flag.Flag) {
		f.settings = append(f.settings, "-"+fl.Name+"="+fl.Value.String())
	})
	fs.Visit(func(fl *flag.Flag) {
		switch fl.Name {
		case "gc", "compare", "json", "cpuprofile":
		default:
			f.args = append(f.args, "-"+fl.Name+"="+fl.Value.String())
		}
	})
	switch {
	case f.minHeap < 0:
		return usageErr(fmt.Errorf("-minheap %d is negative", f.minHeap))
	case f.gcPercent < 0:
		return usageErr(fmt.Errorf("-gcpercent %d turns collection off: the run would keep all it allocates", f.gcPercent))
	case f.gc != "heap" && f.gc != "go":
		return usageErr(fmt.Errorf("-gc is heap or go, not %q", f.gc))
	}
	if err := d.check(f); err != nil {
		return usageErr(err)
	}
	if err := checkMemory(d, f); err != nil {
		return usageErr(err)
	}
	if f.jsonPath != "" {
		// Fail now, not after the run, on a file that cannot be written.
		if err := checkWritable(f.jsonPath); err != nil {
			return usageErr(fmt.Errorf("-json: %w", err))
		}
	}
	if f.cpuprof != "" {
		stop, err := startCPUProfile(f.cpuprof)
		if err != nil {
			return usageErr(fmt.Errorf("-cpuprofile: %w", err))
		}
		defer stop()
	}
	if f.gc == "go" {
		return runDemoGo(d, f, stdout, stderr)
	}
	return runDemoHeap(d, f, stdout, stderr)
}

// startCPUProfile starts a CPU profile written to path and returns the
// function that stops it.
func startCPUProfile(path string) (stop func(), err error) {
	pf, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(pf); err != nil {
		pf.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		pf.Close()
	}, nil
}

// machineMemory returns the memory the process can have, in bytes, or 0
// where it cannot tell. Tests replace it.
var machineMemory = machine.Memory

// checkMemory refuses a run whose estimated peak passes half of the
// machine's memory (machine.CheckFit). The estimate is the program's live
// data at its peak times the heap's growth between collections, at least
// the least heap goal (-minheap, 4 MiB by default, times GOGC/100), plus
// room for the Go runtime.
func checkMemory(d *demo, f *demoFlags) error {
	growth := float64(f.gcPercent) / 100
	minHeap := float64(cmp.Or(f.minHeap, sweep.DefaultMinHeapBytes))
	need := max(float64(d.peakBytes(f))*(1+growth), minHeap*growth) + machine.BaseBytes
	return machine.CheckFit(machineMemory(), need, d.name, "its live data times 1+GOGC/100, at least -minheap times GOGC/100, plus "+machine.FormatBytes(machine.BaseBytes))
}

// runFigures are the figures of one run of a demo, on one collector.
type runFigures struct {
	WallSeconds  float64 `json:"wall_s"`
	CPUSeconds   float64 `json:"cpu_s"`
	PeakRSSBytes int64   `json:"peak_rss_bytes"`
	Cycles       int64   `json:"cycles"`
	PauseMax     float64 `json:"pause_max_s"`
	PauseP99     float64 `json:"pause_p99_s"`
	PauseTotal   float64 `json:"pause_total_s"`
}

// p99 returns the 99th percentile (nearest rank) of pauses, 0 for none.
func p99(pauses []time.Duration) time.Duration {
	if len(pauses) == 0 {
		return 0
	}
	s := slices.Clone(pauses)
	slices.Sort(s)
	return s[(len(s)*99+99)/100-1]
}

// measure runs f and returns its wall and CPU time.
func measure(f func() error) (wall, cpu time.Duration, err error) {
	c0 := machine.CPUTime()
	t0 := time.Now()
	err = f()
	return time.Since(t0), machine.CPUTime() - c0, err
}

// statsPrefix starts the line a child run writes on stderr for its
// parent: its figures as JSON.
const statsPrefix = "gcbits-demo-child: "

// runDemoGo runs d on Go's collector, in this process, and writes its
// figures for a parent (or the JSON file).
func runDemoGo(d *demo, f *demoFlags, stdout, stderr io.Writer) int {
	wall, cpu, err := measure(func() error { return d.onGo(f, stdout) })
	if err != nil {
		fmt.Fprintf(stderr, "gcbits demo %s: %v\n", d.name, err)
		return 1
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	n := min(int(ms.NumGC), len(ms.PauseNs))
	pauses := make([]time.Duration, 0, n)
	var longest time.Duration
	for i := range n {
		p := time.Duration(ms.PauseNs[(int(ms.NumGC)-1-i+len(ms.PauseNs))%len(ms.PauseNs)])
		pauses = append(pauses, p)
		longest = max(longest, p)
	}
	fig := runFigures{
		WallSeconds: wall.Seconds(), CPUSeconds: cpu.Seconds(), PeakRSSBytes: int64(machine.PeakRSS()),
		Cycles: int64(ms.NumGC), PauseMax: longest.Seconds(), PauseP99: p99(pauses).Seconds(),
		PauseTotal: time.Duration(ms.PauseTotalNs).Seconds(),
	}
	line, _ := json.Marshal(fig)
	fmt.Fprintf(stderr, "%s%s\n", statsPrefix, line)
	return writeJSON(d, f, nil, &fig, nil, stderr)
}

// runDemoHeap runs d on a sweep.Heap, then, if f.compare, on Go's
// collector in a child process, and reports both.
func runDemoHeap(d *demo, f *demoFlags, stdout, stderr io.Writer) int {
	fail := func(err error) int {
		fmt.Fprintf(stderr, "gcbits demo %s: %v\n", d.name, err)
		return 1
	}
	h, err := sweep.New(sweep.Options{MinHeapBytes: f.minHeap, Unchecked: f.unchecked, Timing: true})
	if err != nil {
		return fail(err)
	}
	h.SetGCPercent(f.gcPercent) // GOGC's meaning, 0 included, as the Go run has it
	var want []byte
	wall, cpu, err := measure(func() error {
		var err error
		want, err = d.onHeap(f, h, stdout, stderr)
		return err
	})
	if err != nil {
		h.Close()
		return fail(err)
	}
	st, err := finalStats(h)
	if err != nil {
		return fail(err)
	}
	fig := runFigures{
		WallSeconds: wall.Seconds(), CPUSeconds: cpu.Seconds(), PeakRSSBytes: int64(machine.PeakRSS()),
		Cycles: int64(st.Cycles), PauseMax: st.PauseMax.Seconds(), PauseP99: p99(st.Pauses).Seconds(),
		PauseTotal: st.PauseTime.Seconds(),
	}
	fmt.Fprintf(stderr, "\n%s on sweep.Heap: %s\n", d.name, describe(fig))
	var goFig *runFigures
	var same *bool
	if f.compare {
		goFig, same = compareGo(stderr, d, f, want)
	}
	report(stderr, st)
	return writeJSON(d, f, &fig, goFig, same, stderr)
}

// describe formats a run's figures for people.
func describe(f runFigures) string {
	return fmt.Sprintf("%.3f s wall, %.3f s CPU, peak RSS %.1f MiB, %d collections, pauses max %.2f ms, p99 %.2f ms",
		f.WallSeconds, f.CPUSeconds, float64(f.PeakRSSBytes)/(1<<20), f.Cycles, f.PauseMax*1e3, f.PauseP99*1e3)
}

// writeJSON writes the comparison to f.jsonPath, if set.
func writeJSON(d *demo, f *demoFlags, heap, goRun *runFigures, same *bool, stderr io.Writer) int {
	if f.jsonPath == "" {
		return 0
	}
	doc := struct {
		Demo            string      `json:"demo"`
		Args            []string    `json:"args"`
		CPUs            int         `json:"cpus"`
		Go              string      `json:"go"`
		Heap            *runFigures `json:"heap,omitempty"`
		GoGC            *runFigures `json:"go_gc,omitempty"`
		OutputIdentical *bool       `json:"output_identical,omitempty"`
	}{d.name, f.settings, runtime.NumCPU(), runtime.Version(), heap, goRun, same}
	b, _ := json.MarshalIndent(doc, "", "  ")
	if err := os.WriteFile(f.jsonPath, append(b, '\n'), 0o666); err != nil {
		fmt.Fprintf(stderr, "gcbits demo %s: %v\n", d.name, err)
		return 1
	}
	return 0
}

// finalStats runs a last collection, so that the peak of allocated slots
// (counted at the start of each collection) includes the end of the run,
// waits for its sweep, and closes h.
func finalStats(h *sweep.Heap) (sweep.Stats, error) {
	err := h.GC()
	h.WaitSweep()
	st := h.Stats()
	return st, errors.Join(err, h.Close())
}

// report writes the heap's own figures.
func report(w io.Writer, st sweep.Stats) {
	fmt.Fprintf(w, "collections: %d; world stopped %v in all; marking %v of wall time, concurrent with the program\n",
		st.Cycles, st.PauseTime.Round(time.Microsecond), st.MarkTime.Round(time.Microsecond))
	fmt.Fprintf(w, "sweeping: %v of span sweeps (summed over sweepers, %d spans), %v wall in sweep phases; bitmap allocation (sweeps and new spans) %v\n",
		st.SweepTime.Round(time.Microsecond), st.SpansSwept, st.SweepWall.Round(time.Microsecond), st.BitsTime.Round(time.Microsecond))
	ratio := 0.0
	if st.PeakSlots > 0 {
		ratio = float64(st.Allocs) / float64(st.PeakSlots)
	}
	fmt.Fprintf(w, "slots: peak %d in use (%.1f MiB, at collection starts) vs %d allocated in total (%.0fx); %d freed by sweeps\n",
		st.PeakSlots, float64(st.PeakBytes)/(1<<20), st.Allocs, ratio, st.SlotsFreed)
	fmt.Fprintf(w, "memory: %.1f MiB of spans mapped, %.1f MiB returned to the OS, %.1f MiB mapped by the bitmap arena; its epoch %d, %.1f MiB of bitmaps served\n",
		float64(st.Mapped)/(1<<20), float64(st.ReleasedTotal)/(1<<20), float64(st.Arena.MappedBytes)/(1<<20), st.Arena.Epoch, float64(st.Arena.AllocatedBytes)/(1<<20))
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

// compareGo runs the demo with -gc go in a child process, writes its
// figures, and returns them and, if want is not nil, whether its output
// equals want.
func compareGo(w io.Writer, d *demo, f *demoFlags, want []byte) (*runFigures, *bool) {
	args := append([]string{"demo", d.name, "-gc", "go", "-compare=false"}, f.args...)
	cmd, err := childCommand(args)
	if err != nil {
		fmt.Fprintf(w, "Go GC run skipped: %v\n", err)
		return nil, nil
	}
	// Go's collector runs with the heap's GOGC.
	cmd.Env = append(cmd.Environ(), "GOGC="+strconv.Itoa(f.gcPercent))
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		fmt.Fprintf(w, "Go GC run (%s) failed: %v\n%s", strings.Join(cmd.Args, " "), err, errb.String())
		return nil, nil
	}
	var fig *runFigures
	for line := range strings.Lines(errb.String()) {
		if rest, ok := strings.CutPrefix(line, statsPrefix); ok {
			fig = new(runFigures)
			if err := json.Unmarshal([]byte(rest), fig); err != nil {
				fmt.Fprintf(w, "Go GC run: bad figures %q: %v\n", rest, err)
				return nil, nil
			}
		}
	}
	if fig == nil {
		fmt.Fprintf(w, "Go GC run: no figures in\n%s", errb.String())
		return nil, nil
	}
	var same *bool
	note := ""
	if want != nil {
		eq := bytes.Equal(out.Bytes(), want)
		same = &eq
		note = ", output identical"
		if !eq {
			note = ", OUTPUT DIFFERS"
		}
	}
	fmt.Fprintf(w, "%s on Go's GC:     %s (child process, GOGC=%d%s)\n", d.name, describe(*fig), f.gcPercent, note)
	return fig, same
}
