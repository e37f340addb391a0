#!/usr/bin/env bash
# Installs (from Debian's packages, if missing) and starts a throw-away MariaDB
# server (MySQL protocol) on 127.0.0.1 for the tests: its own data directory,
# port and socket, not the system's service.
# Usage: scripts/mariadb.sh start|stop [fast|immediate]|url|status
# (stop immediate kills the server as a crash would)
# `start` prints the URL the tests read from EVTSTORE_TEST_MYSQL_URL
# (mysql://evtstore:evtstore@127.0.0.1:PORT/evtstore); the user may create and
# drop databases of its own. Running `start` again only prints the URL.
# Settings: EVTSTORE_MYSQL_PORT (default 53306), EVTSTORE_MYSQL_DIR (default
# /tmp/evtstore-rs-mysql), EVTSTORE_MYSQL_FSYNC (default off: test data needs
# no durability; use on for benchmarks).
# The socket $EVTSTORE_MYSQL_DIR/mysqld.sock lets root in without a password
# (this script's own calls); TCP needs the password.
set -euo pipefail
. "$(dirname "$0")/lib/background.sh"
port="${EVTSTORE_MYSQL_PORT:-53306}"
dir="${EVTSTORE_MYSQL_DIR:-/tmp/evtstore-rs-mysql}"
sock="$dir/mysqld.sock"
log="$dir/server.log"
pidfile="$dir/mariadbd.pid"
url="mysql://evtstore:evtstore@127.0.0.1:$port/evtstore"

install_server() {
  if ! command -v mariadbd >/dev/null || ! command -v mariadb-install-db >/dev/null || ! command -v mariadb >/dev/null; then
    echo "mariadb.sh: installing MariaDB from Debian's packages" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq mariadb-server mariadb-client >/dev/null
  fi
}

# As root the server runs as the mysql user (mariadbd refuses root).
run_as() {
  if [ "$(id -u)" = 0 ]; then echo "--user=mysql"; else echo "--user=$(id -un)"; fi
}

as_root_client() {
  mariadb --no-defaults --socket="$sock" -u root "$@"
}

alive() {
  mariadb-admin --no-defaults --socket="$sock" -u root --connect-timeout=2 ping >/dev/null 2>&1
}

start() {
  install_server
  if alive; then
    echo "$url"
    return
  fi
  refuse_foreign_port mariadb.sh "$port" "$pidfile"
  if [ ! -d "$dir/data/mysql" ]; then
    rm -rf "$dir"
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown mysql: "$dir"
    mariadb-install-db --no-defaults "$(run_as)" --datadir="$dir/data" \
      --auth-root-authentication-method=normal --skip-test-db >"$dir/install.log" 2>&1 ||
      fail_with_log mariadb.sh "$dir/install.log" "mariadb-install-db failed"
  fi
  local durability=()
  if [ "${EVTSTORE_MYSQL_FSYNC:-off}" = off ]; then
    # committed transactions reach the OS at once (a killed server loses none),
    # which syncs them about once a second (an OS crash may lose that second)
    durability=(--innodb-flush-log-at-trx-commit=2 --innodb-doublewrite=0 --sync-binlog=0)
  fi
  # --no-defaults: none of /etc/mysql's settings (the system service's socket,
  # pid file and log paths) apply to this server.
  spawn "$dir/launcher.pid" "$dir/stdout.log" mariadbd --no-defaults "$(run_as)" --datadir="$dir/data" \
    --bind-address=127.0.0.1 --port="$port" --socket="$sock" --pid-file="$pidfile" \
    --log-error="$log" --skip-name-resolve --max-connections=300 \
    --character-set-server=utf8mb4 --collation-server=utf8mb4_general_ci \
    --innodb-buffer-pool-size=128M --innodb-log-file-size=16M "${durability[@]}"
  wait_until mariadb.sh "$log" "$dir/launcher.pid" 60 alive
  rm -f "$dir/launcher.pid"
  as_root_client -e "
    CREATE DATABASE IF NOT EXISTS evtstore;
    CREATE USER IF NOT EXISTS 'evtstore'@'%' IDENTIFIED BY 'evtstore';
    ALTER USER 'evtstore'@'%' IDENTIFIED BY 'evtstore';
    GRANT ALL PRIVILEGES ON *.* TO 'evtstore'@'%';" ||
    fail_with_log mariadb.sh "$log" "could not create the evtstore user"
  echo "$url"
}

stop() {
  if [ "${1:-fast}" = immediate ]; then
    # as a crash would: no shutdown, the server is killed
    if pid_alive "$pidfile"; then kill -9 "$(cat "$pidfile")" 2>/dev/null || true; fi
  elif alive; then
    # shutdown waits until the server has stopped
    mariadb-admin --no-defaults --socket="$sock" -u root shutdown >/dev/null 2>&1 || true
  fi
  # a server that no longer answers on its socket
  stop_pid "$pidfile" 20
}

case "${1:-start}" in
  start) start ;;
  stop) stop "${2:-fast}" ;;
  url) echo "$url" ;;
  status) if alive; then echo "running: $url"; else echo "not running"; exit 3; fi ;;
  *) echo "usage: $0 start|stop|url|status" >&2; exit 2 ;;
esac
