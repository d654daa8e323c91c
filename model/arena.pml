/*
 * arena.pml: a Promela model of the gcbits allocation protocol of
 * doc/DESIGN.md (code: arena.go, cache.go). model/MODEL.md describes it and
 * .ci/spin.sh runs it in every configuration:
 *
 *	spin -a [-DCFG=n] [-DRETAIN=n] [-DSHARDS=2] [-DTRIM] [-DMUT_...] arena.pml
 *	gcc -O2 -DSAFETY -DCOLLAPSE -o pan pan.c && ./pan -m20000
 *
 * Memory: NB blocks of BS units; a unit stands for one word of a bitmap.
 * A chunk header is a slot in a small pool. A new chunk takes a slot that
 * nothing refers to any more (as Go's GC would recycle the object), so a
 * goroutine that still holds an old header never sees it reused; the
 * MUT_ABA mutation instead reuses the block's previous header.
 *
 * Processes (-DCFG=n):
 *   1 (default) two shared-path allocators (Arena.Alloc) and the advancer
 *   2           one shared-path allocator, one Cache and the advancer
 *   3           two Caches and the advancer
 * Shared-path allocators make NALLOC (the second one NALLOC2) requests of
 * 1 or 2 units, Caches NCACHE requests of 1 unit (refilling slabs of SLAB
 * units), the advancer NADV Advances; spin explores every interleaving.
 * Process p uses shard p % SHARDS (SHARDS is 1 or 2).
 *
 * Properties, as assertions tagged in the source (spin also reports
 * invalid end states, i.e. deadlock: property (c)):
 *   (a) overlap:  a unit handed out belongs to no other live allocation.
 *   (b) zero:     a unit handed out is zero;
 *       recycled: a block put on the free list holds no live allocation;
 *       unmapped: a block trimmed holds no live allocation;
 *       clear:    a clear (by whoever takes a dirty block) hits no live
 *                 allocation.
 *   (d) claim:    no unit is claimed by two successful Adds within one life
 *                 of its block (between two recycles).
 *   (e) limit:    a request fails with ErrLimit only when it cannot be
 *                 served without mapping past the limit: every block
 *                 serves a live generation (none free, being mapped,
 *                 cleared or unmapped) and no shard's head has room.
 *   (f) bound:    a process's Add fails on a chunk at most once: after a
 *                 chunk fills, each process adds to it at most once more.
 *   (g) seal:     a chunk is sealed once;
 *       publish:  publishing a chunk finds its shard without a head.
 * An allocation is live from its hand-out until epoch reaches
 * beg + RETAIN + 1, beg being the epoch its Alloc began in. beg is read in
 * the same atomic step as the Alloc's first shared access (the head load,
 * or the Cache's epoch load): the latest instant the Alloc can be said to
 * begin, which promises the longest lifetime. An allocation whose lifetime
 * is over when it is handed out ("dead on arrival", DESIGN.md) is not used
 * by its caller: the model skips its checks and writes.
 *
 * Mutations (spin must report an error for each):
 *   MUT_ABA            a reused block keeps its old chunk header
 *   MUT_SEAL_AFTER     Advance increments epoch before sealing the head
 *   MUT_NO_SEAL        Advance clears the head without sealing it
 *   MUT_NO_EPOCH_CHECK the Cache fast path omits the epoch check
 *   MUT_EARLY_RECYCLE  Advance recycles generation e-Retain (one too soon)
 *   MUT_SCRUB_SHARED   a dirty block is put back on the free list, marked
 *                      clean, before it is cleared
 *   MUT_LEAK_LOCK      the ErrLimit return forgets to release mu
 *   MUT_SLOW_ADD       the earlier slow path: it retries the head with an
 *                      Add and keeps a full head
 *   MUT_LIMIT_NO_WAIT  ErrLimit without waiting for the blocks in flight
 *   MUT_NO_ANY_HEAD    ErrLimit without trying the other shards' heads
 *   MUT_UNMAP_EARLY    a trimmed block counts as unmapped (free to map
 *                      again) before it is unmapped
 *   RECEIVER_ZEROES    the earlier design: nobody clears a block when it is
 *                      taken off the free list; each allocator clears the
 *                      units it receives below the chunk's dirty mark
 *
 * Abstractions: the free list is a set popped in any order; trimming
 * (-DTRIM) may take any free block at any Advance and unmaps it after the
 * lock is released; the limit is NB blocks; large allocations, Close,
 * Guard, the closed bit and the statistics are left out (doc/MODEL.md
 * says why).
 */

