#!/usr/bin/env bash
# Builds (when missing or older than its sources) and starts a throw-away
# MongoDB-protocol server on 127.0.0.1 for the tests: FerretDB v1 embedded in
# tools/ferretdb, storing in SQLite files. Usage: scripts/ferretdb.sh start|stop|url|status
# `start` prints the URL the tests read from EVTSTORE_TEST_MONGO_URL
# (mongodb://127.0.0.1:PORT/); no authentication. Running `start` again only
# prints the URL. FerretDB has no transactions and no change streams.
# Settings: EVTSTORE_FERRETDB_PORT (default 57017), EVTSTORE_FERRETDB_DIR
# (default /tmp/evtstore-rs-ferretdb: data, log, pid).
# The first build needs Go >= 1.24 (fetched from the Go module proxy when the
# machine has none, or an older one) and downloads ~700 MB of modules from
# the Go module proxy into Go's module cache.
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

# The Go that builds tools/ferretdb (>= 1.24; Debian's golang-go is older):
# go on PATH or in /usr/local/go when new enough; a Go >= 1.21 told to fetch
# 1.24 itself (GOTOOLCHAIN); else Go 1.24 downloaded once from the Go module
# proxy (golang.org/toolchain) into $dir/go.
GO_WANTED="${EVTSTORE_FERRETDB_GO:-go1.24.13}"
go_minor() { # "go1.22.3" -> 22 (0 when not Go 1.x)
  local v
  v=$("$1" env GOVERSION 2>/dev/null || true)
  [[ "$v" =~ ^go1\.([0-9]+) ]] && echo "${BASH_REMATCH[1]}" || echo 0
}
find_go() {
  local candidate minor
  for candidate in "$(command -v go || true)" /usr/local/go/bin/go "$dir/go/bin/go"; do
    [ -n "$candidate" ] && [ -x "$candidate" ] || continue
    minor=$(GOTOOLCHAIN=local go_minor "$candidate")
    if [ "$minor" -ge 24 ]; then GO="$candidate"; return; fi
    if [ "$minor" -ge 21 ]; then
      # Go 1.21+ fetches the toolchain go.mod asks for from the module proxy
      export GOTOOLCHAIN="$GO_WANTED"
      GO="$candidate"
      return
    fi
  done
  download_go
  GO="$dir/go/bin/go"
}
download_go() {
  local proxy="${GOPROXY:-https://proxy.golang.org}" arch zip
  proxy="${proxy%%,*}"
  [ "$proxy" = direct ] || [ "$proxy" = off ] && proxy=https://proxy.golang.org
  case "$(uname -m)" in x86_64) arch=amd64 ;; aarch64 | arm64) arch=arm64 ;; *) arch=$(uname -m) ;; esac
  zip="$proxy/golang.org/toolchain/@v/v0.0.1-$GO_WANTED.linux-$arch.zip"
  echo "ferretdb.sh: no Go >= 1.21 found; downloading $GO_WANTED from $zip" >&2
  mkdir -p "$dir"
  rm -rf "$dir/go.tmp" "$dir/go"
  if ! curl -fsSL --retry 3 -o "$dir/go.zip" "$zip"; then
    echo "ferretdb.sh: cannot download $zip; install Go >= 1.24 (https://go.dev/dl) and put it on PATH" >&2
    exit 1
  fi
  mkdir -p "$dir/go.tmp"
  (cd "$dir/go.tmp" && unzip -q "$dir/go.zip")
  mv "$dir/go.tmp/golang.org/toolchain@v0.0.1-$GO_WANTED.linux-$arch" "$dir/go"
  chmod +x "$dir/go/bin/"* "$dir/go/pkg/tool/"*/* 2>/dev/null || true
  rm -rf "$dir/go.tmp" "$dir/go.zip"
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
  if ! (cd "$src" && "$GO" build -mod=readonly -trimpath -o "$bin.tmp" . >"$dir/build.log" 2>&1); then
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
