package bench

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/gcbits/gcbits/cmd/gcbits/internal/machine"
)

// withMachineMemory makes the machine seem to have b bytes for the test.
func withMachineMemory(t *testing.T, b uint64) {
	old := machineMemory
	machineMemory = func() uint64 { return b }
	t.Cleanup(func() { machineMemory = old })
}

const gib = 1 << 30

// TestCheckMemory checks that a configuration whose largest run could need
// more than half of the machine's memory is refused before anything runs,
// with the estimate and the machine's memory in the error: 1024 workers
// keep 262,144 bitmaps each for several epochs, over 9 GiB.
func TestCheckMemory(t *testing.T) {
	big := Config{Workers: []int{1, 1024}, Scenarios: []string{Quiescent}}
	n, err := Estimate(big)
	if err != nil {
		t.Fatal(err)
	}
	if n < 9*gib || n > 16*gib {
		t.Errorf("Estimate of 1024 quiescent workers = %.1f GiB, want 9 to 16", float64(n)/gib)
	}
	withMachineMemory(t, 16*gib)
	err = Check(big)
	if !errors.Is(err, machine.ErrMemory) {
		t.Fatalf("Check on a 16 GiB machine = %v, want ErrMemory", err)
	}
	for _, s := range []string{"quiescent with 1024 workers", machine.FormatBytes(float64(n)), "16.0 GiB"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q lacks %q", err, s)
		}
	}
	start := time.Now()
	if _, err := Run(big); !errors.Is(err, machine.ErrMemory) {
		t.Errorf("Run on a 16 GiB machine = %v, want ErrMemory", err)
	}
	if d := time.Since(start); d > time.Minute/2 {
		t.Errorf("Run took %v to refuse", d)
	}
	withMachineMemory(t, 32*gib)
	if err := Check(big); err != nil {
		t.Errorf("Check on a 32 GiB machine = %v", err)
	}
	withMachineMemory(t, 0) // unknown: nothing is refused
	if err := Check(big); err != nil {
		t.Errorf("Check on a machine of unknown memory = %v", err)
	}
	huge := Config{Workers: []int{MaxWorkers}, EpochAllocs: 1 << 30, SweepSpans: 1 << 26}
	if n, err := Estimate(huge); err != nil || n < 1<<47 {
		t.Errorf("Estimate of the largest configuration = %d, %v", n, err)
	}
}

// TestEstimateGrows checks that the estimate grows with what a run keeps:
// workers and epoch length, the concurrent scenario's cap, the sweep's
// spans.
func TestEstimateGrows(t *testing.T) {
	est := func(c Config) uint64 {
		t.Helper()
		n, err := Estimate(c)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	q := Config{Workers: []int{4}, Scenarios: []string{Quiescent}}
	base := est(q)
	for name, c := range map[string]Config{
		"workers":    {Workers: []int{8}, Scenarios: []string{Quiescent}},
		"epoch":      {Workers: []int{4}, Scenarios: []string{Quiescent}, EpochAllocs: 2 * DefaultEpochAllocs},
		"concurrent": {Workers: []int{4}, Scenarios: []string{Concurrent}},
	} {
		if n := est(c); n <= base {
			t.Errorf("%s: estimate %d, not above %d", name, n, base)
		}
	}
	s := Config{Workers: []int{4}, Scenarios: []string{Sweep}}
	if a, b := est(s), est(Config{Workers: []int{4}, Scenarios: []string{Sweep}, SweepSpans: 4 * DefaultSweepSpans}); b <= a {
		t.Errorf("sweep: estimate %d with 4 times the spans, not above %d", b, a)
	}
}

// memoryChildEnv names the configuration a child process runs in
// TestMemoryChild.
const memoryChildEnv = "GCBITS_BENCH_MEMORY_CHILD"

// memoryConfigs are runs whose peak RSS the parent checks against the
// estimate, each in a process of its own.
var memoryConfigs = map[string]Config{
	// Long epochs: the bitmaps dominate the process.
	"quiescent": {Workers: []int{2}, Scenarios: []string{Quiescent}, Runs: 1, EpochAllocs: 1 << 20,
		Allocators: []string{"seed-after", "gcbits", "gcbits-cache", "make"}},
	// Advance every 50 ms: unbounded, a worker would allocate millions of
	// bitmaps per epoch; the cap holds it to 4 × 1024.
	"concurrent": {Workers: []int{2}, Scenarios: []string{Concurrent}, Runs: 1, EpochAllocs: 1024,
		AdvanceEvery: 50 * time.Millisecond, Duration: 200 * time.Millisecond, Allocators: []string{"gcbits", "seed-before"}},
	"sweep": {Workers: []int{2}, Scenarios: []string{Sweep}, Runs: 1, SweepSpans: 1 << 21,
		Allocators: []string{"seed-after", "gcbits", "make"}},
}

// TestMemoryChild runs one of memoryConfigs and prints its report, when
// TestPeakRSSWithinEstimate starts it.
func TestMemoryChild(t *testing.T) {
	name := os.Getenv(memoryChildEnv)
	if name == "" {
		t.Skip("run by TestPeakRSSWithinEstimate")
	}
	rep, err := Run(memoryConfigs[name])
	if err != nil {
		t.Fatal(err)
	}
	if err := rep.WriteJSON(os.Stdout); err != nil {
		t.Fatal(err)
	}
}

// TestPeakRSSWithinEstimate runs each of memoryConfigs in a fresh process
// and checks that its peak RSS (machine.PeakRSS) stays within the estimate
// that Run checks against the machine's memory, and reaches a good part of
// it where bitmaps dominate; and that the concurrent scenario's workers
// reach their cap and wait.
func TestPeakRSSWithinEstimate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's shadow memory is not in the estimate")
	}
	if machine.PeakRSS() == 0 {
		t.Skip("no peak RSS on this system")
	}
	if testing.Short() {
		t.Skip("starts processes that run for seconds")
	}
	for name := range memoryConfigs {
		t.Run(name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestMemoryChild$")
			cmd.Env = append(os.Environ(), memoryChildEnv+"="+name)
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			var rep Report
			if err := json.Unmarshal(out[:strings.LastIndex(string(out), "}")+1], &rep); err != nil {
				t.Fatalf("%v in:\n%s", err, out)
			}
			t.Logf("peak RSS %s, estimate %s", machine.FormatBytes(float64(rep.PeakRSS)), machine.FormatBytes(float64(rep.Estimate)))
			if rep.PeakRSS == 0 || rep.PeakRSS > rep.Estimate {
				t.Errorf("peak RSS %d bytes, estimate %d", rep.PeakRSS, rep.Estimate)
			}
			if name != "concurrent" && rep.PeakRSS < rep.Estimate/3 {
				t.Errorf("peak RSS %d bytes, under a third of the estimate %d", rep.PeakRSS, rep.Estimate)
			}
			if name == "concurrent" {
				for _, r := range rep.Results {
					if r.Capped == 0 {
						t.Errorf("%s: no worker reached the cap", r.Allocator)
					}
				}
			}
		})
	}
}
