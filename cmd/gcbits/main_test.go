package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"golang.org/x/perf/benchfmt"
)

// small makes gcbits bench fast enough for tests under -race.
var small = []string{"-workers", "1,2", "-runs", "1", "-duration", "2ms", "-epoch", "1024", "-spans", "1024", "-advance-every", "200us"}

func runArgs(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	rc := run(args, &out, &errb)
	return rc, out.String(), errb.String()
}

// wantUsageError runs gcbits with args and checks that the command cmd
// ("gcbits bench") refuses them as bad usage: exit status 2, nothing on
// stdout, and on stderr the error, with each of wants in it, and one line
// on where to find help; not the usage.
func wantUsageError(t *testing.T, args []string, cmd string, wants ...string) {
	t.Helper()
	rc, out, errs := runArgs(t, args...)
	lines := strings.Split(strings.TrimSuffix(errs, "\n"), "\n")
	if rc != 2 || out != "" || len(lines) != 2 || !strings.HasPrefix(lines[0], cmd+": ") || lines[1] != "Run '"+cmd+" -h' for usage." {
		t.Errorf("gcbits %q: exit %d, stdout %q, stderr %q; want 2, nothing, and an error of %s and one line on help", args, rc, out, errs, cmd)
	}
	for _, want := range wants {
		if !strings.Contains(errs, want) {
			t.Errorf("gcbits %q: stderr %q lacks %q", args, errs, want)
		}
	}
}

func TestBenchJSON(t *testing.T) {
	rc, out, errs := runArgs(t, append([]string{"bench", "-json"}, small...)...)
	if rc != 0 {
		t.Fatalf("rc %d, stderr:\n%s", rc, errs)
	}
	if errs != "" {
		t.Errorf("stderr not empty without a terminal:\n%s", errs)
	}
	var rep struct {
		CPUs    *int    `json:"cpus"`
		Go      *string `json:"go"`
		Results []map[string]any
	}
	dec := json.NewDecoder(strings.NewReader(out))
	if err := dec.Decode(&rep); err != nil {
		t.Fatalf("%v in:\n%s", err, out)
	}
	if dec.More() {
		t.Error("more than one JSON value")
	}
	if rep.CPUs == nil || *rep.CPUs != runtime.NumCPU() || rep.Go == nil || *rep.Go != runtime.Version() {
		t.Errorf("header: cpus %v go %v", rep.CPUs, rep.Go)
	}
	if len(rep.Results) != (6+6+5)*2 {
		t.Errorf("%d results", len(rep.Results))
	}
	seen := map[string]bool{}
	for _, r := range rep.Results {
		for _, k := range []string{"allocator", "workers", "scenario", "mops", "ratio", "unsafe", "runs"} {
			if _, ok := r[k]; !ok {
				t.Errorf("result lacks %q: %v", k, r)
			}
		}
		seen[r["allocator"].(string)] = true
		if r["allocator"] == "seed-after" && r["scenario"] == "concurrent" && r["unsafe"] != true {
			t.Errorf("seed-after concurrent not unsafe: %v", r)
		}
		if r["allocator"] == "gcbits-cache" {
			if _, ok := r["waste_pct"]; !ok {
				t.Errorf("gcbits-cache without waste_pct: %v", r)
			}
		}
	}
	for _, a := range []string{"seed-before", "seed-after", "gcbits", "gcbits-cache", "make", "sync.Pool"} {
		if !seen[a] {
			t.Errorf("no results for %s", a)
		}
	}
}

