package bench

import (
	"errors"
	"fmt"
	"math/bits"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/gcbits/gcbits/cmd/gcbits/internal/machine"
)

// cacheLine is the padding unit for values written by different cores,
// as in the gcbits package: 128 bytes, for the adjacent-line prefetcher of
// x86 and the 128-byte lines of some arm64 parts. A value v that must not
// share a line with others of its kind is followed by
// _ [cacheLine - unsafe.Sizeof(v)%cacheLine]byte (sync.Pool's formula), a
// struct's fields going in an embedded struct for that.
const cacheLine = 128

// Scenario names.
const (
	// Quiescent: each worker allocates EpochAllocs bitmaps, then all stop
	// at a barrier and the last to arrive calls Advance while the others
	// wait, as the runtime turns its epoch with the world stopped.
	Quiescent = "quiescent"
	// Concurrent: workers allocate without barriers while a separate
	// goroutine calls Advance every AdvanceEvery. Allocators without
	// Factory.ConcurrentAdvance (seed-after) are measured but unsafe.
	Concurrent = "concurrent"
	// Sweep: workers take spans from a shared list, count the bits of each
	// span's old bitmap and give it a fresh one from the allocator, as the
	// runtime's sweepers call newMarkBits; when the list is exhausted
	// every worker stops and the epoch turns. Mop/s counts spans swept.
	Sweep = "sweep"
)

// Scenarios lists the scenario names in table order.
var Scenarios = []string{Quiescent, Concurrent, Sweep}

// Reference is the allocator the ratios are relative to.
const Reference = "seed-after"

// Defaults of Config. Six runs are the fewest whose median has a 95%
// confidence interval. The epoch lengths are chosen so that a gcbits epoch
// holds a few MiB of bitmaps: the half-used block and slab ends that every
// epoch leaves behind are then a small share of what was handed out (the
// waste column of the table).
const (
	DefaultRuns         = 6
	DefaultDuration     = 100 * time.Millisecond
	DefaultEpochAllocs  = 1 << 18 // per worker: ~3 MiB of the mix
	DefaultAdvanceEvery = 2 * time.Millisecond
	DefaultSweepSpans   = 1 << 18 // per epoch: ~3 MiB of the mix
)

// Config says what Run measures.
type Config struct {
	Allocators   []string      // names from Factories; nil means all
	Workers      []int         // worker goroutine counts; nil means DefaultWorkers()
	Scenarios    []string      // nil means all
	Runs         int           // runs per row; 0 means DefaultRuns
	Duration     time.Duration // length of one run; 0 means DefaultDuration
	EpochAllocs  int           // quiescent: allocations per worker per epoch
	AdvanceEvery time.Duration // concurrent: period of Advance
	SweepSpans   int           // sweep: spans in the list, one epoch's work
	// Progress, if not nil, is called after every run with the number of
	// runs done and the total.
	Progress func(done, total int)
}

// DefaultWorkers returns 1, 2, 4 … up to GOMAXPROCS, and GOMAXPROCS itself
// when it is not a power of two.
func DefaultWorkers() []int {
	p := runtime.GOMAXPROCS(0)
	var w []int
	for n := 1; n <= p; n *= 2 {
		w = append(w, n)
	}
	if w[len(w)-1] != p {
		w = append(w, p)
	}
	return w
}

