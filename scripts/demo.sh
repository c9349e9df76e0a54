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
api="http://127.0.0.1:${port}/api"
sim_addr="${CTCSIM_LISTEN:-127.0.0.1:7070}"
logdir=".data/demo"; mkdir -p "$logdir"

# Both ports must be free: with another gatewayd still answering on the
# API port, this one would exit at once and the demo would talk to that one.
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
if listening "$port"; then
  echo "demo: something already listens on port $port (another gatewayd? stop it, or set API_PORT)" >&2
  exit 1
fi
if listening "${sim_addr##*:}"; then
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
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

set -m
./bin/ctcsim --listen "$sim_addr" --gateways 3 --prefix demo-gw \
  --email operator@example.com --password demo-password >"$logdir/ctcsim.out" 2>"$logdir/ctcsim.log" &
pids+=($!)
if [ "$mode" = run ]; then
  ./bin/gatewayd serve > >(trap '' INT TERM; exec tee "$logdir/gatewayd.log") 2>&1 &
else
  ./bin/gatewayd serve >"$logdir/gatewayd.log" 2>&1 &
fi
pids+=($!)
set +m

for _ in $(seq 1 100); do
  curl -fsS "$api/ready" >/dev/null 2>&1 && [ -s "$logdir/ctcsim.out" ] && break
  sleep 0.2
done
curl -fsS "$api/ready" >/dev/null || { echo "gatewayd did not become ready; see $logdir/gatewayd.log" >&2; exit 1; }

# An admin token for the demo (access control is on by default): the one
# from the last run while it still works, else a new one.
token_file="$logdir/admin-token"
token=$(cat "$token_file" 2>/dev/null || true)
if [ -z "$token" ] || ! curl -fsS -o /dev/null -H "Authorization: Bearer $token" "$api/tokens"; then
  token=$(./bin/gatewayd token create --name demo-admin --role admin 2>>"$logdir/gatewayd-token.log")
  (umask 077; printf '%s\n' "$token" >"$token_file")
fi

status=0
./bin/demo -api "$api" -token "$token" -gateways "$logdir/ctcsim.out" || status=$?
echo
echo "admin token (also in $token_file): $token"
echo "  curl -H \"Authorization: Bearer $token\" $api/gateways/status"
echo "the web UI: http://127.0.0.1:${port}/ (sign in with the token)"
if [ "$status" -ne 0 ]; then
  echo "demo: not every demo gateway authenticated; see $logdir/gatewayd.log" >&2
  exit "$status"
fi
if [ "$mode" = run ]; then
  echo "gatewayd serves on $api (Ctrl-C stops it and the simulator)"
  wait "${pids[1]}"
fi
