# cpu-clock.sh, sourced by pkg-cpu.sh and test-cpu.sh: the box's busy CPU
# and the local PostgreSQL's CPU, in clock ticks (hz per second).
url=${TEST_DATABASE_URL:-${DATABASE_URL:-$(go run ./cmd/ensuredb -url)}}
pm=$(head -1 "$(psql "$url" -Atc 'SHOW data_directory')/postmaster.pid" 2>/dev/null)
hz=$(getconf CLK_TCK)
busy() { head -1 /proc/stat | awk '{print $2+$3+$4+$7+$8+$9}'; }
# PostgreSQL's CPU so far: its live processes plus the children the
# postmaster has reaped (backends that ended).
pgcpu() {
  [ -n "$pm" ] || { echo 0; return; }
  local t=0 v
  for p in $(pgrep -P "$pm") "$pm"; do
    v=$(awk '{print $14+$15}' /proc/"$p"/stat 2>/dev/null)
    t=$((t + ${v:-0}))
  done
  echo $((t + $(awk '{print $16+$17}' /proc/"$pm"/stat)))
}
