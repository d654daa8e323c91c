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
	// ErrType reports a bad Type: a size or Ref word out of range in
	// NewType, the zero Type or a Type of another heap, or a Ref stored
	// into a word its object's Type keeps for data.
	ErrType = errors.New("sweep: bad type")
	// ErrReleased reports use of a Mutator between Release and Acquire.
	ErrReleased = errors.New("sweep: mutator released")
	// ErrTrace reports a collection abandoned because a Tracer or the
	// Roots function panicked; the error is a *TraceError. The heap stays
	// usable.
	ErrTrace = errors.New("sweep: tracer panicked")
)

// TraceError is the error of a collection abandoned because a Tracer or
// the Roots function panicked or called runtime.Goexit. Marking stopped,
// every mark was undone and the world started again: the heap is as it
// was before the collection. It wraps ErrTrace and, when the panic's
// value is an error, that error.
type TraceError struct {
	Value any    // the value passed to panic, or ErrGoexit
	Stack []byte // the stack of the goroutine that panicked
}

// ErrGoexit is the Value of a TraceError when the function called
// runtime.Goexit instead of returning.
var ErrGoexit = errors.New("runtime.Goexit called")

func (e *TraceError) Error() string {
	return fmt.Sprintf("%v: %v\n%s", ErrTrace, e.Value, e.Stack)
}

// Unwrap returns ErrTrace and the panic's value if it is an error.
func (e *TraceError) Unwrap() []error {
	if err, ok := e.Value.(error); ok {
		return []error{ErrTrace, err}
	}
	return []error{ErrTrace}
}

// errClosed is the error of an operation on a closed Heap, and
// errMutatorClosed of one on a closed Mutator.
var (
	errClosed        = fmt.Errorf("%w: heap", ErrClosed)
	errMutatorClosed = fmt.Errorf("%w: mutator", ErrClosed)
)

// badRef returns an error wrapping ErrBadRef for r.
func badRef(r Ref, why string) error {
	return fmt.Errorf("%w: %v: %s", ErrBadRef, r, why)
}
