package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/google/pprof/profile"
	"golang.org/x/perf/benchmath"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"

	"github.com/gcbits/gcbits/cmd/gcbits/internal/machine"
	"github.com/gcbits/gcbits/goruntime"
)

// toolchains are the names of the two toolchains in a report, stock first.
var toolchains = [2]string{"stock", "patched"}

// markBitsFuncs are the functions whose share of CPU and of lock wait
// gcbits runtime bench reports: every mark-bit allocation passes through
// newMarkBits or, in the patched runtime, through newMarkBitsFast, which
// sweeps inline and try first.
var markBitsFuncs = []string{"runtime.newMarkBits", "runtime.newMarkBitsFast"}

// rtBench configures gcbits runtime bench.
type rtBench struct {
	stock, patched string        // GOROOTs of the two toolchains
	procs          []int         // GOMAXPROCS values
	runs           int           // interleaved runs per toolchain and procs
	duration       time.Duration // length of one run
	gogc           int           // the workload's GOGC
	live           int           // the workload's live heap in bytes
	bins           string        // folder for the workload binaries, kept; "" for a temporary one
	reuse          bool          // bins holds both binaries of these patches and workload: run them, build nothing
	progress       func(done, total int)
}

// workloadBins returns where the stock and the patched workload binaries
// live under dir.
func workloadBins(dir string) map[string]string {
	return map[string]string{
		"stock":   filepath.Join(dir, "stock", "workload"),
		"patched": filepath.Join(dir, "patched", "workload"),
	}
}

// workloadStamp is a digest of the patches' diffs and of the workload's
// source, written beside the workload binaries when they are built, so
// that binaries of another series or workload are not taken for these.
func workloadStamp() string {
	h := sha256.New()
	writeDiffs(h, goruntime.Patches())
	h.Write(goruntime.Workload())
	return hex.EncodeToString(h.Sum(nil))
}

// stampFile is where the stamp of the binaries in dir is kept.
func stampFile(dir string) string { return filepath.Join(dir, "stamp") }

// haveWorkloads reports whether dir holds both workload binaries, built
// from these patches and this workload, so that a run needs no toolchain:
// built here, they can be carried to another machine.
func haveWorkloads(dir string) bool {
	for _, bin := range workloadBins(dir) {
		if fi, err := os.Stat(bin); err != nil || !fi.Mode().IsRegular() {
			return false
		}
	}
	stamp, err := os.ReadFile(stampFile(dir))
	return err == nil && string(stamp) == workloadStamp()
}

// rtSample is one run of the workload.
type rtSample struct {
	Toolchain string `json:"toolchain"` // "stock" or "patched"
	Procs     int    `json:"procs"`
	Run       int    `json:"run"`
	// From the workload's output.
	Allocs     uint64  `json:"allocs"`
	Seconds    float64 `json:"seconds"`
	GCCycles   uint64  `json:"gcCycles"`
	AllocBytes uint64  `json:"allocBytes"`
	// From its profiles.
	MarkBitsCPU  float64 `json:"markBitsCPU"`  // share of CPU samples under newMarkBits, 0 to 1
	MarkBitsWait float64 `json:"markBitsWait"` // runtime lock wait under newMarkBits, seconds per second of run
}

// allocRate is the workload's allocations per second.
func (s rtSample) allocRate() float64 { return float64(s.Allocs) / s.Seconds }

// gcPerGB is the number of GC cycles per GB allocated.
func (s rtSample) gcPerGB() float64 { return float64(s.GCCycles) / (float64(s.AllocBytes) / 1e9) }

// rtReport is what gcbits runtime bench measured.
type rtReport struct {
	Go       string     `json:"go"` // the stock release
	CPUs     int        `json:"cpus"`
	Duration string     `json:"duration"`
	GOGC     int        `json:"gogc"`
	Live     int        `json:"live"` // the workload's live heap in bytes
	Samples  []rtSample `json:"samples"`
}