// withDefaults fills in defaults and checks the configuration.
func (c Config) withDefaults() (Config, error) {
	if c.Allocators == nil {
		c.Allocators = Names()
	}
	if c.Workers == nil {
		c.Workers = DefaultWorkers()
	}
	if c.Scenarios == nil {
		c.Scenarios = Scenarios
	}
	if c.Runs == 0 {
		c.Runs = DefaultRuns
	}
	if c.Duration == 0 {
		c.Duration = DefaultDuration
	}
	if c.EpochAllocs == 0 {
		c.EpochAllocs = DefaultEpochAllocs
	}
	if c.AdvanceEvery == 0 {
		c.AdvanceEvery = DefaultAdvanceEvery
	}
	if c.SweepSpans == 0 {
		c.SweepSpans = DefaultSweepSpans
	}
	var errs []error
	if len(c.Allocators) == 0 {
		errs = append(errs, errors.New("no allocator"))
	}
	for _, a := range c.Allocators {
		if _, ok := Lookup(a); !ok {
			errs = append(errs, fmt.Errorf("unknown allocator %q (have %v)", a, Names()))
		}
	}
	if len(c.Workers) == 0 {
		errs = append(errs, errors.New("no worker count"))
	}
	for _, w := range c.Workers {
		if w < 1 || w > MaxWorkers {
			errs = append(errs, fmt.Errorf("worker count %d is outside 1..%d", w, MaxWorkers))
		}
	}
	if len(c.Scenarios) == 0 {
		errs = append(errs, errors.New("no scenario"))
	}
	for _, s := range c.Scenarios {
		if !slices.Contains(Scenarios, s) {
			errs = append(errs, fmt.Errorf("unknown scenario %q (have %v)", s, Scenarios))
		}
	}
	for _, d := range []struct {
		what string
		dup  bool
	}{
		{"allocator", hasDuplicate(c.Allocators)},
		{"worker count", hasDuplicate(c.Workers)},
		{"scenario", hasDuplicate(c.Scenarios)},
	} {
		if d.dup {
			errs = append(errs, fmt.Errorf("%s given twice", d.what))
		}
	}
	if c.Runs < 1 || c.Runs > 1000 {
		errs = append(errs, fmt.Errorf("runs %d is outside 1..1000", c.Runs))
	}
	if c.Duration <= 0 || c.Duration > time.Minute {
		errs = append(errs, fmt.Errorf("duration %v is outside (0, 1m]", c.Duration))
	}
	if c.EpochAllocs < 1 || c.EpochAllocs > 1<<30 {
		errs = append(errs, fmt.Errorf("epoch length %d is outside 1..2^30", c.EpochAllocs))
	}
	if c.AdvanceEvery <= 0 || c.AdvanceEvery > time.Minute {
		errs = append(errs, fmt.Errorf("advance period %v is outside (0, 1m]", c.AdvanceEvery))
	}
	if c.SweepSpans < 1 || c.SweepSpans > 1<<26 {
		errs = append(errs, fmt.Errorf("sweep spans %d is outside 1..2^26", c.SweepSpans))
	}
	return c, errors.Join(errs...)
}

// hasDuplicate reports whether an element of xs appears twice.
func hasDuplicate[T comparable](xs []T) bool {
	seen := make(map[T]bool, len(xs))
	for _, x := range xs {
		if seen[x] {
			return true
		}
		seen[x] = true
	}
	return false
}

// MaxWorkers bounds the worker count of one row.
const MaxWorkers = 1024

// WarmEpochs is how many epochs a quiescent or sweep run goes through
// before it is timed: Retain+1 with gcbits' default Retain of 2 (and the
// seeds' fixed rotation), so the timed part starts when memory begins to
// be recycled. During the warm-up every worker sets a bit in each bitmap
// it gets, so that all the memory an allocator cycles through has been
// faulted in: runs measure the steady state of a long-lived program, not
// the kernel handing out fresh pages.
const WarmEpochs = 3

// ConcurrentWarmEpochs is the warm-up of the concurrent scenario, which
// touches nothing (see runAlloc): its pages are first written when an
// allocator clears them for reuse, and its footprint, driven by a timer,
// settles more slowly, so a short warm-up times the clearing of fresh
// pages (doc/BENCHMARKS.md has the measurement).
const ConcurrentWarmEpochs = 8 * WarmEpochs

// ConcurrentEpochCap bounds a worker of the concurrent scenario to
// ConcurrentEpochCap*EpochAllocs allocations per epoch; past that it waits
// for the next Advance. Advance runs on a timer there, so without a bound
// an epoch's memory would grow with the allocation rate times
// AdvanceEvery. The cap is well above what a worker allocates in the
// default 2 ms; a row whose workers reached it says so (Result.Capped).
const ConcurrentEpochCap = 4

