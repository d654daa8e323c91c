//go:build !linux && !darwin

package bench

// cpuName returns "": the processor's name is not read on this system.
func cpuName() string { return "" }