// buildWorkload writes the workload's source into a module beside bin and
// builds it with the toolchain at goroot, as the static binary bin.
func buildWorkload(ctx context.Context, goroot, bin string) error {
	src := filepath.Join(filepath.Dir(bin), "src")
	if err := os.MkdirAll(src, 0o777); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(src, "go.mod"), []byte("module workload\n\ngo "+goruntime.Series[2:]+"\n"), 0o666); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(src, "main.go"), goruntime.Workload(), 0o666); err != nil {
		return err
	}
	cmd := goCommand(ctx, goroot, "build", "-o", bin, ".")
	cmd.Dir = src
	cmd.Env = append(cmd.Env, "CGO_ENABLED=0") // static, to run on another machine
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("building the workload with %s: %w\n%s", goroot, err, out)
	}
	return nil
}

// run builds the workload with both toolchains and runs it: for each run,
// each procs value, both toolchains back to back, in alternating order.
// The profiles go to a temporary folder.
//
// With rb.bins set, the binaries are kept there (with their stamp), and
// with rb.reuse they are run as they are, without the toolchains.
func (rb *rtBench) run(ctx context.Context) (*rtReport, error) {
	tmp, err := os.MkdirTemp("", "gcbits-runtime-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	dir := rb.bins
	if dir == "" {
		dir = tmp
	}
	bins := workloadBins(dir)
	var version string
	if rb.reuse {
		info, err := buildinfo.ReadFile(bins["stock"])
		if err != nil {
			return nil, err
		}
		version = info.GoVersion
	} else {
		if version, err = goVersion(rb.stock); err != nil {
			return nil, err
		}
		os.Remove(stampFile(dir)) // binaries half rebuilt are not these
		for _, tc := range []struct{ name, root string }{{"stock", rb.stock}, {"patched", rb.patched}} {
			if err := buildWorkload(ctx, tc.root, bins[tc.name]); err != nil {
				return nil, err
			}
		}
		if err := os.WriteFile(stampFile(dir), []byte(workloadStamp()), 0o666); err != nil {
			return nil, err
		}
	}
	rep := &rtReport{Go: version, CPUs: runtime.NumCPU(), Duration: rb.duration.String(), GOGC: rb.gogc, Live: rb.live}
	total, done := rb.runs*len(rb.procs)*2, 0
	for run := range rb.runs {
		for _, procs := range rb.procs {
			order := toolchains[:]
			if run%2 == 1 {
				slices.Reverse(order)
			}
			for _, tc := range order {
				s, err := rb.runOnce(ctx, bins[tc], tmp, procs)
				if err != nil {
					return nil, fmt.Errorf("%s toolchain, GOMAXPROCS=%d: %w", tc, procs, err)
				}
				s.Toolchain, s.Procs, s.Run = tc, procs, run
				rep.Samples = append(rep.Samples, s)
				if done++; rb.progress != nil {
					rb.progress(done, total)
				}
			}
		}
	}
	return rep, nil
}

// runOnce runs the workload binary once with its profiles written to dir.
func (rb *rtBench) runOnce(ctx context.Context, bin, dir string, procs int) (rtSample, error) {
	cpu, mutex := filepath.Join(dir, "cpu.prof"), filepath.Join(dir, "mutex.prof")
	cmd := exec.CommandContext(ctx, bin, "-d", rb.duration.String(), "-gogc", fmt.Sprint(rb.gogc),
		"-live", fmt.Sprint(rb.live), "-cpuprofile", cpu, "-mutexprofile", mutex)
	cmd.Env = append(os.Environ(), fmt.Sprintf("GOMAXPROCS=%d", procs), "GODEBUG=runtimecontentionstacks=1", "GOGC=")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return rtSample{}, fmt.Errorf("workload: %w\n%s", err, stderr.Bytes())
	}
	var s rtSample
	if err := json.Unmarshal(out, &s); err != nil {
		return rtSample{}, fmt.Errorf("workload output %q: %w", out, err)
	}
	if s.Seconds <= 0 || s.AllocBytes == 0 {
		return rtSample{}, fmt.Errorf("workload output %q: no allocations measured", out)
	}
	if s.MarkBitsCPU, err = profileShare(cpu, "cpu", markBitsFuncs); err != nil {
		return rtSample{}, err
	}
	wait, err := profileTotal(mutex, "delay", markBitsFuncs)
	if err != nil {
		return rtSample{}, err
	}
	s.MarkBitsWait = wait / 1e9 / s.Seconds
	return s, nil
}