#ifndef CFG
#define CFG 1
#endif
#ifndef RETAIN
#define RETAIN 1
#endif
#ifndef NADV
#define NADV 3
#endif
#ifndef NALLOC
#define NALLOC 2	/* requests per shared-path allocator */
#endif
#ifndef NALLOC2
#define NALLOC2 NALLOC	/* requests of the second one, in CFG 1 */
#endif
#ifndef NCACHE
#define NCACHE 3	/* requests per Cache */
#endif

#define NB	2	/* blocks */
#define BS	4	/* units per block */
#define NU	(NB*BS)
#define SLAB	2	/* units a Cache carves per refill */
#define SEALED	64	/* stands for 1<<62: far above any offset */
#define NH	8	/* chunk header slots; 0 is nil */
#define NSLOT	(RETAIN+1)

byte epoch;			/* read atomically, written under mu */
bit  mu;			/* the lock */
#ifndef SHARDS
#define SHARDS 1
#endif
byte head[2];			/* shard heads: a header or 0 (nil) */
byte ref[3];			/* the header each process holds, or 0 */

/* chunk headers */
byte hfree[NH];			/* free offset: atomic Add and Swap */
byte hblk[NH];			/* block; read-only once published */
byte hgen[NH];			/* generation; read-only once published */
#ifdef RECEIVER_ZEROES
byte hdirty[NH];		/* dirty mark; read-only once published */
#endif

/* blocks: under mu */
#ifdef MUT_ABA
byte bhdr[NB];			/* header of the block's last chunk */
#endif
byte bdirty[NB];		/* leading units that may hold old data */
byte freeb;			/* the free list, as a set of blocks */
byte unmapped = (1 << NB) - 1;	/* blocks not mapped */
byte unmapping;			/* blocks trimmed, being unmapped after mu is released */
byte busy;			/* blocks in flight: mapped or cleared with mu released */
byte gens[NSLOT];		/* blocks published per generation slot */

/* ghost state for the properties */
byte own[NU];			/* end of life (epoch) of the unit's owner */
bit  cont[NU];			/* content: 0, or 1 once written */
byte clm[NB];			/* units claimed in the block's current life */
byte hfail[NH];			/* processes whose Add on the header failed */

#define LIVE(end)	(epoch < (end))	/* end: epoch where a life ends */
#define U(b, i)		((b) * BS + (i))
#define MASK(s, n)	((((1 << (n)) - 1) << (s)) & ((1 << BS) - 1))
#define HELD(x)		((x) == head[0] || (x) == head[1] || (x) == ref[0] || (x) == ref[1] || (x) == ref[2])
#define SH		(me % SHARDS)	/* the shard of process me */
#define ALL		((1 << NB) - 1)
#if RETAIN == 1
#define LIVEGENS	(gens[0] | gens[1])
#elif RETAIN == 2
#define LIVEGENS	(gens[0] | gens[1] | gens[2])
#endif
#define ROOM(h, n)	((h) != 0 && hfree[h] + (n) <= BS)

inline lock()   { atomic { mu == 0 -> mu = 1 } }
inline unlock() { mu = 0 }

/* Take any block of set s into b: the free list is popped in every order
 * (the code pops its front). NB <= 3. */
inline pick(s, b) {
	if
	:: (s & 1) -> b = 0
	:: (s & 2) -> b = 1
	:: (s & 4) -> b = 2
	fi;
	s = s ^ (1 << b)
}

/* tryAdd: end := c.free.Add(n); ok if end <= size. A successful Add claims
 * its units. A free offset past BS (or past SEALED) only ever fails again:
 * it is saturated so that equal behaviours are equal states. */
