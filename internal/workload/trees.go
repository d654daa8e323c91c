package workload

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/gcbits/gcbits/sweep"
)

// TreeNodeSize is the size of a binary-tree node: two Ref fields.
const TreeNodeSize = 16

// TreeNode returns the Type of binary-tree nodes on h: words 0 and 1 are
// the children (both Nil in a leaf).
func TreeNode(h *sweep.Heap) (sweep.Type, error) { return h.NewType(TreeNodeSize, 0, 1) }

// Trees builds and checks binary trees of TreeNode nodes through one
// Mutator.
type Trees struct {
	M    *sweep.Mutator
	Node sweep.Type // a Type of M's heap whose words 0 and 1 are the children, as TreeNode
	// Safepoints makes Check call M.Safepoint at each inner node, so
	// that a collection that stops the world waits for a Check no longer
	// than for a few nodes; the tree checked must then be rooted.
	Safepoints bool
}

// NewTrees returns Trees on m, a Mutator of h.
func NewTrees(h *sweep.Heap, m *sweep.Mutator) (Trees, error) {
	node, err := TreeNode(h)
	return Trees{M: m, Node: node}, err
}

// Tree returns a full binary tree of the given depth, built bottom-up as
// binary-trees' programs build it: each finished subtree waits on the root
// stack while its sibling is built. The caller must root or use the tree
// before its next allocation.
func (t Trees) Tree(depth int) (sweep.Ref, error) {
	if depth <= 0 {
		return t.M.New(t.Node)
	}
	scope := t.M.NumRoots()
	defer t.M.PopTo(scope)
	l, err := t.Tree(depth - 1)
	if err != nil {
		return sweep.Nil, err
	}
	t.M.Push(l)
	r, err := t.Tree(depth - 1)
	if err != nil {
		return sweep.Nil, err
	}
	t.M.Push(r)
	v, err := t.M.NewView(t.Node)
	if err != nil {
		return sweep.Nil, err
	}
	if err := v.Store(0, l); err != nil {
		return sweep.Nil, err
	}
	return v.Ref(), v.Store(1, r)
}

// Check is binary-trees' node count of the tree at n. It allocates
// nothing: it is no safepoint unless t.Safepoints is set.
func (t Trees) Check(n sweep.Ref) (int, error) {
	v, err := t.M.View(n)
	if err != nil {
		return 0, err
	}
	l, err := v.Load(0)
	if err != nil {
		return 0, err
	}
	if l == sweep.Nil {
		return 1, nil
	}
	r, err := v.Load(1)
	if err != nil {
		return 0, err
	}
	if t.Safepoints { // after the last use of v, which a safepoint may end
		t.M.Safepoint()
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
func BinaryTrees(h *sweep.Heap, n int, out io.Writer) (err error) {
	maxD := maxDepth(n)
	m, err := h.NewMutator()
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, m.Close()) }()
	main, err := NewTrees(h, m)
	if err != nil {
		return err
	}
	main.Safepoints = true
	stretch, err := main.Tree(maxD + 1)
	if err != nil {
		return err
	}
	m.Push(stretch)
	c, err := main.Check(stretch)
	if err != nil {
		return err
	}
	m.Pop(1)
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
func depthLine(h *sweep.Heap, n, d int) (_ string, err error) {
	m, err := h.NewMutator()
	if err != nil {
		return "", err
	}
	defer func() { err = errors.Join(err, m.Close()) }()
	w, err := NewTrees(h, m)
	if err != nil {
		return "", err
	}
	w.Safepoints = true
	it, sum := iterations(n, d), 0
	for range it {
		t, err := w.Tree(d)
		if err != nil {
			return "", err
		}
		m.Push(t)
		c, err := w.Check(t)
		if err != nil {
			return "", err
		}
		m.Pop(1)
		sum += c
	}
	return fmt.Sprintf("%d\t trees of depth %d\t check: %d\n", it, d, sum), nil
}

// goNode is a binary-tree node on the Go heap.
type goNode struct{ left, right *goNode }

func goTree(depth int) *goNode {
	if depth <= 0 {
		return &goNode{}
	}
	return &goNode{goTree(depth - 1), goTree(depth - 1)}
}

func (n *goNode) check() int {
	if n.left == nil {
		return 1
	}
	return 1 + n.left.check() + n.right.check()
}

// BinaryTreesGo is binary-trees with argument n on Go's heap, as the
// benchmark's Go programs run it: one goroutine per depth.
func BinaryTreesGo(n int, out io.Writer) {
	maxD := maxDepth(n)
	fmt.Fprintf(out, "stretch tree of depth %d\t check: %d\n", maxD+1, goTree(maxD+1).check())
	long := goTree(maxD)
	lines := make([]string, maxD+1)
	var wg sync.WaitGroup
	for d := MinDepth; d <= maxD; d += 2 {
		wg.Go(func() {
			it, sum := iterations(n, d), 0
			for range it {
				sum += goTree(d).check()
			}
			lines[d] = fmt.Sprintf("%d\t trees of depth %d\t check: %d\n", it, d, sum)
		})
	}
	wg.Wait()
	for d := MinDepth; d <= maxD; d += 2 {
		io.WriteString(out, lines[d])
	}
	fmt.Fprintf(out, "long lived tree of depth %d\t check: %d\n", maxD, long.check())
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

// BinaryTreesPeakNodes returns the most nodes binary-trees with argument
// n holds live at once: the stretch tree, or the long-lived tree with one
// tree of each depth, built at once by the goroutines.
func BinaryTreesPeakNodes(n int) int64 {
	maxD := maxDepth(n)
	both := int64(treeNodes(maxD))
	for d := MinDepth; d <= maxD; d += 2 {
		both += int64(treeNodes(d))
	}
	return max(int64(treeNodes(maxD+1)), both)
}

// treeNodes is the number of nodes of a full binary tree of depth d.
func treeNodes(d int) int { return 1<<(d+1) - 1 }
