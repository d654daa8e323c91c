package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/gcbits/gcbits/goruntime"
)

// fakeMake is a make.bash that prints make.bash's phases, counts its runs
// in the file named by $RUNS and installs a bin/go that prints a version.
const fakeMake = `#!/bin/sh
echo "$(( $(cat "$RUNS" 2>/dev/null || echo 0) + 1 ))" > "$RUNS"
echo "Building Go cmd/dist using $GOROOT_BOOTSTRAP. (fake)"
echo "Building Go toolchain1 using $GOROOT_BOOTSTRAP."
echo "Building Go bootstrap cmd/go (go_bootstrap) using Go toolchain1."
echo "Building Go toolchain2 using go_bootstrap and Go toolchain1."
echo "Building Go toolchain3 using go_bootstrap and Go toolchain2."
echo "Building packages and commands for fake."
mkdir -p ../bin && printf '#!/bin/sh\necho fake go\n' > ../bin/go && chmod +x ../bin/go
`

// fakeGOROOT makes a Go installation with the files the patches touch,
// taken from the installed Go, and fakeMake as src/make.bash.
func fakeGOROOT(t *testing.T, version string) string {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git apply is needed:", err)
	}
	if runtime.GOOS == "windows" {
		t.Skip("make.bash is a shell script")
	}
	out, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		t.Skip("go env GOROOT:", err)
	}
	real := strings.TrimSpace(string(out))
	if v, err := goVersion(real); err != nil || !strings.HasPrefix(v, goruntime.Series) {
		t.Skipf("the installed Go is %s (%v), not of the patches' series %s", v, err, goruntime.Series)
	}
	root := t.TempDir()
	for _, p := range goruntime.Patches() {
		for line := range strings.Lines(string(p.Data)) {
			name, ok := strings.CutPrefix(strings.TrimSpace(line), "--- a/")
			if !ok {
				continue
			}
			b, err := os.ReadFile(filepath.Join(real, name))
			if errors.Is(err, os.ErrNotExist) {
				continue // made by an earlier patch
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := os.MkdirAll(filepath.Join(root, filepath.Dir(name)), 0o777); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(root, name), b, 0o666); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := os.WriteFile(filepath.Join(root, "VERSION"), []byte(version+"\ntime 2026-08-28T16:20:06Z\n"), 0o666); err != nil {
		t.Fatal(err)
	}
	writeMake(t, root, fakeMake)
	return root
}

func writeMake(t *testing.T, root, script string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(root, "src", "make.bash"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
}

// testBuilder returns a builder of a copy of stock into a fresh cache, and
// the file its make.bash counts runs in, and the steps it reported.
func testBuilder(t *testing.T, stock string) (*builder, string, *[]string) {
	runs := filepath.Join(t.TempDir(), "runs")
	var steps []string
	b := &builder{
		stock:    stock,
		cacheDir: filepath.Join(t.TempDir(), "cache"),
		patches:  goruntime.Patches(),
		series:   goruntime.Series,
		step:     func(s string) { steps = append(steps, s) },
		makeEnv:  func(env []string) []string { return append(env, "RUNS="+runs) },
	}
	return b, runs, &steps
}

func makeRuns(t *testing.T, runs string) string {
	b, err := os.ReadFile(runs)
	if errors.Is(err, os.ErrNotExist) {
		return "0"
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// cacheEntries lists the cache folder.
func cacheEntries(t *testing.T, b *builder) []string {
	t.Helper()
	es, err := os.ReadDir(b.cacheDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

func TestBuildPatchesAndCaches(t *testing.T) {
	stock := fakeGOROOT(t, goruntime.BaseVersion)
	b, runs, steps := testBuilder(t, stock)
	root, err := b.build(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Dir(root) != b.cacheDir || !strings.HasPrefix(filepath.Base(root), goruntime.BaseVersion+"-") {
		t.Errorf("built in %s, want %s/%s-DIGEST", root, b.cacheDir, goruntime.BaseVersion)
	}
	mheap, err := os.ReadFile(filepath.Join(root, "src", "runtime", "mheap.go"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(mheap), "type gcBitsCache struct") {
		t.Error("the built tree's mheap.go lacks the patches' gcBitsCache")
	}
	if got := cacheEntries(t, b); !slices.Equal(got, []string{filepath.Base(root)}) {
		t.Errorf("cache holds %q, want only the finished toolchain", got)
	}
	if len(*steps) != b.buildSteps() {
		t.Errorf("%d steps reported (%q), want %d", len(*steps), *steps, b.buildSteps())
	}
	for _, ph := range makePhases {
		if !slices.Contains(*steps, ph) {
			t.Errorf("phase %q not reported", ph)
		}
	}
	if n := makeRuns(t, runs); n != "1" {
		t.Fatalf("make.bash ran %s times", n)
	}

	// A second build finds the first.
	*steps = nil
	again, err := b.build(context.Background())
	if err != nil || again != root {
		t.Fatalf("second build: %q, %v; want %q", again, err, root)
	}
	if n := makeRuns(t, runs); n != "1" {
		t.Errorf("make.bash ran again: %s runs", n)
	}
	if len(*steps) != 0 {
		t.Errorf("a cached build reported %q", *steps)
	}

	// A reworded commit message builds nothing; other diffs build elsewhere.
	reworded := slices.Clone(b.patches)
	reworded[0].Data = []byte(strings.Replace(string(reworded[0].Data), "runtime:", "runtime: reworded", 1))
	if string(reworded[0].Data) == string(b.patches[0].Data) {
		t.Fatal("the message of the first patch was not reworded")
	}
	saved := b.patches
	b.patches = reworded
	if again, err := b.build(context.Background()); err != nil || again != root {
		t.Errorf("build after rewording a message: %q, %v; want %q", again, err, root)
	}
	b.patches = saved
	// Other patches build elsewhere.
	b.patches = b.patches[:len(b.patches)-1]
	if other, err := b.build(context.Background()); err != nil || other == root {
		t.Errorf("build with one patch fewer: %q, %v; want a folder other than %q", other, err, root)
	}
}

// TestBuildFailures checks that each failing step gives an error that
// names it and leaves nothing in the cache that a later build would take
// for finished, and that a later build succeeds once the cause is gone.
func TestBuildFailures(t *testing.T) {
	t.Run("version", func(t *testing.T) {
		b, _, _ := testBuilder(t, fakeGOROOT(t, "go1.25.3"))
		_, err := b.build(context.Background())
		if !errors.Is(err, errStep) || !strings.HasPrefix(err.Error(), "version: ") ||
			!strings.Contains(err.Error(), "go1.25.3") || !strings.Contains(err.Error(), goruntime.Series) {
			t.Errorf("error %q", err)
		}
		if es := cacheEntries(t, b); len(es) != 0 {
			t.Errorf("cache holds %q", es)
		}
	})
	t.Run("apply", func(t *testing.T) {
		stock := fakeGOROOT(t, goruntime.BaseVersion)
		mheap := filepath.Join(stock, "src", "runtime", "mheap.go")
		orig, err := os.ReadFile(mheap)
		if err != nil {
			t.Fatal(err)
		}
		broken := strings.Replace(string(orig), "func nextMarkBitArenaEpoch() {", "func nextMarkBitArenaEpoch() { // changed", 1)
		if err := os.WriteFile(mheap, []byte(broken), 0o666); err != nil {
			t.Fatal(err)
		}
		b, runs, _ := testBuilder(t, stock)
		_, err = b.build(context.Background())
		if !errors.Is(err, errStep) || !strings.HasPrefix(err.Error(), "apply 0") || !strings.Contains(err.Error(), "git apply") {
			t.Errorf("error %q", err)
		}
		if es := cacheEntries(t, b); len(es) != 0 {
			t.Errorf("cache holds %q", es)
		}
		if n := makeRuns(t, runs); n != "0" {
			t.Errorf("make.bash ran %s times", n)
		}
		if err := os.WriteFile(mheap, orig, 0o666); err != nil {
			t.Fatal(err)
		}
		if _, err := b.build(context.Background()); err != nil {
			t.Errorf("build after the tree was mended: %v", err)
		}
	})
	t.Run("make.bash", func(t *testing.T) {
		stock := fakeGOROOT(t, goruntime.BaseVersion)
		writeMake(t, stock, "#!/bin/sh\necho 'Building Go cmd/dist'\necho 'compile: boom' >&2\nexit 3\n")
		b, _, _ := testBuilder(t, stock)
		_, err := b.build(context.Background())
		if !errors.Is(err, errStep) || !strings.HasPrefix(err.Error(), "make.bash: ") || !strings.Contains(err.Error(), "compile: boom") {
			t.Errorf("error %q", err)
		}
		if es := cacheEntries(t, b); len(es) != 0 {
			t.Errorf("cache holds %q", es)
		}
		writeMake(t, stock, fakeMake)
		if root, err := b.build(context.Background()); err != nil || !finished(root) {
			t.Errorf("build after make.bash was mended: %q, %v", root, err)
		}
	})
	t.Run("canceled", func(t *testing.T) {
		stock := fakeGOROOT(t, goruntime.BaseVersion)
		writeMake(t, stock, "#!/bin/sh\nexec sleep 30\n")
		b, _, _ := testBuilder(t, stock)
		ctx, cancel := context.WithCancel(context.Background())
		b.step = func(s string) {
			if s == "make.bash" {
				cancel()
			}
		}
		if _, err := b.build(ctx); !errors.Is(err, errStep) || !strings.HasPrefix(err.Error(), "make.bash: ") {
			t.Errorf("error %q", err)
		}
		if es := cacheEntries(t, b); len(es) != 0 {
			t.Errorf("cache holds %q", es)
		}
	})
}

func TestRuntimeUsageErrors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o666); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"runtime"}, "no command"},
		{[]string{"runtime", "nope"}, `unknown command "nope"`},
		{[]string{"runtime", "build", "extra"}, `unexpected argument "extra"`},
		{[]string{"runtime", "bench", "-procs", "0"}, "-procs:"},
		{[]string{"runtime", "bench", "-procs", ""}, "-procs:"},
		{[]string{"runtime", "bench", "-runs", "0"}, "-runs:"},
		{[]string{"runtime", "bench", "-duration", "1ns"}, "-duration:"},
		{[]string{"runtime", "bench", "-live", "1"}, "-live:"},
		{[]string{"runtime", "bench", "-plot", "x.pdf"}, "-plot:"},
		{[]string{"runtime", "bench", "-plot", filepath.Join(t.TempDir(), "missing", "x.svg")}, "-plot:"},
		{[]string{"runtime", "bench", "-bins", file}, "-bins: " + file + " is not a folder"},
		{[]string{"runtime", "bench", "-bins", t.TempDir(), "-load", file}, "-bins:"},
		{[]string{"runtime", "test", "-nope"}, "flag provided but not defined"},
	} {
		cmd := "gcbits runtime"
		if len(tc.args) > 1 && slices.Contains([]string{"build", "bench", "test"}, tc.args[1]) {
			cmd += " " + tc.args[1]
		}
		wantUsageError(t, tc.args, cmd, tc.want)
	}
	wantHelp(t, []string{"runtime", "bench", "-h"}, "Usage: gcbits runtime bench", "-procs")
}