inline tryadd(h, n, start, ok) {
	d_step {
		start = hfree[h];
		ok = (start + n <= BS);
		hfree[h] = (ok -> start + n : (start < SEALED -> BS + 1 : SEALED));
		if
		:: ok ->
			assert((clm[hblk[h]] & MASK(start, n)) == 0);	/* (d) claim */
			clm[hblk[h]] = clm[hblk[h]] | MASK(start, n)
		:: else ->
			assert((hfail[h] & (1 << me)) == 0);		/* (f) bound */
			hfail[h] = hfail[h] | (1 << me);
			start = 0
		fi
	}
}

/* claim: compare-and-swap within the chunk. Unlike tryadd it leaves the
 * offset of a chunk without room as it is. */
inline tryclaim(h, n, start, ok) {
	d_step {
		start = hfree[h];
		ok = (start + n <= BS);
		if
		:: ok ->
			hfree[h] = start + n;
			assert((clm[hblk[h]] & MASK(start, n)) == 0);	/* (d) claim */
			clm[hblk[h]] = clm[hblk[h]] | MASK(start, n)
		:: else -> start = 0
		fi
	}
}

/* The slow path's claim on a head: tryclaim, or, in the earlier design
 * (MUT_SLOW_ADD), an Add that fails for good on a full head. */
#ifdef MUT_SLOW_ADD
#define slowclaim(h, n, start, ok)	tryadd(h, n, start, ok)
#else
#define slowclaim(h, n, start, ok)	tryclaim(h, n, start, ok)
#endif

/* sealLocked: v := c.free.Swap(sealed); the block's dirty mark is
 * min(v, size). It runs once per chunk: the code keeps no flag against a
 * second seal, which would count the chunk's use twice. */
inline seal(h) {
	d_step {
		assert(hfree[h] < SEALED);				/* (g) seal */
		bdirty[hblk[h]] = (hfree[h] < BS -> hfree[h] : BS);
		hfree[h] = SEALED
	}
}

/* Forget headers nothing refers to (Go's GC would free them). */
inline gc() {
	i = 1;
	do
	:: i < NH ->
		if
		:: !HELD(i) ->
#ifdef MUT_ABA
			if
			:: bhdr[0] != i && bhdr[1] != i ->
#endif
			hfree[i] = 0; hblk[i] = 0; hgen[i] = 0; hfail[i] = 0;
#ifdef RECEIVER_ZEROES
			hdirty[i] = 0;
#endif
#ifdef MUT_ABA
			:: else -> skip
			fi
#endif
		:: else -> skip
		fi;
		i++
	:: else -> break
	od;
	i = 0
}

/* Clear units [s, e) of block b. It is the library writing: it must not
 * hit a live allocation. */
inline clear(b, s, e) {
	d_step {
		i = s;
		do
		:: i < e ->
			assert(!LIVE(own[U(b, i)]));			/* (b) clear */
			cont[U(b, i)] = 0;
			i++
		:: else -> break
		od;
		i = 0
	}
}

/* Alloc returns units [s, s+n) of block b to an allocation whose Alloc
 * began in epoch beg; if it is live, its caller checks and writes them. */
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

/* publishLocked, on a shard with no head: a chunk {free: n, gen: epoch}
 * over clean block b in a fresh header h, added to gens[epoch] and stored
 * as the head. Under mu. */
inline publish(b, n, h) {
#ifdef MUT_ABA
	if
	:: bhdr[b] != 0 -> h = bhdr[b]
	:: else ->
#endif
	i = 1;
	do
	:: i < NH && (HELD(i)
#ifdef MUT_ABA
		|| bhdr[0] == i || bhdr[1] == i
#endif
		) -> i++
	:: else -> break
	od;
	assert(i < NH);
	h = i;
	i = 0;
#ifdef MUT_ABA
	fi;
	bhdr[b] = h;
#endif
	hblk[h] = b;
	hgen[h] = epoch;
#ifdef RECEIVER_ZEROES
	hdirty[h] = bdirty[b];
#endif
	hfree[h] = n;
	hfail[h] = 0;
	assert((clm[b] & MASK(0, n)) == 0);		/* (d) claim */
	clm[b] = clm[b] | MASK(0, n);
	gens[epoch % NSLOT] = gens[epoch % NSLOT] | (1 << b);
	head[SH] = h;
	gc()
}

