package gcbits_test

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/gcbits/gcbits"
)

// The life of a bitmap: allocated zeroed, marked, kept across Advance
// for Retain epochs, then recycled.
func Example() {
	a, err := gcbits.New(gcbits.Options{})
	if err != nil {
		panic(err)
	}
	defer a.Close()

	// One cycle: a mark bitmap for a span of 100 objects.
	marks, err := a.Alloc(100)
	if err != nil {
		panic(err)
	}
	marks.Set(3)
	marks.Set(42)
	marks.Set(99)
	fmt.Println("bits:", marks.Len(), "marked:", marks.Count())

	// The cycle ends. marks stays valid until epoch 0+Retain+1 = 3.
	fmt.Println("epoch:", a.Advance())
	fmt.Println("still marked:", marks.Count())

	// A bitmap from the new epoch comes zeroed.
	next, err := a.Alloc(100)
	if err != nil {
		panic(err)
	}
	fmt.Println("fresh:", next.Count())
	// Output:
	// bits: 128 marked: 3
	// epoch: 1
	// still marked: 3
	// fresh: 0
}

func ExampleCache() {
	a, err := gcbits.New(gcbits.Options{})
	if err != nil {
		panic(err)
	}
	defer a.Close()

	// Each worker gets its own Cache: its fast path takes no lock and does
	// no atomic read-modify-write.
	const workers = 4
	marked := make([]int, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			c := a.NewCache()
			defer c.Flush() // report what it served to Stats
			for span := range 1000 {
				b, err := c.Alloc(64)
				if err != nil {
					panic(err)
				}
				b.Set(span % 64)
				marked[w] += b.Count()
			}
		})
	}
	wg.Wait()
	fmt.Println("marked:", marked)
	fmt.Println("allocated bytes:", a.Stats().AllocatedBytes)
	// Output:
	// marked: [1000 1000 1000 1000]
	// allocated bytes: 32000
}

func ExampleBits_NextSet() {
	b := make(gcbits.Bits, 2) // a plain Go bitmap of 128 bits works too
	for _, i := range []int{1, 63, 64, 100} {
		b.Set(i)
	}
	var set []int
	for i := b.NextSet(0); i >= 0; i = b.NextSet(i + 1) {
		set = append(set, i)
	}
	fmt.Println("set:", set)
	fmt.Println("first clear from 63:", b.NextClear(63))
	fmt.Println("past the end:", b.NextSet(128))
	// Output:
	// set: [1 63 64 100]
	// first clear from 63: 65
	// past the end: -1
}

func ExampleBits_EachSet() {
	b := make(gcbits.Bits, 2)
	b.SetRange(60, 66)
	sum := 0
	for i := range b.EachSet() {
		sum += i
	}
	fmt.Println(sum, slices.Collect(b.EachSet()))
	fmt.Println(b) // String
	// Output:
	// 375 [60 61 62 63 64 65]
	// {60,61,62,63,64,65}
}

// A bitmap of n bits, n not a multiple of 64, is the first n bits of its
// Bits: bounding SetRange and FlipRange by n keeps the bits past n clear,
// so that Count and the iterator see the n bits only.
func ExampleBits_SetRange() {
	a, err := gcbits.New(gcbits.Options{})
	if err != nil {
		panic(err)
	}
	defer a.Close()

	const n = 100
	free, err := a.Alloc(n) // 2 words: Len is 128
	if err != nil {
		panic(err)
	}
	free.SetRange(0, n) // every slot free; SetAll would free 28 slots that do not exist
	free.Clear(7)
	fmt.Println("len:", free.Len(), "free:", free.Count())

	free.FlipRange(0, n) // the complement: the slots in use
	fmt.Println("in use:", free)
	// Output:
	// len: 128 free: 99
	// in use: {7}
}

