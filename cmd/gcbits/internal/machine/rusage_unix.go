//go:build unix

package machine

import (
	"syscall"
	"time"
)

// CPUTime returns the CPU time, user and system, that the process has
// used so far, or 0 where it cannot tell.
func CPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// PeakRSS returns the most physical memory the process has held at once,
// in bytes, or 0 where it cannot tell. On Linux it is VmHWM, the
// high-water mark of the process's own memory: getrusage's maxrss also
// counts what the process held before its exec (its parent's memory,
// copied by fork), so a program started by go run, or a child of a large
// process, would report its parent's peak.
func PeakRSS() uint64 {
	if n, ok := ownPeakRSS(); ok {
		return n
	}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil || ru.Maxrss <= 0 {
		return 0
	}
	return uint64(ru.Maxrss) * maxrssUnit
}
