//go:build unix

package gcbits_test

import (
	"fmt"
	"runtime/debug"
	"unsafe"

	"github.com/gcbits/gcbits"
)

// With Guard, a bitmap used after its lifetime faults at its own address
// instead of writing into a newer bitmap. SetPanicOnFault turns the fault
// into a panic that the program can recover from, as a test would.
func ExampleOptions_guard() {
	a, err := gcbits.New(gcbits.Options{Guard: true})
	if err != nil {
		panic(err)
	}
	defer a.Close()

	stale, err := a.Alloc(100)
	if err != nil {
		panic(err)
	}
	for range a.Options().Retain + 1 {
		a.Advance() // the last one ends stale's lifetime
	}

	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	func() {
		defer func() {
			r := recover()
			fault, ok := r.(interface{ Addr() uintptr })
			fmt.Println("fault at the stale bitmap:", ok && fault.Addr() == uintptr(unsafe.Pointer(&stale[0])))
		}()
		stale.Set(3) // a bug: the bitmap is no longer ours
	}()
	// Output:
	// fault at the stale bitmap: true
}
