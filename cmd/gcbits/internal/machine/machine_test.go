package machine

import (
	"runtime"
	"testing"
	"time"
)

func TestMachine(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the figures are read on Linux; elsewhere some are 0 by design")
	}
	if CPUName() == "" {
		t.Error("no processor name")
	}
	if mem := Memory(); mem < 64<<20 {
		t.Errorf("Memory %d", mem)
	}
	if PeakRSS() < 1<<20 {
		t.Errorf("PeakRSS %d", PeakRSS())
	}
	t0 := CPUTime()
	for start := time.Now(); time.Since(start) < 20*time.Millisecond; {
	}
	if d := CPUTime() - t0; d <= 0 {
		t.Errorf("CPU time did not advance over 20 ms of spinning: %v", d)
	}
}
