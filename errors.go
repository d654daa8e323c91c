package gcbits

import "errors"

// Sentinel errors. Errors returned by this package wrap one of these, so
// callers test them with errors.Is.
var (
	// ErrSize reports a request size out of range: negative, or above MaxBits.
	ErrSize = errors.New("gcbits: bad size")
	// ErrClosed reports use of an Arena after Close.
	ErrClosed = errors.New("gcbits: arena closed")
	// ErrOption reports an Options field outside its documented range.
	ErrOption = errors.New("gcbits: bad option")
	// ErrLimit reports that serving a request would map more than
	// Options.MaxBytes. The arena stays usable: memory comes back as
	// epochs advance.
	ErrLimit = errors.New("gcbits: memory limit reached")
)
