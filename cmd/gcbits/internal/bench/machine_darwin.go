package bench

import "golang.org/x/sys/unix"

// cpuName returns the processor's brand string, or "" where it cannot
// tell.
func cpuName() string {
	s, err := unix.Sysctl("machdep.cpu.brand_string")
	if err != nil {
		return ""
	}
	return s
}
