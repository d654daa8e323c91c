package machine

import (
	"errors"
	"fmt"
)

// ErrMemory reports a run that could need more memory than the machine
// can spare.
var ErrMemory = errors.New("not enough memory")

// BaseBytes is what a run's estimate counts for the process besides its
// data: the Go runtime, the code, the command itself.
const BaseBytes = 64 << 20

// CheckFit refuses a run whose estimated peak, need bytes, passes half of
// have, the memory the process can have (Memory): the other half is for
// the system and whatever else the machine runs, and a run that pages
// measures the pager. have 0, unknown, refuses nothing. The error wraps
// ErrMemory and gives the run (what), the estimate and what it is made of
// (parts), and the machine's memory.
func CheckFit(have uint64, need float64, what, parts string) error {
	if have == 0 || need <= float64(have)/2 {
		return nil
	}
	return fmt.Errorf("%w: %s needs about %s at its peak (%s); a run may use %s, half of this machine's %s",
		ErrMemory, what, FormatBytes(need), parts, FormatBytes(float64(have)/2), FormatBytes(float64(have)))
}

// FormatBytes formats a byte count in binary units: "9.6 GiB".
func FormatBytes(b float64) string {
	const units = "KMGTPE"
	if b < 1024 {
		return fmt.Sprintf("%.0f B", b)
	}
	i := -1
	for b >= 1024 && i < len(units)-1 {
		b /= 1024
		i++
	}
	return fmt.Sprintf("%.1f %ciB", b, units[i])
}
