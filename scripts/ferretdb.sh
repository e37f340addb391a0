#!/usr/bin/env bash
# Builds (when missing or older than its sources) and starts a throw-away
# MongoDB-protocol server on 127.0.0.1 for the tests: FerretDB v1 embedded in
# tools/ferretdb, storing in SQLite files. Usage: scripts/ferretdb.sh start|stop|url|status
# `start` prints the URL the tests read from EVTSTORE_TEST_MONGO_URL
# (mongodb://127.0.0.1:PORT/); no authentication. Running `start` again only
# prints the URL. FerretDB has no transactions and no change streams.
# Settings: EVTSTORE_FERRETDB_PORT (default 57017), EVTSTORE_FERRETDB_DIR
# (default /tmp/evtstore-rs-ferretdb: data, log, pid).
# The first build needs Go >= 1.24 and downloads ~700 MB of modules from the
# Go module proxy into Go's module cache.
set -euo pipefail
. "$(dirname "$0")/lib/background.sh"
repo="$(cd "$(dirname "$0")/.." && pwd)"
src="$repo/tools/ferretdb"
bin="$src/bin/ferretdb-test-server"
port="${EVTSTORE_FERRETDB_PORT:-57017}"
dir="${EVTSTORE_FERRETDB_DIR:-/tmp/evtstore-rs-ferretdb}"
log="$dir/server.log"
pidfile="$dir/server.pid"
url="mongodb://127.0.0.1:$port/"

find_go() {
  if ! command -v go >/dev/null && [ -x /usr/local/go/bin/go ]; then
    PATH="/usr/local/go/bin:$PATH"
  fi
  if ! command -v go >/dev/null; then
    echo "ferretdb.sh: building tools/ferretdb needs Go >= 1.24 (Debian's golang-go is too old); none found" >&2
    exit 1
  fi
}

build() {
  local stale
  stale=$(find "$src" -maxdepth 1 \( -name '*.go' -o -name go.mod -o -name go.sum \) -newer "$bin" 2>/dev/null | head -n 1 || true)
  if [ -x "$bin" ] && [ -z "$stale" ]; then
    return
  fi
  find_go
  echo "ferretdb.sh: building $bin" >&2
  mkdir -p "$dir"
  # -mod=readonly: go.sum, committed, decides the modules; a build never edits it.
  if ! (cd "$src" && go build -mod=readonly -trimpath -o "$bin.tmp" . >"$dir/build.log" 2>&1); then
    fail_with_log ferretdb.sh "$dir/build.log" "go build failed"
  fi
  mv "$bin.tmp" "$bin"
}

start() {
  if pid_alive "$pidfile" && port_open "$port"; then
    echo "$url"
    return
  fi
  build
  refuse_foreign_port ferretdb.sh "$port" "$pidfile"
  mkdir -p "$dir/data"
  : >"$log"
  spawn "$pidfile" "$log" "$bin" -port "$port" -dir "$dir/data"
  wait_until ferretdb.sh "$log" "$pidfile" 30 grep -q '^ready ' "$log"
  echo "$url"
}

case "${1:-start}" in
  start) start ;;
  stop) stop_pid "$pidfile" 15 ;;
  url) echo "$url" ;;
  build) build ;;
  status) if pid_alive "$pidfile"; then echo "running: $url"; else echo "not running"; exit 3; fi ;;
  *) echo "usage: $0 start|stop|url|status|build" >&2; exit 2 ;;
esac
