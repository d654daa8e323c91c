package bench

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"runtime"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/perf/benchmath"

	"github.com/gcbits/gcbits/cmd/gcbits/internal/machine"
)

// Result is one row: an allocator with a number of workers in a scenario.
type Result struct {
	Allocator string  `json:"allocator"`
	Workers   int     `json:"workers"`
	Scenario  string  `json:"scenario"`
	Mops      float64 `json:"mops"` // median over the runs, millions of allocations (sweep: spans) per second
	// MopsLo and MopsHi bound the 95% confidence interval of Mops, as
	// benchstat computes it (golang.org/x/perf/benchmath, no assumption
	// on the distribution); absent with fewer than 6 runs, too few for one.
	MopsLo *float64 `json:"mops_lo,omitempty"`
	MopsHi *float64 `json:"mops_hi,omitempty"`
	// Ratio is Mops over the Mops of seed-after in the same scenario with
	// the same workers; absent when seed-after was not measured.
	Ratio *float64 `json:"ratio,omitempty"`
	// Unsafe marks rows whose allocator does not keep its contract in the
	// scenario: seed-after with a concurrent Advance, sync.Pool always.
	// They are measured for reference; their bitmaps may overlap.
	Unsafe bool      `json:"unsafe"`
	Runs   []float64 `json:"runs"` // Mop/s of every run, in order
	// Dirty counts, over all runs, bitmaps whose first word was not zero
	// when handed out: memory some other bitmap was still using. Measured
	// in the quiescent warm-up of allocators that keep the lifetime rule,
	// where any count means the rule broke.
	Dirty uint64 `json:"dirty"`
	// Capped counts, over all runs of the concurrent scenario, the times a
	// worker reached ConcurrentEpochCap in a timed epoch and waited for
	// Advance: such a row measures the cap, not the allocator.
	Capped uint64 `json:"capped"`
	// Epochs is the median number of Advances in a run.
	Epochs int `json:"epochs"`
	// CPUs is the median over the runs of the CPU time the process used
	// during the timed part over its wall time: how many CPUs the run
	// really had (0 where unknown). Well below the worker count means
	// the machine was busy with something else, or workers waited.
	CPUs float64 `json:"cpu_used"`
	// MopsPerCPU is the median over the runs of the operations per CPU
	// second of the process (millions): throughput that a busy machine
	// does not dilute, though it also charges the CPU spent waiting at
	// barriers and locks (0 where unknown).
	MopsPerCPU float64 `json:"mops_per_cpu"`
	// BytesPerOp is the bitmap bytes handed out per operation.
	BytesPerOp float64 `json:"bytes_per_op"`
	// WastePct is the median over the runs of the allocator's
	// WastedBytes / AllocatedBytes, in percent: gcbits and gcbits-cache.
	WastePct *float64 `json:"waste_pct,omitempty"`
	// NoopMops is the sweep's no-op baseline with the same workers: the
	// same sweep with a bump through preallocated zero memory instead of
	// an allocator. NoopMopsPerCPU is its MopsPerCPU.
	NoopMops       *float64 `json:"noop_mops,omitempty"`
	NoopMopsPerCPU *float64 `json:"noop_mops_per_cpu,omitempty"`
	// AllocPct is the allocator's share of the sweep's time in percent,
	// 100 * (1 - t_noop/t_alloc), with t the CPU time per span, which a
	// busy machine does not inflate the way it does wall time (where CPU
	// time is unknown, the wall time per span): the median over rounds,
	// each allocator run against the no-op run of its own round.
	AllocPct *float64 `json:"alloc_pct,omitempty"`

	samples   []sample  // the runs, for WriteBenchfmt
	allocPcts []float64 // sweep: the share of each run, NaN where unknown
}

// cappedPct is the share, in percent, of the row's worker-epochs in
// which a worker waited at ConcurrentEpochCap.
func (x Result) cappedPct() float64 {
	n := len(x.Runs) * x.Workers * max(x.Epochs, 1)
	return 100 * float64(x.Capped) / float64(max(n, 1))
}

