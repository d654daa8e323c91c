// Package workload holds the programs that the demo of cmd/gcbits runs and
// that the tests of package sweep check, each on a sweep.Heap and, for
// comparison, on Go's own heap: the Computer Language Benchmarks Game's
// binary-trees and Boehm's GCBench.
package workload
