#!/usr/bin/env bash
# test.sh [PACKAGE...]: what `make test` runs. Every test of the given
# packages (default ./...), race detector on, TESTJOBS (default 3, as
# make test's: the Makefile says why) test binaries at a time, in the order given (the longest first, so none runs
# alone at the end). Prints what `go test` prints: one line a package, and
# a failed package's output.
#
# Why not `go test` itself: with -count=1 it links every test binary
# anew on every run, ~1 CPU-second each under the race detector, about 18
# of the ~90 CPU-seconds of a run on two cores (BENCHMARKS.md, 2026-12-04,
# third session, "Kept: test binaries"). `go test -c -o DIR/` skips the link when the binary in DIR is
# current, as `go build -o` does, so the binaries are kept in bin/test and
# only those whose code changed are linked again. Each runs in its
# package's directory with the flags `go test` would give it.
set -uo pipefail
export LC_ALL=C # $EPOCHREALTIME with a decimal point
cd "$(dirname "$0")/.."
jobs=${TESTJOBS:-3}
out=bin/test
mkdir -p "$out"
[ $# -eq 0 ] && set -- ./...

# Packages with tests, in the order given (go list drops repeats); a
# binary is named for the last element of its import path.
list=$(go list -f '{{if or .TestGoFiles .XTestGoFiles}}{{.ImportPath}} {{.Dir}}{{end}}' "$@") || exit 1
mapfile -t pkgs < <(grep . <<<"$list")
[ ${#pkgs[@]} -gt 0 ] || { echo "test.sh: no test packages in $*" >&2; exit 1; }
go test -race -c -o "$out/" $(printf '%s\n' "${pkgs[@]}" | cut -d' ' -f1) || exit 1

run() { # "import-path dir"
  local pkg=${1%% *} dir=${1#* } bin log rc s
  bin=$PWD/$out/$(basename "$pkg").test
  log=$(mktemp)
  s=$EPOCHREALTIME
  (cd "$dir" && "$bin" -test.paniconexit0 -test.timeout=15m -test.count=1) >"$log" 2>&1
  rc=$?
  if [ $rc -eq 0 ]; then # as go test, only the package's line
    echo "ok  	$pkg	$s $EPOCHREALTIME" >"$log"
  else
    echo "FAIL	$pkg	$s $EPOCHREALTIME" >>"$log"
  fi
  # One package's lines at a time, however long a failure's output.
  flock "$out/.print" awk -F'\t' '
    /^(ok  |FAIL)\t/ && NF == 3 { split($3, t, " "); printf "%s\t%s\t%.3fs\n", $1, $2, t[2] - t[1]; next }
    { print }' "$log"
  rm -f "$log"
  return $rc
}
export -f run
export out

# xargs exits 123 if any package failed.
printf '%s\n' "${pkgs[@]}" | xargs -d '\n' -P "$jobs" -n 1 bash -c 'run "$1"' _ || { echo FAIL; exit 1; }
