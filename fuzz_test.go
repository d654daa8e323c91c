package gcbits_test

import (
	"cmp"
	"errors"
	"math"
	"runtime/debug"
	"slices"
	"testing"
	"unsafe"

	"github.com/gcbits/gcbits"
	"github.com/gcbits/gcbits/internal/mem"
)

// This file holds FuzzArena and the reference model it shares with the
// rapid state-machine test: a single goroutine drives one Arena and two
// Caches, and every result is checked against what the model says.

// tb is what the model needs of a *testing.T or a *rapid.T.
type tb interface {
	Helper()
	Fatalf(format string, args ...any)
}

// modelBits is a live bitmap and what it must hold.
type modelBits struct {
	b     gcbits.Bits
	epoch uint64 // epoch of the Alloc; live while Epoch() <= epoch+Retain
	want  []bool // the reference for Bits ops, one entry per bit
	words []uint64
}

func (m *modelBits) set(i int, v bool) {
	if i < 0 || i >= len(m.want) {
		return
	}
	m.want[i] = v
	if v {
		m.words[i/64] |= 1 << (i % 64)
	} else {
		m.words[i/64] &^= 1 << (i % 64)
	}
}

// model is the reference for an Arena used from one goroutine.
type model struct {
	t         tb
	a         *gcbits.Arena
	caches    [2]*gcbits.Cache
	opts      gcbits.Options // resolved
	epoch     uint64
	closed    bool
	live      []*modelBits
	handedOut uint64 // bytes handed out by successful Allocs
	limitHits int    // ErrLimit results
}

func newModel(t tb, o gcbits.Options) *model {
	t.Helper()
	a, err := gcbits.New(o)
	if err != nil {
		t.Fatalf("New(%+v): %v", o, err)
	}
	o = a.Options()
	return &model{t: t, a: a, caches: [2]*gcbits.Cache{a.NewCache(), a.NewCache()}, opts: o}
}

// alloc calls Arena.Alloc (cache < 0) or a Cache's Alloc and checks the
// result: the error is exactly the one the model predicts, and a bitmap is
// of the right length, aligned, zeroed and disjoint from every live one.
func (m *model) alloc(cache, nbits int) {
	m.t.Helper()
	before := m.a.Stats()
	var b gcbits.Bits
	var err error
	if cache < 0 {
		b, err = m.a.Alloc(nbits)
	} else {
		b, err = m.caches[cache%2].Alloc(nbits)
	}
	switch {
	case nbits == 0:
		if err != nil || len(b) != 0 {
			m.t.Fatalf("Alloc(0) = %d words, %v; want an empty bitmap", len(b), err)
		}
		return
	case nbits < 0 || nbits > gcbits.MaxBits:
		if !errors.Is(err, gcbits.ErrSize) || b != nil {
			m.t.Fatalf("Alloc(%d) = %d words, %v; want ErrSize", nbits, len(b), err)
		}
		return
	case m.closed:
		if !errors.Is(err, gcbits.ErrClosed) || b != nil {
			m.t.Fatalf("Alloc(%d) after Close = %d words, %v; want ErrClosed", nbits, len(b), err)
		}
		return
	}
	n := gcbits.BytesFor(nbits)
	if limit := m.opts.MaxBytes; limit > 0 {
		if n > uintptr(m.opts.BlockSize)/4 {
			// A dedicated block: maps exactly its rounded size.
			// Free blocks, then guarded ones, give way to it under
			// the limit.
			if over := before.MappedBytes-before.FreeBytes-before.GuardedBytes+int64(mem.RoundUp(n)) > limit; over != errors.Is(err, gcbits.ErrLimit) {
				m.t.Fatalf("Alloc(%d) with %d of %d bytes mapped = %v; over the limit: %v", nbits, before.MappedBytes, limit, err, over)
			}
		} else if errors.Is(err, gcbits.ErrLimit) {
			// From a shared block: may need a new block only when no head
			// has room, and fails only when none is free either and
			// Guard holds none that could give way.
			if before.FreeBlocks != 0 || before.MappedBytes-before.GuardedBytes+int64(m.opts.BlockSize) <= limit {
				m.t.Fatalf("Alloc(%d) = ErrLimit with %d of %d bytes mapped, %d free blocks, %d bytes guarded", nbits, before.MappedBytes, limit, before.FreeBlocks, before.GuardedBytes)
			}
		}
		if errors.Is(err, gcbits.ErrLimit) {
			if b != nil {
				m.t.Fatalf("Alloc(%d) failed with a bitmap", nbits)
			}
			if after := m.a.Stats(); after.MappedBytes != before.MappedBytes {
				m.t.Fatalf("Alloc(%d) failed but mapped %d more bytes", nbits, after.MappedBytes-before.MappedBytes)
			}
			m.limitHits++
			return
		}
	}
	if err != nil {
		m.t.Fatalf("Alloc(%d): %v", nbits, err)
	}
	if len(b) != (nbits+63)/64 || cap(b) != len(b) {
		m.t.Fatalf("Alloc(%d): len %d cap %d, want %d words", nbits, len(b), cap(b), (nbits+63)/64)
	}
	lo := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	hi := lo + uintptr(len(b))*8
	if lo%8 != 0 {
		m.t.Fatalf("Alloc(%d) at %#x: not 8-byte aligned", nbits, lo)
	}
	for i, w := range b {
		if w != 0 {
			m.t.Fatalf("Alloc(%d): word %d of the fresh bitmap = %#x", nbits, i, w)
		}
	}
	for _, l := range m.live {
		llo := uintptr(unsafe.Pointer(unsafe.SliceData(l.b)))
		lhi := llo + uintptr(len(l.b))*8
		if lo < lhi && llo < hi {
			m.t.Fatalf("Alloc(%d) = [%#x, %#x) overlaps the live bitmap [%#x, %#x) of epoch %d", nbits, lo, hi, llo, lhi, l.epoch)
		}
	}
	m.handedOut += uint64(n)
	m.live = append(m.live, &modelBits{b: b, epoch: m.epoch, want: make([]bool, b.Len()), words: make([]uint64, len(b))})
}

