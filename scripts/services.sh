#!/usr/bin/env bash
# The services the tests talk to, on loopback, in a private directory:
#   eval "$(scripts/services.sh start)"   # installs what is missing, starts, prints exports
#   scripts/services.sh stop
# PostgreSQL comes from Debian's packages (a private cluster, not the system one); the
# S3 service is s3s-fs from the crates registry (it checks SigV4 signatures and the
# 5 MiB part minimum), served by tests/s3-service and built once into $CHUNKD_CACHE.
set -euo pipefail
cd "$(dirname "$0")/.."

SERVICES_DIR=${SERVICES_DIR:-${TMPDIR:-/tmp}/chunkd-services-$(id -u)}
PG_PORT=${CHUNKD_TEST_PG_PORT:-55432}
S3_PORT=${CHUNKD_TEST_S3_PORT:-55433}
CHUNKD_CACHE=${CHUNKD_CACHE:-$HOME/.cache/chunkd}
S3_KEY=chunkdtestkey
S3_SECRET=chunkdtestsecret1234

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
  echo "export CHUNKD_TEST_SERVICES='$(realpath "$0")'"
}

stop_postgres() {
  local bin
  bin=$(pg_bin)
  [ -n "$bin" ] && [ -f "$SERVICES_DIR/pg/PG_VERSION" ] \
    && as_pg_owner "$bin/pg_ctl" -D "$SERVICES_DIR/pg" -m fast -w stop >&2 || true
}

# Builds the S3 service (s3s-fs, served by tests/s3-service so that every request runs
# to completion, as on S3), once and when its source changes; prints its path.
s3s_fs() {
  local target=$CHUNKD_CACHE/s3-service
  [ -x "$target/release/chunkd-test-s3" ] || log "== building the S3 service, s3s-fs 0.14.1 (once, about two minutes)"
  CARGO_TARGET_DIR=$target cargo build --release --locked --quiet \
    --manifest-path tests/s3-service/Cargo.toml >&2
  echo "$target/release/chunkd-test-s3"
}

start_s3() {
  local bin
  bin=$(s3s_fs)
  mkdir -p "$SERVICES_DIR/s3"
  if ! curl -s -o /dev/null "http://127.0.0.1:$S3_PORT/"; then
    nohup "$bin" --host 127.0.0.1 --port "$S3_PORT" --access-key "$S3_KEY" --secret-key "$S3_SECRET" \
      "$SERVICES_DIR/s3" >"$SERVICES_DIR/s3.log" 2>&1 </dev/null &
    echo $! >"$SERVICES_DIR/s3.pid"
    for _ in $(seq 100); do
      curl -s -o /dev/null "http://127.0.0.1:$S3_PORT/" && break
      sleep 0.1
    done
    curl -s -o /dev/null "http://127.0.0.1:$S3_PORT/" || { log "s3s-fs did not start"; cat "$SERVICES_DIR/s3.log" >&2; exit 1; }
  fi
  echo "export CHUNKD_TEST_S3_ENDPOINT=http://127.0.0.1:$S3_PORT"
  echo "export CHUNKD_TEST_S3_ACCESS_KEY=$S3_KEY"
  echo "export CHUNKD_TEST_S3_SECRET_KEY=$S3_SECRET"
  echo "export CHUNKD_TEST_S3_DIR=$SERVICES_DIR/s3"
}

stop_s3() {
  [ -f "$SERVICES_DIR/s3.pid" ] && kill "$(cat "$SERVICES_DIR/s3.pid")" 2>/dev/null || true
  rm -f "$SERVICES_DIR/s3.pid"
  # Gone before this returns, so a start right after starts a new one.
  for _ in $(seq 100); do
    curl -s -o /dev/null "http://127.0.0.1:$S3_PORT/" || break
    sleep 0.1
  done
}

case "${1:-}" in
  start) start_postgres; start_s3 ;;
  stop) stop_postgres; stop_s3 ;;
  # Stop, then start detached with its own log (pg_ctl restart would tie the server's
  # output to the caller's).
  restart-postgres) stop_postgres; start_postgres >/dev/null ;;
  # Outages in the middle of a test (readiness): each service alone, quietly.
  stop-postgres) stop_postgres ;;
  start-postgres) start_postgres >/dev/null ;;
  stop-s3) stop_s3 ;;
  start-s3) start_s3 >/dev/null ;;
  s3s-fs-path) s3s_fs ;;
  *) echo "usage: $0 start|stop|restart-postgres|stop-postgres|start-postgres|stop-s3|start-s3|s3s-fs-path" >&2; exit 2 ;;
esac
