/*
 * seedafter.pml: a Promela model of seed.After (internal/seed/after.go),
 * which is the Go runtime's mark-bit allocator after its fast path
 * became lock-free: one global head ("next"); a fast path of an atomic load
 * of the head, a precheck load of its free offset and an atomic add; a lock
 * that guards only the lists; Advance rotating next -> current ->
 * previous -> free; a block taken off the free list cleared whole under the
 * lock and its free offset reset to 0. There is no seal, and a block keeps
 * one header (with its free offset) through all its lives. .ci/spin.sh
 * runs it; model/MODEL.md has the results.
 *
 * The properties are those of arena.pml (the gcbits model), with the
 * runtime's rotation as Retain = 2: an allocation is live from its hand-out
 * until epoch reaches beg + 3, beg being the epoch its Alloc began in (read
 * with its head load), and
 *   (a) overlap:  a unit handed out belongs to no other live allocation;
 *   (b) zero:     a unit handed out is zero; recycled: a block put on the
 *                 free list holds no live allocation; clear: the clear of a
 *                 block taken off the free list hits no live allocation;
 *   (d) claim:    no unit is claimed by two successful adds within one life
 *                 of its block (between two recycles);
 *   (c) no deadlock (invalid end states).
 * Allocations that are dead on arrival are not used by their callers.
 *
 * -DSTW: Advance runs only while no Alloc is in progress, as the runtime
 * runs its epoch change with the world stopped. spin reports no error.
 *
 * Default, Advance concurrent with Alloc: spin reports (d) violated, with
 * this interleaving (NALLOC=2, NALLOC2=1, NADV=3, NB=2):
 *
 *   1. Allocator B finds no head, maps block X, claims unit 0 with its add
 *      and publishes X as the head (epoch 0); its Alloc returns unit 0.
 *   2. Allocator A's first Alloc begins in epoch 0, loads the head (X) and
 *      is preempted before its precheck.
 *   3. Three Advances: X goes next -> current -> previous -> free; epoch 3.
 *   4. A resumes: X was never sealed, its free offset still says 1, so the
 *      precheck and the add succeed and claim unit 1 of X, a block that now
 *      sits on the free list. A's Alloc returns unit 1.
 *   5. A's second Alloc (epoch 3) finds no head, takes the lock, pops X,
 *      clears it, resets its free offset to 0 and adds 2: it claims units
 *      0 and 1, and publishes X. Unit 1 has now been handed to two Allocs
 *      in the same life of X.
 *
 * (a) and (b) still hold: A's first Alloc began in epoch 0 and returned in
 * epoch 3, so under the lifetime rule it is dead on arrival and its caller
 * must not touch unit 1. spin finds no violation of (a), (b) or (c) without
 * STW when (d) is left out (checked up to 64 million states). So the
 * runtime design without stop-the-world stays safe only for callers that
 * discard such bitmaps; a caller that, like the runtime's sweeper, takes
 * every returned bitmap as its own corrupts the newer owner's bits. gcbits
 * closes the window with the seal (an add on a block that has left the
 * head fails for good) and a fresh header for each life of a block:
 * arena.pml checks (d) for it, dead-on-arrival Allocs included.
 *
 * Granularity: Advance is one atomic step. It runs under the lock, and
 * the only effect lock-free code can see is the store of nil to the head;
 * turning the epoch with that store is the placement most favourable to
 * this design. Other steps follow the same Lipton reduction as arena.pml.
 */

#ifndef NADV
#define NADV 3
#endif
#ifndef NALLOC
#define NALLOC 2	/* requests of the first allocator */
#endif
#ifndef NALLOC2
#define NALLOC2 1	/* requests of the second allocator */
#endif
#ifndef NB
#define NB	2	/* blocks */
#endif
#define BS	4	/* units per block */
#define NU	(NB*BS)
#define RETAIN	2	/* next -> current -> previous -> free */

byte epoch;			/* ghost: number of Advances */
bit  mu;
byte nxt;			/* head of the next list: block+1, or 0 (nil) */
byte afree[NB];			/* each block's free offset: atomic */
byte nextl, curl, prevl;	/* the lists, as sets of blocks: under mu */
byte freeb;			/* the free list: under mu */
byte unmapped = (1 << NB) - 1;
#ifdef STW
byte busy;			/* Allocs in progress */
#endif

/* ghost state for the properties */
byte own[NU];			/* end of life (epoch) of the unit's owner */
bit  cont[NU];			/* content: 0, or 1 once written */
byte clm[NB];			/* units claimed in the block's current life */

#define LIVE(end)	(epoch < (end))
#define U(b, i)		((b) * BS + (i))
#define MASK(s, n)	((((1 << (n)) - 1) << (s)) & ((1 << BS) - 1))

inline lock()   { atomic { mu == 0 -> mu = 1 } }
inline unlock() { mu = 0 }

inline pick(s, b) {
	if
	:: (s & 1) -> b = 0
	:: (s & 2) -> b = 1
	:: (s & 4) -> b = 2
	fi;
	s = s ^ (1 << b)
}