// advance calls Advance and forgets the bitmaps whose lifetime ended.
func (m *model) advance() {
	m.t.Helper()
	e := m.a.Advance()
	if !m.closed {
		m.epoch++
	}
	if e != m.epoch || m.a.Epoch() != m.epoch {
		m.t.Fatalf("Advance = %d, Epoch = %d; want %d", e, m.a.Epoch(), m.epoch)
	}
	kept := m.live[:0]
	for _, l := range m.live {
		if m.epoch <= l.epoch+uint64(m.opts.Retain) {
			kept = append(kept, l)
		}
	}
	clear(m.live[len(kept):])
	m.live = kept
}

// bitsOp applies one Bits method, picked by op, to the live bitmap picked
// by which, at index i, and checks its result against the []bool model.
func (m *model) bitsOp(which, op, i int) {
	m.t.Helper()
	if len(m.live) == 0 {
		return
	}
	l := m.live[uint(which)%uint(len(m.live))]
	b := l.b
	in := i >= 0 && i < len(l.want)
	switch op % 10 {
	case 0:
		b.Set(i)
		l.set(i, true)
	case 1:
		b.Clear(i)
		l.set(i, false)
	case 2:
		if got, want := b.Test(i), in && l.want[i]; got != want {
			m.t.Fatalf("Test(%d) = %v, want %v", i, got, want)
		}
	case 3:
		got, want := b.SetAtomic(i), in && !l.want[i]
		l.set(i, true)
		if got != want {
			m.t.Fatalf("SetAtomic(%d) = %v, want %v", i, got, want)
		}
	case 4:
		if got, want := b.TestAtomic(i), in && l.want[i]; got != want {
			m.t.Fatalf("TestAtomic(%d) = %v, want %v", i, got, want)
		}
	case 5:
		want := 0
		for _, v := range l.want {
			if v {
				want++
			}
		}
		if got := b.Count(); got != want {
			m.t.Fatalf("Count = %d, want %d", got, want)
		}
	case 6, 7:
		v := op%10 == 6 // NextSet looks for true
		want := -1
		for j := max(i, 0); j < len(l.want); j++ {
			if l.want[j] == v {
				want = j
				break
			}
		}
		var got int
		if v {
			got = b.NextSet(i)
		} else {
			got = b.NextClear(i)
		}
		if got != want {
			m.t.Fatalf("Next(%d, %v) = %d, want %d", i, v, got, want)
		}
	case 8:
		if got := b.Len(); got != len(l.want) {
			m.t.Fatalf("Len = %d, want %d", got, len(l.want))
		}
	case 9:
		if i%4 == 0 { // rarely: it undoes everything
			b.ClearAll()
			for j := range l.want {
				l.set(j, false)
			}
		}
	}
}

