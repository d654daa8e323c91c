package gcbits

import "github.com/gcbits/gcbits/internal/mem"

// hooks are an arena's calls to the operating system and its clearing of
// recycled memory. New sets the real ones; tests replace them, before the
// arena is used, to inject faults or to hold an operation in flight. The
// fields are exported for the tests, whose Hooks type is an alias.
type hooks struct {
	Map       func(size uintptr) (mem.Region, error) // maps fresh memory
	Unmap     func(mem.Region) error                 // returns a block to the OS
	Guard     func(mem.Region) error                 // Guard: makes a recycled block inaccessible and releases its pages
	Unprotect func(mem.Region) error                 // Guard: makes a guarded block readable and writable again
	Clear     func([]byte)                           // clears what a recycled block's previous life handed out
}

// defaultHooks returns the hooks of an arena made by New.
func defaultHooks() hooks {
	return hooks{
		Map:       mem.Map,
		Unmap:     mem.Region.Unmap,
		Guard:     mem.Region.Guard,
		Unprotect: func(r mem.Region) error { return r.Protect(true) },
		Clear:     func(b []byte) { clear(b) },
	}
}
