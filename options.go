package gcbits

import (
	"fmt"
	"math"
	"math/bits"
)

// Limits and defaults of [Options].
const (
	DefaultBlockSize = 64 << 10 // bytes per block when Options.BlockSize is 0
	MinBlockSize     = 4 << 10
	MaxBlockSize     = 1 << 30
	DefaultRetain    = 2 // the runtime's next → current → previous → free
	MaxRetain        = 64

	DefaultGuardEpochs = 8 // Options.GuardEpochs when 0 with Guard
	MaxGuardEpochs     = 256

	// MaxBits is the largest bitmap one Alloc serves, in bits (256 MiB).
	MaxBits = math.MaxInt32
)

// Options configures an [Arena]; [New] takes them and [Arena.Options]
// reports them resolved. The zero value gives the runtime's setup: 64 KiB
// blocks, bitmaps valid for two epochs after their own. A field outside
// its range makes New fail with [ErrOption].
type Options struct {
	// BlockSize is the size in bytes of the blocks of memory the arena
	// maps and carves bitmaps from: 0 means [DefaultBlockSize], 64 KiB;
	// otherwise a power of two from [MinBlockSize] to [MaxBlockSize].
	// Below the system's page size it is raised to the page size.
	// Requests above a quarter of it get a dedicated block each.
	BlockSize int
	// Retain is the number of epochs a bitmap stays valid after the one it
	// was allocated in: 0 means [DefaultRetain]; otherwise 1 to
	// [MaxRetain].
	Retain int
	// MaxBytes caps the memory the arena maps from the operating system.
	// An Alloc that would exceed it fails with [ErrLimit]. (While a
	// dedicated block is being mapped, the free blocks that give way to it
	// are still mapped, without being used: the address space exceeds
	// MaxBytes for one system call, the memory does not.) 0 means no limit;
	// otherwise it must be at least BlockSize rounded up to the page size
	// (on a system with 16 or 64 KiB pages, BlockSize 4 KiB maps blocks of
	// 16 or 64 KiB).
	MaxBytes int64
	// Guard makes every bitmap inaccessible from the epoch its lifetime
	// ends until GuardEpochs epochs later, so that a bitmap used after
	// its lifetime faults at once, at its own address, instead of reading
	// or corrupting a newer bitmap (with [runtime/debug.SetPanicOnFault],
	// the fault is a panic whose Addr method gives that address).
	// [Arena.Advance] maps fresh PROT_NONE memory over each block it
	// recycles (one system call, with the arena's lock released, which
	// also returns the block's pages to the OS) and keeps it out of use
	// for GuardEpochs epochs; the Alloc that reuses it makes it accessible
	// again (one more). The arena thus holds GuardEpochs more generations
	// of address space, without memory, counted in [Stats.MappedBytes]
	// and [Stats.GuardedBytes]. Under MaxBytes they give way, oldest
	// first, before a request fails with ErrLimit; their guard is then
	// shorter, as their address range may be mapped again. Use Guard in
	// tests and debugging. It needs mmap (Unix); elsewhere New fails with
	// ErrOption.
	Guard bool
	// GuardEpochs is how many epochs Guard keeps recycled memory
	// inaccessible: 0 means [DefaultGuardEpochs]; otherwise 1 to
	// [MaxGuardEpochs]. Without Guard it must be 0.
	GuardEpochs int
}

// resolve fills in defaults and checks ranges for a system whose pages
// are pageSize bytes. BlockSize is raised to pageSize: mmap, mprotect and
// the books work in whole pages.
func (o Options) resolve(pageSize int) (Options, error) {
	switch {
	case o.BlockSize == 0:
		o.BlockSize = DefaultBlockSize
	case o.BlockSize < MinBlockSize || o.BlockSize > MaxBlockSize || bits.OnesCount(uint(o.BlockSize)) != 1:
		return o, fmt.Errorf("%w: BlockSize %d is not a power of two from %d to %d", ErrOption, o.BlockSize, MinBlockSize, MaxBlockSize)
	}
	asked := o.BlockSize
	o.BlockSize = max(o.BlockSize, pageSize)
	switch {
	case o.Retain == 0:
		o.Retain = DefaultRetain
	case o.Retain < 0 || o.Retain > MaxRetain:
		return o, fmt.Errorf("%w: Retain %d is outside 1..%d", ErrOption, o.Retain, MaxRetain)
	}
	switch {
	case o.GuardEpochs < 0 || o.GuardEpochs > MaxGuardEpochs:
		return o, fmt.Errorf("%w: GuardEpochs %d is outside 1..%d", ErrOption, o.GuardEpochs, MaxGuardEpochs)
	case o.GuardEpochs > 0 && !o.Guard:
		return o, fmt.Errorf("%w: GuardEpochs %d without Guard", ErrOption, o.GuardEpochs)
	case o.Guard && o.GuardEpochs == 0:
		o.GuardEpochs = DefaultGuardEpochs
	}
	if o.MaxBytes < 0 || (o.MaxBytes > 0 && o.MaxBytes < int64(o.BlockSize)) {
		return o, fmt.Errorf("%w: MaxBytes %d is negative or below BlockSize %d (%d rounded up to the page size)", ErrOption, o.MaxBytes, o.BlockSize, asked)
	}
	return o, nil
}