/* carveSlow: under mu, claim on the head by compare-and-swap, and retire
 * it (seal, store nil) if it has no room; else take a block off the free
 * list (clearing it first, with mu released, if it is dirty) or map one
 * (with mu released) and go round; else publish the clean block. A block
 * cleared or mapped with mu released is in flight (busy). When every block
 * is in use, claim on any shard's head; else wait for the blocks in flight
 * to land, and go round; else ok = 0: ErrLimit.
 *
 * Atomicity (Lipton reduction): taking mu is a right mover, releasing it a
 * left mover, and accesses to state written only under mu (the free list,
 * gens, bdirty, busy, and head as read by the lock holder) are
 * both-movers; so each atomic step groups them around at most one access
 * that lock-free code can observe (an Add, a seal, a head store, a clear),
 * or around a failed claim, a seal and a head store: an Add between the
 * claim's load and the seal moves before the load (the claim fails
 * either way), and one between the seal and the store fails either way. */
/* tryAnyHeadLocked: claim on whichever shard's head has room; ref[me] is
 * the header claimed on. Under mu. */
inline anyhead(me, n, start, ok) {
#ifndef MUT_NO_ANY_HEAD
	i = 0;
	do
	:: i < SHARDS && !ok ->
		ref[me] = head[i];
		if
		:: ref[me] != 0 -> slowclaim(ref[me], n, start, ok)
		:: else -> skip
		fi;
		if
		:: !ok -> ref[me] = 0
		:: else -> skip
		fi;
		i++
	:: else -> break
	od;
	i = 0
#else
	skip
#endif
}

#define A_DONE	1
#define A_SCRUB	2
#define A_MAP	3
#define A_PUB	4
#define A_WAIT	5	/* for the blocks in flight (sync.Cond) */
#define A_WAITUN 6	/* for a trimmed block's unmap; see MODEL.md */
inline carve(me, n, start, ok) {
	do
	:: atomic {
		lock();
		if
		:: back ->	/* the block we cleared or mapped, now clean */
			bdirty[b] = 0;
#ifdef MUT_ABA
			if :: back == 2 -> bhdr[b] = 0 :: else -> skip fi;
#endif
			busy = busy & ~(1 << b);
			freeb = freeb | (1 << b);
			b = 0; back = 0
		:: else -> skip
		fi;
		ref[me] = head[SH];
		if
		:: ref[me] != 0 -> slowclaim(ref[me], n, start, ok)
		:: else -> ok = 0
		fi;
		if
		:: ok -> unlock(); act = A_DONE
		:: else ->
#ifndef MUT_SLOW_ADD
			if	/* retire the full head */
			:: ref[me] != 0 -> seal(ref[me]); head[SH] = 0
			:: else -> skip
			fi;
#endif
			ref[me] = 0;
			if
			:: freeb != 0 ->
				pick(freeb, b);
				if
#ifdef RECEIVER_ZEROES
				:: true -> act = A_PUB
#else
				:: bdirty[b] > 0 ->
					d = bdirty[b];
#ifdef MUT_SCRUB_SHARED
					bdirty[b] = 0;
					freeb = freeb | (1 << b);
#else
					busy = busy | (1 << b);
#endif
					unlock();
					act = A_SCRUB
				:: else -> act = A_PUB
#endif
				fi
			:: freeb == 0 && unmapped != 0 ->
				pick(unmapped, b);
				busy = busy | (1 << b);
				unlock();
				act = A_MAP
			:: freeb == 0 && unmapped == 0 && unmapping != 0 ->
				unlock();
				act = A_WAITUN
			:: freeb == 0 && unmapped == 0 && unmapping == 0 ->
				/* a map would pass the limit: any head with room */
				anyhead(me, n, start, ok);
				if
				:: ok -> unlock(); act = A_DONE
#ifndef MUT_LIMIT_NO_WAIT
				:: !ok && busy != 0 -> unlock(); act = A_WAIT
#endif
				:: else ->
					/* ErrLimit: nothing in flight, no head with
					 * room, every block serves a live generation */
					assert(LIVEGENS == ALL);		/* (e) limit */
					assert(!ROOM(head[0], n) && !ROOM(head[1], n));	/* (e) limit */
#ifndef MUT_LEAK_LOCK
					unlock();
#endif
					act = A_DONE
				fi
			fi
		fi
	   };
	   if
	   :: act == A_DONE -> act = 0; break
	   :: act == A_WAIT -> (busy == 0); act = 0
	   :: act == A_WAITUN -> (unmapping == 0); act = 0
	   :: act == A_SCRUB ->
		/* scrubMayUnlock: the block is private, off every list */
		clear(b, 0, d);
		d = 0; act = 0;
#ifdef MUT_SCRUB_SHARED
		b = 0
#else
		back = 1
#endif
	   :: act == A_MAP ->
		back = 2; act = 0	/* mmap gives zeroed memory */
	   :: act == A_PUB ->
#ifdef MUT_SLOW_ADD
		/* the earlier design kept the full head; publish sealed it */
		if
		:: head[SH] != 0 -> seal(head[SH])
		:: else -> skip
		fi;
#else
		/* the step that chose A_PUB retired the head, and mu has been
		 * held since: publishLocked never finds one to seal */
		assert(head[SH] == 0);		/* (g) publish */
#endif
		atomic {
			publish(b, n, ref[me]);
			unlock();
			start = 0; ok = 1; b = 0; act = 0
		};
		break
	   fi
	od
}

