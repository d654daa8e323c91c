//go:build !unix

package main

import "time"

// cpuTime returns 0: the process's CPU time is not read on this system.
func cpuTime() time.Duration { return 0 }

// peakRSS returns -1: the peak RSS is not read on this system.
func peakRSS() int64 { return -1 }
