package gcbits

// Guard mode (Options.Guard) keeps every recycled block inaccessible, its
// pages returned to the OS, for guardFor epochs before the block is used
// again: a bitmap touched after its lifetime faults at its own address
// from the Advance that ends its lifetime until guardFor epochs later.
//
// The Advance to e takes the dead generation (recycled at e) off the ring
// under mu, counts it in flight and, with mu released, maps fresh
// PROT_NONE memory over each of its blocks (guardMayUnlock). It then puts
// them in slot e % guardFor of a.guarded. The Advance to e+guardFor empties
// that slot (unguardLocked): ordinary blocks join the free list, still
// PROT_NONE and without pages, so that the goroutine that takes one
// unprotects it and has nothing to clear; dedicated blocks are unmapped.
// What the slots hold stays counted in a.mapped.

// unguardLocked ends the guard of the blocks recycled at epoch e-guardFor:
// their ordinary blocks join the free list, and their dedicated blocks are
// returned, to be unmapped.
func (a *Arena) unguardLocked(e uint64) chunkList {
	slot := &a.guarded[e%a.guardFor]
	a.free.splice(&slot.chunks)
	ded := slot.dedicated
	slot.dedicated = chunkList{}
	return ded
}

// guardedLocked returns how many blocks, ordinary and dedicated, the guard
// slots hold, and their bytes: at most MaxGuardEpochs slots to add up.
func (a *Arena) guardedLocked() (n int, bytes int64) {
	for i := range a.guarded {
		g := &a.guarded[i]
		n += g.chunks.n + g.dedicated.n
		bytes += g.chunks.bytes + g.dedicated.bytes
	}
	return n, bytes
}

// popGuardedLocked takes a block out of the oldest non-empty guard slot,
// to give way under MaxBytes. Some slot must hold one.
func (a *Arena) popGuardedLocked() *chunk {
	e := a.Epoch()
	for k := uint64(1); k <= a.guardFor; k++ { // slot (e+1) % guardFor is the oldest
		slot := &a.guarded[(e+k)%a.guardFor]
		c := slot.chunks.pop()
		if c == nil {
			c = slot.dedicated.pop()
		}
		if c != nil {
			return c
		}
	}
	panic("gcbits: no guard slot holds a block to give way")
}

// reguardLocked puts back blocks taken by popGuardedLocked for a map that
// failed: each in the slot of the epoch its generation was recycled at,
// or, if its guard has ended meanwhile, in the oldest slot, which the next
// Advance empties.
func (a *Arena) reguardLocked(l *chunkList) {
	e := a.Epoch()
	for c := l.head; c != nil; {
		next := c.next
		at := c.gen + a.retain + 1 // the Advance that recycled it
		if at+a.guardFor <= e {
			at = e + 1
		}
		slot := &a.guarded[at%a.guardFor]
		if c.words == 0 { // a dedicated block
			slot.dedicated.push(c)
		} else {
			slot.chunks.push(c)
		}
		c = next
	}
	*l = chunkList{}
}

// guardMayUnlock makes every block of dead, the generation recycled by the
// Advance to e, inaccessible and releases its pages, with mu released (one
// system call per block), then puts the blocks in the guard slot of e. If
// Close ran meanwhile, and so did not see them, it returns them instead,
// for the caller to unmap once it releases mu. A block whose protection
// fails is counted in UnmapErrors and guarded all the same: it stays
// accessible, but is not reused before its time; an ordinary one keeps its
// dirty mark and is cleared when reused.
func (a *Arena) guardMayUnlock(e uint64, dead *genList) (closed chunkList) {
	a.inFlightMayUnlock(func() {
		for _, l := range []*chunkList{&dead.chunks, &dead.dedicated} {
			for c := l.head; c != nil; c = c.next {
				if err := a.sys.Guard(c.region); err != nil {
					a.unmapErrs.Add(1)
					continue
				}
				c.locked, c.dirty = true, 0
			}
		}
	})
	if a.closed() {
		a.mapped -= dead.chunks.bytes + dead.dedicated.bytes
		closed.splice(&dead.chunks)
		closed.splice(&dead.dedicated)
		return closed
	}
	slot := &a.guarded[e%a.guardFor]
	slot.chunks.splice(&dead.chunks)
	slot.dedicated.splice(&dead.dedicated)
	return closed
}
