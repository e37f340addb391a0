#!/usr/bin/env bash
# Installs (from Debian's packages, if missing) and starts PgBouncer on
# 127.0.0.1 in front of the test PostgreSQL server (scripts/postgres.sh), in
# transaction pooling mode: each transaction may run on another server
# connection, as behind RDS Proxy or a PgBouncer in production.
# Usage: scripts/pgbouncer.sh start|stop. `start` prints the URL the tests
# read from EVTSTORE_TEST_PGBOUNCER_URL (?pgbouncer=true: no named prepared
# statements, no LISTEN). Settings: PGBOUNCER_PORT (default 56432),
# PGPORT (the server's, default 55432), EVTSTORE_PGBOUNCER_DIR.
set -euo pipefail
port="${PGBOUNCER_PORT:-56432}"
server_port="${PGPORT:-55432}"
dir="${EVTSTORE_PGBOUNCER_DIR:-/tmp/evtstore-rs-pgbouncer}"

as_postgres() {
  # PgBouncer refuses to run as root
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start() {
  if ! command -v pgbouncer >/dev/null && [ ! -x /usr/sbin/pgbouncer ]; then
    echo "pgbouncer.sh: installing PgBouncer from Debian's packages" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq pgbouncer >/dev/null
  fi
  local bin
  bin=$(command -v pgbouncer || echo /usr/sbin/pgbouncer)
  mkdir -p "$dir"
  printf '"evtstore" "evtstore"\n' >"$dir/users.txt"
  cat >"$dir/pgbouncer.ini" <<INI
[databases]
* = host=127.0.0.1 port=$server_port user=evtstore password=evtstore
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
auth_type = scram-sha-256
auth_file = $dir/users.txt
pool_mode = transaction
default_pool_size = 20
max_client_conn = 500
ignore_startup_parameters = extra_float_digits,options
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
INI
  [ "$(id -u)" = 0 ] && chown -R postgres "$dir"
  if [ ! -s "$dir/pgbouncer.pid" ] || ! kill -0 "$(cat "$dir/pgbouncer.pid")" 2>/dev/null; then
    as_postgres "$bin" -d "$dir/pgbouncer.ini"
  fi
  for _ in $(seq 1 50); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "postgres://evtstore:evtstore@127.0.0.1:$port/postgres?pgbouncer=true"
      return 0
    fi
    sleep 0.1
  done
  echo "pgbouncer.sh: PgBouncer did not listen on $port; its log:" >&2
  tail -n 20 "$dir/pgbouncer.log" >&2 || true
  return 1
}

stop() {
  if [ -s "$dir/pgbouncer.pid" ]; then
    kill "$(cat "$dir/pgbouncer.pid")" 2>/dev/null || true
    rm -f "$dir/pgbouncer.pid"
  fi
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
