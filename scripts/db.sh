#!/usr/bin/env bash
# make db: make sure a PostgreSQL answers at DATABASE_URL and that its
# database exists. Tries, in order: a server that already answers; Docker
# Compose (service "db"); a private cluster under ./.data/pg built from the
# local PostgreSQL binaries.
# db.sh --test (make test): the same for the tests' server, the one
# internal/testdb uses: TEST_DATABASE_URL, else the environment's
# DATABASE_URL, else the default; .env is not read.
set -euo pipefail
cd "$(dirname "$0")/.."
var=DATABASE_URL
if [ "${1:-}" = --test ]; then
  # .env's DATABASE_URL is the one gatewayd runs on; a stale one (an old
  # checkout's, a colleague's) stopped make test before any test ran,
  # though the tests never use it (found by an audit, helper 1).
  if [ -n "${TEST_DATABASE_URL:-}" ]; then
    export DATABASE_URL=$TEST_DATABASE_URL
    var=TEST_DATABASE_URL
  fi
else
  # .env counts, as for the targets that run gatewayd (the environment
  # wins): a DATABASE_URL written only there is the database to make sure of.
  . scripts/dotenv.sh
  dotenv
fi
ensuredb() { go run ./cmd/ensuredb "$@"; }
# The default lives in the code (internal/config); ask for it.
DATABASE_URL="$(ensuredb -url)"
export DATABASE_URL

if answer=$(ensuredb -check 2>/dev/null); then
  exec go run ./cmd/ensuredb
fi
# A server that answers and refuses (the login, the TLS): another server
# on its port would not help.
if [[ "$answer" == refused:* ]]; then
  echo "db: PostgreSQL at $var answers and ${answer#refused: }: check $var (user, password, sslmode)" >&2
  exit 1
fi

# Docker counts only when its daemon answers and Compose v2 is installed
# (a docker CLI without the plugin would stop make here instead of falling
# through to the private cluster).
if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1 &&
  docker compose version >/dev/null 2>&1; then
  echo "db: starting PostgreSQL with docker compose"
  docker compose up -d --wait db
  exec go run ./cmd/ensuredb
fi

bindir=""
if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
  bindir="$(dirname "$(command -v pg_ctl)")"
else
  bindir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
fi
if [ -z "$bindir" ] || [ ! -x "$bindir/pg_ctl" ]; then
  echo "db: no PostgreSQL answers at $var, Docker (with Compose) is not running, and no PostgreSQL binaries were found." >&2
  echo "db: install PostgreSQL (apt-get install postgresql) or Docker, or set $var." >&2
  exit 1
fi

data="$PWD/.data/pg"
port="$(echo "$DATABASE_URL" | sed -nE 's#.*:([0-9]+)/[^/]*$#\1#p')"
[[ "$port" =~ ^[0-9]+$ ]] || port=5432
# initdb refuses to run as root; the cluster then belongs to "postgres" (or "nobody").
as=()
if [ "$(id -u)" = 0 ]; then
  owner=postgres; id postgres >/dev/null 2>&1 || owner=nobody
  mkdir -p "$data"; chown -R "$owner" "$PWD/.data"
  as=(runuser -u "$owner" --)
fi
if [ ! -f "$data/PG_VERSION" ]; then
  echo "db: creating a private cluster in $data"
  "${as[@]}" "$bindir/initdb" -D "$data" -U postgres --auth=trust >/dev/null
fi
echo "db: starting the private cluster on 127.0.0.1:$port"
"${as[@]}" "$bindir/pg_ctl" -D "$data" -l "$data/server.log" -w \
  -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$data" start >/dev/null
exec go run ./cmd/ensuredb