/* Arena.Alloc */
proctype Alloc(byte me; byte nreq) {
	byte k, beg, n, start, b, d, i, back, act;
	bool ok;
	do
	:: k < nreq ->
		atomic {
			if
			:: n = 1
			:: n = 2
			fi;
			beg = epoch;
			ref[me] = head[SH]
		};
		if
		:: ref[me] != 0 -> tryadd(ref[me], n, start, ok)
		:: else -> ok = 0
		fi;
		if
		:: !ok -> carve(me, n, start, ok)
		:: else -> skip
		fi;
#ifdef RECEIVER_ZEROES
		if
		:: ok ->
			d = (start + n < hdirty[ref[me]] -> start + n : hdirty[ref[me]]);
			clear(hblk[ref[me]], start, d);
			d = 0
		:: else -> skip
		fi;
#endif
		d_step {
			if
			:: ok -> handout(beg, hblk[ref[me]], start, n)
			:: else -> skip	/* ErrLimit */
			fi;
			ref[me] = 0; gc(); beg = 0; n = 0; start = 0; ok = 0; k++
		}
	:: else -> break
	od;
	k = 0
}

/* Cache.Alloc of 1 unit (requests above SlabSize/16 go to Arena.Alloc). */
proctype Cache(byte me; byte nreq) {
	byte k, beg, start, b, d, i, back, act;
	byte cblk, cpos, cend, cgen;
	bool ok, fast;
	do
	:: k < nreq ->
		d_step {
			beg = epoch;
#ifdef MUT_NO_EPOCH_CHECK
			fast = (cpos + 1 <= cend)
#else
			fast = (cgen == epoch && cpos + 1 <= cend)
#endif
		};
		if
		:: fast ->
			d_step { start = cpos; cpos++ };
			handout(beg, cblk, start, 1)
		:: else ->
			/* refill: one Add on the shard head, else the slow path */
			ref[me] = head[SH];
			if
			:: ref[me] != 0 -> tryadd(ref[me], SLAB, start, ok)
			:: else -> ok = 0
			fi;
			if
			:: !ok -> carve(me, SLAB, start, ok)
			:: else -> skip
			fi;
			if
			:: ok ->
#ifdef RECEIVER_ZEROES
				d = (start + SLAB < hdirty[ref[me]] -> start + SLAB : hdirty[ref[me]]);
				clear(hblk[ref[me]], start, d);
				d = 0;
#endif
				/* c.base, c.pos, c.end, c.gen from the chunk */
#ifdef MUT_ABA
				/* the header may change under us: read it alone */
				d_step {
					cblk = hblk[ref[me]];
					cgen = hgen[ref[me]];
					cpos = start + 1;
					cend = start + SLAB
				};
#else
				/* read-only fields: merged with the hand-out */
				d_step {
#endif
				handout(beg, hblk[ref[me]], start, 1)
#ifndef MUT_ABA
				;
					cblk = hblk[ref[me]];
					cgen = hgen[ref[me]];
					cpos = start + 1;
					cend = start + SLAB
				}
#endif
			:: else ->
				d_step { cblk = 0; cgen = 0; cpos = 0; cend = 0 }
			fi
		fi;
		d_step { ref[me] = 0; gc(); beg = 0; start = 0; ok = 0; fast = 0; k++ }
	:: else -> break
	od;
	atomic { k = 0; cblk = 0; cpos = 0; cend = 0; cgen = 0 }
}

