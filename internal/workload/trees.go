// Package workload holds binary-trees, the program that both the demo of
// cmd/gcbits and the tests of package sweep run on the collected heap, so
// that the demo measures the code the tests check. It does not import
// sweep (whose internal tests import it): it works on any heap with
// sweep's shape of API, through type parameters.
package workload

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
)

// Mutator is one goroutine's handle on a collected heap: it allocates,
// holds roots, and must be released while its goroutine waits, as
// sweep.Mutator does.
type Mutator[R comparable] interface {
	Alloc(size int) (R, error)
	Push(r R)
	Pop(n int)
	Release()
	Acquire()
	Close() error
}

// Heap is the part of a collected heap the programs use, as sweep.Heap
// provides it: Mutators, and Ref fields of objects.
type Heap[R comparable, M Mutator[R]] interface {
	NewMutator() (M, error)
	Field(r R, i int) (R, error)
	SetField(r R, i int, v R) error
}

// TreeNodeSize is the size of a binary-tree node: two Ref fields.
const TreeNodeSize = 16

// Trees builds and checks binary trees of TreeNodeSize nodes whose fields
// 0 and 1 are the children (both zero in a leaf).
type Trees[R comparable, M Mutator[R], H Heap[R, M]] struct {
	H H
	M M
}

// Tree returns a full binary tree of the given depth. It is built from
// the root down, each node linked into its parent as soon as it is
// allocated, with the root on the root stack meanwhile, so that every
// node is reachable at every safepoint. The root is popped again: the
// caller must root or use it before its next allocation.
func (t Trees[R, M, H]) Tree(depth int) (R, error) {
	root, err := t.M.Alloc(TreeNodeSize)
	if err != nil {
		return root, err
	}
	t.M.Push(root)
	defer t.M.Pop(1)
	return root, t.fill(root, depth)
}

func (t Trees[R, M, H]) fill(n R, depth int) error {
	if depth <= 0 {
		return nil
	}
	for i := range 2 {
		c, err := t.M.Alloc(TreeNodeSize)
		if err != nil {
			return err
		}
		if err := t.H.SetField(n, i, c); err != nil {
			return err
		}
		if err := t.fill(c, depth-1); err != nil {
			return err
		}
	}
	return nil
}

// Check is binary-trees' node count of the tree at n.
func (t Trees[R, M, H]) Check(n R) (int, error) {
	l, err := t.H.Field(n, 0)
	if err != nil {
		return 0, err
	}
	r, err := t.H.Field(n, 1)
	if err != nil {
		return 0, err
	}
	var leaf R
	if l == leaf {
		return 1, nil
	}
	a, err := t.Check(l)
	if err != nil {
		return 0, err
	}
	b, err := t.Check(r)
	return 1 + a + b, err
}

// MinDepth is binary-trees' smallest depth.
const MinDepth = 4

// maxDepth is the depth of the long-lived tree for the argument n.
func maxDepth(n int) int { return max(MinDepth+2, n) }

// iterations is how many trees of depth d binary-trees builds.
func iterations(n, d int) int { return 1 << (maxDepth(n) - d + MinDepth) }

// BinaryTrees runs the binary-trees benchmark with argument n on h, as its
// Go programs do: a stretch tree, a long-lived tree, and one goroutine per
// depth, each with a Mutator of its own, building and checking trees. It
// writes the benchmark's output to out. Errors of the heap, Close's
// included, are returned joined.
func BinaryTrees[R comparable, M Mutator[R], H Heap[R, M]](h H, n int, out io.Writer) (err error) {
	maxD := maxDepth(n)
	m, err := h.NewMutator()
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, m.Close()) }()
	main := Trees[R, M, H]{H: h, M: m}
	stretch, err := main.Tree(maxD + 1)
	if err != nil {
		return err
	}
	c, err := main.Check(stretch)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "stretch tree of depth %d\t check: %d\n", maxD+1, c)
	long, err := main.Tree(maxD)
	if err != nil {
		return err
	}
	m.Push(long)

	lines := make([]string, maxD+1)
	errs := make([]error, maxD+1)
	var wg sync.WaitGroup
	for d := MinDepth; d <= maxD; d += 2 {
		wg.Go(func() { lines[d], errs[d] = depthLine(h, n, d) })
	}
	// Waiting is not a safepoint: let collections go on without us.
	m.Release()
	wg.Wait()
	m.Acquire()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	for d := MinDepth; d <= maxD; d += 2 {
		io.WriteString(out, lines[d])
	}
	if c, err = main.Check(long); err != nil {
		return err
	}
	fmt.Fprintf(out, "long lived tree of depth %d\t check: %d\n", maxD, c)
	return nil
}

// depthLine builds and checks binary-trees' trees of depth d with a
// Mutator of its own and returns the output line.
func depthLine[R comparable, M Mutator[R], H Heap[R, M]](h H, n, d int) (_ string, err error) {
	m, err := h.NewMutator()
	if err != nil {
		return "", err
	}
	defer func() { err = errors.Join(err, m.Close()) }()
	w := Trees[R, M, H]{H: h, M: m}
	it, sum := iterations(n, d), 0
	for range it {
		t, err := w.Tree(d)
		if err != nil {
			return "", err
		}
		c, err := w.Check(t)
		if err != nil {
			return "", err
		}
		sum += c
	}
	return fmt.Sprintf("%d\t trees of depth %d\t check: %d\n", it, d, sum), nil
}

// BinaryTreesWant is binary-trees' output for argument n, from the
// formula: a tree of depth d has 2^(d+1)-1 nodes.
func BinaryTreesWant(n int) string {
	var b strings.Builder
	maxD := maxDepth(n)
	fmt.Fprintf(&b, "stretch tree of depth %d\t check: %d\n", maxD+1, treeNodes(maxD+1))
	for d := MinDepth; d <= maxD; d += 2 {
		it := iterations(n, d)
		fmt.Fprintf(&b, "%d\t trees of depth %d\t check: %d\n", it, d, it*treeNodes(d))
	}
	fmt.Fprintf(&b, "long lived tree of depth %d\t check: %d\n", maxD, treeNodes(maxD))
	return b.String()
}

// treeNodes is the number of nodes of a full binary tree of depth d.
func treeNodes(d int) int { return 1<<(d+1) - 1 }