// sample is the outcome of one run.
type sample struct {
	ops      uint64        // allocations (spans, for sweep) in the timed part
	elapsed  time.Duration // wall time of the timed part
	cpu      time.Duration // CPU time the process used in the timed part
	epochs   int           // Advances in the timed part
	words    uint64        // words handed out in the timed part
	dirty    uint64        // bitmaps whose first word was not zero when handed out
	acct     bool          // alloc and wasted are known
	alloc    uint64        // allocated bytes from the allocator's books (whole run)
	wasted   uint64        // wasted bytes from the allocator's books (whole run)
	checksum uint64        // sweep: bits counted, to keep the work
	capped   uint64        // concurrent: waits for Advance at ConcurrentEpochCap
}

func (s sample) mops() float64 {
	if s.elapsed <= 0 {
		return 0
	}
	return float64(s.ops) / s.elapsed.Seconds() / 1e6
}

// Phases of a run.
const (
	warming = iota // before the timed part
	timing         // the timed part
	stopped        // time is up, or an error
)

// clock is the shared state of one run: its phase, polled by the workers
// every pollEvery operations, and when the timed part began. It sits on
// its own cache lines.
type clock struct {
	clockFields
	_ [cacheLine - unsafe.Sizeof(clockFields{})%cacheLine]byte
}

// clockFields are the fields of a clock.
type clockFields struct {
	phase  atomic.Int32               // warming, timing or stopped; read and written atomically
	base   time.Time                  // read-only after newClock
	start  atomic.Int64               // ns after base when timing began; atomic
	cpu0   atomic.Int64               // process CPU time when timing began; atomic
	epochs atomic.Int64               // Advances so far; atomic
	timer  atomic.Pointer[time.Timer] // ends the timed part; atomic
	late   atomic.Bool                // the timer fired before the first timed Advance; atomic
	dur    time.Duration              // length of the timed part; read-only
	warm   int64                      // Advances before the timed part; read-only
}

func newClock(d time.Duration, warm int) *clock {
	return &clock{clockFields: clockFields{base: time.Now(), dur: d, warm: int64(warm)}}
}

// advanced counts one Advance and starts the timed part after the
// warm-th. Only one goroutine at a time calls it.
//
// The timed part lasts dur and at least one epoch, so that every run
// includes an Advance (a slow machine under the race detector could
// otherwise time a run with none). If the timer fires first, the next
// Advance ends the run: the timer sets late before it reads epochs, and
// advanced adds to epochs before it reads late, so one of them sees the
// other.
func (c *clock) advanced() {
	switch n := c.epochs.Add(1); {
	case n == c.warm:
		c.cpu0.Store(int64(machine.CPUTime()))
		c.start.Store(int64(time.Since(c.base)))
		if c.phase.CompareAndSwap(warming, timing) {
			c.timer.Store(time.AfterFunc(c.dur, c.expire))
		}
	case n > c.warm && c.late.Load():
		c.phase.CompareAndSwap(timing, stopped)
	}
}

// expire ends the timed part when its time is up, or marks it late if no
// Advance has happened in it yet.
func (c *clock) expire() {
	c.late.Store(true)
	if c.epochs.Load() > c.warm {
		c.phase.CompareAndSwap(timing, stopped)
	}
}

// stop ends the run at once.
func (c *clock) stop() { c.phase.Store(stopped) }

// end ends the timed part and returns its length and the CPU time the
// process used meanwhile (0 if unknown).
func (c *clock) end() (elapsed, cpu time.Duration) {
	elapsed = time.Since(c.base) - time.Duration(c.start.Load())
	if t := c.timer.Load(); t != nil {
		t.Stop()
	}
	if t := machine.CPUTime(); t > 0 && c.cpu0.Load() > 0 {
		cpu = t - time.Duration(c.cpu0.Load())
	}
	return elapsed, cpu
}

