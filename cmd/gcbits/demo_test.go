package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/gcbits/gcbits/internal/workload"
)

// runDemoArgs runs gcbits demo with args and returns the exit status and
// both outputs.
func runDemoArgs(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := runDemoIO(args, &out, &errb)
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

// TestDemoCompare runs the comparison with Go's collector, whose child
// process is this test binary running TestDemoHelperProcess.
func TestDemoCompare(t *testing.T) {
	saved := childCommand
	defer func() { childCommand = saved }()
	childCommand = func(args []string) (*exec.Cmd, error) {
		cmd := exec.Command(os.Args[0], append([]string{"-test.run=^TestDemoHelperProcess$", "--"}, args...)...)
		cmd.Env = append(os.Environ(), "GCBITS_DEMO_HELPER=1")
		return cmd, nil
	}
	code, out, errb := runDemoArgs("binarytrees", "-depth", "8")
	if code != 0 || out != workload.BinaryTreesWant(8) {
		t.Fatalf("exit %d\n%s\n%s", code, out, errb)
	}
	for _, want := range []string{"binarytrees on sweep.Heap:", "binarytrees on Go's GC:", "output identical", "collections:", "slots: peak"} {
		if !strings.Contains(errb, want) {
			t.Fatalf("no %q in stderr:\n%s", want, errb)
		}
	}
	code, _, errb = runDemoArgs("gcbench", "-stretch", "10", "-long", "8", "-max", "8", "-array", "4000")
	if code != 0 || !strings.Contains(errb, "gcbench on Go's GC:") {
		t.Fatalf("gcbench: exit %d\n%s", code, errb)
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
	for _, args := range [][]string{
		{},
		{"nosuch"},
		{"binarytrees", "-depth", "-1"},
		{"binarytrees", "-depth", "31"},
		{"binarytrees", "-nosuchflag"},
		{"binarytrees", "extra"},
		{"binarytrees", "-gc", "boehm"},
		{"binarytrees", "-minheap", "-1"},
		{"gcbench", "-min", "0"},
		{"gcbench", "-max", "20", "-stretch", "18"},
		{"gcbench", "-array", "10"},
	} {
		if code, _, _ := runDemoArgs(args...); code != 2 {
			t.Errorf("gcbits demo %q: exit %d, want 2", args, code)
		}
	}
	if code, _, errb := runDemoArgs("-h"); code != 0 || !strings.Contains(errb, "binarytrees") {
		t.Errorf("-h: exit %d\n%s", code, errb)
	}
}
