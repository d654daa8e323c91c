package bench

import (
	"fmt"
	"io"
	"math"
	"strings"

	"golang.org/x/perf/benchfmt"
)

// WriteBenchfmt writes every run of r as one line of the Go benchmark
// format, so that benchstat compares two invocations, or the allocators of
// one:
//
//	gcbits bench -benchfmt >old.txt
//	gcbits bench -benchfmt >new.txt
//	benchstat old.txt new.txt
//	benchstat -col /alloc new.txt
//
// A run is named after its scenario, allocator and workers, with the
// GOMAXPROCS suffix of go test: Quiescent/alloc=gcbits/workers=2-2. Its
// iterations are the operations of its timed part (allocations; spans in
// the sweep) and its values are ns/op (wall time over operations, all
// workers together), Mop/s, and where known waste-% (the allocator's
// wasted over allocated bytes) and alloc-% (the sweep's share of the
// allocator, against the no-op run of its round). The header lines give
// the machine and the flags that shape a run.
func (r *Report) WriteBenchfmt(w io.Writer) error {
	bw := benchfmt.NewWriter(w)
	config := []benchfmt.Config{
		{Key: "goos", Value: []byte(r.GOOS), File: true},
		{Key: "goarch", Value: []byte(r.GOARCH), File: true},
		{Key: "pkg", Value: []byte("github.com/gcbits/gcbits/cmd/gcbits"), File: true},
	}
	if r.CPU != "" {
		config = append(config, benchfmt.Config{Key: "cpu", Value: []byte(r.CPU), File: true})
	}
	for _, kv := range [][2]string{
		{"go", r.Go},
		{"duration", r.Duration},
		{"epoch-allocs", fmt.Sprint(r.EpochAllocs)},
		{"advance-every", r.AdvanceEvery},
		{"sweep-spans", fmt.Sprint(r.SweepSpans)},
	} {
		config = append(config, benchfmt.Config{Key: kv[0], Value: []byte(kv[1]), File: true})
	}
	for _, unit := range []string{"Mop/s", "waste-%", "alloc-%"} {
		better := "higher"
		if unit != "Mop/s" {
			better = "lower"
		}
		err := bw.Write(&benchfmt.UnitMetadata{
			UnitMetadataKey: benchfmt.UnitMetadataKey{Unit: unit, Key: "better"},
			OrigUnit:        unit,
			Value:           better,
		})
		if err != nil {
			return err
		}
	}
	procs := ""
	if r.GOMAXPROCS != 1 {
		procs = fmt.Sprintf("-%d", r.GOMAXPROCS)
	}
	for _, x := range r.Results {
		name := fmt.Sprintf("%s/alloc=%s/workers=%d%s", title(x.Scenario), x.Allocator, x.Workers, procs)
		for k, s := range x.samples {
			if s.ops == 0 || s.elapsed <= 0 {
				continue // no timed operation: nothing to report
			}
			values := []benchfmt.Value{
				{Value: round3(float64(s.elapsed.Nanoseconds()) / float64(s.ops)), Unit: "ns/op"},
				{Value: round3(s.mops()), Unit: "Mop/s"},
			}
			if s.acct && s.alloc > 0 {
				values = append(values, benchfmt.Value{Value: round3(100 * float64(s.wasted) / float64(s.alloc)), Unit: "waste-%"})
			}
			if k < len(x.allocPcts) && !math.IsNaN(x.allocPcts[k]) {
				values = append(values, benchfmt.Value{Value: round3(x.allocPcts[k]), Unit: "alloc-%"})
			}
			err := bw.Write(&benchfmt.Result{Config: config, Name: benchfmt.Name(name), Iters: int(s.ops), Values: values})
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// title returns s with its first letter in upper case, as a benchmark's
// name starts: quiescent becomes Quiescent.
func title(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
