// Command workload is a GC-heavy program for measuring the Go runtime's
// mark-bit allocator: goroutines build and drop small objects of mixed
// sizes, pointer-carrying and pointer-free, against a live heap of a fixed
// size, so that the collector runs many cycles and sweeps many spans.
//
// It runs for -d, then prints one JSON object on stdout: allocations,
// seconds, GC cycles and bytes allocated. With -cpuprofile and
// -mutexprofile it writes the profiles; run it with
// GODEBUG=runtimecontentionstacks=1 for the runtime's own locks to carry
// their stacks in the mutex profile.
//
// It uses only the standard library, so that any toolchain builds it.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"time"
)

// node is a pointer-carrying object; payload sizes vary by type below.
type node struct {
	next *node
	kids []*node
	data []byte
}

func main() {
	dur := flag.Duration("d", 2*time.Second, "how long to run")
	live := flag.Int("live", 32<<20, "bytes of live heap to keep")
	gogc := flag.Int("gogc", 25, "GC percent")
	cpuprof := flag.String("cpuprofile", "", "write a CPU profile to `file`")
	mutexprof := flag.String("mutexprofile", "", "write a mutex profile to `file`")
	flag.Parse()
	if *dur <= 0 || *live <= 0 || *gogc <= 0 {
		fmt.Fprintln(os.Stderr, "workload: -d, -live and -gogc must be positive")
		os.Exit(2)
	}
	debug.SetGCPercent(*gogc)
	if *mutexprof != "" {
		runtime.SetMutexProfileFraction(1)
	}
	if *cpuprof != "" {
		f, err := os.Create(*cpuprof)
		if err != nil {
			fail(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fail(err)
		}
		defer f.Close()
	}

	workers := 2 * runtime.GOMAXPROCS(0)
	var allocs atomic.Uint64
	var stop atomic.Bool
	var wg sync.WaitGroup
	startGC := readMetric("/gc/cycles/total:gc-cycles")
	startBytes := readMetric("/gc/heap/allocs:bytes")
	start := time.Now()
	for w := range workers {
		wg.Go(func() {
			allocs.Add(churn(w, *live/workers, &stop))
		})
	}
	time.Sleep(*dur)
	stop.Store(true)
	wg.Wait()
	secs := time.Since(start).Seconds()
	gcs := readMetric("/gc/cycles/total:gc-cycles") - startGC
	bytes := readMetric("/gc/heap/allocs:bytes") - startBytes
	if *cpuprof != "" {
		pprof.StopCPUProfile()
	}
	if *mutexprof != "" {
		f, err := os.Create(*mutexprof)
		if err != nil {
			fail(err)
		}
		if err := pprof.Lookup("mutex").WriteTo(f, 0); err != nil {
			fail(err)
		}
		if err := f.Close(); err != nil {
			fail(err)
		}
	}
	out := map[string]any{
		"allocs":     allocs.Load(),
		"seconds":    secs,
		"gcCycles":   gcs,
		"allocBytes": bytes,
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		fail(err)
	}
}

// sizes are payload sizes spread over many of the runtime's size classes.
var sizes = [...]int{8, 16, 24, 32, 48, 64, 80, 96, 128, 160, 208, 256, 320, 416, 512, 640, 896, 1024, 1408, 2048}

// churn allocates until stop is set, keeping about budget bytes reachable
// from a ring of recently built objects, and returns how many objects it
// allocated.
func churn(seed, budget int, stop *atomic.Bool) uint64 {
	ring := make([]*node, 4096)
	per := max(budget/len(ring), 64)
	x := uint32(seed)*2654435761 + 1
	var n uint64
	for i := 0; !stop.Load(); i++ {
		// A small tree: a node with kids and pointer-free payloads.
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		root := &node{data: make([]byte, sizes[x%uint32(len(sizes))])}
		n += 2
		for used := len(root.data); used < per; {
			k := &node{next: root.next, data: make([]byte, sizes[(x>>8+uint32(used))%uint32(len(sizes))])}
			root.next = k
			used += len(k.data) + 48
			n += 2
		}
		root.kids = make([]*node, 1+int(x>>24)%8)
		n++
		// Drop the oldest tree, after a walk that keeps the ring read
		// (and so in memory) and checks that its list is intact.
		slot := &ring[i%len(ring)]
		for k := *slot; k != nil; k = k.next {
			if len(k.data) == 0 {
				panic("workload: a payload lost its length")
			}
		}
		*slot = root
	}
	return n
}

func readMetric(name string) uint64 {
	s := []metrics.Sample{{Name: name}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "workload:", err)
	os.Exit(1)
}