// Report is the output of Run.
type Report struct {
	CPUs         int     `json:"cpus"`          // runtime.NumCPU()
	CPU          string  `json:"cpu,omitempty"` // the processor's name, where the system tells
	Go           string  `json:"go"`            // runtime.Version()
	GOMAXPROCS   int     `json:"gomaxprocs"`
	GOOS         string  `json:"goos"`
	GOARCH       string  `json:"goarch"`
	Runs         int     `json:"runs"`
	Duration     string  `json:"duration"`      // of one run
	EpochAllocs  int     `json:"epoch_allocs"`  // quiescent: per worker per epoch
	AdvanceEvery string  `json:"advance_every"` // concurrent: Advance period
	SweepSpans   int     `json:"sweep_spans"`   // sweep: spans per epoch
	MixBytes     float64 `json:"mix_bytes"`     // average bitmap of the size-class mix
	Wall         string  `json:"wall"`          // time Run took
	// Estimate is the most memory a run could hold at once, as checked
	// before Run starts (see Estimate); PeakRSS is the most the process
	// held (0 where the system does not tell), both in bytes.
	Estimate uint64   `json:"estimate_bytes"`
	PeakRSS  uint64   `json:"peak_rss_bytes"`
	Results  []Result `json:"results"`
}

// Run measures every (scenario, workers, allocator) of cfg, cfg.Runs times
// each. The runs of one (scenario, workers) interleave the allocators, so
// that a slow phase of a noisy machine hits them all alike. Every run uses
// a fresh allocator. An allocator error ends Run with that error.
func Run(cfg Config) (*Report, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := checkMemory(cfg); err != nil {
		return nil, err
	}
	t0 := time.Now()
	rep := &Report{
		CPUs:         runtime.NumCPU(),
		CPU:          machine.CPUName(),
		Go:           runtime.Version(),
		GOMAXPROCS:   runtime.GOMAXPROCS(0),
		GOOS:         runtime.GOOS,
		GOARCH:       runtime.GOARCH,
		Runs:         cfg.Runs,
		Duration:     cfg.Duration.String(),
		EpochAllocs:  cfg.EpochAllocs,
		AdvanceEvery: cfg.AdvanceEvery.String(),
		SweepSpans:   cfg.SweepSpans,
		MixBytes:     mixBytes(),
		Estimate:     clampBytes(estimate(cfg).bytes),
	}
	total := 0
	for _, sc := range cfg.Scenarios {
		n := len(cfg.Allocators)
		if sc == Sweep {
			n = len(sweepable(cfg.Allocators)) + 1
		}
		total += n * len(cfg.Workers) * cfg.Runs
	}
	done := 0
	var spans []span
	for _, sc := range cfg.Scenarios {
		names := cfg.Allocators
		if sc == Sweep {
			names = sweepable(cfg.Allocators)
			if spans == nil {
				spans = newSpans(cfg.SweepSpans)
			}
		}
		for _, w := range cfg.Workers {
			samples := make([][]sample, len(names))
			var noop []sample
			for range cfg.Runs {
				for i, name := range names {
					s, err := measure(name, sc, w, spans, cfg)
					if err != nil {
						return nil, fmt.Errorf("%s, %d workers, %s: %w", name, w, sc, err)
					}
					samples[i] = append(samples[i], s)
					done++
					if cfg.Progress != nil {
						cfg.Progress(done, total)
					}
				}
				if sc == Sweep {
					runtime.GC()
					s, err := runSweep(nil, spans, w, cfg)
					if err != nil {
						return nil, fmt.Errorf("noop, %d workers, sweep: %w", w, err)
					}
					noop = append(noop, s)
					done++
					if cfg.Progress != nil {
						cfg.Progress(done, total)
					}
				}
			}
			rep.Results = append(rep.Results, rows(names, sc, w, samples, noop)...)
		}
	}
	rep.Wall = time.Since(t0).Round(time.Millisecond).String()
	rep.PeakRSS = machine.PeakRSS()
	return rep, nil
}

// sweepable drops the allocators whose bitmaps cannot be kept in a span:
// sync.Pool's are back in the pool before Alloc returns, so the sweep
// would read memory that other workers are clearing.
func sweepable(names []string) []string {
	var out []string
	for _, n := range names {
		if f, _ := Lookup(n); f.Epochal {
			out = append(out, n)
		}
	}
	return out
}

// measure does one run of allocator name.
func measure(name, scenario string, workers int, spans []span, cfg Config) (s sample, err error) {
	f, _ := Lookup(name)
	// Garbage left by the previous run (make's, above all) is collected
	// now, untimed, not during this run.
	runtime.GC()
	a, err := f.New()
	if err != nil {
		return sample{}, err
	}
	defer func() {
		if cerr := a.Close(); err == nil && cerr != nil {
			err = cerr
		}
	}()
	if scenario == Sweep {
		return runSweep(a, spans, workers, cfg)
	}
	return runAlloc(a, f, scenario, workers, cfg)
}