// readProfile parses the profile at path and returns the index of its
// sample type typ.
func readProfile(path, typ string) (*profile.Profile, int, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	p, err := profile.Parse(f)
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w", path, err)
	}
	for i, st := range p.SampleType {
		if st.Type == typ {
			return p, i, nil
		}
	}
	return nil, 0, fmt.Errorf("%s: no %q samples", path, typ)
}

// onStack reports whether one of fns is a frame of s's stack, inlined or
// not.
func onStack(s *profile.Sample, fns []string) bool {
	for _, loc := range s.Location {
		for _, l := range loc.Line {
			if l.Function != nil && slices.Contains(fns, l.Function.Name) {
				return true
			}
		}
	}
	return false
}

// profileSums returns the sums of the values of type typ over the
// samples with one of fns on their stacks (in) and over all samples (all).
func profileSums(path, typ string, fns []string) (in, all int64, err error) {
	p, i, err := readProfile(path, typ)
	if err != nil {
		return 0, 0, err
	}
	for _, s := range p.Sample {
		all += s.Value[i]
		if onStack(s, fns) {
			in += s.Value[i]
		}
	}
	return in, all, nil
}

// profileTotal sums the values of type typ of the samples with one of fns
// on their stacks.
func profileTotal(path, typ string, fns []string) (float64, error) {
	in, _, err := profileSums(path, typ, fns)
	return float64(in), err
}

// profileShare returns the share, from 0 to 1, of the values of type typ
// that fall on samples with one of fns on their stacks: pprof's cum% for
// fns taken together.
func profileShare(path, typ string, fns []string) (float64, error) {
	in, all, err := profileSums(path, typ, fns)
	if err != nil {
		return 0, err
	}
	if all == 0 {
		return 0, fmt.Errorf("%s: no samples", path)
	}
	return float64(in) / float64(all), nil
}

// rtMetric is one column of the table.
type rtMetric struct {
	name   string
	value  func(rtSample) float64
	format string  // of one value
	scale  float64 // applied before formatting
	plot   bool    // a panel of -plot
}

var rtMetrics = []rtMetric{
	{"M mallocs/s", rtSample.allocRate, "%.3f", 1e-6, true},
	{"GC/GB", rtSample.gcPerGB, "%.1f", 1, false},
	{"newMarkBits CPU", func(s rtSample) float64 { return s.MarkBitsCPU }, "%.2f%%", 100, true},
	{"lock wait", func(s rtSample) float64 { return s.MarkBitsWait }, "%.3f ms/s", 1e3, false},
}

// sample returns metric m of the samples of toolchain tc at procs.
func (rep *rtReport) sample(tc string, procs int, m rtMetric) *benchmath.Sample {
	var vs []float64
	for _, s := range rep.Samples {
		if s.Toolchain == tc && s.Procs == procs {
			vs = append(vs, m.value(s))
		}
	}
	return benchmath.NewSample(vs, &benchmath.DefaultThresholds)
}

// median returns the median of s, as benchstat computes it.
func median(s *benchmath.Sample) float64 {
	return benchmath.AssumeNothing.Summary(s, 0.95).Center
}

// procsList returns the GOMAXPROCS values measured, in order.
func (rep *rtReport) procsList() []int {
	var ps []int
	for _, s := range rep.Samples {
		if !slices.Contains(ps, s.Procs) {
			ps = append(ps, s.Procs)
		}
	}
	slices.Sort(ps)
	return ps
}

