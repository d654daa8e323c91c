package sweep

import (
	"fmt"
	"math"
)

// PageSize is the unit in which spans are carved from the heap's memory,
// 8 KiB as in the Go runtime.
const PageSize = 8 << 10

// Class is one size class: every slot of a span of the class has Size
// bytes, and a span of the class occupies Pages pages.
type Class struct {
	Size  int // bytes per slot: a positive multiple of 8
	Pages int // pages per span
}

// goClasses is the Go runtime's table of small size classes (Go 1.21 and
// later), typed in by hand: slot size and pages per span. The runtime's
// class 0 (large objects) has no entry; large objects get a span of their
// own.
var goClasses = [...]Class{
	{8, 1}, {16, 1}, {24, 1}, {32, 1}, {48, 1}, {64, 1}, {80, 1}, {96, 1},
	{112, 1}, {128, 1}, {144, 1}, {160, 1}, {176, 1}, {192, 1}, {208, 1}, {224, 1},
	{240, 1}, {256, 1}, {288, 1}, {320, 1}, {352, 1}, {384, 1}, {416, 1}, {448, 1},
	{480, 1}, {512, 1}, {576, 1}, {640, 1}, {704, 1}, {768, 1}, {896, 1}, {1024, 1},
	{1152, 1}, {1280, 1}, {1408, 2}, {1536, 1}, {1792, 2}, {2048, 1}, {2304, 2}, {2688, 1},
	{3072, 3}, {3200, 2}, {3456, 3}, {4096, 1}, {4864, 3}, {5376, 2}, {6144, 3}, {6528, 4},
	{6784, 5}, {6912, 6}, {8192, 1}, {9472, 7}, {9728, 6}, {10240, 5}, {10880, 4}, {12288, 3},
	{13568, 5}, {14336, 7}, {16384, 2}, {18432, 9}, {19072, 7}, {20480, 5}, {21760, 8}, {24576, 3},
	{27264, 10}, {28672, 7}, {32768, 4},
}

// GoClasses returns a copy of the Go runtime's small size classes, the
// default of Options.Classes.
func GoClasses() []Class { return append([]Class(nil), goClasses[:]...) }

// maxSlots is the most slots a span may have: a slot index must fit in a
// Ref's slot field.
const maxSlots = 1 << refSlotBits

// maxLargePages caps a large object at 2^20 pages (8 GiB), far beyond any
// sensible use and far below overflow.
const maxLargePages = 1 << 20

// maxObjectBytes is the largest object: maxLargePages pages, or what an
// int can count on 32-bit systems.
const maxObjectBytes = min(maxLargePages*PageSize, math.MaxInt)

// classTable maps a request size to its class. Classes are numbered from
// 1; class 0 stands for large objects, each in a span of its own.
type classTable struct {
	classes []Class // classes[0] is the zero Class (large objects)
	maxSize int     // largest small size; bigger requests are large
	lookup  []uint8 // lookup[(size+7)/8] is the class of size, for size ≤ maxSize
}

// newClassTable checks cs and builds the lookup table.
func newClassTable(cs []Class) (*classTable, error) {
	if len(cs) == 0 {
		cs = goClasses[:]
	}
	if len(cs) > math.MaxUint8 {
		return nil, fmt.Errorf("%w: %d size classes, at most %d", ErrOption, len(cs), math.MaxUint8)
	}
	t := &classTable{classes: make([]Class, 1, len(cs)+1)}
	prev := 0
	for i, c := range cs {
		switch {
		case c.Size <= prev || c.Size%8 != 0:
			return nil, fmt.Errorf("%w: class %d: size %d is not a multiple of 8 above %d", ErrOption, i+1, c.Size, prev)
		case c.Pages < 1 || c.Pages > 64:
			return nil, fmt.Errorf("%w: class %d: %d pages is outside 1..64", ErrOption, i+1, c.Pages)
		case c.Pages*PageSize/c.Size < 1 || c.Pages*PageSize/c.Size >= maxSlots:
			return nil, fmt.Errorf("%w: class %d: %d slots per span is outside 1..%d", ErrOption, i+1, c.Pages*PageSize/c.Size, maxSlots-1)
		}
		prev = c.Size
		t.classes = append(t.classes, c)
	}
	t.maxSize = prev
	t.lookup = make([]uint8, prev/8+1)
	c := 1
	for w := range t.lookup {
		for t.classes[c].Size < w*8 {
			c++
		}
		t.lookup[w] = uint8(c)
	}
	return t, nil
}

// classOf returns the class of a request of size bytes, 0 for a large
// one. size must be positive.
func (t *classTable) classOf(size int) int {
	if size > t.maxSize {
		return 0
	}
	return int(t.lookup[(size+7)>>3])
}

// nelems returns the number of slots of a span of class c.
func (t *classTable) nelems(c int) int {
	return t.classes[c].Pages * PageSize / t.classes[c].Size
}