// sampleOf starts the sample of a run that ends now.
func (c *clock) sampleOf() sample {
	el, cpu := c.end()
	return sample{elapsed: el, cpu: cpu, epochs: c.timedEpochs()}
}

// timedEpochs returns the Advances made in the timed part.
func (c *clock) timedEpochs() int { return int(max(c.epochs.Load()-c.warm, 0)) }

const pollEvery = 256

// barrier is a reusable barrier for n goroutines. The last to arrive runs
// the leader function while the others wait, and everyone gets its result.
// Waiters spin (yielding) for a while before they park: an epoch lasts a
// millisecond or two, and waking a parked goroutine can take a good part
// of that, a harness cost that would weigh most on the fastest allocators.
type barrier struct {
	mu    sync.Mutex
	cond  sync.Cond     // on mu; broadcast when gen moves on
	n     int           // goroutines that meet; read-only
	count int           // arrived in this round; under mu
	gen   atomic.Uint64 // round number; written under mu, read atomically by spinners
	out   atomic.Int32  // the leader's result; stored under mu before gen moves on, read atomically after gen did
}

// spinYields is how many times a waiter yields before it parks.
const spinYields = 4096

func newBarrier(n int) *barrier {
	b := &barrier{n: n}
	b.cond.L = &b.mu
	return b
}

func (b *barrier) wait(leader func() int32) int32 {
	b.mu.Lock()
	g := b.gen.Load()
	if b.count++; b.count == b.n {
		out := leader()
		b.count = 0
		b.out.Store(out)
		b.gen.Store(g + 1)
		b.cond.Broadcast()
		b.mu.Unlock()
		return out
	}
	b.mu.Unlock()
	for range spinYields {
		if b.gen.Load() != g {
			return b.out.Load()
		}
		runtime.Gosched()
	}
	b.mu.Lock()
	for b.gen.Load() == g {
		b.cond.Wait()
	}
	b.mu.Unlock()
	return b.out.Load()
}

// firstErr keeps the first error of a run.
type firstErr struct {
	once sync.Once
	err  error
}

func (f *firstErr) set(err error) { f.once.Do(func() { f.err = err }) }

// workerState is one worker's counters, padded so that workers never
// share a cache line.
type workerState struct {
	workerFields
	_ [cacheLine - unsafe.Sizeof(workerFields{})%cacheLine]byte
}

// workerFields are the fields of a workerState. The worker keeps its
// counters in locals, restarted when it sees the phase change (so they
// count the timed part; dirty counts the warm-up), and stores them here
// once, as it returns; the run reads them after waiting for every worker.
type workerFields struct {
	w      Worker
	ops    uint64
	words  uint64
	dirty  uint64
	sum    uint64
	capped uint64 // concurrent: times the worker waited for Advance at ConcurrentEpochCap
}

