package machine

import (
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

func TestVmHWM(t *testing.T) {
	n, ok := vmHWM("Name:\tgcbits\nVmPeak:\t  900 kB\nVmHWM:\t    1234 kB\nVmRSS:\t 1000 kB\n")
	if !ok || n != 1234<<10 {
		t.Fatalf("vmHWM = %d, %v", n, ok)
	}
	for _, bad := range []string{"", "VmHWM:\t12 MB\n", "VmHWM:\tx kB\n", "VmRSS:\t5 kB\n"} {
		if _, ok := vmHWM(bad); ok {
			t.Errorf("vmHWM(%q) accepted", bad)
		}
	}
}

// TestPeakRSSOfChild starts a child after touching 256 MiB: the child's
// peak RSS is its own, not its parent's.
func TestPeakRSSOfChild(t *testing.T) {
	if os.Getenv("GCBITS_PEAKRSS_HELPER") == "1" {
		os.Stdout.WriteString(strconv.FormatUint(PeakRSS(), 10))
		os.Exit(0)
	}
	big := make([]byte, 256<<20)
	for i := range big {
		if i%4096 == 0 {
			big[i] = 1
		}
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestPeakRSSOfChild$")
	cmd.Env = append(os.Environ(), "GCBITS_PEAKRSS_HELPER=1")
	out, err := cmd.Output()
	runtime.KeepAlive(big)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(out)), 10, 64)
	if err != nil || n <= 0 || n >= 128<<20 {
		t.Fatalf("child's peak RSS %q (%v), want its own, under 128 MiB", out, err)
	}
	if own := PeakRSS(); own < 256<<20 {
		t.Fatalf("own peak RSS %d after touching 256 MiB", own)
	}
}
