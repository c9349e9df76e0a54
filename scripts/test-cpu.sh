#!/usr/bin/env bash
# test-cpu.sh PACKAGE [REGEX]: runs each top-level test of PACKAGE (those
# matching REGEX) alone, race detector on, and prints the CPU the whole box
# spent, of that what the local PostgreSQL spent, the wall time and the
# exit code, largest first. For BENCHMARKS.md's accounting of the suite;
# run it on an otherwise idle machine, with PostgreSQL local.
set -u
cd "$(dirname "$0")/.."
pkg=$1
re=${2:-.*}
bin=$(mktemp -d)/pkg.test
trap 'rm -rf "$(dirname "$bin")"' EXIT
go test -c -race -o "$bin" "$pkg" || exit 1
. scripts/cpu-clock.sh
cd "$pkg"
echo "box_cpu_s postgres_cpu_s wall_s rc test"
for t in $("$bin" -test.list "$re" | grep '^Test'); do
  b0=$(busy) g0=$(pgcpu) s=$(date +%s.%N)
  GORACE=atexit_sleep_ms=50 "$bin" -test.run "^$t\$" -test.count=1 >/dev/null 2>&1
  rc=$?
  b1=$(busy) g1=$(pgcpu) e=$(date +%s.%N)
  printf '%9.2f %14.2f %6.2f %2d %s\n' "$(echo "($b1 - $b0) / $hz" | bc -l)" "$(echo "($g1 - $g0) / $hz" | bc -l)" \
    "$(echo "$e - $s" | bc)" "$rc" "$t"
done | sort -rn