// runAlloc runs one quiescent or concurrent run of a. Every worker cycles
// through the mix from its own offset.
//
// During the warm-up of the quiescent scenario a worker checks that the
// first word of each bitmap is zero and sets its bit 0, as a marker would,
// so that the memory is faulted in and an overlap between bitmaps shows up
// as a dirty count; the timed part only allocates. Bitmaps of allocators
// that are not Epochal are not touched: they may already belong to
// someone else.
//
// In the concurrent scenario nothing is touched. Advance runs on its own
// clock there, so a worker descheduled for Retain+1 periods between Alloc
// and its store would write into a bitmap whose lifetime is over: memory
// that may belong to someone else, or that gcbits may already have
// returned to the operating system (DESIGN.md calls such bitmaps dead on
// arrival; a real caller ties its use of a bitmap to the epochs it
// drives).
func runAlloc(a Allocator, f Factory, scenario string, workers int, cfg Config) (sample, error) {
	mix := Mix()
	ws := make([]workerState, workers)
	for i := range ws {
		ws[i].w = a.NewWorker()
	}
	warm := WarmEpochs
	if scenario == Concurrent {
		warm = ConcurrentWarmEpochs
		// The advancing goroutine needs a P of its own: with every P busy
		// allocating it would run only when a worker blocks, so the
		// allocators that block most would be advanced most often. One
		// more P lets the OS time-slice it at the same rate for all.
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(workers + 1))
	}
	var (
		clk   = newClock(cfg.Duration, warm)
		fe    firstErr
		done  sync.WaitGroup
		bar   = newBarrier(workers)
		touch = f.Epochal && scenario == Quiescent
	)
	// The leader does not Advance once the run is over: that last epoch
	// is cut short by the clock, and an allocator that returns memory to
	// the operating system when an epoch is smaller than the last ones
	// (gcbits) would be timed doing so only because the run ended.
	leader := func() int32 {
		if clk.phase.Load() == stopped {
			return stopped
		}
		a.Advance()
		clk.advanced()
		return clk.phase.Load()
	}
	for i := range ws {
		done.Add(1)
		go func(s *workerState, j int) {
			defer done.Done()
			if scenario == Concurrent {
				allocConcurrent(s, mix, j, ConcurrentEpochCap*cfg.EpochAllocs, clk, &fe)
			} else {
				allocQuiescent(s, mix, j, cfg.EpochAllocs, touch, bar, leader, clk, &fe)
			}
		}(&ws[i], i*len(mix)/workers)
	}
	advDone := make(chan struct{})
	if scenario == Concurrent {
		go func() {
			defer close(advDone)
			t := time.NewTicker(cfg.AdvanceEvery)
			defer t.Stop()
			for range t.C {
				if clk.phase.Load() == stopped {
					return
				}
				a.Advance()
				clk.advanced()
			}
		}()
	} else {
		close(advDone)
	}
	done.Wait()
	s := clk.sampleOf()
	<-advDone
	return finish(a, ws, s), fe.err
}

// allocN makes k allocations from the mix, from its position j on, and
// returns the next position and the words handed out.
func allocN(w Worker, mix []int, j, k int) (int, uint64, error) {
	var nw uint64
	for range k {
		b, err := w.Alloc(mix[j])
		if err != nil {
			return j, nw, err
		}
		nw += uint64(len(b))
		if j++; j == len(mix) {
			j = 0
		}
	}
	return j, nw, nil
}

// toucher is a Worker of the quiescent warm-up (see runAlloc): it checks
// that the first word of each bitmap it hands out is zero, counting in
// dirty those that are not, and sets its bit 0. It wraps the worker only
// for the warm-up, so the timed part calls the allocator's worker
// directly, as before. Only the worker's own goroutine uses it.
type toucher struct {
	Worker
	dirty uint64
}

func (t *toucher) Alloc(nbits int) ([]uint64, error) {
	b, err := t.Worker.Alloc(nbits)
	if len(b) > 0 {
		if b[0] != 0 {
			t.dirty++
		}
		b[0] = 1
	}
	return b, err
}

// tally is a worker's count, in its locals, of the phase it saw last: it
// restarts when the worker sees the phase change, so that it counts the
// timed part.
type tally struct {
	phase      int32
	ops, words uint64
}

// alloc makes k allocations from position j of the mix with allocN,
// counts them, and returns the next position and whether the worker goes
// on: not after an error, which it keeps in fe and which stops the run,
// nor once the run has stopped.
func (t *tally) alloc(w Worker, mix []int, j, k int, clk *clock, fe *firstErr) (int, bool) {
	j, words, err := allocN(w, mix, j, k)
	if err != nil {
		fe.set(err)
		clk.stop()
		return j, false
	}
	t.words += words
	t.ops += uint64(k)
	return j, t.see(clk.phase.Load())
}

// see takes note of phase p: it restarts the count when p is not the
// phase counted, and reports whether the run goes on.
func (t *tally) see(p int32) bool {
	if p == stopped {
		return false
	}
	if p != t.phase {
		t.phase, t.ops, t.words = p, 0, 0
	}
	return true
}

