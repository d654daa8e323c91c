//go:build !linux && !darwin

package machine

// CPUName returns "": the processor's name is not read on this system.
func CPUName() string { return "" }

// Memory returns 0: the machine's memory is not read on this system,
// and runs are not refused for want of it.
func Memory() uint64 { return 0 }
