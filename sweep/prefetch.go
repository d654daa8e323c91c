//go:build amd64 || arm64

package sweep

import "unsafe"

// prefetch asks the processor to bring the cache line at p into its
// caches, without waiting for it: the marker calls it for the span it
// will scan next.
//
//go:noescape
func prefetch(p unsafe.Pointer)

// prefetchSlots asks the processor to bring in the first cache line of
// slot i of size bytes from base, for each bit i set in slots: the
// objects a span scan reads next, prefetched in one call.
//
//go:noescape
func prefetchSlots(base unsafe.Pointer, size uintptr, slots uint64)
