//go:build linux

package sweep

import (
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/gcbits/gcbits/internal/mem"
)

// residentBytes returns how many bytes of h's object memory are resident,
// by mincore.
func residentBytes(t *testing.T, h *Heap) int64 {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	var n int64
	for _, r := range h.pages.regions {
		n += resident(t, r.mem)
	}
	for ri := range h.pages.dedicated {
		n += resident(t, ri.region)
	}
	return n
}

// resident returns the resident bytes of r.
func resident(t *testing.T, r mem.Region) int64 {
	ps := uintptr(unix.Getpagesize())
	vec := make([]byte, (r.Size()+ps-1)/ps)
	if _, _, e := unix.Syscall(unix.SYS_MINCORE, uintptr(r.Base()), r.Size(), uintptr(unsafe.Pointer(unsafe.SliceData(vec)))); e != 0 {
		t.Fatal(e)
	}
	var n int64
	for _, v := range vec {
		if v&1 != 0 {
			n += int64(ps)
		}
	}
	return n
}

// TestMemoryBackToOS fills the heap, drops everything and collects once:
// within a few scavenge delays the memory is no longer resident.
func TestMemoryBackToOS(t *testing.T) {
	h := NewTestHeap(t, Options{ScavengeDelay: 20 * time.Millisecond})
	m := NewTestMutator(t, h)
	defer m.Close()
	for range (32 << 20) / 64 {
		r, err := m.Alloc(64)
		if err != nil {
			t.Fatal(err)
		}
		m.StoreWord(r, 0, 1) // touch it
		m.Push(r)
	}
	m.Pop(m.NumRoots())
	before := residentBytes(t, h)
	if before < 30<<20 {
		t.Fatalf("only %d MiB resident after filling 32 MiB", before>>20)
	}
	if err := m.GC(); err != nil {
		t.Fatal(err)
	}
	m.Release() // the program goes idle
	deadline := time.Now().Add(5 * time.Second)
	for h.Stats().Released < 28<<20 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	st := h.Stats()
	if st.Released < 28<<20 || st.ReleasedTotal < uint64(st.Released) {
		t.Fatalf("Stats 5 s after everything died: %d MiB released now, %d MiB in all", st.Released>>20, st.ReleasedTotal>>20)
	}
	if after := residentBytes(t, h); after > 4<<20 {
		t.Fatalf("%d MiB still resident with %d MiB released (%d MiB before)", after>>20, st.Released>>20, before>>20)
	}
	m.Acquire()
}

// TestFreeOSMemory returns everything unused at once.
func TestFreeOSMemory(t *testing.T) {
	h := NewTestHeap(t, Options{ScavengeDelay: -1})
	m := NewTestMutator(t, h)
	for range (32 << 20) / 64 {
		r, err := m.Alloc(64)
		if err != nil {
			t.Fatal(err)
		}
		m.StoreWord(r, 0, 1)
		m.Push(r)
	}
	keep := m.Root(0)
	m.Pop(m.NumRoots())
	m.Push(keep)
	m.Release()
	if err := h.FreeOSMemory(); err != nil {
		t.Fatal(err)
	}
	st := h.Stats()
	if st.Released < 28<<20 || st.LiveSlots != 1 {
		t.Fatalf("after FreeOSMemory: %d MiB of %d released, %d live", st.Released>>20, st.Mapped>>20, st.LiveSlots)
	}
	if res := residentBytes(t, h); res > 4<<20 {
		t.Fatalf("%d MiB resident after FreeOSMemory", res>>20)
	}
	m.Acquire()
	if v, err := m.LoadWord(keep, 0); err != nil || v != 1 {
		t.Fatalf("the live object after FreeOSMemory: %d, %v", v, err)
	}
	// Released pages are used again, and come back zeroed.
	for range (8 << 20) / 64 {
		r, err := m.Alloc(64)
		if err != nil {
			t.Fatal(err)
		}
		if v, _ := m.LoadWord(r, 0); v != 0 {
			t.Fatal("an object on a released page is not zero")
		}
	}
	if st2 := h.Stats(); st2.Released >= st.Released || st2.Mapped != st.Mapped {
		t.Fatalf("reuse: released %d → %d MiB, mapped %d → %d MiB", st.Released>>20, st2.Released>>20, st.Mapped>>20, st2.Mapped>>20)
	}
	m.Close()
}
