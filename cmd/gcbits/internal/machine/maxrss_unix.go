//go:build unix && !darwin

package machine

// maxrssUnit is the unit of Rusage.Maxrss: KiB on Linux and the BSDs.
const maxrssUnit = 1024
