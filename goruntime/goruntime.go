// Package goruntime holds the gcbits patch series for the Go runtime's
// mark-bit allocator and the GC-heavy workload that measures it; see
// README.md in this directory. The gcbits command's runtime subcommand
// applies the patches to a copy of the installed Go and measures both.
package goruntime

import (
	"embed"
	"io/fs"
	"slices"
)

// BaseVersion is the Go release the patches were made against. They
// touch src/runtime only and apply to the releases of its series
// (Series) whose mark-bit code is unchanged.
const BaseVersion = "go1.26.8"

// Series is the release series the patches are for.
const Series = "go1.26"

// files holds the patches and the workload's source.
//
//go:embed *.patch workload/main.go
var files embed.FS

// Patch is one patch of the series.
type Patch struct {
	Name string // file name, e.g. 0003-runtime-splice-mark-bit-arena-lists-in-O-1.patch
	Data []byte // git format-patch text: a commit message and a unified diff
}

// Patches returns the series in the order it applies.
func Patches() []Patch {
	names, err := fs.Glob(files, "*.patch")
	if err != nil {
		panic(err) // the pattern is constant and valid
	}
	slices.Sort(names)
	out := make([]Patch, len(names))
	for i, n := range names {
		out[i] = Patch{Name: n, Data: mustRead(n)}
	}
	return out
}

// Workload returns the source of the workload program, a main package
// that needs only the standard library.
func Workload() []byte {
	return mustRead("workload/main.go")
}

func mustRead(name string) []byte {
	b, err := files.ReadFile(name)
	if err != nil {
		panic(err) // embedded at build time
	}
	return b
}
