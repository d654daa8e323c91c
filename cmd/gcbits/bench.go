package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/gcbits/gcbits/cmd/gcbits/internal/bench"
)

const benchUsage = `Usage: gcbits bench [flags]

Measures allocations of span mark bitmaps (one per small size class of the
Go runtime, in turn) by every allocator with 1, 2, 4 … GOMAXPROCS worker
goroutines, in each scenario, and prints the median Mop/s of several runs
with its 95% confidence interval, its ratio to seed-after and, for gcbits,
the share of bytes wasted; -benchfmt prints every run for benchstat
instead. A run that could need more than half of the machine's memory is
refused.

Scenarios:
  quiescent   workers stop at a barrier every -epoch allocations each and one
              of them calls Advance while the others wait (stop-the-world)
  concurrent  a separate goroutine calls Advance every -advance-every while the
              workers allocate (seed-after is unsafe there; its rows say so)
  sweep       workers take spans from a shared list, count the bits of each
              span's old bitmap and give it a fresh one; the epoch turns when
              the list (-spans long) is exhausted. Mop/s counts spans; alloc %
              is the allocator's share of the sweep time, from a run with a
              no-op allocator: 1 - t_noop/t_alloc

Allocators:
{{allocators}}
Flags:
`

// benchFlags holds the parsed flags of gcbits bench.
type benchFlags struct {
	cfg      bench.Config
	json     bool
	benchfmt bool
	plot     string
	progress bool
	cpuprof  string
}

// parseBench parses the flags of gcbits bench and checks the run they ask
// for. For -h it writes the usage to stdout and returns flag.ErrHelp; a
// bad flag gives a usage error, which it does not print.
func parseBench(args []string, stdout io.Writer) (*benchFlags, error) {
	fs := newFlagSet("gcbits bench")
	bf := &benchFlags{}
	workers := fs.String("workers", joinInts(bench.DefaultWorkers()), "comma-separated worker `counts`")
	scenarios := fs.String("scenarios", strings.Join(bench.Scenarios, ","), "comma-separated `scenarios`")
	allocators := fs.String("allocators", strings.Join(bench.Names(), ","), "comma-separated `allocators`")
	fs.IntVar(&bf.cfg.Runs, "runs", bench.DefaultRuns, "runs per row; the table shows their median and its 95% confidence interval (6 runs or more)")
	fs.DurationVar(&bf.cfg.Duration, "duration", bench.DefaultDuration, "length of one run")
	fs.IntVar(&bf.cfg.EpochAllocs, "epoch", bench.DefaultEpochAllocs, fmt.Sprintf("allocations per worker per epoch: quiescent, all of them; concurrent, %d times as many at most", bench.ConcurrentEpochCap))
	fs.DurationVar(&bf.cfg.AdvanceEvery, "advance-every", bench.DefaultAdvanceEvery, "concurrent: `period` of Advance")
	fs.IntVar(&bf.cfg.SweepSpans, "spans", bench.DefaultSweepSpans, "sweep: spans per epoch")
	fs.BoolVar(&bf.json, "json", false, "print one JSON object instead of the table")
	fs.BoolVar(&bf.benchfmt, "benchfmt", false, "print every run in the Go benchmark format instead of the table, for benchstat")
	fs.StringVar(&bf.plot, "plot", "", "also write an SVG (or .png) `file` of Mop/s against workers, one panel per scenario")
	fs.StringVar(&bf.cpuprof, "cpuprofile", "", "write a CPU profile of the whole benchmark to `file` (go tool pprof)")
	fs.BoolVar(&bf.progress, "progress", true, "show a progress bar on stderr when it is a terminal")
	if err := parseFlags(fs, benchUsageText(), args, stdout); err != nil {
		return nil, err
	}
	fail := func(format string, a ...any) (*benchFlags, error) {
		return nil, fmt.Errorf(format, a...)
	}
	if bf.json && bf.benchfmt {
		return fail("-json and -benchfmt: choose one")
	}
	var err error
	if bf.cfg.Workers, err = parseInts(*workers); err != nil {
		return fail("-workers: %v", err)
	}
	if bf.cfg.Scenarios, err = splitList(*scenarios); err != nil {
		return fail("-scenarios: %v", err)
	}
	if bf.cfg.Allocators, err = splitList(*allocators); err != nil {
		return fail("-allocators: %v", err)
	}
	// Zero values mean defaults to bench.Config; on the command line they
	// are errors, like every other value out of range.
	for _, c := range []struct {
		name string
		bad  bool
	}{
		{"-runs", bf.cfg.Runs <= 0},
		{"-duration", bf.cfg.Duration <= 0},
		{"-epoch", bf.cfg.EpochAllocs <= 0},
		{"-advance-every", bf.cfg.AdvanceEvery <= 0},
		{"-spans", bf.cfg.SweepSpans <= 0},
	} {
		if c.bad {
			return fail("%s: must be positive", c.name)
		}
	}
	if bf.plot != "" {
		if err := checkPlotPath(bf.plot); err != nil {
			return fail("-plot: %v", err)
		}
	}
	if err := bench.Check(bf.cfg); err != nil {
		return fail("%v", err)
	}
	return bf, nil
}