// The set operations work in place and keep the length of the bitmap they
// change: a shorter operand reads as zero past its end.
func ExampleBits_Or() {
	visited := make(gcbits.Bits, 2) // 128 vertices
	next := make(gcbits.Bits, 2)
	visited.Set(3)
	next.Set(3)
	next.Set(70)

	next.AndNot(visited) // drop what was seen
	visited.Or(next)
	fmt.Println("next:", next, "visited:", visited)

	low := gcbits.Bits{^uint64(0)} // one word: vertices 0 to 63
	visited.And(low)               // bits past low's end read as zero
	fmt.Println("visited below 64:", visited, "equal:", visited.Equal(gcbits.Bits{1 << 3}))
	// Output:
	// next: {70} visited: {3,70}
	// visited below 64: {3} equal: true
}

// Advance may run while other goroutines allocate. A worker learns from
// AllocEpoch the epoch its bitmap belongs to and, from Live, whether the
// bitmap's lifetime still runs; a read lock keeps Advance out from that
// check to the bitmap's last use. Live is false only for a bitmap whose
// AllocEpoch was preempted across Retain+1 Advances.
func ExampleArena_AllocEpoch() {
	a, err := gcbits.New(gcbits.Options{})
	if err != nil {
		panic(err)
	}
	defer a.Close()

	var pin sync.RWMutex // Advance holds it for writing, a bitmap in use for reading
	stop := make(chan struct{})
	var advancer sync.WaitGroup
	advancer.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			pin.Lock()
			a.Advance()
			pin.Unlock()
		}
	})

	var dirty atomic.Int64 // live bitmaps that did not come zeroed
	var workers sync.WaitGroup
	for range 4 {
		workers.Go(func() {
			c := a.NewCache()
			defer c.Flush()
			for span := range 1000 {
				b, epoch, err := c.AllocEpoch(64)
				if err != nil {
					panic(err)
				}
				pin.RLock()
				if a.Live(epoch) {
					if b.Any() {
						dirty.Add(1)
					}
					b.Set(span % 64)
				}
				pin.RUnlock()
			}
		})
	}
	workers.Wait()
	close(stop)
	advancer.Wait()
	fmt.Println("dirty bitmaps:", dirty.Load())
	// Output:
	// dirty bitmaps: 0
}

// New takes Options; the zero value is the runtime's setup. Options
// reports them with the defaults filled in.
func ExampleNew() {
	a, err := gcbits.New(gcbits.Options{
		BlockSize: 1 << 20, // 1 MiB blocks: requests up to 256 KiB share them
		Retain:    1,       // bitmaps live one epoch after their own
		MaxBytes:  1 << 30, // map at most 1 GiB
	})
	if err != nil {
		panic(err)
	}
	defer a.Close()
	o := a.Options()
	fmt.Println("block:", o.BlockSize, "retain:", o.Retain, "limit:", o.MaxBytes)

	_, err = gcbits.New(gcbits.Options{BlockSize: 1000})
	fmt.Println(errors.Is(err, gcbits.ErrOption), err)
	// Output:
	// block: 1048576 retain: 1 limit: 1073741824
	// true gcbits: bad option: BlockSize 1000 is not a power of two from 4096 to 1073741824
}

// Under MaxBytes, a request that cannot be served without mapping more
// fails with ErrLimit; the arena stays usable, and memory comes back as
// the epochs that hold it are recycled.
func ExampleOptions_maxBytes() {
	a, err := gcbits.New(gcbits.Options{MaxBytes: 1 << 20, Retain: 1})
	if err != nil {
		panic(err)
	}
	defer a.Close()

	const span = 8 << 13 // 8 KiB bitmaps
	n := 0
	for {
		if _, err = a.Alloc(span); err != nil {
			break
		}
		n++
	}
	fmt.Println("bitmaps of epoch 0:", n, "then", errors.Is(err, gcbits.ErrLimit))

	a.Advance() // epoch 1: epoch 0 is still live
	_, err = a.Alloc(span)
	fmt.Println("epoch 1:", errors.Is(err, gcbits.ErrLimit))

	a.Advance() // epoch 2 recycles epoch 0
	_, err = a.Alloc(span)
	fmt.Println("epoch 2:", err)
	// Output:
	// bitmaps of epoch 0: 128 then true
	// epoch 1: true
	// epoch 2: <nil>
}
