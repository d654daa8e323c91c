package seed_test

import (
	"testing"

	"github.com/gcbits/gcbits/internal/seed"
)

// benchEpoch is how many bitmaps one epoch of a benchmark allocates before
// the epoch turns: about 1.5 MiB of bitmaps, some two dozen blocks.
const benchEpoch = 1 << 15

// benchSerial measures Alloc over the span size mix on one goroutine,
// with the epoch turning every benchEpoch allocations so that blocks are
// recycled (and cleared under the mutex) as in a running program, and
// memory stays bounded however large b.N grows. The parallel comparison of
// both designs with gcbits, with Advance only while every worker is
// stopped (these designs need that), is BenchmarkAlloc in the root package.
func benchSerial(b *testing.B, a allocator) {
	defer a.Close()
	b.ReportAllocs()
	i := 0
	for n := range b.N {
		if _, err := a.Alloc(spanBits[i]); err != nil {
			b.Fatal(err)
		}
		if i++; i == len(spanBits) {
			i = 0
		}
		if n%benchEpoch == benchEpoch-1 {
			a.Advance()
		}
	}
}

func BenchmarkBeforeSerial(b *testing.B) { benchSerial(b, seed.NewBefore()) }
func BenchmarkAfterSerial(b *testing.B)  { benchSerial(b, seed.NewAfter()) }
