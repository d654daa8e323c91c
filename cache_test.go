package gcbits_test

import (
	"reflect"
	"testing"

	"github.com/gcbits/gcbits"
	"github.com/gcbits/gcbits/internal/arenatest"
	"github.com/gcbits/gcbits/internal/mem"
)

// TestCacheNoStalePointer lets a Cache sit idle while the block of its
// last slab is recycled and returned to the operating system, then checks
// every word of the Cache that the garbage collector scans: none may
// point into the unmapped block, where the Go heap may map memory later.
func TestCacheNoStalePointer(t *testing.T) {
	if !mem.OffHeap {
		t.Skip("Map takes memory from the Go heap: the Cache must point at it")
	}
	a := arenatest.New(t, gcbits.Options{BlockSize: gcbits.MinBlockSize, Retain: 1})
	var unmapped []mem.Region
	h := a.Hooks()
	unmap := h.Unmap
	h.Unmap = func(r mem.Region) error {
		unmapped = append(unmapped, r)
		return unmap(r)
	}
	a.SetHooks(h)
	c := a.NewCache()
	if _, err := c.Alloc(64); err != nil {
		t.Fatal(err)
	}
	for range gcbits.TrimHistory + 4 {
		a.Advance()
	}
	if len(unmapped) == 0 {
		t.Fatal("the slab's block was not returned to the OS")
	}
	var check func(prefix string, v reflect.Value)
	check = func(prefix string, v reflect.Value) {
		for i := range v.NumField() {
			f, name := v.Field(i), prefix+v.Type().Field(i).Name
			var p uintptr
			switch f.Kind() {
			case reflect.Pointer, reflect.UnsafePointer:
				p = f.Pointer()
			case reflect.Struct:
				check(name+".", f)
				continue
			case reflect.Slice, reflect.String, reflect.Map, reflect.Chan, reflect.Func, reflect.Interface:
				t.Fatalf("field %s of kind %v: teach this test to read it", name, f.Kind())
			default:
				continue // not scanned by the garbage collector
			}
			for _, r := range unmapped {
				if base := uintptr(r.Base()); p >= base && p < base+r.Size() {
					t.Errorf("Cache.%s = %#x points into the unmapped block [%#x, %#x)", name, p, base, base+r.Size())
				}
			}
		}
	}
	check("", reflect.ValueOf(c).Elem())
	// The Cache still works: it notices the epoch and refills.
	b, err := c.Alloc(64)
	if err != nil || b.Count() != 0 {
		t.Fatalf("Alloc after the block was unmapped: %v, %v", b, err)
	}
	fill(b, 1)
}
