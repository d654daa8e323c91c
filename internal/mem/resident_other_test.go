//go:build !linux

package mem

import "testing"

// resident is checked on Linux only.
func resident(t *testing.T, r Region) (int, bool) { return 0, false }