// checkDisjoint checks that no two live bitmaps overlap. (Each Alloc
// also checks its bitmap against the live ones.)
func (m *model) checkDisjoint() {
	m.t.Helper()
	sorted := slices.Clone(m.live)
	slices.SortFunc(sorted, func(x, y *modelBits) int {
		return cmp.Compare(uintptr(unsafe.Pointer(unsafe.SliceData(x.b))), uintptr(unsafe.Pointer(unsafe.SliceData(y.b))))
	})
	for i := 1; i < len(sorted); i++ {
		prev, l := sorted[i-1].b, sorted[i].b
		if end := uintptr(unsafe.Pointer(unsafe.SliceData(prev))) + uintptr(len(prev))*8; end > uintptr(unsafe.Pointer(unsafe.SliceData(l))) {
			m.t.Fatalf("live bitmaps of epochs %d and %d overlap", sorted[i-1].epoch, sorted[i].epoch)
		}
	}
}

// checkLive checks that every live bitmap holds what our own operations
// left in it.
func (m *model) checkLive() {
	m.t.Helper()
	// A live bitmap the arena unmapped or protected must fail the test,
	// not crash it: as a panic, rapid shrinks it and the fuzzer reports
	// it with its input.
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	for _, l := range m.live {
		for i, w := range l.b {
			if w != l.words[i] {
				m.t.Fatalf("epoch %d: word %d of a live bitmap of epoch %d = %#x, want %#x", m.epoch, i, l.epoch, w, l.words[i])
			}
		}
	}
}

// stats checks Stats against the model. With flush, it flushes both
// Caches first, and AllocatedBytes must equal the bytes handed out;
// without, it must fall short by exactly what the Caches served since
// their last flush.
func (m *model) stats(flush bool) gcbits.Stats {
	m.t.Helper()
	want := m.handedOut
	for _, c := range m.caches {
		if flush {
			c.Flush()
		}
		want -= uint64(c.Unreported())
	}
	s := m.a.Stats()
	if s.Epoch != m.epoch {
		m.t.Fatalf("Stats.Epoch = %d, want %d", s.Epoch, m.epoch)
	}
	if s.AllocatedBytes != want {
		m.t.Fatalf("Stats.AllocatedBytes = %d, want %d (handed out %d, flush %v)", s.AllocatedBytes, want, m.handedOut, flush)
	}
	if m.opts.MaxBytes > 0 && s.MappedBytes > m.opts.MaxBytes {
		m.t.Fatalf("MappedBytes %d > MaxBytes %d", s.MappedBytes, m.opts.MaxBytes)
	}
	if m.closed {
		if s.MappedBytes != 0 || s.FreeBlocks != 0 {
			m.t.Fatalf("after Close: %d bytes mapped, %d free blocks", s.MappedBytes, s.FreeBlocks)
		}
		return s
	}
	if want := min(m.epoch+1, uint64(m.opts.Retain)+1); uint64(len(s.Generations)) != want {
		m.t.Fatalf("%d generations in Stats, want %d", len(s.Generations), want)
	}
	held := s.FreeBytes + s.GuardedBytes
	for i, g := range s.Generations {
		if g.Epoch != m.epoch-uint64(i) {
			m.t.Fatalf("Generations[%d].Epoch = %d in epoch %d", i, g.Epoch, m.epoch)
		}
		if g.Bytes != int64(g.Blocks)*int64(m.opts.BlockSize) || g.Dedicated > 0 != (g.DedicatedBytes > 0) {
			m.t.Fatalf("generation %+v", g)
		}
		held += g.Bytes + g.DedicatedBytes
	}
	if s.MappedBytes != held {
		m.t.Fatalf("MappedBytes %d, generations, free list and guard hold %d", s.MappedBytes, held)
	}
	return s
}

// close closes the arena and checks that it stays closed.
func (m *model) close() {
	m.t.Helper()
	if err := m.a.Close(); (err == nil) == m.closed {
		m.t.Fatalf("Close (closed before: %v) = %v", m.closed, err)
	}
	m.closed = true
	m.live = nil // Close ends every lifetime
	m.stats(true)
	for _, n := range []int{1, 0, -1, int(min(gcbits.MaxBits+1, math.MaxInt))} {
		m.alloc(-1, n)
		m.alloc(0, n)
	}
	m.alloc(1, 1<<20)
	m.advance()
	if err := m.a.Close(); !errors.Is(err, gcbits.ErrClosed) {
		m.t.Fatalf("second Close = %v, want ErrClosed", err)
	}
}

// fuzzSizes are the bit counts op bytes select from, bad ones included.
var fuzzSizes = [16]int{0, -1, -64, math.MinInt, gcbits.MaxBits, int(min(gcbits.MaxBits+1, math.MaxInt)), math.MaxInt, 1, 63, 64, 65, 256, 257, 8192, 8193, gcbits.MinBlockSize * 8}

