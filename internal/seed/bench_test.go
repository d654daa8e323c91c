package seed

import "testing"

// benchEpoch is how many bitmaps one epoch of a benchmark allocates before
// the epoch turns: about 1.5 MiB of bitmaps, some two dozen chunks.
const benchEpoch = 1 << 15

// benchParallel measures concurrent Alloc over the span size mix, with the
// epoch turning every benchEpoch allocations so that chunks are recycled
// (and cleared under the mutex) as in a running program, and memory stays
// bounded however large b.N grows.
//
// Advance must never run while an Alloc is in flight: for After that is
// unsafe (an Alloc holding a stale head can add to a chunk that has since
// been recycled and zeroed), and neither design is specified for it, since
// the runtime only changes epoch with the world stopped. So the epoch is
// not turned from one of the RunParallel goroutines. Instead b.N is split
// into epochs, each run by its own RunParallel (whose return means every
// worker has stopped), and Advance runs in between, while nothing
// allocates. The cost of Advance and of starting the workers is included;
// it is under 1% of an epoch.
func benchParallel(b *testing.B, a allocator) {
	defer a.Close()
	b.ReportAllocs()
	total := b.N
	for done := 0; done < total; done += benchEpoch {
		b.N = min(benchEpoch, total-done)
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				if _, err := a.Alloc(spanBits[i]); err != nil {
					b.Error(err)
					return
				}
				if i++; i == len(spanBits) {
					i = 0
				}
			}
		})
		a.Advance()
	}
	b.N = total
}

// benchSerial is benchParallel on one goroutine, without RunParallel.
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

func BenchmarkBefore(b *testing.B)       { benchParallel(b, NewBefore()) }
func BenchmarkAfter(b *testing.B)        { benchParallel(b, NewAfter()) }
func BenchmarkBeforeSerial(b *testing.B) { benchSerial(b, NewBefore()) }
func BenchmarkAfterSerial(b *testing.B)  { benchSerial(b, NewAfter()) }
