//go:build !unix

package machine

import "time"

// CPUTime returns 0: the process's CPU time is not read on this system.
func CPUTime() time.Duration { return 0 }

// PeakRSS returns 0: the process's peak memory is not read on this system.
func PeakRSS() uint64 { return 0 }
