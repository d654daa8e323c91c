package bench

import (
	"bytes"
	"math"
	"testing"

	"golang.org/x/perf/benchfmt"
)

// TestWriteBenchfmt writes a report in the Go benchmark format and reads it
// back with benchfmt's reader, as benchstat does: one result per run, named
// by scenario, allocator and workers, with its operations as iterations,
// its time per operation, Mop/s, and the waste and sweep shares where
// there are any.
func TestWriteBenchfmt(t *testing.T) {
	books := func(ops, alloc, wasted uint64) sample {
		s := ms(ops)
		s.acct, s.alloc, s.wasted = true, alloc, wasted
		return s
	}
	rep := &Report{GOOS: "linux", GOARCH: "amd64", CPU: "Some CPU", Go: "go1.26.8", GOMAXPROCS: 2,
		Duration: "100ms", EpochAllocs: 1024, AdvanceEvery: "2ms", SweepSpans: 4096}
	rep.Results = append(rep.Results, rows([]string{"seed-after", "gcbits"}, Quiescent, 2,
		[][]sample{{ms(10000), ms(20000)}, {books(40000, 1000, 10), books(50000, 1000, 20)}}, nil)...)
	rep.Results = append(rep.Results, rows([]string{"gcbits"}, Sweep, 1,
		[][]sample{{books(5000, 1000, 30), {}}}, []sample{ms(10000), ms(10000)})...)
	var buf bytes.Buffer
	if err := rep.WriteBenchfmt(&buf); err != nil {
		t.Fatal(err)
	}
	type line struct {
		name   string
		iters  int
		values map[string]float64
	}
	var got []line
	r := benchfmt.NewReader(&buf, "bench.txt")
	for r.Scan() {
		switch rec := r.Result(); rec := rec.(type) {
		case *benchfmt.SyntaxError:
			t.Fatalf("not the benchmark format: %v", rec)
		case *benchfmt.Result:
			for k, want := range map[string]string{"goos": "linux", "goarch": "amd64", "cpu": "Some CPU", "go": "go1.26.8", "duration": "100ms", "epoch-allocs": "1024"} {
				if v := rec.GetConfig(k); v != want {
					t.Errorf("%s: config %s = %q, want %q", rec.Name, k, v, want)
				}
			}
			l := line{name: rec.Name.String(), iters: rec.Iters, values: map[string]float64{}}
			for _, v := range rec.Values {
				l.values[v.Unit] = v.Value
			}
			got = append(got, l)
		}
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	// 1 ms for each run; sweep's second gcbits run has no operation and no line.
	want := []line{
		{"Quiescent/alloc=seed-after/workers=2-2", 10000, map[string]float64{"sec/op": 100e-9, "Mop/s": 10}},
		{"Quiescent/alloc=seed-after/workers=2-2", 20000, map[string]float64{"sec/op": 50e-9, "Mop/s": 20}},
		{"Quiescent/alloc=gcbits/workers=2-2", 40000, map[string]float64{"sec/op": 25e-9, "Mop/s": 40, "waste-%": 1}},
		{"Quiescent/alloc=gcbits/workers=2-2", 50000, map[string]float64{"sec/op": 20e-9, "Mop/s": 50, "waste-%": 2}},
		{"Sweep/alloc=gcbits/workers=1-2", 5000, map[string]float64{"sec/op": 200e-9, "Mop/s": 5, "waste-%": 3, "alloc-%": 50}},
	}
	if len(got) != len(want) {
		t.Fatalf("%d results, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.name != w.name || g.iters != w.iters || len(g.values) != len(w.values) {
			t.Errorf("result %d: %+v, want %+v", i, g, w)
			continue
		}
		for unit, v := range w.values {
			if math.Abs(g.values[unit]-v) > 1e-9*math.Abs(v) {
				t.Errorf("result %d: %v %s, want %v", i, g.values[unit], unit, v)
			}
		}
	}
	if units := r.Units(); units.GetBetter("Mop/s") != 1 || units.GetBetter("waste-%") != -1 || units.GetBetter("alloc-%") != -1 {
		t.Error("unit metadata: Mop/s is not better higher, or a share not better lower")
	}
}
