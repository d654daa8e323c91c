package gcbits_test

import (
	"fmt"
	"sync"

	"github.com/gcbits/gcbits"
)

func ExampleArena() {
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
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			c := a.NewCache()
			defer c.Flush() // report what it served to Stats
			for span := 0; span < 1000; span++ {
				b, err := c.Alloc(64)
				if err != nil {
					panic(err)
				}
				b.Set(span % 64)
				marked[w] += b.Count()
			}
		}(w)
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
