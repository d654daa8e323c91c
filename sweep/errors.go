package sweep

import (
	"errors"
	"fmt"
)

// Sentinel errors. Errors returned by this package wrap one of these, so
// callers test them with errors.Is.
var (
	// ErrBadRef reports a Ref that names no live object: Nil, garbage, an
	// object that was swept (stale), or a field or byte range outside the
	// object.
	ErrBadRef = errors.New("sweep: bad or stale ref")
	// ErrSize reports a request size that is not positive or too large.
	ErrSize = errors.New("sweep: bad size")
	// ErrOption reports an Options field outside its documented range.
	ErrOption = errors.New("sweep: bad option")
	// ErrClosed reports use of a Heap after Close or of a Mutator after
	// Mutator.Close.
	ErrClosed = errors.New("sweep: closed")
	// ErrLimit reports that serving an allocation would map more than
	// Options.MaxBytes, even after a collection that swept the whole heap
	// and released every empty span.
	ErrLimit = errors.New("sweep: heap memory limit reached")
	// ErrReleased reports use of a Mutator between Release and Acquire.
	ErrReleased = errors.New("sweep: mutator released")
)

// errClosed is the error of an operation on a closed Heap.
var errClosed = fmt.Errorf("%w: heap", ErrClosed)

// badRef returns an error wrapping ErrBadRef for r.
func badRef(r Ref, why string) error {
	return fmt.Errorf("%w: %v: %s", ErrBadRef, r, why)
}
