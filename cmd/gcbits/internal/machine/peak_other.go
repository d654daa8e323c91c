//go:build unix && !linux

package machine

// ownPeakRSS reports false: getrusage's maxrss is all there is here.
func ownPeakRSS() (uint64, bool) { return 0, false }
