#!/usr/bin/env bash
# .ci/deps.sh: check what a program that imports gcbits inherits. It builds
# a throwaway module outside the repository that imports the library
# (through a replace directive pointing here) and fails if
#   - its module graph (go list -m all) holds any module but the library,
#     golang.org/x/sys and the library's test libraries, or
#   - its build imports any package outside the standard library, the
#     library's own packages and golang.org/x/sys.
# The CLI's dependencies (plot, perf, progressbar) live in the cmd/gcbits
# module and must never show up here.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
lib=github.com/gcbits/gcbits
allowed_modules=(
	"$lib"
	golang.org/x/sys
	pgregory.net/rapid  # tests only
	go.uber.org/goleak  # tests only
)

work=$(mktemp -d "${TMPDIR:-/tmp}/gcbits-deps.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"
cat >go.mod <<EOM
module example.com/importer

go 1.26

require $lib v0.0.0

replace $lib => $root
EOM
cat >main.go <<EOM
package main

import "$lib"

func main() {
	a, err := gcbits.New(gcbits.Options{})
	if err != nil {
		panic(err)
	}
	defer a.Close()
}
EOM
export GOWORK=off GOFLAGS="${GOFLAGS:+$GOFLAGS }-mod=mod"
go mod tidy
go build -o /dev/null .

bad=0
while read -r mod _; do
	[ "$mod" = example.com/importer ] && continue
	ok=0
	for a in "${allowed_modules[@]}"; do
		[ "$mod" = "$a" ] && ok=1
	done
	if [ "$ok" = 0 ]; then
		echo "an importer of $lib inherits module $mod"
		bad=1
	fi
done < <(go list -m all)

while read -r pkg; do
	case $pkg in
	example.com/importer | "$lib" | "$lib"/* | golang.org/x/sys/*) ;;
	*)
		echo "an importer of $lib builds package $pkg"
		bad=1
		;;
	esac
done < <(go list -deps -f '{{if not .Standard}}{{.ImportPath}}{{end}}' .)

if [ "$bad" != 0 ]; then
	exit 1
fi
echo "an importer of $lib resolves: $(go list -m all | awk 'NR > 1 { printf "%s%s", sep, $1; sep = ", " }')"