/* Arena.Advance */
proctype Advancer(byte me) {
	byte k, g, b, i;
	do
	:: k < NADV ->
#ifdef MUT_SEAL_AFTER
		atomic { lock(); epoch++ };
#endif
		/* sealHeadsLocked: for each shard, store nil, then seal. One
		 * step per shard: an Add on the old head between the two
		 * commutes with the store, and a head load between them (nil)
		 * commutes with the seal. */
		atomic {
#ifndef MUT_SEAL_AFTER
			lock();
#endif
			ref[me] = head[0];
			head[0] = 0;
#ifndef MUT_NO_SEAL
			if
			:: ref[me] != 0 -> seal(ref[me])
			:: else -> skip
			fi;
#endif
			ref[me] = 0
		};
#if SHARDS > 1
		atomic {
			ref[me] = head[1];
			head[1] = 0;
#ifndef MUT_NO_SEAL
			if
			:: ref[me] != 0 -> seal(ref[me])
			:: else -> skip
			fi;
#endif
			ref[me] = 0
		};
#endif
		atomic {
			ref[me] = 0;
#ifndef MUT_SEAL_AFTER
			epoch++;
#endif
			/* the ring slot of epoch: generation epoch-RETAIN-1 */
			d_step {
				gc();
#ifdef MUT_EARLY_RECYCLE
				g = gens[(epoch + 1) % NSLOT];
				gens[(epoch + 1) % NSLOT] = 0;
#else
				g = gens[epoch % NSLOT];
				gens[epoch % NSLOT] = 0;
#endif
				i = 0;
				do
				:: i < NU ->
					if
					:: (g & (1 << (i / BS))) ->
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
					:: (g & (1 << b)) -> clm[b] = 0
					:: else -> skip
					fi;
					b++
				:: else -> break
				od;
				b = 0;
				freeb = freeb | g;
				g = 0;
				/* forget dead owners: the checks ask only LIVE(),
				 * which stays false once false */
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
#ifdef TRIM
			/* trimLocked, any policy: a free block may be taken off the
			 * free list, to be unmapped after mu is released */
			if
			:: freeb != 0 ->
				pick(freeb, b);
#ifdef MUT_UNMAP_EARLY
				/* counted as unmapped before it is */
				unmapped = unmapped | (1 << b);
#endif
				unmapping = unmapping | (1 << b);
				b++
			:: true -> skip
			fi;
#endif
			unlock()
		};
#ifdef TRIM
		/* unmapAll, with mu released: the block is private */
		if
		:: b > 0 ->
			d_step {
				b--;
				i = 0;
				do
				:: i < BS ->
					assert(!LIVE(own[U(b, i)]));	/* (b) unmapped */
					cont[U(b, i)] = 0;
					i++
				:: else -> break
				od;
				i = 0;
				unmapping = unmapping & ~(1 << b);
				unmapped = unmapped | (1 << b);
				b = 0
			}
		:: else -> skip
		fi;
#endif
		k++
	:: else -> break
	od;
	k = 0
}

init {
	atomic {
#if CFG == 1
		run Alloc(0, NALLOC);
		run Alloc(1, NALLOC2);
#elif CFG == 2
		run Alloc(0, NALLOC);
		run Cache(1, NCACHE);
#else
		run Cache(0, NCACHE);
		run Cache(1, NCACHE);
#endif
		run Advancer(2)
	}
}
