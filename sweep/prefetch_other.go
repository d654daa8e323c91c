//go:build !amd64 && !arm64

package sweep

import "unsafe"

// prefetch does nothing on this architecture.
func prefetch(unsafe.Pointer) {}

// prefetchSlots does nothing on this architecture.
func prefetchSlots(unsafe.Pointer, uintptr, uint64) {}
