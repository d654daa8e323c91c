package sweep

import (
	"runtime"
	"testing"
)

// BenchmarkNew allocates pointer-free 16-byte objects, garbage at once.
func BenchmarkNew(b *testing.B) {
	h := NewTestHeap(b, Options{})
	m := NewTestMutator(b, h)
	defer m.Close()
	leaf, _ := h.NewType(16)
	for b.Loop() {
		if _, err := m.New(leaf); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAccess measures the Mutator's access paths on a rooted object.
func BenchmarkAccess(b *testing.B) {
	for _, unchecked := range []bool{false, true} {
		name := "checked"
		if unchecked {
			name = "unchecked"
		}
		h := NewTestHeap(b, Options{Unchecked: unchecked})
		m := NewTestMutator(b, h)
		node, _ := h.NewType(16, 0, 1)
		r, _ := m.New(node)
		m.Push(r)
		c, _ := m.New(node)
		m.Push(c)
		b.Run(name+"/View", func(b *testing.B) {
			for b.Loop() {
				if _, err := m.View(r); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/Load", func(b *testing.B) {
			for b.Loop() {
				if _, err := m.Load(r, 1); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/Store", func(b *testing.B) {
			for b.Loop() {
				if err := m.Store(r, 1, c); err != nil {
					b.Fatal(err)
				}
			}
		})
		v, _ := m.View(r)
		b.Run(name+"/View.Load", func(b *testing.B) {
			for b.Loop() {
				if _, err := v.Load(1); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/View.Store", func(b *testing.B) {
			for b.Loop() {
				if err := v.Store(1, c); err != nil {
					b.Fatal(err)
				}
			}
		})
		m.Close()
	}
}

// BenchmarkMark collects a heap holding a binary tree of 2^20 nodes: the
// time per operation is one collection, mostly its mark.
func BenchmarkMark(b *testing.B) {
	h := NewTestHeap(b, Options{GCPercent: -1})
	m := NewTestMutator(b, h)
	defer m.Close()
	node, _ := h.NewType(16, 0, 1)
	var build func(d int) Ref
	build = func(d int) Ref {
		n, _ := m.New(node)
		if d > 0 {
			m.Push(n)
			l := build(d - 1)
			m.Store(n, 0, l)
			r := build(d - 1)
			m.Store(n, 1, r)
			m.Pop(1)
		}
		return n
	}
	m.Push(build(19))
	b.ResetTimer()
	for b.Loop() {
		m.GC()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(1<<20), "ns/object")
}

// goNode is a binary-tree node on the Go heap, for BenchmarkMarkGo.
type goNode struct{ l, r *goNode }

// goTreeRoot keeps BenchmarkMarkGo's tree reachable.
var goTreeRoot *goNode

// BenchmarkMarkGo is BenchmarkMark for Go's collector: runtime.GC on a
// binary tree of 2^20 nodes of Go pointers, built in the same order.
func BenchmarkMarkGo(b *testing.B) {
	var build func(d int) *goNode
	build = func(d int) *goNode {
		n := &goNode{}
		if d > 0 {
			n.l = build(d - 1)
			n.r = build(d - 1)
		}
		return n
	}
	goTreeRoot = build(19)
	runtime.GC()
	b.ResetTimer()
	for b.Loop() {
		runtime.GC()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(1<<20), "ns/object")
	goTreeRoot = nil
}
