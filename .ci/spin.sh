#!/usr/bin/env bash
# .ci/spin.sh: model-check the gcbits protocol (model/arena.pml) and the
# seed allocator After (model/seedafter.pml) with spin. model/MODEL.md
# explains the models, the configurations and the expected results.
#
# Every check is an exhaustive search (pan -DSAFETY, -DCOLLAPSE only
# compresses stored states). A "pass" check must finish with errors: 0 and
# a complete search; a "fail" check (a mutation, or the seed design without
# stop-the-world) must report at least one error. The script exits non-zero
# if any check disagrees. It prints one line per check and a summary.
#
# Environment: SPIN_JOBS (default 2) checks run at once; SPIN_KEEP=1 keeps
# the work directory (trails, pan output) and prints its path.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)

command -v spin >/dev/null || { apt-get update -qq && apt-get install -y -qq spin; }
command -v gcc >/dev/null || { apt-get update -qq && apt-get install -y -qq gcc; }

work=$(mktemp -d "${TMPDIR:-/tmp}/gcbits-spin.XXXXXX")
if [ "${SPIN_KEEP:-0}" = 1 ]; then
	echo "work directory: $work"
else
	trap 'rm -rf "$work"' EXIT
fi
jobs=${SPIN_JOBS:-2}

# name | model | expect | spin -D flags; printed in this order.
checks=(
	"shared          |model/arena.pml             |pass|-DCFG=1"
	"shared-deep     |model/arena.pml             |pass|-DCFG=1 -DNALLOC2=1 -DNADV=4"
	"shared-trim     |model/arena.pml             |pass|-DCFG=1 -DNALLOC2=1 -DNADV=4 -DTRIM"
	"shared-retain2  |model/arena.pml             |pass|-DCFG=1 -DNALLOC2=1 -DNADV=4 -DRETAIN=2"
	"shared-2shards  |model/arena.pml             |pass|-DCFG=1 -DNALLOC2=1 -DNADV=4 -DSHARDS=2"
	"cache           |model/arena.pml             |pass|-DCFG=2 -DNALLOC=1 -DNADV=4"
	"cache-2shards   |model/arena.pml             |pass|-DCFG=2 -DNALLOC=1 -DNADV=4 -DSHARDS=2"
	"cache-trim      |model/arena.pml             |pass|-DCFG=2 -DNALLOC=1 -DNADV=4 -DTRIM"
	"caches          |model/arena.pml             |pass|-DCFG=3 -DNCACHE=2 -DNADV=4"
	"caches-trim     |model/arena.pml             |pass|-DCFG=3 -DNCACHE=2 -DNADV=3 -DTRIM"
	"mut-aba         |model/arena.pml             |fail|-DCFG=2 -DNALLOC=1 -DNADV=4 -DMUT_ABA"
	"mut-seal-after  |model/arena.pml             |fail|-DCFG=1 -DMUT_SEAL_AFTER"
	"mut-no-seal     |model/arena.pml             |fail|-DCFG=1 -DMUT_NO_SEAL"
	"mut-no-epoch    |model/arena.pml             |fail|-DCFG=3 -DNCACHE=2 -DNADV=4 -DMUT_NO_EPOCH_CHECK"
	"mut-early-recyc |model/arena.pml             |fail|-DCFG=1 -DMUT_EARLY_RECYCLE"
	"mut-scrub-shared|model/arena.pml             |fail|-DCFG=1 -DMUT_SCRUB_SHARED"
	"mut-leak-lock   |model/arena.pml             |fail|-DCFG=1 -DMUT_LEAK_LOCK"
	"mut-slow-add    |model/arena.pml             |fail|-DCFG=1 -DMUT_SLOW_ADD"
	"mut-limit-nowait|model/arena.pml             |fail|-DCFG=1 -DMUT_LIMIT_NO_WAIT"
	"mut-no-any-head |model/arena.pml             |fail|-DCFG=1 -DNALLOC2=1 -DNADV=4 -DSHARDS=2 -DMUT_NO_ANY_HEAD"
	"mut-unmap-early |model/arena.pml             |fail|-DCFG=1 -DNALLOC2=1 -DNADV=4 -DTRIM -DMUT_UNMAP_EARLY"
	"receiver-zeroes |model/arena.pml             |fail|-DCFG=1 -DNALLOC2=1 -DNADV=4 -DRECEIVER_ZEROES"
	"seedafter-stw   |model/seedafter.pml         |pass|-DSTW -DNB=3 -DNALLOC2=2 -DNADV=4"
	"seedafter-conc  |model/seedafter.pml         |fail|"
)
# The longest checks, started first so that the two workers end together.
first=(shared cache-trim receiver-zeroes shared-trim)

