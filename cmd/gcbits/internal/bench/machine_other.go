//go:build !linux && !darwin

package bench

// cpuName returns "": the processor's name is not read on this system.
func cpuName() string { return "" }

// systemMemory returns 0: the machine's memory is not read on this system,
// and runs are not refused for want of it.
func systemMemory() uint64 { return 0 }
