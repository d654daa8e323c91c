package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/gcbits/gcbits/goruntime"
)

const runtimeUsage = `Usage: gcbits runtime build|bench|test [flags]

The Go runtime with gcbits' design: the patch series in goruntime/ gives
every P a slab of mark-bit memory, clears recycled mark-bit arenas outside
their lock and turns their epochs in O(1).

  build   copy the installed Go into the user's cache directory, apply the
          patches and run make.bash; print the patched GOROOT as the last
          line of stdout. A finished build is reused.
  bench   build a GC-heavy workload with the stock and the patched Go, run
          both interleaved at each -procs, and compare throughput, GC
          cycles, newMarkBits's share of CPU and its wait on runtime locks
  test    run go test -short runtime with the patched Go, then the
          mark-bit tests in full and the mark-bit benchmark briefly (and
          again under the race detector, unless -race=false)

Run "gcbits runtime CMD -h" for a command's flags.
`

// runRuntime is gcbits runtime.
func runRuntime(args []string, stdout, stderr io.Writer) int {
	if rc, done := noSubcommand("gcbits runtime", runtimeUsage, errors.New("no command"), args, stdout, stderr); done {
		return rc
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	switch args[0] {
	case "build":
		return runtimeBuild(ctx, args[1:], stdout, stderr)
	case "bench":
		return runtimeBench(ctx, args[1:], stdout, stderr)
	case "test":
		return runtimeTest(ctx, args[1:], stdout, stderr)
	default:
		return usageStatus(stderr, "gcbits runtime", fmt.Errorf("unknown command %q", args[0]))
	}
}

// toolchainFlags are the flags every runtime command has.
type toolchainFlags struct {
	goroot string // stock GOROOT
	cache  string // where patched toolchains are kept
}

func (tf *toolchainFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&tf.goroot, "goroot", "", "the stock Go installation to patch (default: go env GOROOT)")
	fs.StringVar(&tf.cache, "cache", "", "`folder` for patched toolchains (default: gcbits/goroot in the user's cache directory)")
}

// builder resolves the flags' defaults and returns the builder they ask
// for, reporting its steps on stderr.
func (tf *toolchainFlags) builder(stderr io.Writer) (*builder, error) {
	if tf.goroot == "" {
		out, err := exec.Command("go", "env", "GOROOT").Output()
		if err != nil {
			return nil, fmt.Errorf("finding the installed Go (go env GOROOT): %w; pass -goroot", err)
		}
		tf.goroot = strings.TrimSpace(string(out))
	}
	if tf.cache == "" {
		dir, err := os.UserCacheDir()
		if err != nil {
			return nil, fmt.Errorf("%w; pass -cache", err)
		}
		tf.cache = filepath.Join(dir, "gcbits", "goroot")
	}
	b := &builder{stock: tf.goroot, cacheDir: tf.cache, patches: goruntime.Patches(), series: goruntime.Series}
	b.step = stepReporter(stderr, "gcbits runtime build", b.buildSteps())
	return b, nil
}

// stepReporter returns a function that shows the steps of a task on w: a
// progress bar on a terminal, one line per step otherwise. The bar
// expects about steps steps and finishes at the last step, lastStep, so
// that a step more or fewer than expected neither ends it early nor
// leaves it unfinished.
func stepReporter(w io.Writer, task string, steps int) func(string) {
	if !isTerminal(w) {
		return func(step string) { fmt.Fprintf(w, "%s: %s\n", task, step) }
	}
	bar := newBar(w, task, steps, progressbar.OptionSetElapsedTime(true))
	n := 0
	return func(step string) {
		bar.Describe(task + ": " + step)
		if step == lastStep {
			bar.Finish()
			return
		}
		n++
		bar.Set(min(n, steps-1))
	}
}

// goCommand returns a command that runs the go command of the toolchain
// at goroot on its own: with no GOROOT, GOFLAGS or workspace from this
// environment, and no switch to another toolchain.
func goCommand(ctx context.Context, goroot string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(goroot, "bin", "go"), args...)
	cmd.Env = append(os.Environ(), "GOROOT=", "GOTOOLCHAIN=local", "GOWORK=off", "GOFLAGS=")
	return cmd
}

func runtimeBuild(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	const usage = "Usage: gcbits runtime build [flags]\n\n" +
		"Builds the patched Go (or finds it built) and prints its GOROOT last on stdout.\n\nFlags:\n"
	fs := newFlagSet("gcbits runtime build")
	var tf toolchainFlags
	tf.register(fs)
	if err := parseFlags(fs, usage, args, stdout); err != nil {
		return usageStatus(stderr, fs.Name(), err)
	}
	root, err := buildToolchain(ctx, &tf, stderr)
	if err != nil {
		return 1
	}
	fmt.Fprintln(stdout, root)
	return 0
}

// buildToolchain builds the patched toolchain, printing a failure on
// stderr.
func buildToolchain(ctx context.Context, tf *toolchainFlags, stderr io.Writer) (string, error) {
	b, err := tf.builder(stderr)
	if err == nil {
		var root string
		if root, err = b.build(ctx); err == nil {
			return root, nil
		}
	}
	fmt.Fprintf(stderr, "gcbits runtime build: %v\n", err)
	return "", err
}

