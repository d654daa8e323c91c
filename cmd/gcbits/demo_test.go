package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gcbits/gcbits/internal/workload"
)

// runDemoArgs runs gcbits demo with args and returns the exit status and
// both outputs.
func runDemoArgs(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := runDemo(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestDemoBinaryTreesOutput(t *testing.T) {
	for n := 4; n <= 10; n++ {
		for _, gc := range []string{"heap", "go"} {
			// A 64 KiB minimum heap: every depth collects.
			code, out, errb := runDemoArgs("binarytrees", "-depth", fmt.Sprint(n), "-gc", gc, "-compare=false", "-gcpercent", "25", "-minheap", "65536")
			if code != 0 {
				t.Fatalf("depth %d, -gc %s: exit %d\n%s", n, gc, code, errb)
			}
			if want := workload.BinaryTreesWant(n); out != want {
				t.Fatalf("depth %d, -gc %s:\n%s\nwant:\n%s", n, gc, out, want)
			}
			if gc != "heap" {
				continue
			}
			if !strings.Contains(errb, "checks: 0 bad refs, 0 bitmap lifetime violations, 0 unswept spans taken, 0 double-cached spans, 0 lost claims, 0 bitmap fallbacks\n") {
				t.Fatalf("depth %d: stderr:\n%s", n, errb)
			}
			if strings.Contains(errb, "collections: 0;") || !strings.Contains(errb, "collections: ") {
				t.Fatalf("depth %d: no collection:\n%s", n, errb)
			}
		}
	}
}

func TestDemoGCBench(t *testing.T) {
	for _, gc := range []string{"heap", "go"} {
		code, out, errb := runDemoArgs("gcbench", "-gc", gc, "-compare=false",
			"-stretch", "12", "-long", "10", "-min", "4", "-max", "10", "-array", "20000")
		if code != 0 {
			t.Fatalf("-gc %s: exit %d\n%s\n%s", gc, code, out, errb)
		}
		for _, want := range []string{"Garbage Collector Test", "Creating 528 trees of depth 4", "Creating 8 trees of depth 10",
			"\tBottom up construction took", "Completed in"} {
			if !strings.Contains(out, want) {
				t.Fatalf("-gc %s: no %q in\n%s", gc, want, out)
			}
		}
		if strings.Contains(out, "Failed") {
			t.Fatalf("-gc %s: checks failed:\n%s", gc, out)
		}
	}
}

// withChild makes the child process of the comparison this test binary,
// running TestDemoHelperProcess, until the test ends.
func withChild(t *testing.T) {
	saved := childCommand
	t.Cleanup(func() { childCommand = saved })
	childCommand = func(args []string) (*exec.Cmd, error) {
		cmd := exec.Command(os.Args[0], append([]string{"-test.run=^TestDemoHelperProcess$", "--"}, args...)...)
		cmd.Env = append(os.Environ(), "GCBITS_DEMO_HELPER=1")
		return cmd, nil
	}
}

// TestDemoCompare runs the comparison with Go's collector and writes it
// as JSON.
func TestDemoCompare(t *testing.T) {
	withChild(t)
	path := filepath.Join(t.TempDir(), "bt.json")
	code, out, errb := runDemoArgs("binarytrees", "-depth", "12", "-gcpercent", "50", "-json", path)
	if code != 0 || out != workload.BinaryTreesWant(12) {
		t.Fatalf("exit %d\n%s\n%s", code, out, errb)
	}
	for _, want := range []string{"binarytrees on sweep.Heap:", "binarytrees on Go's GC:", "GOGC=50, output identical", "collections:", "slots: peak", "pauses max"} {
		if !strings.Contains(errb, want) {
			t.Fatalf("no %q in stderr:\n%s", want, errb)
		}
	}
	var doc struct {
		Demo            string
		Args            []string
		CPUs            int
		Heap            *runFigures
		GoGC            *runFigures `json:"go_gc"`
		OutputIdentical *bool       `json:"output_identical"`
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	// The report records every flag's value, defaults too.
	if doc.Demo != "binarytrees" || !slices.Contains(doc.Args, "-depth=12") || !slices.Contains(doc.Args, "-gcpercent=50") ||
		!slices.Contains(doc.Args, "-unchecked=false") || !slices.Contains(doc.Args, "-json="+path) || doc.CPUs < 1 ||
		doc.OutputIdentical == nil || !*doc.OutputIdentical {
		t.Fatalf("JSON header: %s", b)
	}
	for name, f := range map[string]*runFigures{"heap": doc.Heap, "go_gc": doc.GoGC} {
		if f == nil || f.WallSeconds <= 0 || f.CPUSeconds <= 0 || f.PeakRSSBytes <= 0 || f.Cycles <= 0 ||
			f.PauseMax <= 0 || f.PauseP99 <= 0 || f.PauseP99 > f.PauseMax || f.PauseTotal < f.PauseMax {
			t.Fatalf("%s figures: %+v\n%s", name, f, b)
		}
	}
	code, _, errb = runDemoArgs("gcbench", "-stretch", "10", "-long", "8", "-max", "8", "-array", "4000")
	if code != 0 || !strings.Contains(errb, "gcbench on Go's GC:") {
		t.Fatalf("gcbench: exit %d\n%s", code, errb)
	}
}

// TestDemoCompareBoolFlag passes a boolean flag on to the child that runs
// Go's collector, which must take it as a flag, not as "-unchecked true".
func TestDemoCompareBoolFlag(t *testing.T) {
	withChild(t)
	code, _, errb := runDemoArgs("binarytrees", "-depth", "6", "-unchecked")
	if code != 0 || !strings.Contains(errb, "binarytrees on Go's GC:") || strings.Contains(errb, "failed") {
		t.Fatalf("exit %d\n%s", code, errb)
	}
}

// TestDemoHelperProcess is the child of TestDemoCompare.
func TestDemoHelperProcess(t *testing.T) {
	if os.Getenv("GCBITS_DEMO_HELPER") != "1" {
		t.Skip("helper process")
	}
	args := os.Args
	for i, a := range args {
		if a == "--" {
			args = args[i+1:]
			break
		}
	}
	os.Exit(run(args, os.Stdout, os.Stderr))
}

func TestDemoUsage(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "gcbits demo: no demo named"},
		{[]string{"nosuch"}, `unknown demo "nosuch"`},
		{[]string{"binarytrees", "-depth", "-1"}, "-depth -1 is outside 0..30"},
		{[]string{"binarytrees", "-depth", "31"}, "-depth 31 is outside 0..30"},
		{[]string{"binarytrees", "-nosuchflag"}, "flag provided but not defined: -nosuchflag"},
		{[]string{"binarytrees", "-stretch", "10"}, "flag provided but not defined: -stretch"}, // gcbench's
		{[]string{"gcbench", "-depth", "10"}, "flag provided but not defined: -depth"},         // binarytrees'
		{[]string{"binarytrees", "extra"}, `unexpected argument "extra"`},
		{[]string{"binarytrees", "-gc", "boehm"}, `-gc is heap or go, not "boehm"`},
		{[]string{"binarytrees", "-minheap", "-1"}, "-minheap -1 is negative"},
		{[]string{"binarytrees", "-gcpercent", "-1"}, "-gcpercent -1 turns collection off"},
		{[]string{"binarytrees", "-json", "/nonexistent/dir/x.json"}, `-json: folder of "/nonexistent/dir/x.json"`},
		{[]string{"gcbench", "-min", "0"}, "need 1 <= min <= max <= 24"},
		{[]string{"gcbench", "-max", "20", "-stretch", "18"}, "need 1 <= min"},
		{[]string{"gcbench", "-array", "10"}, "2002 <= array"},
		{[]string{"gcbench", "-long", "25"}, "0 <= long <= 24"},
		{[]string{"binarytrees", "-cpuprofile", "/nonexistent/dir/cpu.prof"}, "-cpuprofile:"},
	} {
		cmd := "gcbits demo"
		if len(c.args) > 0 && slices.ContainsFunc(demos, func(d demo) bool { return d.name == c.args[0] }) {
			cmd += " " + c.args[0]
		}
		wantUsageError(t, append([]string{"demo"}, c.args...), cmd, c.want)
	}
	// The list of demos, filled in from the table.
	wantHelp(t, []string{"demo", "-h"}, `
Demos:
  binarytrees  the Computer Language Benchmarks Game's binary-trees;
               stdout is the benchmark's output
  gcbench      Boehm's GCBench: top-down and bottom-up trees, a long-lived
               tree and a large array, with its checks
`)
	for demo, own := range map[string]string{"binarytrees": "-depth", "gcbench": "-stretch"} {
		out := wantHelp(t, []string{"demo", demo, "-h"}, "Usage: gcbits demo "+demo, own, "-json")
		other := map[string]string{"binarytrees": "-stretch", "gcbench": "-depth"}[demo]
		if strings.Contains(out, other+" ") {
			t.Errorf("%s -h lists %s:\n%s", demo, other, out)
		}
	}
}

// TestDemoCheckWraps checks that gcbench's flags out of range give
// workload's error, sentinel and all.
func TestDemoCheckWraps(t *testing.T) {
	d := demos[slices.IndexFunc(demos, func(d demo) bool { return d.name == "gcbench" })]
	f := &demoFlags{bench: workload.DefaultGCBench}
	if err := d.check(f); err != nil {
		t.Fatalf("the default GCBench: %v", err)
	}
	f.bench.MinDepth = 0
	if err := d.check(f); !errors.Is(err, workload.ErrConfig) {
		t.Errorf("-min 0: %v, want workload.ErrConfig", err)
	}
}

// TestDemoRefusesRunaway checks that a run the machine cannot hold is
// refused before it starts, with the estimate and the machine's memory.
func TestDemoRefusesRunaway(t *testing.T) {
	saved := machineMemory
	defer func() { machineMemory = saved }()
	machineMemory = func() uint64 { return 4 << 30 }
	for _, c := range []struct {
		args []string
		want string
	}{
		// A long-lived tree of 2^31 16-byte nodes and one tree of each
		// depth, 4.7 Gi nodes, twice over (GOGC 100).
		{[]string{"binarytrees", "-depth", "30"}, "needs about 149.4 GiB"},
		// A stretch tree of 2^29 nodes, twice over.
		{[]string{"binarytrees", "-depth", "27", "-gc", "go"}, "needs about 16.1 GiB"},
		// GOGC 1000: the live data eleven times over.
		{[]string{"binarytrees", "-depth", "25", "-gcpercent", "1000"}, "needs about 22.1 GiB"},
		// A least heap goal of 1 TiB.
		{[]string{"binarytrees", "-depth", "6", "-minheap", "1099511627776"}, "needs about 1.0 TiB"},
		// A GOGC past int64 once multiplied.
		{[]string{"binarytrees", "-depth", "6", "-gcpercent", "9223372036854775000"}, "needs about"},
		// A stretch tree of 2^27 32-byte nodes, twice over.
		{[]string{"gcbench", "-stretch", "26"}, "needs about 8.1 GiB"},
	} {
		wantUsageError(t, append([]string{"demo"}, c.args...), "gcbits demo "+c.args[0], c.want, "a run may use 2.0 GiB, half of this machine's 4.0 GiB")
	}
	// What fits runs.
	if code, _, errb := runDemoArgs("binarytrees", "-depth", "6", "-compare=false"); code != 0 {
		t.Errorf("depth 6: exit %d\n%s", code, errb)
	}
}