trim() { local s=$1; s=${s#"${s%%[![:space:]]*}"}; printf '%s' "${s%"${s##*[![:space:]]}"}"; }

# check NAME MODEL EXPECT FLAGS: writes one result line to $work/NAME/result
check() {
	local name=$1 model=$2 expect=$3 flags=$4
	local d=$work/$name
	mkdir -p "$d"
	cp "$root/$model" "$d/model.pml"
	(
		cd "$d"
		local verdict detail="" states="?" secs="?" errors="?"
		# shellcheck disable=SC2086 # flags are words
		if ! spin -a $flags model.pml >spin.out 2>&1; then
			echo "FAIL $name ($model $flags): spin -a failed: $(tail -1 spin.out)" >result
			exit 0
		fi
		# -O1: pan.c takes seconds to compile at -O2 and runs about as
		# fast; a mutation stops at its first error, so -O0 will do.
		opt=-O1
		[ "$expect" = fail ] && opt=-O0
		if ! gcc $opt -w -DSAFETY -DCOLLAPSE -DMEMLIM=4096 -o pan pan.c >gcc.out 2>&1; then
			echo "FAIL $name ($model $flags): gcc failed: $(tail -1 gcc.out)" >result
			exit 0
		fi
		./pan -m20000 -w22 >pan.out 2>&1 || true
		errors=$(sed -n 's/.*errors: \([0-9][0-9]*\).*/\1/p' pan.out | tail -1)
		states=$(sed -n 's/^ *\([0-9][0-9]*\) states, stored.*/\1/p' pan.out | tail -1)
		secs=$(sed -n 's/^pan: elapsed time \([0-9.e+]*\) seconds.*/\1/p' pan.out | tail -1)
		: "${errors:=?}" "${states:=?}" "${secs:=?}"
		incomplete=""
		if grep -q -e 'reached -DMEMLIM bound' -e 'max search depth too small' pan.out; then
			incomplete=" (search incomplete)"
		fi
		if [ "$errors" != "?" ] && [ "$errors" -gt 0 ]; then
			# Which property: replay the trail, find the failing line's
			# property tag, e.g. "/* (b) zero */".
			# shellcheck disable=SC2086
			line=$(spin -t $flags model.pml 2>/dev/null | sed -n 's/.*model\.pml:\([0-9][0-9]*\), Error: assertion violated.*/\1/p' | head -1 || true)
			if [ -n "$line" ]; then
				tag=$(sed -n "${line}p" model.pml | grep -o '(\(a\|b\|d\|e\|f\|g\)) [a-z]*' | head -1 || true)
				detail="assertion ${tag:-?} violated at model line $line"
			else
				detail=$(grep -m1 -o 'invalid end state' pan.out || grep -m1 'pan:1:' pan.out || echo "error")
				[ "$detail" = "invalid end state" ] && detail="(c) invalid end state (deadlock)"
			fi
		fi
		if [ "$expect" = pass ]; then
			if [ "$errors" = 0 ] && [ -z "$incomplete" ]; then verdict=ok; else verdict=FAIL; fi
			detail=${detail:-no errors}
		else
			if [ "$errors" != "?" ] && [ "$errors" -gt 0 ]; then verdict=ok; else verdict=FAIL; detail="not caught$incomplete"; fi
		fi
		printf '%-4s %-17s expect %-4s: %s; %s states, %ss%s [%s %s]\n' \
			"$verdict" "$name" "$expect" "$detail" "$states" "$secs" "$incomplete" "$model" "$flags" >result
	)
}

start=$SECONDS
declare -A spec
names=()
for c in "${checks[@]}"; do
	IFS='|' read -r name model expect flags <<<"$c"
	name=$(trim "$name")
	names+=("$name")
	spec[$name]="$(trim "$model")|$(trim "$expect")|$(trim "$flags")"
done
order=("${first[@]}")
for name in "${names[@]}"; do
	case " ${first[*]} " in *" $name "*) ;; *) order+=("$name") ;; esac
done
for name in "${order[@]}"; do
	IFS='|' read -r model expect flags <<<"${spec[$name]}"
	while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
	check "$name" "$model" "$expect" "$flags" &
done
wait

passed=0 failed=0
for name in "${names[@]}"; do
	if [ -s "$work/$name/result" ]; then
		line=$(cat "$work/$name/result")
	else
		line="FAIL $name: no result"
	fi
	echo "$line"
	case $line in
	ok*) passed=$((passed + 1)) ;;
	*) failed=$((failed + 1)) ;;
	esac
done
echo "spin: $((SECONDS - start))s for ${#names[@]} checks, $jobs at a time"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