func runtimeBench(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	const usage = "Usage: gcbits runtime bench [flags]\n\n" +
		"Runs a GC-heavy workload built by the stock and by the patched Go, interleaved,\n" +
		"and prints medians and patched/stock ratios with benchstat's test (~: no\n" +
		"significant difference). newMarkBits CPU is the share of CPU profile samples\n" +
		"with runtime.newMarkBits or runtime.newMarkBitsFast (patched) on the stack;\n" +
		"lock wait is the runtime lock wait under them in the mutex profile\n" +
		"(GODEBUG=runtimecontentionstacks=1), per second of run.\n\nFlags:\n"
	fs := newFlagSet("gcbits runtime bench")
	var tf toolchainFlags
	tf.register(fs)
	rb := &rtBench{}
	procs := fs.String("procs", "1,2", "comma-separated GOMAXPROCS `values`")
	fs.IntVar(&rb.runs, "runs", 5, "interleaved runs per toolchain and procs")
	fs.DurationVar(&rb.duration, "duration", 2*time.Second, "length of one run")
	fs.IntVar(&rb.gogc, "gogc", 25, "the workload's GOGC")
	fs.IntVar(&rb.live, "live", 32<<20, "the workload's live heap in `bytes`")
	asJSON := fs.Bool("json", false, "print the samples as one JSON object instead of the table")
	plotPath := fs.String("plot", "", "also write an SVG (or .png) `file`: M mallocs/s and newMarkBits CPU against procs")
	load := fs.String("load", "", "read the samples from a JSON `file` that -json wrote instead of running")
	fs.StringVar(&rb.bins, "bins", "", "keep the workload binaries in `folder`; if it holds both, built from these patches and workload, run them without building anything")
	if err := parseFlags(fs, usage, args, stdout); err != nil {
		return usageStatus(stderr, fs.Name(), err)
	}
	usageErr := func(format string, a ...any) int {
		return usageStatus(stderr, fs.Name(), fmt.Errorf(format, a...))
	}
	var err error
	if rb.procs, err = parseInts(*procs); err != nil {
		return usageErr("-procs: %v", err)
	}
	switch {
	case rb.runs < 1 || rb.runs > 100:
		return usageErr("-runs: %d is not from 1 to 100", rb.runs)
	case rb.duration < 100*time.Millisecond || rb.duration > time.Hour:
		return usageErr("-duration: %v is not from 100ms to 1h", rb.duration)
	case rb.gogc < 1 || rb.gogc > 10000:
		return usageErr("-gogc: %d is not from 1 to 10000", rb.gogc)
	case rb.live < 1<<20 || rb.live > 1<<30:
		return usageErr("-live: %d is not from 1 MiB to 1 GiB", rb.live)
	}
	if *plotPath != "" {
		if err := checkPlotPath(*plotPath); err != nil {
			return usageErr("-plot: %v", err)
		}
	}
	if rb.bins != "" {
		if *load != "" {
			return usageErr("-bins: a run's binaries, but -load runs nothing")
		}
		if fi, err := os.Stat(rb.bins); err == nil && !fi.IsDir() {
			return usageErr("-bins: %s is not a folder", rb.bins)
		}
		if err := os.MkdirAll(rb.bins, 0o777); err != nil {
			fmt.Fprintf(stderr, "gcbits runtime bench: %v\n", err)
			return 1
		}
		rb.reuse = haveWorkloads(rb.bins)
	}
	var rep *rtReport
	if *load != "" {
		if rep, err = readRTReport(*load); err != nil {
			fmt.Fprintf(stderr, "gcbits runtime bench: %v\n", err)
			return 1
		}
	} else {
		if !rb.reuse {
			if rb.patched, err = buildToolchain(ctx, &tf, stderr); err != nil {
				return 1
			}
			rb.stock = tf.goroot
		}
		rb.progress = progressFunc(stderr, "gcbits runtime bench")
		if rep, err = rb.run(ctx); err != nil {
			fmt.Fprintf(stderr, "gcbits runtime bench: %v\n", err)
			return 1
		}
	}
	if *asJSON {
		err = rep.writeJSON(stdout)
	} else {
		err = rep.writeTable(stdout)
	}
	if err == nil && *plotPath != "" {
		err = rep.writePlot(*plotPath)
	}
	if err != nil {
		fmt.Fprintf(stderr, "gcbits runtime bench: %v\n", err)
		return 1
	}
	return 0
}

// markBitsTests are the tests the patches add to package runtime, and
// markBitsBench their benchmark, which runs briefly beside them so that a
// benchmark that hangs or fails is caught.
const (
	markBitsTests = "^TestMarkBitsEpochs$"
	markBitsBench = "^BenchmarkNewMarkBits$"
)

func runtimeTest(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	const usage = "Usage: gcbits runtime test [flags]\n\n" +
		"Runs go test -short runtime with the patched Go, then the mark-bit tests in full\n" +
		"and 100 ops of the mark-bit benchmark with -cpu 1,2,4, and under -race with -race.\n\nFlags:\n"
	fs := newFlagSet("gcbits runtime test")
	var tf toolchainFlags
	tf.register(fs)
	race := fs.Bool("race", true, "also run the mark-bit tests under the race detector")
	if err := parseFlags(fs, usage, args, stdout); err != nil {
		return usageStatus(stderr, fs.Name(), err)
	}
	root, err := buildToolchain(ctx, &tf, stderr)
	if err != nil {
		return 1
	}
	markBits := []string{"-count=1", "-run", markBitsTests, "-bench", markBitsBench, "-benchtime", "100x", "-cpu", "1,2,4", "-v", "runtime"}
	runs := [][]string{
		{"test", "-short", "runtime"},
		append([]string{"test"}, markBits...),
	}
	if *race {
		runs = append(runs, append([]string{"test", "-race"}, markBits...))
	}
	for _, a := range runs {
		fmt.Fprintf(stderr, "gcbits runtime test: go %s\n", strings.Join(a, " "))
		cmd := goCommand(ctx, root, a...)
		cmd.Dir = root
		cmd.Stdout, cmd.Stderr = stdout, stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintf(stderr, "gcbits runtime test: go %s: %v\n", strings.Join(a, " "), err)
			return 1
		}
	}
	return 0
}
