package machine

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// CPUName returns the processor's model name from /proc/cpuinfo, as go
// test prints it, or "" where it cannot tell.
func CPUName() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// Memory returns the memory the process can have, in bytes: the
// machine's RAM, or its cgroup's limit where that is lower (a container);
// 0 where it cannot tell.
func Memory() uint64 {
	var si syscall.Sysinfo_t
	if err := syscall.Sysinfo(&si); err != nil {
		return 0
	}
	total := uint64(si.Totalram) * uint64(si.Unit)
	if b, err := os.ReadFile("/sys/fs/cgroup/memory.max"); err == nil { // "max" when unlimited
		if n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64); err == nil && n < total {
			total = n
		}
	}
	return total
}

// ownPeakRSS returns VmHWM from /proc/self/status, in bytes.
func ownPeakRSS() (uint64, bool) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, false
	}
	return vmHWM(string(b))
}

// vmHWM returns the VmHWM line of a /proc/PID/status file in bytes.
func vmHWM(status string) (uint64, bool) {
	for line := range strings.Lines(status) {
		rest, ok := strings.CutPrefix(line, "VmHWM:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, false
		}
		kb, err := strconv.ParseUint(f[0], 10, 64)
		return kb << 10, err == nil && kb > 0
	}
	return 0, false
}
