#!/usr/bin/env bash
# suite-time.sh [DIR] [LABEL]: runs `make test` once in DIR (default .) and
# prints its wall time, the CPU the whole box was busy meanwhile, the
# checkpoints PostgreSQL was asked for meanwhile
# (pg_stat_bgwriter.checkpoints_req) and the tests that failed. For
# BENCHMARKS.md's suite comparisons: alternate two checkouts.
set -u
dir=${1:-.}
label=${2:-$(basename "$(cd "$dir" && pwd)")}
# The default URL lives in the code (internal/config); ask for it.
psql_url=${TEST_DATABASE_URL:-${DATABASE_URL:-$(cd "$(dirname "$0")/.." && go run ./cmd/ensuredb -url)}}
TEST_DATABASE_URL=$psql_url . "$(dirname "$0")/cpu-clock.sh"
ckpt() { psql "$psql_url" -Atc "SELECT checkpoints_req FROM pg_stat_bgwriter"; }
log=$(mktemp)
c0=$(ckpt) b0=$(busy)
s=$(date +%s.%N)
(cd "$dir" && make test) >"$log" 2>&1
rc=$?
e=$(date +%s.%N)
c1=$(ckpt) b1=$(busy)
printf '%s rc=%d wall=%.1fs busy=%.1fs checkpoints=%d failed: %s\n' "$label" "$rc" "$(echo "$e - $s" | bc)" \
  "$(echo "($b1 - $b0) / $hz" | bc -l)" $((c1 - c0)) \
  "$(grep -E '^--- FAIL' "$log" | awk '{print $3}' | tr '\n' ' ')"
if [ "$rc" = 0 ]; then rm -f "$log"; else echo "log kept: $log"; fi