// writeTable prints, for each procs value, the median of each metric for
// both toolchains and the patched/stock comparison: the ratio of medians
// and benchstat's verdict (Mann-Whitney U test, alpha 0.05).
func (rep *rtReport) writeTable(w io.Writer) error {
	runs := 0
	for _, s := range rep.Samples {
		runs = max(runs, s.Run+1)
	}
	live := ""
	if rep.Live > 0 { // reports written before the field have none
		live = ", live heap " + machine.FormatBytes(float64(rep.Live))
	}
	fmt.Fprintf(w, "%s stock and patched, %d CPUs; GC-heavy workload, GOGC=%d%s, %d interleaved runs of %s each; medians\n\n",
		rep.Go, rep.CPUs, rep.GOGC, live, runs, rep.Duration)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "procs\ttoolchain\t")
	for _, m := range rtMetrics {
		fmt.Fprintf(tw, "%s\t", m.name)
	}
	fmt.Fprintln(tw)
	for _, procs := range rep.procsList() {
		var samples [2][]*benchmath.Sample // metric i of toolchain t: samples[t][i]
		for t, tc := range toolchains {
			fmt.Fprintf(tw, "%d\t%s\t", procs, tc)
			for _, m := range rtMetrics {
				s := rep.sample(tc, procs, m)
				samples[t] = append(samples[t], s)
				fmt.Fprintf(tw, m.format+"\t", median(s)*m.scale)
			}
			fmt.Fprintln(tw)
		}
		fmt.Fprintf(tw, "%d\tpatched/stock\t", procs)
		for i := range rtMetrics {
			old, new := samples[0][i], samples[1][i]
			c := benchmath.AssumeNothing.Compare(old, new)
			fmt.Fprintf(tw, "%s\t", ratioString(median(old), median(new), c))
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}

// ratioString formats new/old with benchstat's verdict: "~" when the
// samples do not differ significantly.
func ratioString(old, new float64, c benchmath.Comparison) string {
	verdict := fmt.Sprintf("p=%.3f", c.P)
	if c.P >= c.Alpha {
		verdict = "~ " + verdict
	}
	if old == 0 {
		return verdict
	}
	return fmt.Sprintf("%.2f× (%s)", new/old, verdict)
}

// readRTReport reads a report that writeJSON wrote.
func readRTReport(path string) (*rtReport, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var rep rtReport
	if err := json.Unmarshal(b, &rep); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(rep.Samples) == 0 {
		return nil, fmt.Errorf("%s: no samples", path)
	}
	for _, s := range rep.Samples {
		if (s.Toolchain != "stock" && s.Toolchain != "patched") || s.Procs < 1 || s.Seconds <= 0 || s.AllocBytes == 0 {
			return nil, fmt.Errorf("%s: a sample that gcbits runtime bench did not write: %+v", path, s)
		}
	}
	return &rep, nil
}

// writeJSON writes rep as one JSON object.
func (rep *rtReport) writeJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

// writePlot writes two panels: allocations per second and newMarkBits's
// share of CPU against GOMAXPROCS, one line per toolchain.
func (rep *rtReport) writePlot(path string) error {
	if len(rep.Samples) == 0 {
		return errors.New("no samples to plot")
	}
	var plots []*plot.Plot
	for _, m := range rtMetrics {
		if !m.plot {
			continue
		}
		p := plot.New()
		p.Title.Text = m.name
		p.X.Label.Text = "GOMAXPROCS"
		p.Y.Min = 0
		p.Legend.Top = true
		p.X.Tick.Marker = intTicks(rep.procsList())
		for j, tc := range toolchains {
			var xys plotter.XYs
			for _, procs := range rep.procsList() {
				xys = append(xys, plotter.XY{X: float64(procs), Y: median(rep.sample(tc, procs, m)) * m.scale})
			}
			if err := addLine(p, tc, j, false, xys); err != nil {
				return err
			}
		}
		plots = append(plots, p)
	}
	return writePanels(plots, path)
}