// allocPcts returns, round by round, the share of a span's sweep time
// that the allocator adds over the no-op, in percent: 1 - t_noop/t_alloc,
// with t the CPU time per span, or the wall time per span when some run
// lacks CPU time (never a mix of the two). Each run of the allocator is
// paired with the no-op run of the same round (made after all the
// allocators' runs of that round), so that a slow spell of a shared
// machine weighs on both sides of a share. Element k belongs to runs[k];
// it is NaN where the round has no share.
func allocPcts(runs, noop []sample) []float64 {
	n := min(len(runs), len(noop))
	useCPU := true
	for k := range n {
		useCPU = useCPU && runs[k].cpu > 0 && noop[k].cpu > 0
	}
	perSpan := func(s sample) float64 {
		if s.ops == 0 {
			return 0
		}
		if useCPU {
			return s.cpu.Seconds() / float64(s.ops)
		}
		return s.elapsed.Seconds() / float64(s.ops)
	}
	pcts := make([]float64, len(runs))
	for k := range pcts {
		pcts[k] = math.NaN()
		if k < n {
			if tA, tN := perSpan(runs[k]), perSpan(noop[k]); tA > 0 && tN > 0 {
				pcts[k] = 100 * (1 - tN/tA)
			}
		}
	}
	return pcts
}

// allocPct is the median of the rounds' shares that allocPcts returned,
// and false when no round has one. It leaves pcts as it is.
func allocPct(pcts []float64) (float64, bool) {
	known := slices.DeleteFunc(slices.Clone(pcts), math.IsNaN)
	if len(known) == 0 {
		return 0, false
	}
	return median(known), true
}

// rows turns the samples of one (scenario, workers) into results.
func rows(names []string, scenario string, workers int, samples [][]sample, noop []sample) []Result {
	out := make([]Result, len(names))
	for i, name := range names {
		f, _ := Lookup(name)
		r := Result{
			Allocator: name,
			Workers:   workers,
			Scenario:  scenario,
			Unsafe:    !f.Epochal || (scenario == Concurrent && !f.ConcurrentAdvance),
		}
		r.samples = samples[i]
		var epochs, bpo, waste, cpus, perCPU []float64
		acct := false
		for _, s := range samples[i] {
			r.Runs = append(r.Runs, round3(s.mops()))
			r.Dirty += s.dirty
			r.Capped += s.capped
			epochs = append(epochs, float64(s.epochs))
			if s.elapsed > 0 {
				cpus = append(cpus, s.cpu.Seconds()/s.elapsed.Seconds())
			}
			if s.cpu > 0 {
				perCPU = append(perCPU, float64(s.ops)/s.cpu.Seconds()/1e6)
			}
			if s.ops > 0 {
				bpo = append(bpo, float64(s.words*8)/float64(s.ops))
			}
			if s.acct {
				acct = true
				if s.alloc > 0 {
					waste = append(waste, 100*float64(s.wasted)/float64(s.alloc))
				}
			}
		}
		sum := summarize(r.Runs)
		r.Mops = round3(sum.Center)
		if !math.IsInf(sum.Lo, 0) && !math.IsInf(sum.Hi, 0) {
			r.MopsLo, r.MopsHi = new(round3(sum.Lo)), new(round3(sum.Hi))
		}
		r.Epochs = int(median(epochs))
		r.CPUs = float64(int(median(cpus)*100+0.5)) / 100
		r.MopsPerCPU = round3(median(perCPU))
		r.BytesPerOp = round3(median(bpo))
		if acct {
			r.WastePct = new(round3(median(waste)))
		}
		if noop != nil {
			var nm, nc []float64
			for _, s := range noop {
				nm = append(nm, s.mops())
				if s.cpu > 0 {
					nc = append(nc, float64(s.ops)/s.cpu.Seconds()/1e6)
				}
			}
			m, mc := median(nm), median(nc)
			r.NoopMops = new(round3(m))
			if mc > 0 {
				r.NoopMopsPerCPU = new(round3(mc))
			}
			pcts := allocPcts(samples[i], noop)
			if pct, ok := allocPct(pcts); ok {
				r.AllocPct = new(round3(pct))
				r.allocPcts = pcts
			}
		}
		out[i] = r
	}
	if j := slices.Index(names, Reference); j >= 0 && out[j].Mops > 0 {
		for i := range out {
			out[i].Ratio = new(round3(out[i].Mops / out[j].Mops))
		}
	}
	return out
}

