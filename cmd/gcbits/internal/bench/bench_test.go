package bench

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"runtime"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"
	"unsafe"
)

// quick is a configuration small enough for tests under -race.
func quick() Config {
	return Config{
		Workers:      []int{1, 2},
		Runs:         2,
		Duration:     3 * time.Millisecond,
		EpochAllocs:  1024,
		AdvanceEvery: 200 * time.Microsecond,
		SweepSpans:   1024,
	}
}

// TestMix checks the request mix against entries of Go's size-class
// table (src/internal/runtime/gc/sizeclasses.go: objects per span).
func TestMix(t *testing.T) {
	mix := Mix()
	if len(mix) != 67 {
		t.Fatalf("%d size classes, want 67", len(mix))
	}
	for _, c := range []struct{ class, objects int }{{1, 1024}, {3, 341}, {5, 170}, {35, 11}, {50, 7}, {67, 1}} {
		if got := mix[c.class-1]; got != c.objects {
			t.Errorf("class %d: %d objects, want %d", c.class, got, c.objects)
		}
	}
	if b := mixBytes(); b < 12 || b > 13 {
		t.Errorf("mix averages %.2f bytes, want about 12.3", b)
	}
}

// region is a bitmap's address range.
type region struct{ start, end uintptr }

func addr(b []uint64) region {
	p := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	return region{p, p + uintptr(len(b))*8}
}

