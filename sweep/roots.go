package sweep

import "fmt"

// The root stack: objects a Mutator pushes survive collections until it
// pops them. A Mutator's goroutine may change its root stack while the
// Mutator runs and while it is released; a released Mutator's changes
// take rootsMu, which a collection holds while it reads the stack.

// lockRoots takes rootsMu if the Mutator is not running (a collection
// may be reading its root stack) and returns the function that drops it.
func (m *Mutator) lockRoots() func() {
	if m.state == mutatorRunning {
		return func() {}
	}
	m.rootsMu.Lock()
	return m.rootsMu.Unlock
}

// rootsErr returns the error of a root stack change on m, or nil: the
// Mutator is closed, or r is not Nil and not a Ref of m's heap.
func (m *Mutator) rootsErr(r Ref) error {
	if m.state == mutatorClosed {
		return errMutatorClosed
	}
	if r != Nil && r.tag() != m.h.tag {
		return badRef(r, "a Ref of another heap")
	}
	return nil
}

// Push adds r to the top of the root stack, while the Mutator runs or is
// released. It returns an error wrapping ErrClosed on a closed Mutator,
// and ErrBadRef for a Ref of another heap.
func (m *Mutator) Push(r Ref) error {
	if m.state == mutatorRunning && (r.tag() == m.tag || r == Nil) {
		m.roots = append(m.roots, r)
		return nil
	}
	return m.pushSlow(r)
}

// pushSlow is Push on a Mutator that is not running, or of a Ref of
// another heap.
func (m *Mutator) pushSlow(r Ref) error {
	if err := m.rootsErr(r); err != nil {
		return err
	}
	defer m.lockRoots()()
	m.roots = append(m.roots, r)
	return nil
}

// Pop removes the top n roots (all of them if n exceeds the depth), while
// the Mutator runs or is released. It returns an error wrapping ErrClosed
// on a closed Mutator.
func (m *Mutator) Pop(n int) error {
	return m.PopTo(len(m.roots) - max(n, 0))
}

// PopTo pops roots until the stack is depth deep, as a handle scope
// closes: take depth := m.NumRoots() on entry to a function and call
// m.PopTo(depth) on the way out (defer it), and every Ref it pushed in
// between stops being a root, whatever paths it took. A depth above the
// current one leaves the stack alone. It works while the Mutator runs or
// is released, and returns an error wrapping ErrClosed on a closed one.
func (m *Mutator) PopTo(depth int) error {
	if roots := m.roots; uint(depth) <= uint(len(roots)) && m.state == mutatorRunning {
		m.roots = roots[:depth] // what lies past the length is never read
		return nil
	}
	return m.popToSlow(depth)
}

// popToSlow is PopTo on a Mutator that is not running, or with a depth
// outside the stack.
func (m *Mutator) popToSlow(depth int) error {
	if m.state != mutatorRunning {
		if err := m.rootsErr(Nil); err != nil {
			return err
		}
		defer m.lockRoots()()
	}
	m.roots = m.roots[:min(max(depth, 0), len(m.roots))]
	return nil
}

// NumRoots returns the depth of the root stack.
func (m *Mutator) NumRoots() int { return len(m.roots) }

// Root returns root i (0 is the bottom), or Nil when i is out of range.
func (m *Mutator) Root(i int) Ref {
	if uint(i) >= uint(len(m.roots)) {
		return Nil
	}
	return m.roots[i]
}

// SetRoot replaces root i, while the Mutator runs or is released. It
// returns an error wrapping ErrBadRef when i is out of range or r is a
// Ref of another heap, and ErrClosed on a closed Mutator.
func (m *Mutator) SetRoot(i int, r Ref) error {
	if err := m.rootsErr(r); err != nil {
		return err
	}
	defer m.lockRoots()()
	if uint(i) >= uint(len(m.roots)) {
		return fmt.Errorf("%w: root %d of %d", ErrBadRef, i, len(m.roots))
	}
	m.roots[i] = r
	return nil
}
