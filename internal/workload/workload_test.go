package workload

import (
	"errors"
	"io"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/gcbits/gcbits/sweep"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// newHeap returns a heap that collects often, closed at the end of the
// test.
func newHeap(t *testing.T, o sweep.Options) *sweep.Heap {
	t.Helper()
	if o.MinHeapBytes == 0 {
		o.MinHeapBytes = 64 << 10
	}
	h, err := sweep.New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

func TestBinaryTreesWant(t *testing.T) {
	// The format of the benchmark's page, for N = 10.
	const n10 = "stretch tree of depth 11\t check: 4095\n" +
		"1024\t trees of depth 4\t check: 31744\n" +
		"256\t trees of depth 6\t check: 32512\n" +
		"64\t trees of depth 8\t check: 32704\n" +
		"16\t trees of depth 10\t check: 32752\n" +
		"long lived tree of depth 10\t check: 2047\n"
	if got := BinaryTreesWant(10); got != n10 {
		t.Fatalf("BinaryTreesWant(10):\n%s", got)
	}
}

func TestBinaryTrees(t *testing.T) {
	for n := range 11 {
		h := newHeap(t, sweep.Options{})
		var out strings.Builder
		if err := BinaryTrees(h, n, &out); err != nil {
			t.Fatal(err)
		}
		if want := BinaryTreesWant(n); out.String() != want {
			t.Fatalf("n=%d on the heap:\n%s\nwant:\n%s", n, out.String(), want)
		}
		if st := h.Stats(); st.Mutators != 0 || (n == 10 && st.Cycles == 0) {
			t.Fatalf("n=%d: %d Mutators left open, %d collections", n, st.Mutators, st.Cycles)
		}
		out.Reset()
		BinaryTreesGo(n, &out)
		if want := BinaryTreesWant(n); out.String() != want {
			t.Fatalf("n=%d on Go's heap:\n%s\nwant:\n%s", n, out.String(), want)
		}
	}
}

func TestTreeShape(t *testing.T) {
	h := newHeap(t, sweep.Options{})
	m, err := h.NewMutator()
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	tr, err := NewTrees(h, m)
	if err != nil {
		t.Fatal(err)
	}
	for d := range 8 {
		r, err := tr.Tree(d)
		if err != nil {
			t.Fatal(err)
		}
		if n, err := tr.Check(r); err != nil || n != treeNodes(d) {
			t.Fatalf("depth %d: %d nodes, %v", d, n, err)
		}
		if m.NumRoots() != 0 {
			t.Fatalf("depth %d: %d roots left pushed", d, m.NumRoots())
		}
	}
}

// TestBinaryTreesErrors checks that an allocation failure is returned
// and every Mutator is closed.
func TestBinaryTreesErrors(t *testing.T) {
	// n=12 builds a stretch tree of 2^14 16-byte nodes: 256 KiB.
	h := newHeap(t, sweep.Options{RegionBytes: 64 << 10, MaxBytes: 128 << 10})
	if err := BinaryTrees(h, 12, io.Discard); !errors.Is(err, sweep.ErrLimit) {
		t.Fatalf("%v, want ErrLimit", err)
	}
	if n := h.Stats().Mutators; n != 0 {
		t.Fatalf("%d Mutators left open", n)
	}
}

func TestGCBench(t *testing.T) {
	c := GCBench{Stretch: 12, LongLived: 10, MinDepth: 4, MaxDepth: 10, Array: 20000}
	for _, onHeap := range []bool{true, false} {
		var out, diag strings.Builder
		var err error
		if onHeap {
			h := newHeap(t, sweep.Options{})
			err = c.RunHeap(h, &out, &diag)
			if st := h.Stats(); err == nil && st.Cycles == 0 {
				t.Fatal("GCBench on the heap did not collect")
			}
		} else {
			err = c.RunGo(&out, &diag)
		}
		if err != nil {
			t.Fatalf("on heap %v: %v\n%s", onHeap, err, out.String())
		}
		for _, want := range []string{"Garbage Collector Test", "Creating 528 trees of depth 4", "Creating 8 trees of depth 10",
			"\tBottom up construction took", "Completed in"} {
			if !strings.Contains(out.String(), want) {
				t.Fatalf("on heap %v: no %q in\n%s", onHeap, want, out.String())
			}
		}
		if !strings.Contains(diag.String(), "collections") {
			t.Fatalf("on heap %v: diagnostics %q", onHeap, diag.String())
		}
	}
}

func TestGCBenchCheck(t *testing.T) {
	if err := DefaultGCBench.Check(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []GCBench{
		{Stretch: 18, LongLived: 16, MinDepth: 0, MaxDepth: 16, Array: 500000},
		{Stretch: 18, LongLived: 16, MinDepth: 4, MaxDepth: 20, Array: 500000},
		{Stretch: 27, LongLived: 16, MinDepth: 4, MaxDepth: 16, Array: 500000},
		{Stretch: 18, LongLived: 25, MinDepth: 4, MaxDepth: 16, Array: 500000},
		{Stretch: 18, LongLived: 16, MinDepth: 4, MaxDepth: 16, Array: 2001},
	} {
		if err := c.Check(); !errors.Is(err, ErrConfig) {
			t.Errorf("%+v: %v, want ErrConfig", c, err)
		}
		if err := c.RunGo(io.Discard, io.Discard); !errors.Is(err, ErrConfig) {
			t.Errorf("RunGo %+v: %v, want ErrConfig", c, err)
		}
	}
}

// BenchmarkBinaryTrees runs binary-trees 16 on the heap and on Go's heap.
func BenchmarkBinaryTrees(b *testing.B) {
	b.Run("heap", func(b *testing.B) {
		for b.Loop() {
			h, err := sweep.New(sweep.Options{})
			if err != nil {
				b.Fatal(err)
			}
			if err := BinaryTrees(h, 16, io.Discard); err != nil {
				b.Fatal(err)
			}
			h.Close()
		}
	})
	b.Run("go", func(b *testing.B) {
		for b.Loop() {
			BinaryTreesGo(16, io.Discard)
		}
	})
}

// BenchmarkGCBench runs GCBench with a stretch tree of depth 16 on the
// heap and on Go's heap.
func BenchmarkGCBench(b *testing.B) {
	c := GCBench{Stretch: 16, LongLived: 14, MinDepth: 4, MaxDepth: 14, Array: 100000}
	b.Run("heap", func(b *testing.B) {
		for b.Loop() {
			h, err := sweep.New(sweep.Options{})
			if err != nil {
				b.Fatal(err)
			}
			if err := c.RunHeap(h, io.Discard, io.Discard); err != nil {
				b.Fatal(err)
			}
			h.Close()
		}
	})
	b.Run("go", func(b *testing.B) {
		for b.Loop() {
			if err := c.RunGo(io.Discard, io.Discard); err != nil {
				b.Fatal(err)
			}
		}
	})
}