// TestAllocators checks every allocator through the interfaces: lengths,
// zeroed memory, errors, and for the epochal ones that the bitmaps of two
// workers over an epoch and its successor are disjoint.
func TestAllocators(t *testing.T) {
	sizes := append(Mix(), 1, 63, 64, 65, 128, 129, 4096)
	for _, f := range Factories {
		t.Run(f.Name, func(t *testing.T) {
			a, err := f.New()
			if err != nil {
				t.Fatal(err)
			}
			ws := []Worker{a.NewWorker(), a.NewWorker()}
			var live [][]uint64
			for epoch := range 3 {
				for round := range 3 {
					for i, n := range sizes {
						w := ws[(i+round)%2]
						b, err := w.Alloc(n)
						if err != nil {
							t.Fatalf("Alloc(%d): %v", n, err)
						}
						if want := (n + 63) / 64; len(b) != want {
							t.Fatalf("Alloc(%d): %d words, want %d", n, len(b), want)
						}
						for k, x := range b {
							if x != 0 {
								t.Fatalf("epoch %d: Alloc(%d): word %d = %#x, want 0", epoch, n, k, x)
							}
						}
						if f.Epochal {
							for k := range b {
								b[k] = ^uint64(0)
							}
							live = append(live, b)
						}
					}
				}
				if f.Epochal {
					checkDisjoint(t, live)
				}
				if epoch == 1 {
					live = nil // keep two epochs live at a time
				}
				a.Advance()
			}
			if b, err := ws[0].Alloc(0); err != nil || len(b) != 0 {
				t.Errorf("Alloc(0) = %d words, %v; want none, nil", len(b), err)
			}
			if _, err := ws[0].Alloc(-1); err == nil {
				t.Errorf("Alloc(-1) gave no error")
			}
			for _, w := range ws {
				if fl, ok := w.(Flusher); ok {
					fl.Flush()
				}
			}
			if ac, ok := a.(Accounter); ok {
				if alloc, _ := ac.Account(); alloc == 0 {
					t.Errorf("Account: nothing allocated")
				}
			}
			if err := a.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func checkDisjoint(t *testing.T, live [][]uint64) {
	t.Helper()
	rs := make([]region, len(live))
	for i, b := range live {
		rs[i] = addr(b)
	}
	slices.SortFunc(rs, func(x, y region) int { return int(x.start - y.start) })
	for i := 1; i < len(rs); i++ {
		if rs[i].start < rs[i-1].end {
			t.Fatalf("bitmaps overlap: [%#x, %#x) and [%#x, %#x)", rs[i-1].start, rs[i-1].end, rs[i].start, rs[i].end)
		}
	}
}

func TestFactories(t *testing.T) {
	want := []string{"seed-before", "seed-after", "gcbits", "gcbits-cache", "make", "sync.Pool"}
	if got := Names(); !slices.Equal(got, want) {
		t.Errorf("Names() = %v, want %v", got, want)
	}
	for _, c := range []struct {
		name             string
		epochal, advance bool
	}{
		{"seed-before", true, true},
		{"seed-after", true, false},
		{"gcbits", true, true},
		{"gcbits-cache", true, true},
		{"make", true, true},
		{"sync.Pool", false, true},
	} {
		f, ok := Lookup(c.name)
		if !ok || f.Epochal != c.epochal || f.ConcurrentAdvance != c.advance || f.Doc == "" {
			t.Errorf("Lookup(%q) = %+v, %v", c.name, f, ok)
		}
	}
	if _, ok := Lookup("nope"); ok {
		t.Error("Lookup(nope) found something")
	}
}

func TestNoopWorker(t *testing.T) {
	w := &noopWorker{noopFields: noopFields{buf: make([]uint64, 10)}}
	var got []int
	for _, n := range []int{64 * 4, 64 * 4, 64 * 4, 1, 0} {
		b, err := w.Alloc(n)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, len(b))
	}
	if !slices.Equal(got, []int{4, 4, 4, 1, 0}) || w.pos != 5 {
		t.Errorf("lengths %v, pos %d", got, w.pos)
	}
	// Workers write pos on every Alloc: they must not share cache lines.
	if n := unsafe.Sizeof(noopWorker{}); n%cacheLine != 0 {
		t.Errorf("noopWorker is %d bytes, not a multiple of %d", n, cacheLine)
	}
}

// TestSummarize checks the medians and confidence intervals that come
// from benchmath: the median of an even count is the mean of the middle
// two, 6 values give a 95% interval (the extremes, at 96.9%), 5 do not.
func TestSummarize(t *testing.T) {
	for _, c := range []struct {
		xs     []float64
		median float64
	}{
		{nil, 0},
		{[]float64{3}, 3},
		{[]float64{5, 1, 3}, 3},
		{[]float64{4, 1, 3, 2}, 2.5},
		{[]float64{2, 2, 9, 1, 100}, 2},
	} {
		in := slices.Clone(c.xs)
		if got := median(c.xs); got != c.median {
			t.Errorf("median(%v) = %v, want %v", c.xs, got, c.median)
		}
		if !slices.Equal(in, c.xs) {
			t.Errorf("median modified its input: %v", c.xs)
		}
	}
	s := summarize([]float64{6, 2, 4, 1, 5, 3})
	if s.Center != 3.5 || s.Lo != 1 || s.Hi != 6 || s.Confidence < 0.95 || len(s.Warnings) != 0 {
		t.Errorf("6 runs: %+v", s)
	}
	s = summarize([]float64{5, 2, 4, 1, 3})
	if s.Center != 3 || !(math.IsInf(s.Lo, 0) || math.IsInf(s.Hi, 0)) || len(s.Warnings) == 0 {
		t.Errorf("5 runs: %+v", s)
	}
}

// ms is a sample of ops operations in one millisecond: ops/1000 Mop/s.
func ms(ops uint64) sample { return sample{ops: ops, elapsed: time.Millisecond, words: ops} }

func TestRows(t *testing.T) {
	names := []string{"seed-after", "gcbits", "sync.Pool"}
	g := func(ops, alloc, wasted uint64) sample {
		s := ms(ops)
		s.acct, s.alloc, s.wasted = true, alloc, wasted
		return s
	}
	samples := [][]sample{
		{ms(10000), ms(30000), ms(20000)},                            // median 20 Mop/s
		{g(50000, 1000, 10), g(40000, 1000, 30), g(90000, 1000, 20)}, // median 50, waste 2%
		{ms(1000), ms(2000), ms(3000)},                               // median 2
	}
	for _, sc := range []string{Quiescent, Concurrent} {
		rs := rows(names, sc, 2, samples, nil)
		if len(rs) != 3 {
			t.Fatalf("%d rows", len(rs))
		}
		for i, want := range []struct {
			mops, ratio float64
			unsafe      bool
		}{{20, 1, sc == Concurrent}, {50, 2.5, false}, {2, 0.1, true}} {
			r := rs[i]
			if r.Allocator != names[i] || r.Workers != 2 || r.Scenario != sc {
				t.Errorf("row %d: %+v", i, r)
			}
			if r.Mops != want.mops || r.Ratio == nil || *r.Ratio != want.ratio || r.Unsafe != want.unsafe {
				t.Errorf("%s row %d: mops %v ratio %v unsafe %v; want %+v", sc, i, r.Mops, optf(r.Ratio, "%v"), r.Unsafe, want)
			}
			if len(r.Runs) != 3 || r.BytesPerOp != 8 {
				t.Errorf("row %d: runs %v, %v bytes/op", i, r.Runs, r.BytesPerOp)
			}
			if (r.WastePct != nil) != (i == 1) || (i == 1 && *r.WastePct != 2) {
				t.Errorf("row %d: waste %s", i, optf(r.WastePct, "%v"))
			}
			if r.AllocPct != nil || r.NoopMops != nil {
				t.Errorf("row %d: sweep fields outside the sweep", i)
			}
		}
	}
	if r := rows(names, Quiescent, 2, samples, nil)[0]; r.MopsLo != nil || r.MopsHi != nil {
		t.Errorf("3 runs: confidence interval %s–%s", optf(r.MopsLo, "%v"), optf(r.MopsHi, "%v"))
	}
	six := [][]sample{{ms(10000), ms(30000), ms(20000), ms(15000), ms(25000), ms(12000)}}
	if r := rows(names[:1], Quiescent, 1, six, nil)[0]; r.Mops != 17.5 || r.MopsLo == nil || *r.MopsLo != 10 || *r.MopsHi != 30 {
		t.Errorf("6 runs: %v Mop/s in %s–%s, want 17.5 in 10–30", r.Mops, optf(r.MopsLo, "%v"), optf(r.MopsHi, "%v"))
	}
	// Without seed-after there is no ratio.
	rs := rows(names[1:], Quiescent, 1, samples[1:], nil)
	if rs[0].Ratio != nil {
		t.Errorf("ratio %v without %s", *rs[0].Ratio, Reference)
	}
	// The sweep's share: noop at 100 Mop/s, the allocator at 50: half the
	// time per span is the allocator's.
	rs = rows(names[:2], Sweep, 1, samples[:2], []sample{ms(100000), ms(100000), ms(1)})
	if r := rs[1]; r.NoopMops == nil || *r.NoopMops != 100 || r.AllocPct == nil || *r.AllocPct != 50 {
		t.Errorf("sweep row: noop %s, alloc %s", optf(r.NoopMops, "%v"), optf(r.AllocPct, "%v"))
	}
	// With CPU times the share comes from them: 10000 spans in 1 ms of
	// wall time each, but the no-op used 0.5 ms of CPU and the allocator
	// 2 ms, so 3/4 of the allocator's CPU time per span is its own.
	withCPU := func(cpu time.Duration) sample { s := ms(10000); s.cpu = cpu; return s }
	rs = rows([]string{"gcbits"}, Sweep, 1, [][]sample{{withCPU(2 * time.Millisecond)}}, []sample{withCPU(time.Millisecond / 2)})
	if r := rs[0]; r.MopsPerCPU != 5 || r.CPUs != 2 || *r.NoopMopsPerCPU != 20 || *r.AllocPct != 75 || *r.NoopMops != 10 {
		t.Errorf("sweep row with CPU times: %+v", r)
	}
}

func TestConfigErrors(t *testing.T) {
	if err := Check(Config{}); err != nil {
		t.Errorf("defaults: %v", err)
	}
	for _, c := range []Config{
		{Workers: []int{0}},
		{Workers: []int{MaxWorkers + 1}},
		{Workers: []int{}},
		{Workers: []int{2, 1, 2}},
		{Allocators: []string{"gcbits", "gcbits"}},
		{Scenarios: []string{Sweep, Quiescent, Sweep}},
		{Allocators: []string{"nope"}},
		{Allocators: []string{}},
		{Scenarios: []string{"nope"}},
		{Scenarios: []string{}},
		{Runs: -1},
		{Duration: -time.Second},
		{Duration: time.Hour},
		{EpochAllocs: -1},
		{AdvanceEvery: -1},
		{SweepSpans: -1},
	} {
		if err := Check(c); err == nil {
			t.Errorf("Check(%+v) = nil", c)
		}
		if _, err := Run(c); err == nil {
			t.Errorf("Run(%+v) = nil error", c)
		}
	}
}

func TestDefaultWorkers(t *testing.T) {
	w := DefaultWorkers()
	p := runtime.GOMAXPROCS(0)
	if w[0] != 1 || w[len(w)-1] != p {
		t.Errorf("DefaultWorkers() = %v with GOMAXPROCS %d", w, p)
	}
	for i := 1; i < len(w); i++ {
		if w[i] <= w[i-1] || (i < len(w)-1 && w[i] != 2*w[i-1]) {
			t.Errorf("DefaultWorkers() = %v", w)
		}
	}
}

// TestRun runs every scenario of every allocator briefly and checks the
// shape of the report.
func TestRun(t *testing.T) {
	cfg := quick()
	calls, last := 0, 0
	cfg.Progress = func(done, total int) { calls++; last = total }
	rep, err := Run(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// 6 allocators in two scenarios, 5 in the sweep, twice; plus the
	// sweep's no-op runs.
	if len(rep.Results) != (6+6+5)*2 {
		t.Fatalf("%d results", len(rep.Results))
	}
	if want := (6 + 6 + 6) * 2 * cfg.Runs; calls != want || last != want {
		t.Errorf("progress called %d times, total %d; want %d", calls, last, want)
	}
	if rep.CPUs != runtime.NumCPU() || rep.Go != runtime.Version() || rep.Runs != 2 {
		t.Errorf("report header %+v", rep)
	}
	for _, r := range rep.Results {
		f, _ := Lookup(r.Allocator)
		if len(r.Runs) != cfg.Runs || r.Mops <= 0 || r.Ratio == nil || r.BytesPerOp <= 0 {
			t.Errorf("%+v", r)
		}
		if r.Allocator == Reference && *r.Ratio != 1 {
			t.Errorf("%s ratio %v", Reference, *r.Ratio)
		}
		wantUnsafe := r.Allocator == "sync.Pool" || (r.Allocator == "seed-after" && r.Scenario == Concurrent)
		if r.Unsafe != wantUnsafe {
			t.Errorf("%s %s: unsafe %v", r.Allocator, r.Scenario, r.Unsafe)
		}
		if (r.WastePct != nil) != strings.HasPrefix(r.Allocator, "gcbits") {
			t.Errorf("%s: waste %s", r.Allocator, optf(r.WastePct, "%v"))
		}
		if (r.AllocPct != nil) != (r.Scenario == Sweep) || (r.NoopMops != nil) != (r.Scenario == Sweep) {
			t.Errorf("%s %s: sweep fields %s %s", r.Allocator, r.Scenario, optf(r.AllocPct, "%v"), optf(r.NoopMops, "%v"))
		}
		if r.Scenario == Sweep && !f.Epochal {
			t.Errorf("%s in the sweep", r.Allocator)
		}
		if !r.Unsafe && r.Dirty != 0 {
			t.Errorf("%s %s: %d dirty bitmaps", r.Allocator, r.Scenario, r.Dirty)
		}
		if r.Scenario != Concurrent && r.Epochs < 1 {
			t.Errorf("%s %s: %d epochs", r.Allocator, r.Scenario, r.Epochs)
		}
	}
	var buf bytes.Buffer
	if err := rep.WriteTable(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, s := range []string{"allocator", "gcbits-cache", "quiescent", "concurrent", "sweep", "unsafe", "wall time"} {
		if !strings.Contains(out, s) {
			t.Errorf("table lacks %q:\n%s", s, out)
		}
	}
}

func TestJSON(t *testing.T) {
	rep := &Report{CPUs: 2, Go: "go1.26.8", Results: []Result{
		{Allocator: "seed-after", Workers: 2, Scenario: Quiescent, Mops: 12.3, Ratio: new(1.0), Runs: []float64{12.3}},
		{Allocator: "seed-after", Workers: 2, Scenario: Concurrent, Mops: 10, Ratio: new(1.0), Unsafe: true},
		{Allocator: "gcbits", Workers: 2, Scenario: Sweep, Mops: 20, Ratio: new(2.0), WastePct: new(1.5), AllocPct: new(30.0), NoopMops: new(28.0)},
	}}
	var buf bytes.Buffer
	if err := rep.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(&buf)
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	if err := dec.Decode(new(any)); !errors.Is(err, io.EOF) {
		t.Errorf("more than one JSON value: %v", err)
	}
	if m["cpus"] != 2.0 || m["go"] != "go1.26.8" {
		t.Errorf("header: %v", m)
	}
	rs := m["results"].([]any)
	r0 := rs[0].(map[string]any)
	for k, want := range map[string]any{"allocator": "seed-after", "workers": 2.0, "scenario": "quiescent", "mops": 12.3, "ratio": 1.0, "unsafe": false} {
		if r0[k] != want {
			t.Errorf("results[0][%q] = %v, want %v", k, r0[k], want)
		}
	}
	if _, ok := r0["waste_pct"]; ok {
		t.Error("waste_pct present for seed-after")
	}
	if rs[1].(map[string]any)["unsafe"] != true {
		t.Error("results[1] not unsafe")
	}
	r2 := rs[2].(map[string]any)
	if r2["waste_pct"] != 1.5 || r2["alloc_pct"] != 30.0 || r2["noop_mops"] != 28.0 {
		t.Errorf("results[2] = %v", r2)
	}
}

func TestRound3(t *testing.T) {
	for _, c := range [][2]float64{{1.23456, 1.235}, {-1.23456, -1.235}, {0, 0}, {2.0004, 2}} {
		if got := round3(c[0]); math.Abs(got-c[1]) > 1e-12 {
			t.Errorf("round3(%v) = %v, want %v", c[0], got, c[1])
		}
	}
}

// failing is an allocator whose workers fail after a number of calls.
type failing struct{ after int }

type failingWorker struct{ left int }

var errFail = errors.New("injected failure")

func (f failing) NewWorker() Worker { return &failingWorker{f.after} }
func (failing) Advance()            {}
func (failing) Close() error        { return nil }
func (w *failingWorker) Alloc(nbits int) ([]uint64, error) {
	if w.left--; w.left < 0 {
		return nil, errFail
	}
	return make([]uint64, (nbits+63)/64), nil
}

// TestErrors checks that an allocator error ends every scenario, without
// a deadlock, whether it comes during the warm-up or the timed part.
func TestErrors(t *testing.T) {
	old := Factories
	defer func() { Factories = old }()
	for _, after := range []int{0, 10, 5000} {
		Factories = append(slices.Clone(old), Factory{
			Name: "failing", Doc: "test", Epochal: true, ConcurrentAdvance: true,
			New: func() (Allocator, error) { return failing{after}, nil },
		})
		for _, sc := range Scenarios {
			cfg := quick()
			cfg.Allocators = []string{"failing"}
			cfg.Scenarios = []string{sc}
			cfg.Duration = time.Second // the error, not the clock, must end it
			_, err := Run(cfg)
			if !errors.Is(err, errFail) {
				t.Errorf("%s, failing after %d: %v", sc, after, err)
			}
		}
	}
	Factories = append(slices.Clone(old), Factory{
		Name: "broken", Doc: "test",
		New: func() (Allocator, error) { return nil, errFail },
	})
	cfg := quick()
	cfg.Allocators = []string{"broken"}
	if _, err := Run(cfg); !errors.Is(err, errFail) {
		t.Errorf("New failing: %v", err)
	}
}

// TestAllocPctPaired checks that each allocator run is compared with the
// no-op run of its own round: here the machine is slow in rounds 2 and 3
// for the no-op and in round 3 for the allocator. Medians taken apart
// (50 against 50 Mop/s) would say the allocator costs nothing; the rounds
// say 50%, 0% and 50%.
func TestAllocPctPaired(t *testing.T) {
	runs := []sample{ms(50000), ms(50000), ms(25000)}
	noop := []sample{ms(100000), ms(50000), ms(50000)}
	pcts := allocPcts(runs, noop)
	if pct, ok := allocPct(pcts); !ok || pct != 50 {
		t.Errorf("allocPct = %v, %v; want 50", pct, ok)
	}
	// The report keeps the rounds' shares beside their median.
	if !slices.Equal(pcts, []float64{50, 0, 50}) {
		t.Errorf("allocPcts = %v after allocPct, want [50 0 50]", pcts)
	}
	if _, ok := allocPct(allocPcts(runs, nil)); ok {
		t.Error("allocPct without no-op runs")
	}
}

// TestScalingLines checks the table's scaling summary: the most workers
// against the next fewer, per scenario, with slowdowns flagged.
func TestScalingLines(t *testing.T) {
	rs := []Result{
		{Allocator: "seed-after", Workers: 8, Scenario: Quiescent, Mops: 20},
		{Allocator: "gcbits", Workers: 8, Scenario: Quiescent, Mops: 100},
		{Allocator: "seed-after", Workers: 16, Scenario: Quiescent, Mops: 10},
		{Allocator: "gcbits", Workers: 16, Scenario: Quiescent, Mops: 180},
		{Allocator: "gcbits", Workers: 1, Scenario: Sweep, Mops: 50},
	}
	got := scalingLines(rs)
	want := []string{"scaling, quiescent, 16 against 8 workers: seed-after 0.50× (slower), gcbits 1.80×"}
	if !slices.Equal(got, want) {
		t.Errorf("scalingLines:\n%q\nwant\n%q", got, want)
	}
}

// TestClockAtLeastOneEpoch checks that a timed part ends when its time is
// up only once it holds an Advance. It runs on synctest's fake clock, so
// the timer fires exactly when the time is up.
func TestClockAtLeastOneEpoch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Time runs out before the first timed Advance: the run goes on,
		// and that Advance ends it.
		c := newClock(time.Millisecond, 1)
		c.advanced() // the warm-up's last: timing starts
		time.Sleep(2 * time.Millisecond)
		synctest.Wait()
		if !c.late.Load() {
			t.Fatal("the timer did not fire")
		}
		if p := c.phase.Load(); p != timing {
			t.Fatalf("phase %d with no timed Advance, want timing", p)
		}
		c.advanced()
		if p := c.phase.Load(); p != stopped || c.timedEpochs() != 1 {
			t.Fatalf("phase %d, %d timed epochs after a late Advance", p, c.timedEpochs())
		}
		if el, _ := c.end(); el != 2*time.Millisecond {
			t.Errorf("timed part of %v, want 2ms", el)
		}

		// An Advance within the time: the timer ends the run, on time.
		c = newClock(time.Millisecond, 1)
		c.advanced()
		c.advanced()
		time.Sleep(time.Millisecond - time.Nanosecond)
		synctest.Wait()
		if p := c.phase.Load(); p != timing {
			t.Fatalf("phase %d before the time is up, want timing", p)
		}
		time.Sleep(time.Nanosecond)
		synctest.Wait()
		if p := c.phase.Load(); p != stopped {
			t.Fatalf("phase %d when the time is up, want stopped", p)
		}
		if el, _ := c.end(); el != time.Millisecond {
			t.Errorf("timed part of %v, want 1ms", el)
		}
	})
}

// TestCappedShare checks that a capped row gives the share of its
// worker-epochs that waited at the cap, not just a flag.
func TestCappedShare(t *testing.T) {
	rep := &Report{CPUs: 2, Go: "go1.26.8", Results: []Result{
		{Allocator: "gcbits", Workers: 2, Scenario: Concurrent, Mops: 100, Runs: make([]float64, 6), Epochs: 40, Capped: 12},
	}}
	var buf bytes.Buffer
	if err := rep.WriteTable(&buf); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), " capped 2.5%") || !strings.Contains(buf.String(), "capped: the share of worker-epochs") {
		t.Errorf("12 waits in 6 runs × 2 workers × 40 epochs should read capped 2.5%%:\n%s", buf.String())
	}
}
