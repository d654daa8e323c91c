//go:build !unix

package bench

import "time"

// cpuTime returns 0: the process's CPU time is not read on this system.
func cpuTime() time.Duration { return 0 }

// peakRSS returns 0: the process's peak memory is not read on this system.
func peakRSS() uint64 { return 0 }
