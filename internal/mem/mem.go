// Package mem hands out memory that lives outside the Go heap, so that the
// garbage collector never scans it and GOGC never counts it.
//
// On Unix systems a Region is an anonymous private mapping made with mmap.
// Elsewhere it falls back to memory from the Go heap, kept alive by the
// Region itself; Protect and Guard are then unsupported.
package mem

import "unsafe"

// Region is a page-aligned block of memory from Map. The zero Region is empty.
type Region struct {
	// keep is the Go memory behind base where mmap is unavailable, and
	// takes no space where it is: a Region is then two words, passed in
	// registers. It comes first, as a zero-size last field would be padded.
	keep keeper
	base unsafe.Pointer
	size uintptr
}

// Base returns the address of the first byte of r.
func (r Region) Base() unsafe.Pointer { return r.base }

// Size returns the length of r in bytes.
func (r Region) Size() uintptr { return r.size }

// Words returns r as a slice of 64-bit words.
func (r Region) Words() []uint64 {
	if r.base == nil {
		return nil
	}
	return unsafe.Slice((*uint64)(r.base), r.size/8)
}

// Sub returns the n bytes of r from offset off as a Region, to release or
// protect part of a mapping. off and n must be multiples of the page size
// with off+n at most r.Size(). Unmapping it unmaps only that range.
func (r Region) Sub(off, n uintptr) Region {
	return Region{base: unsafe.Add(r.base, off), size: n, keep: r.keep}
}

// RoundUp rounds n up to a multiple of the page size.
func RoundUp(n uintptr) uintptr {
	p := uintptr(PageSize())
	return (n + p - 1) &^ (p - 1)
}