// allocQuiescent is a worker of the quiescent scenario, from position j of
// the mix: epochs of limit allocations, each ended at the barrier, the
// bitmaps of the warm-up touched if touch.
func allocQuiescent(s *workerState, mix []int, j, limit int, touch bool, bar *barrier, leader func() int32, clk *clock, fe *firstErr) {
	t := tally{phase: warming}
	tw := &toucher{Worker: s.w}
	defer func() { s.ops, s.words, s.dirty = t.ops, t.words, tw.dirty }()
	for {
		w := s.w
		if touch && t.phase == warming {
			w = tw
		}
		for n, ok := 0, true; ok && n < limit; n += pollEvery {
			j, ok = t.alloc(w, mix, j, min(pollEvery, limit-n), clk, fe)
		}
		if !t.see(bar.wait(leader)) {
			return
		}
	}
}

// allocConcurrent is a worker of the concurrent scenario, from position j
// of the mix: it allocates until the run stops, with no barrier, but at
// most limit bitmaps in one epoch. Past that it waits for the next
// Advance, and counts the wait in s.capped if the run is timing.
func allocConcurrent(s *workerState, mix []int, j, limit int, clk *clock, fe *firstErr) {
	t := tally{phase: warming}
	var capped uint64
	defer func() { s.ops, s.words, s.capped = t.ops, t.words, capped }()
	epoch, n := clk.epochs.Load(), 0
	for {
		if n >= limit {
			if t.phase == timing {
				capped++
			}
			for clk.epochs.Load() == epoch {
				if clk.phase.Load() == stopped {
					return
				}
				runtime.Gosched()
			}
			epoch, n = clk.epochs.Load(), 0
		}
		k := min(pollEvery, limit-n)
		var ok bool
		if j, ok = t.alloc(s.w, mix, j, k, clk, fe); !ok {
			return
		}
		n += k
		if e := clk.epochs.Load(); e != epoch {
			epoch, n = e, 0
		}
	}
}

// finish flushes the workers, adds up their counters and reads the
// allocator's books.
func finish(a Allocator, ws []workerState, s sample) sample {
	for i := range ws {
		if f, ok := ws[i].w.(Flusher); ok {
			f.Flush()
		}
		s.ops += ws[i].ops
		s.words += ws[i].words
		s.dirty += ws[i].dirty
		s.checksum += ws[i].sum
		s.capped += ws[i].capped
	}
	if ac, ok := a.(Accounter); ok {
		s.acct = true
		s.alloc, s.wasted = ac.Account()
	}
	return s
}

// span is one entry of the sweep's list, padded to a cache line: the
// runtime's mspans are objects of their own, of some 160 bytes, and a
// sweeper that writes one span's bits must not share its line with
// another's.
type span struct {
	spanFields
	_ [cacheLine - unsafe.Sizeof(spanFields{})%cacheLine]byte
}

// spanFields are the fields of a span. The sweeper that claims the span
// in an epoch writes them; the barrier between epochs orders that write
// before the next epoch's reads.
type spanFields struct {
	bits  []uint64
	nbits int
}

// newSpans returns the sweep's list: the size classes in turn.
func newSpans(n int) []span {
	mix := Mix()
	s := make([]span, n)
	for i := range s {
		s[i].nbits = mix[i%len(mix)]
	}
	return s
}

// epochWords is how many words one sweep of spans allocates.
func epochWords(spans []span) int {
	n := 0
	for i := range spans {
		n += (spans[i].nbits + 63) >> 6
	}
	return n
}

// noopWorkers returns the sweep baseline's workers: each bumps through
// its own part of one zero region, as large as Retain+1 epochs of bitmaps
// altogether.
func noopWorkers(spans []span, workers int) []Worker {
	per := 3*epochWords(spans)/workers + poolWords
	buf := make([]uint64, per*workers)
	// Write it once so that it is backed by pages of its own, not by the
	// kernel's shared zero page, which would flatter the baseline.
	clear(buf)
	ws := make([]Worker, workers)
	for i := range ws {
		ws[i] = &noopWorker{noopFields: noopFields{buf: buf[i*per : (i+1)*per : (i+1)*per]}}
	}
	return ws
}

