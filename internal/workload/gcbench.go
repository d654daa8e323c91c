package workload

import (
	"errors"
	"fmt"
	"io"
	"math"
	"runtime"
	"strings"
	"time"

	"github.com/gcbits/gcbits/sweep"
)

// GCBench configures Boehm's GCBench: a stretch tree, a long-lived tree
// and array, then trees of depths MinDepth, MinDepth+2 … MaxDepth, built
// top-down and bottom-up, as many of each depth as make up twice the
// stretch tree's nodes.
type GCBench struct {
	Stretch   int // depth of the stretch tree
	LongLived int // depth of the long-lived tree
	MinDepth  int // smallest depth of the short-lived trees
	MaxDepth  int // largest depth of the short-lived trees
	Array     int // doubles in the long-lived array
}

// DefaultGCBench is GCBench's own configuration.
var DefaultGCBench = GCBench{Stretch: 18, LongLived: 16, MinDepth: 4, MaxDepth: 16, Array: 500000}

// ErrConfig reports a GCBench configuration outside its ranges.
var ErrConfig = errors.New("workload: bad GCBench configuration")

// Check returns an error wrapping ErrConfig unless 1 ≤ MinDepth ≤
// MaxDepth ≤ 24, MaxDepth ≤ Stretch ≤ 26, 0 ≤ LongLived ≤ 24 and
// 2002 ≤ Array ≤ 2^27 (GCBench checks element 1000 of the half it fills).
func (c GCBench) Check() error {
	if c.MinDepth < 1 || c.MaxDepth < c.MinDepth || c.MaxDepth > 24 || c.Stretch < c.MaxDepth || c.Stretch > 26 ||
		c.LongLived < 0 || c.LongLived > 24 || c.Array < 2002 || c.Array > 1<<27 {
		return fmt.Errorf("%w: need 1 <= min <= max <= 24, max <= stretch <= 26, 0 <= long <= 24, 2002 <= array <= 2^27 (GCBench checks element 1000 of the half it fills)", ErrConfig)
	}
	return nil
}

// LiveBytes is the most memory GCBench keeps live, as it prints it: the
// long-lived tree and array.
func (c GCBench) LiveBytes() int64 {
	return 2*GCBenchNodeSize*int64(treeNodes(c.LongLived)) + 8*int64(c.Array)
}

// PeakBytes returns the most memory GCBench holds live at once: the
// stretch tree, or the long-lived tree and array with a tree of the
// largest depth.
func (c GCBench) PeakBytes() int64 {
	return max(GCBenchNodeSize*int64(treeNodes(c.Stretch)),
		GCBenchNodeSize*int64(treeNodes(c.LongLived)+treeNodes(c.MaxDepth))+8*int64(c.Array))
}

// GCBench's node: left and right children and two integers, 32 bytes.
const (
	gbLeft, gbRight = 0, 1
	GCBenchNodeSize = 32
)

// numIters is GCBench's: as many trees of a depth as the stretch tree's
// nodes, twice over.
func numIters(stretch, depth int) int { return 2 * treeNodes(stretch) / treeNodes(depth) }

// gcBenchProgram is what GCBench does with its trees and array, on one
// heap or the other.
type gcBenchProgram interface {
	stretch(depth int) (int, error)             // builds the stretch tree, returns its size
	long(depth int) error                       // builds the long-lived tree
	array(n int) error                          // builds the long-lived array
	topDown(depth int, count bool) (int, error) // one top-down tree, its size if count
	bottomUp(depth int, count bool) (int, error)
	final() (longSize int, a1000 float64, err error)
	diag() string // the heap's figures, for the diagnostic stream
}