// TestBenchBenchfmt checks that gcbits bench -benchfmt prints nothing but
// the Go benchmark format, one result per run, as benchstat reads it.
func TestBenchBenchfmt(t *testing.T) {
	args := append(append([]string{"bench", "-benchfmt", "-allocators", "seed-after,gcbits"}, small...), "-runs", "2")
	rc, out, errs := runArgs(t, args...)
	if rc != 0 {
		t.Fatalf("rc %d, stderr:\n%s", rc, errs)
	}
	r := benchfmt.NewReader(strings.NewReader(out), "stdout")
	names := map[string]int{}
	for r.Scan() {
		switch rec := r.Result().(type) {
		case *benchfmt.SyntaxError:
			t.Fatalf("%v in:\n%s", rec, out)
		case *benchfmt.Result:
			if rec.Iters <= 0 {
				t.Errorf("%s: %d iterations", rec.Name, rec.Iters)
			}
			if v, ok := rec.Value("sec/op"); !ok || v <= 0 {
				t.Errorf("%s: sec/op %v, %v", rec.Name, v, ok)
			}
			names[rec.Name.String()]++
		}
	}
	// Two allocators, two worker counts, three scenarios, -runs 2 (the
	// flag given last wins over small's).
	if len(names) != 2*2*3 {
		t.Errorf("%d benchmarks: %v", len(names), names)
	}
	for name, n := range names {
		if n != 2 {
			t.Errorf("%s: %d runs, want 2", name, n)
		}
	}
	if procs := runtime.GOMAXPROCS(0); procs > 1 {
		if _, ok := names[fmt.Sprintf("Quiescent/alloc=gcbits/workers=2-%d", procs)]; !ok {
			t.Errorf("no Quiescent/alloc=gcbits/workers=2-%d in %v", procs, names)
		}
	}
}

// TestBenchRefusesMemory checks that a run the machine cannot hold is
// refused before it starts, with the estimate and the machine's memory.
func TestBenchRefusesMemory(t *testing.T) {
	if runtime.GOOS != "linux" && runtime.GOOS != "darwin" {
		t.Skip("the machine's memory is not read on", runtime.GOOS)
	}
	// 1024 workers of 2^30 bitmaps an epoch: about 200 TiB.
	args := []string{"-workers", "1024", "-epoch", "1073741824"}
	if _, err := parseBench(args, io.Discard); err == nil || !strings.Contains(err.Error(), "TiB") || !strings.Contains(err.Error(), "this machine's") {
		t.Errorf("parseBench(%q) = %v, want an error with the estimate and the machine's memory", args, err)
	}
	wantUsageError(t, append([]string{"bench"}, args...), "gcbits bench", "not enough memory")
}

func TestBenchTableAndPlot(t *testing.T) {
	svg := filepath.Join(t.TempDir(), "bench.svg")
	args := append([]string{"bench", "-plot", svg, "-allocators", "seed-after,gcbits,gcbits-cache,sync.Pool"}, small...)
	rc, out, errs := runArgs(t, args...)
	if rc != 0 {
		t.Fatalf("rc %d, stderr:\n%s", rc, errs)
	}
	for _, s := range []string{"allocator", "seed-after", "gcbits-cache", "quiescent", "concurrent", "sweep", "waste %", "unsafe"} {
		if !strings.Contains(out, s) {
			t.Errorf("table lacks %q:\n%s", s, out)
		}
	}
	b, err := os.ReadFile(svg)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte("<svg")) || !bytes.Contains(b, []byte("gcbits-cache")) || !bytes.Contains(b, []byte("sweep")) {
		t.Errorf("%s is not the plot (%d bytes)", svg, len(b))
	}
}