// byteReader hands out the fuzz input one byte at a time, then zeros.
type byteReader struct {
	data []byte
}

func (r *byteReader) more() bool { return len(r.data) > 0 }

func (r *byteReader) next() int {
	if len(r.data) == 0 {
		return 0
	}
	b := r.data[0]
	r.data = r.data[1:]
	return int(b)
}

// size decodes a bit count: mostly small, sometimes larger than a Cache
// slab or a quarter block, sometimes bad.
func (r *byteReader) size() int {
	k := r.next()
	switch k >> 6 {
	case 0:
		return k&63 + 1
	case 1:
		return (k&63)<<6 | r.next()&63
	case 2:
		return (k&63)<<8 | r.next()
	default:
		return fuzzSizes[k&15]
	}
}

// index decodes a bit index for a bitmap of n bits, some out of range.
func (r *byteReader) index(n int) int {
	k := r.next()
	switch k >> 5 {
	case 0:
		return []int{-1, math.MinInt, n, n + 1, n + 63, math.MaxInt, 0, n - 1}[k&7]
	case 1:
		return (k&31)*64 + r.next()%64 // across word boundaries
	default:
		if n == 0 {
			return k
		}
		return (k<<8 | r.next()) % n
	}
}

// runOps decodes data into options and a sequence of operations and runs
// them against the model.
func runOps(t tb, data []byte) {
	r := &byteReader{data: data}
	cfg := r.next()
	o := gcbits.Options{
		BlockSize: gcbits.MinBlockSize << (cfg & 1),          // 4 or 8 KiB
		Retain:    1 + (cfg>>1)%3,                            // 1 to 3
		MaxBytes:  int64(16+cfg>>3&15) * gcbits.MinBlockSize, // 64 to 124 KiB
		Guard:     cfg&0x80 != 0 && mem.OffHeap,
	}
	m := newModel(t, o)
	defer func() {
		if !m.closed {
			m.a.Close()
		}
	}()
	for steps := 0; r.more() && steps < 2000; steps++ {
		switch op := r.next(); op % 8 {
		case 0, 1:
			m.alloc(-1, r.size())
		case 2, 3:
			m.alloc(op&1, r.size())
		case 4:
			m.advance()
		case 5:
			which, bop := r.next(), r.next()
			n := 0
			if len(m.live) > 0 {
				n = m.live[which%len(m.live)].b.Len()
			}
			m.bitsOp(which, bop, r.index(n))
		case 6:
			m.stats(op&8 != 0)
			m.checkDisjoint()
		case 7:
			m.caches[op>>3&1].Flush()
		}
		m.checkLive()
	}
	m.stats(true)
	m.close()
}

// FuzzArena decodes the input into a sequence of Alloc, Cache.Alloc,
// Advance, Bits operations on live bitmaps, Stats and Flush, ending with
// Close, and checks every result against a reference model: errors exactly
// when the model predicts them, fresh bitmaps zeroed and disjoint from the
// live ones, live bitmaps changed only by our own operations, Bits results
// as on a []bool, and the books of Stats. Run it with
//
//	go test -run XXX -fuzz FuzzArena -fuzztime 20s .
//
// Without -fuzz it runs the seeds below and those in testdata/fuzz.
func FuzzArena(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0, 0, 5, 0, 1, 2, 10, 5, 0, 0, 3, 6, 4, 6})
	// Bad sizes on both paths, then a full cycle of epochs.
	f.Add([]byte{1, 0, 0xc1, 0, 0xc3, 0, 0xc5, 0, 0xc6, 2, 0xc2, 3, 0xc0, 0, 0xc4, 4, 4, 4, 6})
	// Many small Cache requests over several epochs, with bit ops.
	seed := []byte{0x82}
	for range 6 {
		for i := range 40 {
			seed = append(seed, 2+byte(i&1), byte(i))
			seed = append(seed, 5, byte(i), byte(i), 0x40|byte(i&31), byte(i*7))
		}
		seed = append(seed, 6, 4)
	}
	f.Add(seed)
	// Large requests until the limit, then epochs until it clears.
	seed = []byte{0x78}
	for range 34 {
		seed = append(seed, 0, 0xb0, 0) // 12288 bits: a dedicated block
	}
	seed = append(seed, 6, 4, 4, 4, 4, 0, 0xb0, 0, 6)
	f.Add(seed)
	f.Fuzz(func(t *testing.T, data []byte) {
		runOps(t, data)
	})
}