// run is GCBench's main program on p: it writes GCBench's output to out
// and the heap's figures to diag.
func (c GCBench) run(p gcBenchProgram, out, diag io.Writer) error {
	if err := c.Check(); err != nil {
		return err
	}
	var fail []string
	expect := func(ok bool, format string, args ...any) {
		if !ok {
			fail = append(fail, fmt.Sprintf(format, args...))
		}
	}
	fmt.Fprintln(out, "Garbage Collector Test")
	fmt.Fprintf(out, " Live storage will peak at %d bytes.\n\n", c.LiveBytes())
	fmt.Fprintf(out, " Stretching memory with a binary tree of depth %d\n", c.Stretch)
	t0 := time.Now()
	n, err := p.stretch(c.Stretch)
	if err != nil {
		return err
	}
	expect(n == treeNodes(c.Stretch), "stretch tree has %d nodes, want %d", n, treeNodes(c.Stretch))
	fmt.Fprintf(out, " Creating a long-lived binary tree of depth %d\n", c.LongLived)
	if err := p.long(c.LongLived); err != nil {
		return err
	}
	fmt.Fprintf(out, " Creating a long-lived array of %d doubles\n", c.Array)
	if err := p.array(c.Array); err != nil {
		return err
	}
	fmt.Fprintln(diag, p.diag())
	for d := c.MinDepth; d <= c.MaxDepth; d += 2 {
		iters := numIters(c.Stretch, d)
		fmt.Fprintf(out, "Creating %d trees of depth %d\n", iters, d)
		for _, b := range []struct {
			name  string
			build func(int, bool) (int, error)
		}{{"Top down", p.topDown}, {"Bottom up", p.bottomUp}} {
			ts := time.Now()
			for i := range iters {
				n, err := b.build(d, i == 0)
				if err != nil {
					return err
				}
				if i == 0 {
					expect(n == treeNodes(d), "%s tree of depth %d has %d nodes, want %d", b.name, d, n, treeNodes(d))
				}
			}
			fmt.Fprintf(out, "\t%s construction took %d msec\n", b.name, time.Since(ts).Milliseconds())
		}
	}
	longSize, a1000, err := p.final()
	if err != nil {
		return err
	}
	// GCBench's own check, which also keeps the long-lived data alive.
	expect(longSize == treeNodes(c.LongLived), "long-lived tree has %d nodes, want %d", longSize, treeNodes(c.LongLived))
	expect(a1000 == 1.0/1000, "array[1000] = %v, want %v", a1000, 1.0/1000)
	if len(fail) > 0 {
		fmt.Fprintln(out, "Failed")
		return fmt.Errorf("GCBench checks failed: %s", strings.Join(fail, "; "))
	}
	fmt.Fprintln(diag, p.diag())
	fmt.Fprintf(out, "Completed in %d msec.\n", time.Since(t0).Milliseconds())
	return nil
}

// RunHeap runs GCBench on h with one Mutator, writing GCBench's output to
// out and the heap's figures to diag.
func (c GCBench) RunHeap(h *sweep.Heap, out, diag io.Writer) (err error) {
	m, err := h.NewMutator()
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, m.Close()) }()
	// Nodes: two Refs, then two ints. The array of doubles has no Refs.
	node, err := h.NewType(GCBenchNodeSize, gbLeft, gbRight)
	if err != nil {
		return err
	}
	array, err := h.NewType(8 * c.Array)
	if err != nil {
		return err
	}
	return c.run(&heapBench{h: h, m: m, node: node, arrayType: array}, out, diag)
}

// RunGo runs GCBench on Go's heap, writing GCBench's output to out and
// the Go heap's figures to diag.
func (c GCBench) RunGo(out, diag io.Writer) error {
	return c.run(&goBench{}, out, diag)
}

// heapBench is GCBench on a sweep.Heap.
type heapBench struct {
	h         *sweep.Heap
	m         *sweep.Mutator
	node      sweep.Type
	arrayType sweep.Type
	longTree  sweep.Ref
	longArray sweep.Ref
}

// populate builds a tree top-down under n, which must be reachable.
func (g *heapBench) populate(depth int, n sweep.Ref) error {
	if depth <= 0 {
		return nil
	}
	depth--
	for _, f := range []int{gbLeft, gbRight} {
		c, err := g.m.New(g.node)
		if err != nil {
			return err
		}
		if err := g.m.Store(n, f, c); err != nil {
			return err
		}
	}
	v, err := g.m.View(n)
	if err != nil {
		return err
	}
	l, err := v.Load(gbLeft)
	if err != nil {
		return err
	}
	r, err := v.Load(gbRight)
	if err != nil {
		return err
	}
	if err := g.populate(depth, l); err != nil {
		return err
	}
	return g.populate(depth, r)
}

