// Package arenatest holds the helpers that the tests of several gcbits
// packages share.
package arenatest

import (
	"math"
	"testing"

	"github.com/gcbits/gcbits"
)

// New returns an arena made with o, closed when the test ends. It fails
// the test if New fails.
func New(tb testing.TB, o gcbits.Options) *gcbits.Arena {
	tb.Helper()
	a, err := gcbits.New(o)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { a.Close() })
	return a
}

// AboveInt64 returns x+1 and math.MaxInt where an int holds them (on
// 32-bit systems it may hold neither): bad inputs above a limit x.
func AboveInt64(x int64) []int {
	if x >= math.MaxInt {
		return nil
	}
	return []int{int(x + 1), math.MaxInt}
}
