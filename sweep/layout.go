package sweep

import (
	"fmt"
	"math/bits"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// Type describes objects of one layout: their size and the words that
// hold Refs. Objects allocated with Mutator.New are traced by their
// Type's pointer mask, without a call per object; a Type without Ref
// words makes pointer-free objects, which are never traced. Types are
// made by Heap.NewType and belong to their heap; the zero Type is none.
type Type struct {
	h  *Heap
	l  *layout
	id int // the span class of its small objects, -1 for large ones: l.sc.id, at hand for allocation
}

// typeOf returns the Type of layout l of h.
func typeOf(h *Heap, l *layout) Type {
	id := -1
	if l.sc != nil {
		id = l.sc.id
	}
	return Type{h, l, id}
}

// Size returns the size of the Type's objects, as given to NewType.
func (t Type) Size() int {
	if t.l == nil {
		return 0
	}
	return t.l.size
}

// scanKind says how the marker finds an object's Refs.
type scanKind uint8

const (
	scanNone   scanKind = iota // pointer-free: never traced
	scanMask                   // the layout's pointer mask
	scanTracer                 // Options.Trace
)

// layout is how objects of a Type (or the untyped objects of a size
// class) are laid out. Read-only once made.
type layout struct {
	size int        // the object size asked for
	scan scanKind   //
	mask []uint64   // scanMask: bit i of the words is set when word i holds a Ref
	sc   *spanClass // the span class of small objects; nil for large ones
}

// isRef reports whether word i of an object of this layout may hold a
// Ref: any word for a Tracer, the words of the mask, none otherwise.
func (l *layout) isRef(i int) bool {
	switch l.scan {
	case scanTracer:
		return true
	case scanMask:
		return uint(i>>6) < uint(len(l.mask)) && l.mask[i>>6]&(1<<(uint(i)&63)) != 0
	}
	return false
}

// spanClass is a kind of span, as the runtime's spanClass: a size class
// and the layout of the objects in it, with the central sets of its
// spans. Class 0 holds the spans of large objects, each with a layout of
// its own. Read-only once made, but for central.
type spanClass struct {
	id      int     // index in the heap's span classes and Mutator.spans
	class   int     // size class, 0 for large objects
	layout  *layout // nil for class 0
	central central
}

// maxSpanClasses caps the span classes, and so the distinct layouts of
// small objects a heap may have.
const maxSpanClasses = 1 << 14

// spanClasses is the heap's table of span classes, indexed by id. The
// slice is replaced, never changed, under typeTable.mu.
type spanClasses = []*spanClass

// typeTable interns layouts: Types of the same size and mask are one
// Type, and small Types of the same size class and mask share a span
// class.
type typeTable struct {
	mu          sync.Mutex                  // guards the maps and the replacement of classes
	layouts     map[string]*layout          // by size and mask; under mu
	spanClasses map[string]*spanClass       // of Types, by size class and mask; under mu
	classes     atomic.Pointer[spanClasses] // read atomically; replaced under mu
}

// spanClassOf returns span class id.
func (h *Heap) spanClassOf(id int) *spanClass { return (*h.types.classes.Load())[id] }

// initTypes makes span class 0 (large objects) and one span class per
// size class for the objects of Mutator.Alloc, traced by trace if it is
// set and pointer-free otherwise.
func (h *Heap) initTypes(trace bool) {
	scan := scanNone
	if trace {
		scan = scanTracer
	}
	h.types.layouts = make(map[string]*layout)
	h.types.spanClasses = make(map[string]*spanClass)
	cs := make(spanClasses, len(h.classes.classes))
	cs[0] = &spanClass{id: 0}
	h.untypedLarge = &layout{scan: scan}
	for c := 1; c < len(cs); c++ {
		l := &layout{size: h.classes.classes[c].Size, scan: scan}
		cs[c] = &spanClass{id: c, class: c, layout: l}
		l.sc = cs[c]
	}
	h.types.classes.Store(&cs)
}

// NewType returns the Type of objects of size bytes whose words at the
// indexes refWords (word i is bytes 8i to 8i+7) hold Refs; every other
// word is plain data, never traced. Without refWords the objects are
// pointer-free. Types with the same layout are the same Type. It returns
// an error wrapping ErrType for a size outside 1..the largest object, or
// a Ref word outside the object.
func (h *Heap) NewType(size int, refWords ...int) (Type, error) {
	if err := h.usable(); err != nil {
		return Type{}, err
	}
	if size < 1 || size > maxObjectBytes {
		return Type{}, fmt.Errorf("%w: %d bytes", ErrType, size)
	}
	words := (size + 7) / 8
	mask := make([]uint64, (words+63)/64)
	for _, w := range refWords {
		if w < 0 || w >= words {
			return Type{}, fmt.Errorf("%w: Ref word %d outside a %d-byte object", ErrType, w, size)
		}
		mask[w>>6] |= 1 << (uint(w) & 63)
	}
	class := h.classes.classOf(size)
	var maskKey strings.Builder
	nrefs := 0
	for _, m := range mask {
		maskKey.WriteString("," + strconv.FormatUint(m, 16))
		nrefs += bits.OnesCount64(m)
	}
	key := strconv.Itoa(size) + maskKey.String()
	h.types.mu.Lock()
	defer h.types.mu.Unlock()
	if l := h.types.layouts[key]; l != nil {
		return typeOf(h, l), nil
	}
	l := &layout{size: size, scan: scanMask, mask: mask}
	if nrefs == 0 {
		l.scan, l.mask = scanNone, nil
	}
	if class != 0 {
		// Small objects of one size class and mask share a span class
		// (their slots are the class's size).
		scKey := "C" + strconv.Itoa(class) + maskKey.String()
		if sc := h.types.spanClasses[scKey]; sc != nil {
			l.sc = sc
		} else {
			old := *h.types.classes.Load()
			if len(old) >= maxSpanClasses {
				return Type{}, fmt.Errorf("%w: %d layouts of small objects", ErrLimit, maxSpanClasses-len(h.classes.classes))
			}
			l.sc = &spanClass{id: len(old), class: class, layout: l}
			cs := append(old[:len(old):len(old)], l.sc)
			h.types.classes.Store(&cs)
			h.types.spanClasses[scKey] = l.sc
		}
	}
	h.types.layouts[key] = l
	return typeOf(h, l), nil
}
