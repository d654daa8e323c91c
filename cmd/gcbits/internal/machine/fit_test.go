package machine

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckFit(t *testing.T) {
	const gib = 1 << 30
	for _, c := range []struct {
		have uint64
		need float64
	}{
		{0, 1 << 60},       // unknown memory: nothing refused
		{4 * gib, 2 * gib}, // half of it: fits
		{4 * gib, 1},
	} {
		if err := CheckFit(c.have, c.need, "run", "parts"); err != nil {
			t.Errorf("CheckFit(%d, %g) = %v", c.have, c.need, err)
		}
	}
	err := CheckFit(4*gib, 2*gib+1<<27, "gcbench", "its live data twice over")
	if !errors.Is(err, ErrMemory) {
		t.Fatalf("CheckFit past half = %v, want ErrMemory", err)
	}
	for _, s := range []string{"gcbench needs about 2.1 GiB", "(its live data twice over)", "a run may use 2.0 GiB, half of this machine's 4.0 GiB"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q lacks %q", err, s)
		}
	}
}

func TestFormatBytes(t *testing.T) {
	for b, want := range map[float64]string{
		0:                "0 B",
		1023:             "1023 B",
		1024:             "1.0 KiB",
		1536 << 20:       "1.5 GiB",
		200 << 40:        "200.0 TiB",
		1 << 70:          "1024.0 EiB",
		64<<20 + 300<<10: "64.3 MiB",
	} {
		if got := FormatBytes(b); got != want {
			t.Errorf("FormatBytes(%g) = %q, want %q", b, got, want)
		}
	}
}
