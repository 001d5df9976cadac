#!/usr/bin/env bash
# The services the tests talk to, on loopback, in a private directory:
#   eval "$(scripts/services.sh start)"   # installs what is missing, starts, prints exports
#   scripts/services.sh stop
# PostgreSQL comes from Debian's packages (a private cluster, not the system one).
set -euo pipefail
cd "$(dirname "$0")/.."

SERVICES_DIR=${SERVICES_DIR:-${TMPDIR:-/tmp}/chunkd-services-$(id -u)}
PG_PORT=${CHUNKD_TEST_PG_PORT:-55432}

log() { echo "$@" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }

# Runs a PostgreSQL server program as the cluster's owner (initdb refuses root).
as_pg_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start_postgres() {
  if [ -z "$(pg_bin)" ]; then
    log "== installing PostgreSQL"
    as_root apt-get update -q >&2
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -q --no-install-recommends postgresql >&2
  fi
  local bin dir
  bin=$(pg_bin)
  dir=$SERVICES_DIR/pg
  mkdir -p "$SERVICES_DIR"
  if [ ! -f "$dir/PG_VERSION" ]; then
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres: "$dir"
    as_pg_owner "$bin/initdb" -D "$dir" -A trust -U chunkd >/dev/null
  fi
  if ! as_pg_owner "$bin/pg_ctl" -D "$dir" status >/dev/null 2>&1; then
    as_pg_owner "$bin/pg_ctl" -D "$dir" -l "$dir/server.log" -w -t 60 \
      -o "-p $PG_PORT -k $dir -c listen_addresses=127.0.0.1" start </dev/null >&2
  fi
  "$bin/psql" -h 127.0.0.1 -p "$PG_PORT" -U chunkd -d postgres -tAc \
    "SELECT 1 FROM pg_database WHERE datname = 'chunkd'" | grep -q 1 \
    || "$bin/createdb" -h 127.0.0.1 -p "$PG_PORT" -U chunkd chunkd
  echo "export CHUNKD_TEST_PG_URL=postgres://chunkd@127.0.0.1:$PG_PORT/chunkd"
  # Tests restart the server to check that uploads survive it.
  echo "export CHUNKD_TEST_PG_RESTART='$(realpath "$0") restart-postgres'"
}

stop_postgres() {
  local bin
  bin=$(pg_bin)
  [ -n "$bin" ] && [ -f "$SERVICES_DIR/pg/PG_VERSION" ] \
    && as_pg_owner "$bin/pg_ctl" -D "$SERVICES_DIR/pg" -m fast -w stop >&2 || true
}

case "${1:-}" in
  start) start_postgres ;;
  stop) stop_postgres ;;
  # Stop, then start detached with its own log (pg_ctl restart would tie the server's
  # output to the caller's).
  restart-postgres) stop_postgres; start_postgres >/dev/null ;;
  *) echo "usage: $0 start|stop|restart-postgres" >&2; exit 2 ;;
esac