/* tryAlloc(c): c.free.Load()+n > size fails; else end := c.free.Add(n),
 * ok if end <= size. Offsets past BS saturate at BS+1 (same behaviour). */
inline tryalloc(c, n, start, ok) {
	ok = 0;
	if
	:: c != 0 ->
		d_step { ok = (afree[c - 1] + n <= BS) };	/* precheck */
		if
		:: ok ->
			d_step {
				start = afree[c - 1];
				ok = (start + n <= BS);
				afree[c - 1] = (ok -> start + n : BS + 1);
				if
				:: ok ->
					assert((clm[c - 1] & MASK(start, n)) == 0);	/* (d) claim */
					clm[c - 1] = clm[c - 1] | MASK(start, n)
				:: else -> start = 0
				fi
			}
		:: else -> skip
		fi
	:: else -> skip
	fi
}

inline handout(beg, b, s, n) {
	d_step {
		if
		:: LIVE(beg + RETAIN + 1) ->
			i = s;
			do
			:: i < s + n ->
				assert(!LIVE(own[U(b, i)]));		/* (a) overlap */
				assert(cont[U(b, i)] == 0);		/* (b) zero */
				own[U(b, i)] = beg + RETAIN + 1;
				cont[U(b, i)] = 1;
				i++
			:: else -> break
			od;
			i = 0
		:: else -> skip	/* dead on arrival: not used */
		fi
	}
}

proctype Alloc(byte nreq) {
	byte k, beg, n, c, start, fresh, i;
	bool ok;
	do
	:: k < nreq ->
		atomic {
#ifdef STW
			busy++;
#endif
			if
			:: n = 1
			:: n = 2
			fi;
			beg = epoch;
			c = nxt			/* head := next.Load() */
		};
		tryalloc(c, n, start, ok);
		if
		:: ok -> goto done
		:: else -> skip
		fi;
		atomic { lock(); c = nxt };
		tryalloc(c, n, start, ok);
		if
		:: ok -> unlock(); goto done
		:: else -> skip
		fi;
		/* newBlockMayUnlock */
		if
		:: freeb != 0 ->
			atomic {
				pick(freeb, fresh);
				/* clear(c.mem.Words()), under mu */
				d_step {
					i = 0;
					do
					:: i < BS ->
						assert(!LIVE(own[U(fresh, i)]));	/* (b) clear */
						cont[U(fresh, i)] = 0;
						i++
					:: else -> break
					od;
					i = 0
				}
			};
			atomic { afree[fresh] = 0; c = nxt }	/* c.free.Store(0) */
		:: freeb == 0 && unmapped != 0 ->
			atomic { pick(unmapped, fresh); unlock() };	/* map */
			atomic { lock(); afree[fresh] = 0; c = nxt }
		:: freeb == 0 && unmapped == 0 ->
			unlock(); goto done	/* out of memory: the runtime throws */
		fi;
		/* another Alloc may have published a block meanwhile */
		tryalloc(c, n, start, ok);
		if
		:: ok ->
			atomic { freeb = freeb | (1 << fresh); fresh = 0; unlock() };
			goto done
		:: else -> skip
		fi;
		/* fresh is not published: this add cannot fail */
		c = fresh + 1;
		fresh = 0;
		tryalloc(c, n, start, ok);
		assert(ok);
		atomic { nextl = nextl | (1 << (c - 1)); nxt = c; unlock() };
done:
		atomic {
			if
			:: ok -> handout(beg, c - 1, start, n)
			:: else -> skip
			fi;
#ifdef STW
			busy--;
#endif
			c = 0; beg = 0; n = 0; start = 0; ok = 0; k++
		}
	:: else -> break
	od;
	k = 0
}

/* Advance: previous -> free, current -> previous, next -> current, nil
 * head. One atomic step (see the top). */
proctype Advancer() {
	byte k, b, i;
	do
	:: k < NADV ->
		atomic {
#ifdef STW
			busy == 0 ->
#endif
			lock();
			d_step {
				epoch++;
				nxt = 0;
				i = 0;
				do
				:: i < NU ->
					if
					:: (prevl & (1 << (i / BS))) ->
						assert(!LIVE(own[i]))	/* (b) recycled */
					:: else -> skip
					fi;
					i++
				:: else -> break
				od;
				b = 0;
				do
				:: b < NB ->
					if
					:: (prevl & (1 << b)) -> clm[b] = 0
					:: else -> skip
					fi;
					b++
				:: else -> break
				od;
				b = 0;
				freeb = freeb | prevl;
				prevl = curl;
				curl = nextl;
				nextl = 0;
				/* forget dead owners */
				i = 0;
				do
				:: i < NU ->
					if
					:: !LIVE(own[i]) -> own[i] = 0
					:: else -> skip
					fi;
					i++
				:: else -> break
				od;
				i = 0
			};
			unlock()
		};
		k++
	:: else -> break
	od;
	k = 0
}

init {
	atomic {
		run Alloc(NALLOC);
		run Alloc(NALLOC2);
		run Advancer()
	}
}
