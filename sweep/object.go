package sweep

import (
	"fmt"
	"unsafe"
)

// resolve returns the span of r and checks that r names its slot's
// current object (in checked mode) or at least an existing slot.
func (h *Heap) resolve(r Ref) (*span, error) {
	if err := h.usable(); err != nil {
		return nil, err
	}
	if r == Nil {
		return nil, badRef(r, "nil")
	}
	if r.tag() != h.tag {
		return nil, badRef(r, "a Ref of another heap")
	}
	t := h.table.Load()
	i := r.spanIdx()
	if int(i) >= len(t.spans) {
		return nil, badRef(r, "no such span")
	}
	s := t.spans[i].Load()
	if s == nil {
		return nil, badRef(r, "span freed")
	}
	if !s.live(r) {
		return nil, badRef(r, "no live object in slot")
	}
	return s, nil
}

// Valid returns nil if r names a live object, otherwise an error wrapping
// ErrBadRef (or ErrClosed). In unchecked mode only the span and slot
// numbers are checked.
func (h *Heap) Valid(r Ref) error {
	_, err := h.resolve(r)
	return err
}

// Size returns the size of r's slot in bytes (at least the size asked of
// Alloc).
func (h *Heap) Size(r Ref) (int, error) {
	s, err := h.resolve(r)
	if err != nil {
		return 0, err
	}
	return int(s.elemSize), nil
}

// word returns the address of word i of r.
func (h *Heap) word(r Ref, i int) (*uint64, error) {
	s, err := h.resolve(r)
	if err != nil {
		return nil, err
	}
	if uint(i) >= uint(s.elemSize/8) {
		return nil, badRef(r, fmt.Sprintf("word %d outside a %d-byte object", i, s.elemSize))
	}
	return (*uint64)(unsafe.Add(s.addr(r.slot()), uintptr(i)*8)), nil
}

// Word returns word i (bytes 8i to 8i+7) of the object r.
func (h *Heap) Word(r Ref, i int) (uint64, error) {
	p, err := h.word(r, i)
	if err != nil {
		return 0, err
	}
	return *p, nil
}

// SetWord stores v into word i of the object r. Call it only from a
// goroutine holding a running Mutator: there is no write barrier.
func (h *Heap) SetWord(r Ref, i int, v uint64) error {
	p, err := h.word(r, i)
	if err != nil {
		return err
	}
	*p = v
	return nil
}

// Field returns word i of the object r as a Ref.
func (h *Heap) Field(r Ref, i int) (Ref, error) {
	v, err := h.Word(r, i)
	return Ref(v), err
}

// SetField stores v into word i of the object r. Call it only from a
// goroutine holding a running Mutator: there is no write barrier, so a
// collection must not run while it stores. In checked mode v must
// be Nil or a live object, so that a stale Ref is caught where it is
// stored rather than where it is used.
func (h *Heap) SetField(r Ref, i int, v Ref) error {
	if v != Nil && h.checked {
		if _, err := h.resolve(v); err != nil {
			return fmt.Errorf("storing %v into %v: %w", v, r, err)
		}
	}
	return h.SetWord(r, i, uint64(v))
}

// bytes returns the bytes [off, off+n) of r's slot.
func (h *Heap) bytes(r Ref, off, n int) ([]byte, error) {
	s, err := h.resolve(r)
	if err != nil {
		return nil, err
	}
	if off < 0 || n < 0 || uint64(off)+uint64(n) > uint64(s.elemSize) {
		return nil, badRef(r, fmt.Sprintf("bytes [%d,%d+%d) outside a %d-byte object", off, off, n, s.elemSize))
	}
	return unsafe.Slice((*byte)(unsafe.Add(s.addr(r.slot()), off)), n), nil
}

// ReadAt copies len(p) bytes of the object r from offset off into p.
func (h *Heap) ReadAt(r Ref, p []byte, off int) error {
	b, err := h.bytes(r, off, len(p))
	if err != nil {
		return err
	}
	copy(p, b)
	return nil
}

// WriteAt copies p into the object r at offset off. Call it only from a
// goroutine holding a running Mutator.
func (h *Heap) WriteAt(r Ref, p []byte, off int) error {
	b, err := h.bytes(r, off, len(p))
	if err != nil {
		return err
	}
	copy(b, p)
	return nil
}

// Object is a view of one object given to a Tracer. It is valid only
// during the Tracer call.
type Object struct {
	ref  Ref
	base unsafe.Pointer
	size uintptr
}

// Ref returns the object's Ref.
func (o Object) Ref() Ref { return o.ref }

// Size returns the size of the object's slot in bytes.
func (o Object) Size() int { return int(o.size) }

// Word returns word i of the object, or 0 when i is out of range.
func (o Object) Word(i int) uint64 {
	if uint(i) >= uint(o.size/8) {
		return 0
	}
	return *(*uint64)(unsafe.Add(o.base, uintptr(i)*8))
}

// Field returns word i of the object as a Ref, or Nil when i is out of
// range.
func (o Object) Field(i int) Ref { return Ref(o.Word(i)) }
