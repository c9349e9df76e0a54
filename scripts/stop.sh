#!/usr/bin/env bash
# make stop: stop what `make db` started — the private cluster under
# ./.data/pg (as its owner: pg_ctl refuses to run as root), or the Docker
# Compose database. A PostgreSQL that was already running is not ours and
# is left alone. The demo (make run) stops with Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
data="$PWD/.data/pg"
stopped=0
if [ -f "$data/postmaster.pid" ]; then
  bindir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
  command -v pg_ctl >/dev/null 2>&1 && bindir="$(dirname "$(command -v pg_ctl)")"
  as=()
  if [ "$(id -u)" = 0 ]; then as=(runuser -u "$(stat -c %U "$data")" --); fi
  "${as[@]}" "$bindir/pg_ctl" -D "$data" -m fast -w stop >/dev/null
  echo "stop: the private cluster in $data is stopped"
  stopped=1
fi
if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1 &&
  [ -n "$(docker compose ps -q db 2>/dev/null)" ]; then
  docker compose stop db
  echo "stop: the Docker Compose database is stopped"
  stopped=1
fi
[ "$stopped" = 1 ] || echo "stop: nothing that make db started is running"
