package workload

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// slab is a heap without a collector: objects are pairs of fields in a
// slice, Ref i+1 names pair i, and nothing is ever freed. Allocations
// fail with errFull once limit pairs exist.
type slab struct {
	mu       sync.Mutex
	fields   [][2]int
	limit    int
	open     int   // Mutators not yet closed
	closeErr error // what Mutator.Close returns
}

var errFull = errors.New("slab full")

type slabMutator struct {
	h        *slab
	roots    []int
	released bool
}

func (h *slab) NewMutator() (*slabMutator, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.open++
	return &slabMutator{h: h}, nil
}

func (h *slab) Field(r, i int) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if r < 1 || r > len(h.fields) {
		return 0, fmt.Errorf("bad ref %d", r)
	}
	return h.fields[r-1][i], nil
}

func (h *slab) SetField(r, i, v int) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if r < 1 || r > len(h.fields) {
		return fmt.Errorf("bad ref %d", r)
	}
	h.fields[r-1][i] = v
	return nil
}

func (m *slabMutator) Alloc(size int) (int, error) {
	if size != TreeNodeSize || m.released {
		return 0, fmt.Errorf("Alloc(%d), released %v", size, m.released)
	}
	m.h.mu.Lock()
	defer m.h.mu.Unlock()
	if m.h.limit > 0 && len(m.h.fields) >= m.h.limit {
		return 0, errFull
	}
	m.h.fields = append(m.h.fields, [2]int{})
	return len(m.h.fields), nil
}

func (m *slabMutator) Push(r int) { m.roots = append(m.roots, r) }
func (m *slabMutator) Pop(n int)  { m.roots = m.roots[:len(m.roots)-n] }
func (m *slabMutator) Release()   { m.released = true }
func (m *slabMutator) Acquire()   { m.released = false }
func (m *slabMutator) Close() error {
	m.h.mu.Lock()
	defer m.h.mu.Unlock()
	m.h.open--
	return m.h.closeErr
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
	for n := range 9 {
		h := &slab{}
		var out strings.Builder
		if err := BinaryTrees(h, n, &out); err != nil {
			t.Fatal(err)
		}
		if want := BinaryTreesWant(n); out.String() != want {
			t.Fatalf("n=%d:\n%s\nwant:\n%s", n, out.String(), want)
		}
		if h.open != 0 {
			t.Fatalf("n=%d: %d Mutators left open", n, h.open)
		}
	}
}

// TestBinaryTreesCloseError checks that a Mutator's Close error, from the
// main goroutine's or a depth's, is not dropped.
func TestBinaryTreesCloseError(t *testing.T) {
	errClose := errors.New("close failed")
	h := &slab{closeErr: errClose}
	if err := BinaryTrees(h, 4, &strings.Builder{}); !errors.Is(err, errClose) {
		t.Fatalf("BinaryTrees = %v, want the Close error", err)
	}
	if h.open != 0 {
		t.Fatalf("%d Mutators left open", h.open)
	}
}

func TestTreeShape(t *testing.T) {
	h := &slab{}
	m, _ := h.NewMutator()
	tr := Trees[int, *slabMutator, *slab]{H: h, M: m}
	for d := range 8 {
		r, err := tr.Tree(d)
		if err != nil {
			t.Fatal(err)
		}
		if n, err := tr.Check(r); err != nil || n != treeNodes(d) {
			t.Fatalf("depth %d: %d nodes, %v", d, n, err)
		}
		if len(m.roots) != 0 {
			t.Fatalf("depth %d: %d roots left pushed", d, len(m.roots))
		}
	}
	m.Close()
}

// TestBinaryTreesErrors checks that an allocation failure anywhere, in
// the main goroutine or in a depth's, is returned and every Mutator is
// closed.
func TestBinaryTreesErrors(t *testing.T) {
	// n=6 allocates a stretch tree of 255 nodes, a long-lived one of 127,
	// then 4016 nodes in the goroutines of depths 4 and 6.
	for _, limit := range []int{1, 100, 300, 1000, 4000} { // stretch, long-lived, depths
		h := &slab{limit: limit}
		err := BinaryTrees(h, 6, &strings.Builder{})
		if !errors.Is(err, errFull) {
			t.Fatalf("limit %d: %v, want errFull", limit, err)
		}
		if h.open != 0 {
			t.Fatalf("limit %d: %d Mutators left open", limit, h.open)
		}
	}
}
