#!/usr/bin/env bash
# pkg-cpu.sh [PACKAGE...]: runs each test package alone (race detector on,
# as make test does) and prints its wall time, the CPU of `go test` and its
# children, the CPU the whole box spent meanwhile, and of that what the
# local PostgreSQL's processes spent. For BENCHMARKS.md's accounting of the
# suite's time; run it on an otherwise idle machine, with PostgreSQL local.
set -u
cd "$(dirname "$0")/.."
pkgs=("$@")
[ ${#pkgs[@]} -eq 0 ] && pkgs=(./web ./api ./cmd/gwload ./cmd/gatewayd ./actors ./ctc/ctctest ./events ./store)
. scripts/cpu-clock.sh
go test -race -count=1 -run '^$' "${pkgs[@]}" >/dev/null 2>&1 # compile first: measure the tests, not the build
printf '%-16s %8s %12s %10s %14s\n' package wall_s go_test_cpu_s box_cpu_s postgres_cpu_s
for p in "${pkgs[@]}"; do
  b0=$(busy) g0=$(pgcpu)
  t=$({ GORACE="atexit_sleep_ms=50" /usr/bin/time -f "%e %U %S" go test -race -count=1 "$p" >/dev/null; } 2>&1 | tail -1)
  b1=$(busy) g1=$(pgcpu)
  read -r wall user sys <<<"$t"
  printf '%-16s %8s %12.1f %10.1f %14.1f\n' "$p" "$wall" "$(echo "$user + $sys" | bc)" \
    "$(echo "($b1 - $b0) / $hz" | bc -l)" "$(echo "($g1 - $g0) / $hz" | bc -l)"
done
