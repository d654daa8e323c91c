package bench

import (
	"bufio"
	"os"
	"strings"
)

// cpuName returns the processor's model name from /proc/cpuinfo, as go
// test prints it, or "" where it cannot tell.
func cpuName() string {
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
