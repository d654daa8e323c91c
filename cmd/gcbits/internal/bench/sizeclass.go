package bench

import "github.com/gcbits/gcbits/sweep"

// Mix returns the request sizes of the benchmark, in bits: one request per
// small size class of the Go runtime (sweep.GoClasses), for the bitmap of
// one span of that class, with a bit per object, in class order. Workers
// cycle through it.
func Mix() []int {
	cs := sweep.GoClasses()
	m := make([]int, len(cs))
	for i, c := range cs {
		m[i] = c.Pages * sweep.PageSize / c.Size
	}
	return m
}

// mixBytes is the average bitmap size of the mix, in bytes: whole 64-bit
// words.
func mixBytes() float64 {
	mix := Mix()
	n := 0
	for _, bits := range mix {
		n += (bits + 63) / 64 * 8
	}
	return float64(n) / float64(len(mix))
}