// runSweep runs one sweep run of a, or of the no-op baseline when a is
// nil. The timed part starts after WarmEpochs epochs: the allocation of the
// first bitmaps, then sweeps of the whole list, which set bit 0 of every
// new bitmap (except the no-op's, which share memory).
func runSweep(a Allocator, spans []span, workers int, cfg Config) (sample, error) {
	ws := make([]workerState, workers)
	if a == nil {
		for i, w := range noopWorkers(spans, workers) {
			ws[i].w = w
		}
	} else {
		for i := range ws {
			ws[i].w = a.NewWorker()
		}
	}
	defer func() {
		for i := range spans {
			spans[i].bits = nil // drop the bitmaps before the allocator closes
		}
	}()
	// Every span starts with a bitmap from the allocator, one epoch old.
	for i := range spans {
		b, err := ws[i%workers].w.Alloc(spans[i].nbits)
		if err != nil {
			return sample{}, err
		}
		spans[i].bits = b
	}
	var (
		clk  = newClock(cfg.Duration, WarmEpochs)
		fe   firstErr
		done sync.WaitGroup
		bar  = newBarrier(workers)
		next struct { // the next span to claim, on lines of its own
			atomic.Int64
			_ [cacheLine - unsafe.Sizeof(atomic.Int64{})%cacheLine]byte
		}
	)
	leader := func() int32 { // see runAlloc
		if clk.phase.Load() == stopped {
			return stopped
		}
		if a != nil {
			a.Advance()
		}
		clk.advanced()
		next.Store(0)
		return clk.phase.Load()
	}
	leader()
	n := int64(len(spans))
	for i := range ws {
		done.Add(1)
		go func(s *workerState) {
			defer done.Done()
			w := s.w
			var ops, nw, sum uint64
			phase := int32(warming)
			defer func() { s.ops, s.words, s.sum = ops, nw, sum }()
			for {
				// Spans are claimed from the shared list 256 at a time:
				// one atomic add per 256 spans keeps the list's counter
				// from being the contended line the bench would measure
				// (doc/BENCHMARKS.md has what smaller claims cost). The
				// last claims of an epoch leave workers at most 256 spans
				// apart.
				const batch = 256
				lo, hi := int64(0), int64(0)
				for {
					if lo == hi {
						lo = next.Add(batch) - batch
						hi = min(lo+batch, n)
						if lo >= n {
							lo, hi = 0, 0
							break
						}
					}
					i := lo
					lo++
					sp := &spans[i]
					for _, x := range sp.bits {
						sum += uint64(bits.OnesCount64(x))
					}
					b, err := w.Alloc(sp.nbits)
					if err != nil {
						fe.set(err)
						clk.stop()
						break
					}
					if phase == warming && a != nil && len(b) > 0 {
						b[0] = 1 // fault the memory in, as a marker would
					}
					sp.bits = b
					nw += uint64(len(b))
					if ops++; ops%pollEvery == 0 && clk.phase.Load() == stopped {
						break
					}
				}
				p := bar.wait(leader)
				if p == stopped {
					return
				}
				if p != phase {
					phase, ops, nw, sum = p, 0, 0, 0
				}
			}
		}(&ws[i])
	}
	done.Wait()
	return finish(a, ws, clk.sampleOf()), fe.err
}

// Check reports what is wrong with cfg once defaults are filled in: the
// errors Run would return before measuring anything, among them
// machine.ErrMemory when its largest run could need more than half of the
// machine's memory (see Estimate).
func Check(cfg Config) error {
	c, err := cfg.withDefaults()
	if err != nil {
		return err
	}
	return checkMemory(c)
}
