package bench

import (
	"fmt"
	"unsafe"

	"github.com/gcbits/gcbits/cmd/gcbits/internal/machine"
)

const (
	// liveEpochs bounds how many epochs of bitmaps an allocator holds at
	// once: the epoch being allocated, the two it retains (gcbits' default
	// Retain, the seeds' rotation) and one on its free list, which the
	// next epoch takes back. The Go-heap references hold less: make's
	// bitmaps are garbage at once outside the sweep, and in it one
	// epoch's are live, which GOGC=100 lets the heap double.
	liveEpochs = 4

	// blockBytes is what a worker may hold of a block it has not filled,
	// per epoch: a 64 KiB block (a gcbits shard's head, a seed block).
	blockBytes = 64 << 10
)

// machineMemory returns the memory the process can have, in bytes, or 0
// where it cannot tell. Tests replace it.
var machineMemory = machine.Memory

// need is the memory one run needs at most.
type need struct {
	bytes    float64 // all of it
	epoch    float64 // one epoch's bitmaps
	scenario string
	workers  int
}

// runNeed bounds the memory of a run of scenario with workers under c:
// liveEpochs epochs of bitmaps, a partly used block per worker in each,
// the sweep's spans and its no-op baseline's memory, and machine.BaseBytes.
func runNeed(c Config, scenario string, workers int) need {
	w := float64(workers)
	n := need{scenario: scenario, workers: workers}
	var extra float64
	switch scenario {
	case Quiescent:
		n.epoch = w * float64(c.EpochAllocs) * mixBytes()
	case Concurrent:
		n.epoch = w * ConcurrentEpochCap * float64(c.EpochAllocs) * mixBytes()
	case Sweep:
		n.epoch = float64(c.SweepSpans) * mixBytes()
		extra = float64(c.SweepSpans)*float64(unsafe.Sizeof(span{})) + // the list
			3*n.epoch + w*poolWords*8 // the no-op baseline's memory
	}
	n.bytes = liveEpochs*(n.epoch+w*blockBytes) + extra + machine.BaseBytes
	return n
}

// estimate returns the most memory a run of c needs: runs follow one
// another, and each closes its allocator before the next begins.
func estimate(c Config) need {
	var most need
	for _, sc := range c.Scenarios {
		for _, w := range c.Workers {
			if n := runNeed(c, sc, w); n.bytes > most.bytes {
				most = n
			}
		}
	}
	return most
}

// Estimate returns an upper bound, in bytes, of the memory a Run of cfg
// holds at once, or the error Run would return before measuring.
func Estimate(cfg Config) (uint64, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return 0, err
	}
	return clampBytes(estimate(c).bytes), nil
}

// checkMemory refuses c if its largest run could need more than half the
// memory of the machine (machine.CheckFit).
func checkMemory(c Config) error {
	n := estimate(c)
	return machine.CheckFit(machineMemory(), n.bytes, fmt.Sprintf("%s with %d workers", n.scenario, n.workers),
		fmt.Sprintf("%d epochs of %s of bitmaps, and %s besides", liveEpochs, machine.FormatBytes(n.epoch),
			machine.FormatBytes(n.bytes-liveEpochs*n.epoch)))
}

// clampBytes converts a byte count to uint64, saturating.
func clampBytes(b float64) uint64 {
	if b >= 1<<63 {
		return 1 << 63
	}
	return uint64(b)
}
