package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"
)

// writeProfile writes a profile of sample type typ whose samples have the
// given stacks (innermost first; a frame "a|b" is a location where a is
// inlined into b) and values.
func writeProfile(t *testing.T, typ string, stacks [][]string, values []int64) string {
	t.Helper()
	p := &profile.Profile{
		SampleType: []*profile.ValueType{{Type: "count", Unit: "count"}, {Type: typ, Unit: "nanoseconds"}},
	}
	funcs := map[string]*profile.Function{}
	fn := func(name string) *profile.Function {
		if f, ok := funcs[name]; ok {
			return f
		}
		f := &profile.Function{ID: uint64(len(funcs) + 1), Name: name}
		funcs[name] = f
		p.Function = append(p.Function, f)
		return f
	}
	for i, stack := range stacks {
		s := &profile.Sample{Value: []int64{1, values[i]}}
		for _, frame := range stack {
			loc := &profile.Location{ID: uint64(len(p.Location) + 1)}
			for name := range strings.SplitSeq(frame, "|") {
				loc.Line = append(loc.Line, profile.Line{Function: fn(name)})
			}
			p.Location = append(p.Location, loc)
			s.Location = append(s.Location, loc)
		}
		p.Sample = append(p.Sample, s)
	}
	path := filepath.Join(t.TempDir(), typ+".prof")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Write(f); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestProfileShare(t *testing.T) {
	stacks := [][]string{
		{"runtime.tryAlloc", "runtime.newMarkBits", "runtime.sweep"},
		{"runtime.memclrNoHeapPointers", "runtime.newGCBits|runtime.newMarkBits", "runtime.sweep"}, // inlined
		{"runtime.mallocgc", "main.churn"},
		{"runtime.newMarkBitsX", "main.churn"},                           // a name that only starts the same
		{"runtime.newMarkBitsFast|runtime.sweep", "runtime.bgsweep"},     // inlined, patched
		{"runtime.newMarkBitsFast|runtime.newMarkBits", "runtime.sweep"}, // counted once
	}
	values := []int64{30, 10, 50, 10, 15, 5}
	path := writeProfile(t, "cpu", stacks, values)
	share, err := profileShare(path, "cpu", markBitsFuncs)
	if err != nil || share != 0.5 {
		t.Errorf("profileShare = %v, %v; want 0.5", share, err)
	}
	total, err := profileTotal(path, "cpu", markBitsFuncs)
	if err != nil || total != 60 {
		t.Errorf("profileTotal = %v, %v; want 60", total, err)
	}
	if _, err := profileShare(path, "delay", markBitsFuncs); err == nil || !strings.Contains(err.Error(), `no "delay" samples`) {
		t.Errorf("missing sample type: %v", err)
	}
	empty := writeProfile(t, "cpu", nil, nil)
	if _, err := profileShare(empty, "cpu", markBitsFuncs); err == nil {
		t.Error("a profile without samples gave no error")
	}
	bad := filepath.Join(t.TempDir(), "bad.prof")
	if err := os.WriteFile(bad, []byte("not a profile"), 0o666); err != nil {
		t.Fatal(err)
	}
	if _, err := profileTotal(bad, "delay", markBitsFuncs); err == nil {
		t.Error("a corrupt profile gave no error")
	}
}

// TestRuntimeBenchHarness runs the harness end to end with the installed
// Go standing in for both toolchains: it builds the workload twice, runs
// it interleaved and reads its profiles.
func TestRuntimeBenchHarness(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the workload twice")
	}
	out, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		t.Skip("go env GOROOT:", err)
	}
	goroot := strings.TrimSpace(string(out))
	var progress []int
	bins := t.TempDir()
	rb := &rtBench{stock: goroot, patched: goroot, procs: []int{1, 2}, runs: 2,
		duration: 300 * time.Millisecond, gogc: 25, live: 4 << 20, bins: bins,
		progress: func(done, total int) {
			if total != 8 {
				t.Errorf("progress total %d, want 8", total)
			}
			progress = append(progress, done)
		}}
	rep, err := rb.run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Samples) != 8 || len(progress) != 8 || progress[7] != 8 {
		t.Fatalf("%d samples, progress %v; want 8 of each", len(rep.Samples), progress)
	}
	// Runs alternate which toolchain goes first.
	if rep.Samples[0].Toolchain != "stock" || rep.Samples[4].Toolchain != "patched" {
		t.Errorf("order: %s first in run 0, %s in run 1", rep.Samples[0].Toolchain, rep.Samples[4].Toolchain)
	}
	for _, s := range rep.Samples {
		if s.Allocs == 0 || s.GCCycles == 0 || s.Seconds < 0.3 || s.MarkBitsCPU < 0 || s.MarkBitsCPU > 1 ||
			s.MarkBitsWait < 0 || math.IsNaN(s.gcPerGB()) {
			t.Errorf("implausible sample %+v", s)
		}
	}
	var table bytes.Buffer
	if err := rep.writeTable(&table); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"newMarkBits CPU", "patched/stock", "stock", "GOGC=25, live heap 4.0 MiB", "2 interleaved runs"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}
	if got := strings.Count(table.String(), "patched/stock"); got != 2 {
		t.Errorf("%d comparison rows, want one per procs:\n%s", got, table.String())
	}
	var js bytes.Buffer
	if err := rep.writeJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back rtReport
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || len(back.Samples) != 8 || back.GOGC != 25 {
		t.Errorf("JSON round trip: %v, %+v", err, back)
	}
	// The binaries were kept, and run again without a toolchain.
	if !haveWorkloads(bins) {
		t.Fatalf("no workload binaries kept in %s", bins)
	}
	again := &rtBench{procs: []int{1}, runs: 1, duration: 300 * time.Millisecond, gogc: 25, live: 4 << 20, bins: bins, reuse: true}
	rep2, err := again.run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(rep2.Samples) != 2 || !strings.HasPrefix(rep2.Go, "go1.") {
		t.Errorf("run of the kept binaries: %d samples, Go %q", len(rep2.Samples), rep2.Go)
	}
	// The profiles went elsewhere, and binaries of other patches or
	// another workload are not taken for these.
	if _, err := os.Stat(filepath.Join(bins, "stock", "cpu.prof")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a profile was written beside the kept binaries: %v", err)
	}
	if err := os.WriteFile(stampFile(bins), []byte("another series"), 0o666); err != nil {
		t.Fatal(err)
	}
	if haveWorkloads(bins) {
		t.Error("binaries with another stamp taken for these")
	}
	svg := filepath.Join(t.TempDir(), "r.svg")
	if err := rep.writePlot(svg); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(svg); err != nil || !bytes.Contains(b, []byte("<svg")) {
		t.Errorf("plot: %v", err)
	}
}
