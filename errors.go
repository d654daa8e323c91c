package gcbits

import "errors"

// Sentinel errors. Errors returned by this package wrap one of these, or
// a failure of the operating system, so callers test them with
// [errors.Is].
var (
	// ErrSize reports a request size out of range: negative, or above
	// [MaxBits].
	ErrSize = errors.New("gcbits: bad size")
	// ErrClosed reports use of an Arena after [Arena.Close], or of an
	// Arena or Cache not made by [New] or [Arena.NewCache].
	ErrClosed = errors.New("gcbits: arena closed")
	// ErrOption reports an [Options] field outside its documented range.
	ErrOption = errors.New("gcbits: bad option")
	// ErrLimit reports that a request cannot be served without mapping
	// more than [Options.MaxBytes], whatever the requests in progress do.
	// The arena stays usable: memory comes back as epochs advance. See
	// the MaxBytes example of Options.
	ErrLimit = errors.New("gcbits: memory limit reached")
)
