package machine

import "golang.org/x/sys/unix"

// CPUName returns the processor's brand string, or "" where it cannot
// tell.
func CPUName() string {
	s, err := unix.Sysctl("machdep.cpu.brand_string")
	if err != nil {
		return ""
	}
	return s
}

// Memory returns the machine's RAM in bytes, or 0 where it cannot
// tell.
func Memory() uint64 {
	n, err := unix.SysctlUint64("hw.memsize")
	if err != nil {
		return 0
	}
	return n
}