// benchUsageText returns the usage of gcbits bench that comes before its
// flags, with the allocators.
func benchUsageText() string {
	var al strings.Builder
	for _, f := range bench.Factories {
		usageItem(&al, f.Name, f.Doc)
	}
	return strings.Replace(benchUsage, "{{allocators}}\n", al.String(), 1)
}

// runBench is gcbits bench.
func runBench(args []string, stdout, stderr io.Writer) int {
	bf, err := parseBench(args, stdout)
	if err != nil {
		return usageStatus(stderr, "gcbits bench", err)
	}
	if bf.progress {
		bf.cfg.Progress = progressFunc(stderr, "gcbits bench")
	}
	if bf.cpuprof != "" {
		stop, err := startCPUProfile(bf.cpuprof)
		if err != nil {
			return usageStatus(stderr, "gcbits bench", fmt.Errorf("-cpuprofile: %w", err))
		}
		defer stop()
	}
	rep, err := bench.Run(bf.cfg)
	if err != nil {
		fmt.Fprintf(stderr, "gcbits bench: %v\n", err)
		return 1
	}
	switch {
	case bf.json:
		err = rep.WriteJSON(stdout)
	case bf.benchfmt:
		err = rep.WriteBenchfmt(stdout)
	default:
		err = rep.WriteTable(stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "gcbits bench: %v\n", err)
		return 1
	}
	if bf.plot != "" {
		if err := writePlot(rep, bf.plot); err != nil {
			fmt.Fprintf(stderr, "gcbits bench: plot: %v\n", err)
			return 1
		}
	}
	return 0
}

// progressFunc returns a function that shows the progress of task, done
// steps of total, as a bar on w when w is a terminal; nil otherwise.
func progressFunc(w io.Writer, task string) func(done, total int) {
	if !isTerminal(w) {
		return nil
	}
	var bar *progressbar.ProgressBar
	return func(done, total int) {
		if bar == nil {
			bar = newBar(w, task, total, progressbar.OptionShowCount(), progressbar.OptionSetPredictTime(true))
		}
		bar.Set(done)
		if done == total {
			bar.Finish()
		}
	}
}

// newBar returns a progress bar of total steps for task on w, cleared
// when it finishes, with opts besides.
func newBar(w io.Writer, task string, total int, opts ...progressbar.Option) *progressbar.ProgressBar {
	return progressbar.NewOptions(total, append([]progressbar.Option{
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(task),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionThrottle(100 * time.Millisecond),
	}, opts...)...)
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// splitList splits a comma-separated list whose items may be surrounded
// by spaces. An empty list, an empty item ("1,,2", a trailing comma) and
// an item given twice are errors.
func splitList(s string) ([]string, error) {
	if strings.TrimSpace(s) == "" {
		return nil, errors.New("empty list")
	}
	var out []string
	for x := range strings.SplitSeq(s, ",") {
		x = strings.TrimSpace(x)
		switch {
		case x == "":
			return nil, fmt.Errorf("%q has an empty item", s)
		case slices.Contains(out, x):
			return nil, fmt.Errorf("%q names %s twice", s, x)
		}
		out = append(out, x)
	}
	return out, nil
}

// parseInts parses a comma-separated list of counts from 1 to
// bench.MaxWorkers, with the rules of splitList.
func parseInts(s string) ([]int, error) {
	items, err := splitList(s)
	if err != nil {
		return nil, err
	}
	out := make([]int, 0, len(items))
	for _, x := range items {
		n, err := strconv.Atoi(x)
		if err != nil || n < 1 || n > bench.MaxWorkers {
			return nil, fmt.Errorf("%q is not a count from 1 to %d", x, bench.MaxWorkers)
		}
		if slices.Contains(out, n) {
			return nil, fmt.Errorf("%q names %d twice", s, n)
		}
		out = append(out, n)
	}
	return out, nil
}

func joinInts(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ",")
}
