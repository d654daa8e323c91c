package sweep

import (
	"fmt"
	"unsafe"
)

// Object access. Loads and stores go through a Mutator: only a goroutine
// holding a running Mutator may touch objects, because a mark relies on
// every store going through the write barrier (barrier.go), and a sweep
// frees memory only once every running Mutator has passed a safepoint.

// resolve returns the span of r and checks that r names its slot's
// current object (in checked mode) or at least an existing slot of this
// heap.
func (h *Heap) resolve(r Ref) (*span, error) {
	t := h.table.Load()
	s := t.lookup(r, h.tag)
	switch {
	case s != nil && s.live(r):
		return s, nil
	case r == Nil:
		return nil, badRef(r, "nil")
	case r.tag() != h.tag:
		return nil, badRef(r, "a Ref of another heap")
	case uint(r.spanIdx()) >= uint(len(t.spans)):
		return nil, badRef(r, "no such span")
	case s == nil:
		return nil, badRef(r, "span freed")
	}
	return nil, badRef(r, "no live object in slot")
}

// Valid returns nil if r names a live object, otherwise an error wrapping
// ErrBadRef (or ErrClosed). In unchecked mode only the heap, span and slot
// numbers are checked. It reads no object and may be called from any
// goroutine.
func (h *Heap) Valid(r Ref) error {
	if err := h.usable(); err != nil {
		return err
	}
	_, err := h.resolve(r)
	return err
}

// Size returns the size of r's slot in bytes (at least the size asked of
// Alloc or the Type). It reads no object and may be called from any
// goroutine.
func (h *Heap) Size(r Ref) (int, error) {
	if err := h.usable(); err != nil {
		return 0, err
	}
	s, err := h.resolve(r)
	if err != nil {
		return 0, err
	}
	return int(s.elemSize), nil
}

// View returns direct access to the object r, valid until the Mutator's
// next safepoint that parks it, collects or releases it (Alloc and New
// only when they do): accesses through a View check the field and not
// the Ref. Use one for several accesses to an object.
func (m *Mutator) View(r Ref) (View, error) {
	// The checks of resolve, without building an error, with the table
	// the Mutator read last.
	if m.state == mutatorRunning { // a closed heap closed its Mutators
		if s := m.table.lookup(r, m.tag); s != nil && s.live(r) {
			return m.view(s, r.slot()), nil
		}
	}
	return m.viewSlow(r)
}

// viewSlow is View with the heap's current span table, and the error of
// a Ref that fails its checks, or of a Mutator that does not run.
func (m *Mutator) viewSlow(r Ref) (View, error) {
	if m.state != mutatorRunning {
		return View{}, m.stateErr()
	}
	if t := m.h.table.Load(); t != m.table {
		m.table = t
		return m.View(r)
	}
	if _, err := m.h.resolve(r); err != nil {
		return View{}, err
	}
	return View{}, badRef(r, "no live object")
}

// view returns m's View of slot j of s.
func (m *Mutator) view(s *span, j int) View {
	return View{m: m, s: s, base: unsafe.Add(s.base, uintptr(j)*s.elemSize), es: m.epoch | uint64(j)}
}

// Load returns word i of the object r as a Ref.
func (m *Mutator) Load(r Ref, i int) (Ref, error) {
	v, err := m.View(r)
	if err != nil {
		return Nil, err
	}
	return v.Load(i)
}

// Store stores x into word i of the object r, which must be a word that
// holds a Ref: any word of an object traced by Options.Trace, a Ref word
// of its Type otherwise (ErrType). x must be Nil or a Ref of this heap
// (ErrBadRef). Whether x names a live object is checked where it is used,
// as for any Ref: a stale x stored is reported by the View or Load that
// follows it, and the marker skips it.
func (m *Mutator) Store(r Ref, i int, x Ref) error {
	v, err := m.View(r)
	if err != nil {
		return err
	}
	return v.Store(i, x)
}

// LoadWord returns word i (bytes 8i to 8i+7) of the object r.
func (m *Mutator) LoadWord(r Ref, i int) (uint64, error) {
	v, err := m.View(r)
	if err != nil {
		return 0, err
	}
	return v.LoadWord(i)
}

// StoreWord stores w into word i of the object r. A word that holds Refs
// may be written too: the marker skips a word that names no object of the
// heap, and counts it in Stats.BadRefs.
func (m *Mutator) StoreWord(r Ref, i int, w uint64) error {
	v, err := m.View(r)
	if err != nil {
		return err
	}
	return v.StoreWord(i, w)
}

// ReadAt copies len(p) bytes of the object r from offset off into p.
func (m *Mutator) ReadAt(r Ref, p []byte, off int) error {
	v, err := m.View(r)
	if err != nil {
		return err
	}
	return v.ReadAt(p, off)
}

// WriteAt copies p into the object r at offset off.
func (m *Mutator) WriteAt(r Ref, p []byte, off int) error {
	v, err := m.View(r)
	if err != nil {
		return err
	}
	return v.WriteAt(p, off)
}

// View is a Mutator's direct access to one object. It is valid until
// the Mutator next parks at a safepoint, runs a collection or is released
// or closed: a collection may free the object's memory after that, and
// the View's methods then return ErrBadRef. A View belongs to its
// Mutator's goroutine. The zero View is not valid.
type View struct {
	// Four fields, so that the compiler keeps a View in registers.
	m    *Mutator
	s    *span          // the object's span: size, layout, and its Ref
	base unsafe.Pointer // the object's first byte
	es   uint64         // m.epoch when the View was made, with the object's slot in the low 16 bits
}