// TestBenchPlotError checks that a -plot file that cannot be written is
// refused before the run, not after it.
func TestBenchPlotError(t *testing.T) {
	dir := t.TempDir()
	notDir := filepath.Join(dir, "file")
	if err := os.WriteFile(notDir, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	folder := filepath.Join(dir, "folder.svg")
	if err := os.Mkdir(folder, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{
		filepath.Join(dir, "no", "such", "dir", "x.svg"),
		filepath.Join(notDir, "x.svg"),
		folder,
		filepath.Join(dir, "x.gif"),
	} {
		if _, err := parseBench([]string{"-plot", bad}, io.Discard); err == nil || !strings.Contains(err.Error(), "-plot") {
			t.Errorf("-plot %s: %v, want a -plot error", bad, err)
		}
	}
	args := append([]string{"bench", "-plot", filepath.Join(dir, "no", "x.svg"), "-allocators", "gcbits", "-scenarios", "quiescent"}, small...)
	wantUsageError(t, args, "gcbits bench", "-plot")
	if entries, _ := os.ReadDir(dir); len(entries) != 2 {
		t.Errorf("the check left files in %s: %v", dir, entries)
	}
}

// TestBenchLists checks the comma-separated flags: items may have spaces
// around them, but an empty list, an empty item and an item given twice
// are errors.
func TestBenchLists(t *testing.T) {
	bf, err := parseBench([]string{"-workers", " 4, 1 ,2", "-scenarios", "sweep, quiescent", "-allocators", "gcbits"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(bf.cfg.Workers, []int{4, 1, 2}) || !slices.Equal(bf.cfg.Scenarios, []string{"sweep", "quiescent"}) ||
		!slices.Equal(bf.cfg.Allocators, []string{"gcbits"}) {
		t.Errorf("parsed %v %v %v", bf.cfg.Workers, bf.cfg.Scenarios, bf.cfg.Allocators)
	}
	for _, args := range [][]string{
		{"-workers", "1,,2"},
		{"-workers", "1,2,"},
		{"-workers", ",1"},
		{"-workers", " "},
		{"-workers", "1,1"},
		{"-workers", "2, 02"},
		{"-scenarios", "quiescent,,sweep"},
		{"-scenarios", "sweep,sweep"},
		{"-allocators", "gcbits,"},
		{"-allocators", "gcbits, gcbits"},
	} {
		if _, err := parseBench(args, io.Discard); err == nil || !strings.Contains(err.Error(), args[0]) {
			t.Errorf("%q: %v, want an error about %s", args, err, args[0])
		}
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"nope"},
		{"bench", "-workers", "0"},
		{"bench", "-workers", "x"},
		{"bench", "-workers", ""},
		{"bench", "-workers", "1,,-2"},
		{"bench", "-workers", "99999"},
		{"bench", "-runs", "0"},
		{"bench", "-runs", "-3"},
		{"bench", "-runs", "many"},
		{"bench", "-duration", "0s"},
		{"bench", "-duration", "fast"},
		{"bench", "-duration", "2h"},
		{"bench", "-epoch", "0"},
		{"bench", "-spans", "-1"},
		{"bench", "-advance-every", "-1ms"},
		{"bench", "-scenarios", "quiescent,nope"},
		{"bench", "-scenarios", ","},
		{"bench", "-allocators", "nope"},
		{"bench", "-allocators", ""},
		{"bench", "-bogus"},
		{"bench", "extra"},
		{"bench", "-plot", "out.gif"},
		{"bench", "-json", "-benchfmt"},
		{"bench", "-cpuprofile", "/nonexistent/dir/cpu.prof"},
		{"demo"},
		{"demo", "nosuchdemo"},
	} {
		cmd := "gcbits"
		if len(args) > 0 && (args[0] == "bench" || args[0] == "demo") {
			cmd += " " + args[0]
		}
		wantUsageError(t, args, cmd)
	}
}

// wantHelp runs gcbits with args and checks that it prints a usage with
// each of wants in it on stdout, nothing on stderr, and exits with status
// 0. It returns the usage.
func wantHelp(t *testing.T, args []string, wants ...string) string {
	t.Helper()
	rc, out, errs := runArgs(t, args...)
	if rc != 0 || errs != "" {
		t.Errorf("gcbits %q: exit %d, stderr %q", args, rc, errs)
	}
	for _, want := range wants {
		if !strings.Contains(out, want) {
			t.Errorf("gcbits %q: usage lacks %q:\n%s", args, want, out)
		}
	}
	return out
}

func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"-h"}, {"--help"}} {
		wantHelp(t, args, "gcbits bench", "gcbits demo")
	}
	wantHelp(t, []string{"bench", "-h"}, "-workers", "-json", "-plot", "quiescent", "concurrent", "sweep", "seed-after", "sync.Pool")
}

// TestCheckWritableKeepsFile checks that the probe made before a run
// leaves an existing result file as it is, so that a run that fails later
// does not lose it.
func TestCheckWritableKeepsFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.json")
	if err := os.WriteFile(path, []byte("{}\n"), 0o666); err != nil {
		t.Fatal(err)
	}
	if err := checkWritable(path); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(path); err != nil || string(b) != "{}\n" {
		t.Errorf("after checkWritable: %q, %v", b, err)
	}
	if err := checkWritable(filepath.Dir(path)); err == nil {
		t.Error("a folder in the file's place was accepted")
	}
}
