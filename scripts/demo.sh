#!/usr/bin/env bash
# The demo behind `make run` and `make demo`: starts ctcsim with three
# simulated gateways and gatewayd, registers them through the REST API
# (bin/demo: its own organization "gatewayd demo", factory "Demo Plant",
# gateways by gateway_id, so it is idempotent whatever else the database
# holds) and prints their live statuses and sensors. It exits non-zero
# unless every demo gateway is AUTHENTICATED.
#   scripts/demo.sh run    keep both running (Ctrl-C stops them)
#   scripts/demo.sh once   print the statuses, then stop both
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-run}"
. scripts/dotenv.sh; dotenv # the environment wins over .env
export LOG_FORMAT="${LOG_FORMAT:-console}"
port="${API_PORT:-3000}"
# The demo talks to gatewayd where it listens, API_HOST (gatewayd's
# default 0.0.0.0), or, for a wildcard, that family's loopback: it always
# used 127.0.0.1, so `API_HOST=::1 make run` never saw gatewayd get ready
# (found by an audit, helper 1).
host="${API_HOST:-0.0.0.0}"
host="${host#[}"; host="${host%]}"
case "$host" in
  0.0.0.0) host=127.0.0.1 ;;
  :: | ::0 | 0:0:0:0:0:0:0:0) host=::1 ;;
esac
hostport="$host:$port"
[[ "$host" == *:* ]] && hostport="[${host//%/%25}]:$port"
base="http://$hostport"
api="$base/api"
sim_addr="${CTCSIM_LISTEN:-127.0.0.1:7070}"
sim_host="${sim_addr%:*}"; sim_host="${sim_host#[}"; sim_host="${sim_host%]}"
case "$sim_host" in '' | 0.0.0.0) sim_host=127.0.0.1 ;; :: | ::0) sim_host=::1 ;; esac
logdir=".data/demo"; mkdir -p "$logdir"

# Both ports must be free: with another gatewayd still answering on the
# API port, this one would exit at once and the demo would talk to that one.
listening() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }
if listening "$host" "$port"; then
  echo "demo: something already listens on port $port (another gatewayd? stop it, or set API_PORT)" >&2
  exit 1
fi
if listening "$sim_host" "${sim_addr##*:}"; then
  echo "demo: something already listens on $sim_addr (another ctcsim? stop it, or set CTCSIM_LISTEN)" >&2
  exit 1
fi

# The children run as jobs of their own process groups (set -m), so that
# a Ctrl-C in the terminal reaches this script alone, and cleanup stops
# each child with one TERM: gatewayd takes a second signal as "stop at
# once", and one from the terminal and one from cleanup were two. The
# pids are the children's own: gatewayd's, not a pipe's tee (which, the
# recorded pid, got the TERM while gatewayd was never signalled: found by
# an audit, helper 4). The tee ignores INT and TERM and ends when
# gatewayd's output does.
# gatewayd stops first, and the simulator once gatewayd is gone: stopped
# the other way round, gatewayd logged every connection lost and went to
# BACKOFF during its own shutdown (found by an audit, helper 1).
gw="" sim=""
cleanup() {
  if [ -n "$gw" ]; then
    kill -TERM "$gw" 2>/dev/null || true
    wait "$gw" 2>/dev/null || true
  fi
  [ -z "$sim" ] || kill -TERM "$sim" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

set -m
./bin/ctcsim --listen "$sim_addr" --gateways 3 --prefix demo-gw \
  --email operator@example.com --password demo-password >"$logdir/ctcsim.out" 2>"$logdir/ctcsim.log" &
sim=$!
if [ "$mode" = run ]; then
  ./bin/gatewayd serve > >(trap '' INT TERM; exec tee "$logdir/gatewayd.log") 2>&1 &
else
  ./bin/gatewayd serve >"$logdir/gatewayd.log" 2>&1 &
fi
gw=$!
set +m

# exited NAME PID LOG: if PID is gone, say so with its exit status and the
# end of its log, and stop the demo (it waited its 20 s for a gatewayd
# that had exited at once, LOG_LEVEL=bogus say: found by an audit, helper 1).
exited() {
  kill -0 "$2" 2>/dev/null && return 0
  local rc=0
  wait "$2" || rc=$?
  echo "demo: $1 exited with status $rc before it was ready; $3 ends:" >&2
  tail -n 5 "$3" >&2 || true
  exit 1
}
for _ in $(seq 1 100); do
  curl -fsS "$api/ready" >/dev/null 2>&1 && [ -s "$logdir/ctcsim.out" ] && break
  exited gatewayd "$gw" "$logdir/gatewayd.log"
  exited ctcsim "$sim" "$logdir/ctcsim.log"
  sleep 0.2
done
# Not ready: say why, as /api/ready does (a gatewayd waiting as a standby
# for another on the same database, a database that does not answer): the
# log alone was all it said, and two demos on one checkout write over each
# other's (found by an audit, helper 3).
if ! curl -fsS "$api/ready" >/dev/null 2>&1; then
  why=$(curl -sS "$api/ready" 2>/dev/null | sed -nE 's/.*"message":"([^"]*)".*/\1/p' || true)
  echo "gatewayd did not become ready${why:+: $why}; see $logdir/gatewayd.log" >&2
  if [[ "$why" == *"another gatewayd"* ]]; then
    echo "demo: another gatewayd runs on this database: stop it, or give this one a database of its own (DATABASE_URL)" >&2
  fi
  exit 1
fi

# An admin token for the demo (access control is on by default): the one
# from the last run while it still works, else a new one.
token_file="$logdir/admin-token"
token=$(cat "$token_file" 2>/dev/null || true)
if [ -z "$token" ] || ! curl -fs -o /dev/null -H "Authorization: Bearer $token" "$api/tokens"; then
  token=$(./bin/gatewayd token create --name demo-admin --role admin 2>>"$logdir/gatewayd-token.log")
  (umask 077; printf '%s\n' "$token" >"$token_file")
fi

status=0
./bin/demo -api "$api" -token "$token" -gateways "$logdir/ctcsim.out" || status=$?
echo
echo "admin token (also in $token_file): $token"
if [ "$mode" = run ]; then
  echo "  curl -H \"Authorization: Bearer $token\" $api/gateways/status"
  echo "the web UI: $base/ (sign in with the token)"
else
  # make demo stops both on its way out: no URL of a gatewayd that is gone
  # (found by an audit, helper 1).
  echo "gatewayd and the simulator stop now; \`make run\` keeps them running, with the web UI at $base/"
fi
if [ "$status" -ne 0 ]; then
  echo "demo: not every demo gateway authenticated; see $logdir/gatewayd.log" >&2
  exit "$status"
fi
if [ "$mode" = run ]; then
  echo "gatewayd serves on $api (Ctrl-C stops it and the simulator)"
  wait "$gw"
fi
