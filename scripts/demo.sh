#!/usr/bin/env bash
# The demo behind `make run` and `make demo`: starts ctcsim with three
# simulated gateways and gatewayd, registers a factory and the gateways
# through the REST API and prints their live statuses.
#   scripts/demo.sh run    keep both running (Ctrl-C stops them)
#   scripts/demo.sh once   print the statuses, then stop both
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-run}"
set -a; . ./.env; set +a
export LOG_FORMAT="${LOG_FORMAT:-console}"
port="${API_PORT:-3000}"
api="http://127.0.0.1:${port}/api"
sim_addr="${CTCSIM_LISTEN:-127.0.0.1:7070}"
logdir=".data/demo"; mkdir -p "$logdir"

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

./bin/ctcsim --listen "$sim_addr" --gateways 3 --prefix demo-gw \
  --email operator@example.com --password demo-password >"$logdir/ctcsim.out" 2>"$logdir/ctcsim.log" &
pids+=($!)
if [ "$mode" = run ]; then
  ./bin/gatewayd serve 2>&1 | tee "$logdir/gatewayd.log" &
else
  ./bin/gatewayd serve >"$logdir/gatewayd.log" 2>&1 &
fi
pids+=($!)

for _ in $(seq 1 100); do
  curl -fsS "$api/ready" >/dev/null 2>&1 && break
  sleep 0.2
done
curl -fsS "$api/ready" >/dev/null || { echo "gatewayd did not become ready; see $logdir/gatewayd.log" >&2; exit 1; }

# An admin token for the demo's requests (access control is on by default);
# it is printed below so you can use it too.
token=$(./bin/gatewayd token create --name "demo-admin" --role admin 2>>"$logdir/gatewayd.log")
json() { curl -sS -H 'Content-Type: application/json' -H "Authorization: Bearer $token" "$@"; }
field() { sed -nE "s/.*\"$1\":\"([^\"]*)\".*/\1/p" | head -n 1; }

org=$(json "$api/organizations?limit=1" | field id)
factory=$(json "$api/factories?organization_id=$org&limit=100" | tr '{' '\n' | grep '"name":"Demo Plant"' | field id || true)
if [ -z "$factory" ]; then
  factory=$(json -X POST "$api/factories" -d "{\"organization_id\":\"$org\",\"name\":\"Demo Plant\",\"timezone\":\"Europe/Berlin\"}" | field id)
fi
existing=$(json "$api/gateways?factory_id=$factory&limit=100" | tr '{' '\n')
while read -r name url; do
  creds="\"url\":\"$url\",\"email\":\"operator@example.com\",\"password\":\"demo-password\""
  id=$(echo "$existing" | grep "\"gateway_id\":\"$name\"" | field id || true)
  if [ -n "$id" ]; then
    # Already registered: set the credentials again, so they are sealed with
    # this .env's ENCRYPTION_KEY even if the key changed since.
    out=$(json -X PUT "$api/gateways/$id" -d "{$creds}")
    case "$out" in *'"id"'*) echo "demo: $name already registered; credentials refreshed" ;; *) echo "demo: $out" >&2 ;; esac
  else
    out=$(json -X POST "$api/gateways" -d "{\"factory_id\":\"$factory\",\"gateway_id\":\"$name\",\"name\":\"$name\",$creds}")
    case "$out" in *'"id"'*) echo "demo: registered $name at $url" ;; *) echo "demo: $out" >&2 ;; esac
  fi
done <"$logdir/ctcsim.out"

for _ in $(seq 1 50); do
  counts=$(json "$api/gateways/status?factory_id=$factory")
  case "$counts" in *'"AUTHENTICATED":3'*) break ;; esac
  sleep 0.2
done
echo
echo "== GET $api/gateways/status?factory_id=$factory"
json "$api/gateways/status?factory_id=$factory" | sed -e 's/},{/},\n {/g' -e 's/\],"counts"/],\n "counts"/'
echo
echo "admin token (shown once; make another with bin/gatewayd token create): $token"
echo "  curl -H 'Authorization: Bearer $token' $api/gateways/status"
if [ "$mode" = run ]; then
  echo "gatewayd serves on $api (Ctrl-C stops it and the simulator)"
  echo "the web UI: http://127.0.0.1:${port}/"
  wait "${pids[1]}"
fi