// trees builds and counts GCBench's trees as binary-trees' are built and
// checked: its nodes hold their children in words 0 and 1 too.
func (g *heapBench) trees() Trees {
	return Trees{M: g.m, Node: g.node, Safepoints: true}
}

func (g *heapBench) topDown(depth int, count bool) (int, error) {
	scope := g.m.NumRoots()
	defer g.m.PopTo(scope)
	t, err := g.m.New(g.node)
	if err != nil {
		return 0, err
	}
	g.m.Push(t)
	if err := g.populate(depth, t); err != nil || !count {
		return 0, err
	}
	return g.trees().Check(t)
}

func (g *heapBench) stretch(depth int) (int, error) { return g.bottomUp(depth, true) }

func (g *heapBench) bottomUp(depth int, count bool) (int, error) {
	t, err := g.trees().Tree(depth)
	if err != nil || !count {
		return 0, err
	}
	scope := g.m.NumRoots()
	defer g.m.PopTo(scope)
	g.m.Push(t)
	return g.trees().Check(t)
}

func (g *heapBench) long(depth int) error {
	var err error
	if g.longTree, err = g.m.New(g.node); err != nil {
		return err
	}
	g.m.Push(g.longTree)
	return g.populate(depth, g.longTree)
}

func (g *heapBench) array(n int) error {
	var err error
	if g.longArray, err = g.m.New(g.arrayType); err != nil {
		return err
	}
	g.m.Push(g.longArray)
	v, err := g.m.View(g.longArray)
	if err != nil {
		return err
	}
	for i := range n / 2 {
		if err := v.StoreWord(i, math.Float64bits(1.0/float64(i))); err != nil {
			return err
		}
	}
	return nil
}

func (g *heapBench) final() (int, float64, error) {
	n, err := g.trees().Check(g.longTree)
	if err != nil {
		return 0, 0, err
	}
	w, err := g.m.LoadWord(g.longArray, 1000)
	return n, math.Float64frombits(w), err
}

func (g *heapBench) diag() string {
	st := g.h.Stats()
	return fmt.Sprintf(" [heap: %d collections, %.1f MiB mapped, %d objects live at the last mark]",
		st.Cycles, float64(st.Mapped)/(1<<20), st.LiveSlots)
}

// gbNode is GCBench's node on the Go heap.
type gbNode struct {
	left, right *gbNode
	//lint:ignore U1000 GCBench's nodes carry two ints it never reads, for their size
	i, j int
}

func gbPopulate(depth int, n *gbNode) {
	if depth <= 0 {
		return
	}
	depth--
	n.left, n.right = &gbNode{}, &gbNode{}
	gbPopulate(depth, n.left)
	gbPopulate(depth, n.right)
}

func gbMakeTree(depth int) *gbNode {
	if depth <= 0 {
		return &gbNode{}
	}
	return &gbNode{left: gbMakeTree(depth - 1), right: gbMakeTree(depth - 1)}
}

func gbCount(n *gbNode) int {
	if n == nil {
		return 0
	}
	return 1 + gbCount(n.left) + gbCount(n.right)
}

// goBench is GCBench on Go's heap.
type goBench struct {
	longTree  *gbNode
	longArray []float64
}

func (g *goBench) stretch(depth int) (int, error) { return gbCount(gbMakeTree(depth)), nil }

func (g *goBench) long(depth int) error {
	g.longTree = &gbNode{}
	gbPopulate(depth, g.longTree)
	return nil
}

func (g *goBench) array(n int) error {
	g.longArray = make([]float64, n)
	for i := range n / 2 {
		g.longArray[i] = 1.0 / float64(i)
	}
	return nil
}

func (g *goBench) topDown(depth int, count bool) (int, error) {
	t := &gbNode{}
	gbPopulate(depth, t)
	if !count {
		return 0, nil
	}
	return gbCount(t), nil
}

func (g *goBench) bottomUp(depth int, count bool) (int, error) {
	t := gbMakeTree(depth)
	if !count {
		return 0, nil
	}
	return gbCount(t), nil
}

func (g *goBench) final() (int, float64, error) { return gbCount(g.longTree), g.longArray[1000], nil }

func (g *goBench) diag() string {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return fmt.Sprintf(" [Go heap: %d collections, %.1f MiB in use]", ms.NumGC, float64(ms.HeapAlloc)/(1<<20))
}