// confidence is the level of the confidence intervals: benchstat's.
const confidence = 0.95

// summarize returns the median of xs and its confidence interval at the
// level confidence, from golang.org/x/perf/benchmath with no assumption on
// the distribution, as benchstat computes them. The interval is infinite
// for fewer than 6 values; the summary is zero for none. xs is not
// modified.
func summarize(xs []float64) benchmath.Summary {
	if len(xs) == 0 {
		return benchmath.Summary{}
	}
	s := benchmath.NewSample(slices.Clone(xs), &benchmath.DefaultThresholds)
	return benchmath.AssumeNothing.Summary(s, confidence)
}

// median returns the median of xs, or 0 for none.
func median(xs []float64) float64 { return summarize(xs).Center }

// round3 keeps three decimals, enough for the table and the JSON.
func round3(x float64) float64 {
	const k = 1000
	if x >= 0 {
		return float64(int64(x*k+0.5)) / k
	}
	return -float64(int64(-x*k+0.5)) / k
}

// WriteJSON writes r as one JSON object.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteTable writes r as an aligned text table with a header that states
// the setup.
func (r *Report) WriteTable(w io.Writer) error {
	var b strings.Builder
	cpu := ""
	if r.CPU != "" {
		cpu = " (" + r.CPU + ")"
	}
	fmt.Fprintf(&b, "gcbits bench: %s %s/%s, %d CPUs%s, GOMAXPROCS %d; runs: %d of %s each, median Mop/s and its 95%% confidence interval\n",
		r.Go, r.GOOS, r.GOARCH, r.CPUs, cpu, r.GOMAXPROCS, r.Runs, r.Duration)
	fmt.Fprintf(&b, "mix: %d size classes, one span's bitmap each, %.1f bytes on average\n", len(Mix()), r.MixBytes)
	fmt.Fprintf(&b, "epochs: quiescent every %d allocations per worker; concurrent every %s; sweep every %d spans; %d untimed first (%d concurrent)\n",
		r.EpochAllocs, r.AdvanceEvery, r.SweepSpans, WarmEpochs, ConcurrentWarmEpochs)
	tab := [][]string{{"allocator", "workers", "scenario", "Mop/s", "95% CI", "vs " + Reference, "waste %", "alloc %", "epochs", "CPUs", ""}}
	unsafe := false
	for i, x := range r.Results {
		if i > 0 && x.Scenario != r.Results[i-1].Scenario {
			tab = append(tab, nil)
		}
		note := ""
		if x.Unsafe {
			note = "unsafe"
			unsafe = true
		}
		if x.Dirty > 0 {
			note += fmt.Sprintf(" %d dirty", x.Dirty)
		}
		if x.Capped > 0 {
			note += fmt.Sprintf(" capped %.1f%%", x.cappedPct())
		}
		note = strings.TrimSpace(note)
		tab = append(tab, []string{
			x.Allocator, fmt.Sprint(x.Workers), x.Scenario, fmt.Sprintf("%.2f", x.Mops),
			ci(x), optf(x.Ratio, "%.2f×"), optf(x.WastePct, "%.2f"),
			optf(x.AllocPct, "%.1f"), fmt.Sprint(x.Epochs), fmt.Sprintf("%.2f", x.CPUs), note,
		})
	}
	writeColumns(&b, tab, map[int]bool{0: true, 2: true, 10: true})
	for _, l := range scalingLines(r.Results) {
		b.WriteString(l + "\n")
	}
	if unsafe {
		b.WriteString("unsafe: the allocator's contract does not hold in that row (seed-after needs a stopped world to Advance;\n" +
			"  sync.Pool hands back memory it has already taken back); measured for reference only.\n")
	}
	if slices.ContainsFunc(r.Results, func(x Result) bool { return x.Dirty > 0 }) {
		b.WriteString("dirty: bitmaps whose first word was already set when handed out, in the quiescent warm-up (every\n" +
			"  worker sets bit 0 of each there): the allocator broke its lifetime rule.\n")
	}
	if slices.ContainsFunc(r.Results, func(x Result) bool { return x.Capped > 0 }) {
		fmt.Fprintf(&b, "capped: the share of worker-epochs in which a worker reached %d×-epoch allocations and waited for\n"+
			"  Advance; the more there are, the more the row measures that bound rather than the allocator (a larger\n"+
			"  -epoch, or a shorter -advance-every, lifts it).\n", ConcurrentEpochCap)
	}
	if slices.ContainsFunc(r.Results, func(x Result) bool { return x.AllocPct != nil }) {
		b.WriteString("sweep: Mop/s counts spans swept; alloc % = 1 - t_noop/t_alloc, the share of a span's sweep time that\n" +
			"  the allocator adds over a no-op that bumps through preallocated zero memory: the median over rounds\n" +
			"  of CPU time per span, each allocator run against the no-op run of its round (noise can still make it <0).\n")
	}
	if slices.ContainsFunc(r.Results, func(x Result) bool { return x.Scenario == Concurrent }) {
		b.WriteString("epochs: median Advances in a timed run. The concurrent scenario's Advance runs on a goroutine of its\n" +
			"  own, with one more P than there are workers so that it keeps its period for every allocator.\n")
	}
	if ws := summarize(make([]float64, r.Runs)).Warnings; len(ws) > 0 {
		fmt.Fprintf(&b, "95%% CI: ∞ with %d runs: %v (-runs)\n", r.Runs, errors.Join(ws...))
	}
	b.WriteString("CPUs: median CPU time the process used per second of a timed run; below the worker count the run\n" +
		"  did not have the CPUs it asked for (a busy machine, or workers waiting at barriers and locks).\n")
	if r.PeakRSS > 0 {
		fmt.Fprintf(&b, "memory: peak RSS %s, against %s estimated before the run\n", machine.FormatBytes(float64(r.PeakRSS)), machine.FormatBytes(float64(r.Estimate)))
	}
	fmt.Fprintf(&b, "wall time %s\n", r.Wall)
	_, err := io.WriteString(w, b.String())
	return err
}