// epochStep is what a Mutator's epoch advances by, leaving its low 16
// bits to a View's slot.
const epochStep = 1 << refSlotBits

// ok reports whether v is valid and i a word of its object.
func (v View) ok(i int) bool {
	return v.m != nil && v.es&^(epochStep-1) == v.m.epoch && uint(i) < uint(v.s.elemSize/8)
}

// wordErr returns the error of an access to word i through v, which is
// not valid or not that long.
func (v View) wordErr(i int) error { return &viewError{v: v, i: i} }

// viewError is the error of an access to word i through View v that
// failed its checks: its text is made when asked for, so that Load,
// LoadWord and ReadAt stay small enough for the compiler to inline; the
// Ref and object size it names are read from v's span then. Its sentinel
// is fixed: ErrBadRef. A word within the object failed because the View
// expired.
type viewError struct {
	v View
	i int
}

func (e *viewError) Error() string {
	switch {
	case e.v.s == nil:
		return badRef(Nil, "the zero View").Error()
	case uint(e.i) >= uint(e.v.s.elemSize/8):
		return badRef(e.v.Ref(), fmt.Sprintf("word %d outside a %d-byte object", e.i, e.v.s.elemSize)).Error()
	}
	return badRef(e.v.Ref(), "View used after a safepoint").Error()
}

func (e *viewError) Unwrap() error { return ErrBadRef }

// Ref returns the object's Ref.
func (v View) Ref() Ref {
	if v.s == nil {
		return Nil
	}
	j := int(v.es & (epochStep - 1))
	return makeRef(v.s.tag, v.s.idx, j, v.s.seq(j))
}

// Size returns the size of the object's slot in bytes.
func (v View) Size() int {
	if v.s == nil {
		return 0
	}
	return int(v.s.elemSize)
}

// Load returns word i of the object as a Ref.
func (v View) Load(i int) (Ref, error) {
	if v.ok(i) {
		return Ref(*(*uint64)(unsafe.Add(v.base, uintptr(i)*8))), nil
	}
	return Nil, v.wordErr(i)
}

// Store stores x into word i of the object, as Mutator.Store does.
func (v View) Store(i int, x Ref) error {
	if !v.ok(i) || !v.s.layout.isRef(i) || (x.tag() != v.m.tag && x != Nil) {
		return v.storeErr(i, x)
	}
	p := (*uint64)(unsafe.Add(v.base, uintptr(i)*8))
	if v.m.wb {
		if v.s.layout.scan != scanMask {
			v.m.wbWords(v.s, v.base, i, i+1)
		} else if old := Ref(*p); old != Nil {
			v.m.shade(old)
		}
	}
	*p = uint64(x)
	return nil
}

// storeErr returns the error of Store(i, x) through v, which failed its
// checks.
func (v View) storeErr(i int, x Ref) error {
	switch {
	case !v.ok(i):
		return v.wordErr(i)
	case !v.s.layout.isRef(i):
		return fmt.Errorf("%w: storing a Ref into word %d of %v, a word for data", ErrType, i, v.Ref())
	}
	return fmt.Errorf("storing %v into %v: %w", x, v.Ref(), badRef(x, "a Ref of another heap"))
}

// LoadWord returns word i (bytes 8i to 8i+7) of the object.
func (v View) LoadWord(i int) (uint64, error) {
	if v.ok(i) {
		return *(*uint64)(unsafe.Add(v.base, uintptr(i)*8)), nil
	}
	return 0, v.wordErr(i)
}

// StoreWord stores w into word i of the object, as Mutator.StoreWord
// does.
func (v View) StoreWord(i int, w uint64) error {
	if !v.ok(i) {
		return v.wordErr(i)
	}
	if v.m.wb {
		v.m.wbWords(v.s, v.base, i, i+1)
	}
	*(*uint64)(unsafe.Add(v.base, uintptr(i)*8)) = w
	return nil
}

// bytes returns the bytes [off, off+n) of the object.
func (v View) bytes(off, n int) ([]byte, error) {
	if v.m == nil || v.es&^(epochStep-1) != v.m.epoch {
		return nil, badRef(v.Ref(), "View used after a safepoint")
	}
	if off < 0 || n < 0 || uint64(off)+uint64(n) > uint64(v.s.elemSize) {
		return nil, badRef(v.Ref(), fmt.Sprintf("bytes [%d,%d+%d) outside a %d-byte object", off, off, n, v.s.elemSize))
	}
	return unsafe.Slice((*byte)(unsafe.Add(v.base, off)), n), nil
}

// ReadAt copies len(p) bytes of the object from offset off into p.
func (v View) ReadAt(p []byte, off int) error {
	b, err := v.bytes(off, len(p))
	if err != nil {
		return err
	}
	copy(p, b)
	return nil
}

// WriteAt copies p into the object at offset off.
func (v View) WriteAt(p []byte, off int) error {
	b, err := v.bytes(off, len(p))
	if err != nil {
		return err
	}
	if v.m.wb && len(p) > 0 {
		v.m.wbWords(v.s, v.base, off/8, (off+len(p)+7)/8)
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
