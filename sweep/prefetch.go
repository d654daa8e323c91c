//go:build amd64 || arm64

package sweep

import "unsafe"

// prefetch asks the processor to bring the cache line at p into its
// caches, without waiting for it: the marker calls it for the span it
// will scan next.
//
//go:noescape
func prefetch(p unsafe.Pointer)
