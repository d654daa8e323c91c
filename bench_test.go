package gcbits_test

import (
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/gcbits/gcbits"
	"github.com/gcbits/gcbits/internal/arenatest"
	"github.com/gcbits/gcbits/internal/seed"
	"github.com/gcbits/gcbits/sweep"
)

// sizeMix is the bitmap size, in bits, of one span of each of Go's small
// size classes (objects per span): the requests a sweeper makes. The same
// mix drives gcbits bench.
var sizeMix = func() []int {
	var m []int
	for _, c := range sweep.GoClasses() {
		m = append(m, c.Pages*sweep.PageSize/c.Size)
	}
	return m
}()

// epochLen is how many allocations each worker makes between epoch turns.
const epochLen = 1 << 16

// allocators are the designs the benchmarks compare. newWorker gives each
// worker goroutine its allocation function.
var allocators = []struct {
	name string
	make func(testing.TB) (newWorker func() func(int) ([]uint64, error), advance func())
}{
	{"seed-before", func(tb testing.TB) (func() func(int) ([]uint64, error), func()) {
		s := seed.NewBefore()
		tb.Cleanup(func() { s.Close() })
		return func() func(int) ([]uint64, error) { return s.Alloc }, s.Advance
	}},
	{"seed-after", func(tb testing.TB) (func() func(int) ([]uint64, error), func()) {
		s := seed.NewAfter()
		tb.Cleanup(func() { s.Close() })
		return func() func(int) ([]uint64, error) { return s.Alloc }, s.Advance
	}},
	{"gcbits", func(tb testing.TB) (func() func(int) ([]uint64, error), func()) {
		a := arenatest.New(tb, gcbits.Options{})
		alloc := func(n int) ([]uint64, error) { return a.Alloc(n) }
		return func() func(int) ([]uint64, error) { return alloc }, func() { a.Advance() }
	}},
	{"gcbits-cache", func(tb testing.TB) (func() func(int) ([]uint64, error), func()) {
		a := arenatest.New(tb, gcbits.Options{})
		return func() func(int) ([]uint64, error) {
			c := a.NewCache()
			return func(n int) ([]uint64, error) { return c.Alloc(n) }
		}, func() { a.Advance() }
	}},
}

// BenchmarkAlloc compares the allocators on the size-class mix with 1, 2,
// 4 … GOMAXPROCS workers. Epochs turn every epochLen allocations per
// worker with all workers stopped at a barrier, as the runtime's
// stop-the-world does, since the seed designs need it. Compare with
// benchstat.
func BenchmarkAlloc(b *testing.B) {
	for _, al := range allocators {
		for _, workers := range workerCounts() {
			b.Run(fmt.Sprintf("alloc=%s/workers=%d", al.name, workers), func(b *testing.B) {
				newWorker, advance := al.make(b)
				runWorkers(b, workers, newWorker, advance)
			})
		}
	}
}

// workerCounts is 1, 2, 4 … up to GOMAXPROCS, and GOMAXPROCS itself.
func workerCounts() []int {
	p := runtime.GOMAXPROCS(0)
	var ws []int
	for w := 1; w < p; w *= 2 {
		ws = append(ws, w)
	}
	return append(ws, p)
}

// runWorkers splits b.N allocations over workers goroutines in epochs of
// epochLen allocations each, advancing between epochs while all workers
// are stopped. The workers live for the whole benchmark, so each keeps
// its stack (and so its gcbits shard).
func runWorkers(b *testing.B, workers int, newWorker func() func(int) ([]uint64, error), advance func()) {
	start := make([]chan bool, workers)
	var done sync.WaitGroup
	for w := range start {
		start[w] = make(chan bool)
		go func(alloc func(int) ([]uint64, error), start <-chan bool, j int) {
			for range start {
				for range epochLen {
					if _, err := alloc(sizeMix[j]); err != nil {
						b.Error(err)
						break
					}
					if j++; j == len(sizeMix) {
						j = 0
					}
				}
				done.Done()
			}
		}(newWorker(), start[w], w*7%len(sizeMix))
	}
	b.ResetTimer()
	epochs := 0
	for n := 0; n < b.N; n += workers * epochLen {
		done.Add(workers)
		for _, s := range start {
			s <- true
		}
		done.Wait()
		advance()
		epochs++
	}
	b.StopTimer()
	for _, s := range start {
		close(s)
	}
	b.ReportMetric(float64(epochs*workers*epochLen)/b.Elapsed().Seconds()/1e6, "Mop/s")
}

// BenchmarkAdvance measures Advance in steady state against the number of
// blocks in the generation it recycles, which it takes without walking
// them. The loop also fills the blocks, so ns/op is not the figure:
// ns/advance is.
func BenchmarkAdvance(b *testing.B) {
	for _, blocks := range []int{1, 64, 1024} {
		b.Run(fmt.Sprintf("gcbits/blocks=%d", blocks), func(b *testing.B) {
			a := arenatest.New(b, gcbits.Options{BlockSize: gcbits.MinBlockSize})
			var spent time.Duration
			for i := 0; i < b.N; i++ {
				for j := 0; j < 4*blocks; j++ {
					a.Alloc(gcbits.MinBlockSize * 8 / 4) // a quarter block
				}
				t0 := time.Now()
				a.Advance()
				spent += time.Since(t0)
			}
			b.ReportMetric(float64(spent.Nanoseconds())/float64(b.N), "ns/advance")
		})
	}
}

// BenchmarkGuard measures what Options.Guard costs on the size-class mix,
// one worker, with the shared path and with a Cache: throughput (Mop/s)
// with Guard on against off, and the address space the arena holds at the
// end of an epoch, at most (MiB-mapped; with Guard, GuardEpochs more
// generations). Count the system calls per epoch with strace -c -f over a
// run of a fixed number of iterations (-benchtime 100x: epochs is
// reported), or compare the throughput with benchstat.
func BenchmarkGuard(b *testing.B) {
	for _, al := range []string{"gcbits", "gcbits-cache"} {
		for _, guard := range []bool{false, true} {
			b.Run(fmt.Sprintf("alloc=%s/guard=%v", al, guard), func(b *testing.B) {
				a := arenatest.New(b, gcbits.Options{Guard: guard})
				newWorker := func() func(int) ([]uint64, error) {
					return func(n int) ([]uint64, error) { return a.Alloc(n) }
				}
				if al == "gcbits-cache" {
					newWorker = func() func(int) ([]uint64, error) {
						c := a.NewCache()
						return func(n int) ([]uint64, error) { return c.Alloc(n) }
					}
				}
				var peak int64
				epochs := 0
				runWorkers(b, 1, newWorker, func() {
					a.Advance()
					peak = max(peak, a.Stats().MappedBytes)
					epochs++
				})
				b.ReportMetric(float64(peak)/(1<<20), "MiB-mapped")
				b.ReportMetric(float64(epochs), "epochs")
			})
		}
	}
}