// scalingLines says, per scenario, how each allocator's Mop/s at the most
// workers compares with the next smaller worker count (16 against 8 on a
// 16-core machine): below 1× the allocator got slower as cores joined.
func scalingLines(rs []Result) []string {
	type key struct{ scenario, alloc string }
	byWorkers := map[key]map[int]float64{}
	var order []key
	for _, x := range rs {
		k := key{x.Scenario, x.Allocator}
		if byWorkers[k] == nil {
			byWorkers[k] = map[int]float64{}
			order = append(order, k)
		}
		byWorkers[k][x.Workers] = x.Mops
	}
	var lines []string
	var cur string
	for _, k := range order {
		ws := slices.Sorted(maps.Keys(byWorkers[k]))
		if len(ws) < 2 {
			continue
		}
		hi, lo := ws[len(ws)-1], ws[len(ws)-2]
		if byWorkers[k][lo] <= 0 {
			continue
		}
		ratio := byWorkers[k][hi] / byWorkers[k][lo]
		item := fmt.Sprintf("%s %.2f×", k.alloc, ratio)
		if ratio < 1 {
			item += " (slower)"
		}
		head := fmt.Sprintf("scaling, %s, %d against %d workers: ", k.scenario, hi, lo)
		if head != cur {
			lines = append(lines, head+item)
			cur = head
		} else {
			lines[len(lines)-1] += ", " + item
		}
	}
	return lines
}

// ci formats the confidence interval of x's Mop/s, or "∞" where there
// were too few runs for one.
func ci(x Result) string {
	if x.MopsLo == nil || x.MopsHi == nil {
		return "∞"
	}
	return fmt.Sprintf("%.1f–%.1f", *x.MopsLo, *x.MopsHi)
}

func optf(p *float64, format string) string {
	if p == nil {
		return "-"
	}
	return fmt.Sprintf(format, *p)
}

// writeColumns writes rows of cells in columns two spaces apart, numbers
// right-aligned and the columns in left left-aligned. A nil row is an
// empty line.
func writeColumns(b *strings.Builder, tab [][]string, left map[int]bool) {
	var width []int
	for _, row := range tab {
		for j, c := range row {
			if j == len(width) {
				width = append(width, 0)
			}
			width[j] = max(width[j], utf8.RuneCountInString(c))
		}
	}
	for _, row := range tab {
		var line strings.Builder
		for j, c := range row {
			pad := strings.Repeat(" ", width[j]-utf8.RuneCountInString(c))
			if j > 0 {
				line.WriteString("  ")
			}
			if left[j] {
				line.WriteString(c + pad)
			} else {
				line.WriteString(pad + c)
			}
		}
		b.WriteString(strings.TrimRight(line.String(), " ") + "\n")
	}
}
