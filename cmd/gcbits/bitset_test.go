package main

import (
	"fmt"

	"github.com/bits-and-blooms/bitset"

	"github.com/gcbits/gcbits"
)

// The example of gcbits with github.com/bits-and-blooms/bitset lives in
// the command's module, which nothing imports. As a test dependency of the
// library's module, bitset would enter the module graph of every program
// that imports gcbits (.ci/deps.sh checks that graph).

// Example_bitset wraps an arena bitmap in a bitset.BitSet and back. Both
// share the words: nothing is copied, and the BitSet is valid for the
// bitmap's lifetime only, until Clone copies it to the Go heap.
func Example_bitset() {
	a, err := gcbits.New(gcbits.Options{})
	if err != nil {
		panic(err)
	}
	defer a.Close()

	marks, err := a.Alloc(100)
	if err != nil {
		panic(err)
	}
	marks.Set(3)
	marks.Set(99)

	words := bitset.From(marks) // the whole words: 128 bits
	fmt.Println(words.Len(), words.Count(), words)

	bs := bitset.FromWithLength(100, marks) // the 100 bits asked for
	bs.Set(50)                              // writes the arena bitmap
	fmt.Println(bs.Len(), marks.Test(50), bs.Complement().Count())

	back := gcbits.Bits(bs.Words())
	fmt.Println(back.Count(), back)

	kept := bs.Clone() // on the Go heap: outlives the arena bitmap
	a.Advance()
	a.Advance()
	a.Advance() // marks's memory is recycled now
	fmt.Println(kept)
	// Output:
	// 128 2 {3,99}
	// 100 true 97
	// 3 {3,50,99}
	// {3,50,99}
}
