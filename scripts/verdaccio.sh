#!/usr/bin/env bash
# Installs (into tools/verdaccio/node_modules, apart from the project's own
# dependencies, from its committed lock file) and starts a throw-away npm
# registry, Verdaccio, on 127.0.0.1 for the package tests.
# Usage: scripts/verdaccio.sh start|stop|url|status|token
# `start` prints the registry URL the tests read from EVTSTORE_TEST_REGISTRY_URL
# (http://127.0.0.1:PORT/). Anyone may read and publish: npm still wants a
# token for `npm publish`, and any token line will do, e.g. in a throw-away
# .npmrc: //127.0.0.1:PORT/:_authToken=anything (`token` prints that line).
# No uplinks: it serves only what was published to it, so an install of a
# package whose dependencies are on npmjs.org fails here unless they were published too.
# Settings: EVTSTORE_REGISTRY_PORT (default 54873), EVTSTORE_REGISTRY_DIR
# (default /tmp/evtstore-rs-registry: config, storage, log, pid). The storage
# starts empty at each start.
set -euo pipefail
. "$(dirname "$0")/lib/background.sh"
repo="$(cd "$(dirname "$0")/.." && pwd)"
tool="$repo/tools/verdaccio"
port="${EVTSTORE_REGISTRY_PORT:-54873}"
dir="${EVTSTORE_REGISTRY_DIR:-/tmp/evtstore-rs-registry}"
log="$dir/server.log"
pidfile="$dir/server.pid"
url="http://127.0.0.1:$port/"

install_verdaccio() {
  local bin="$tool/node_modules/verdaccio/bin/verdaccio"
  if [ ! -f "$bin" ] || [ "$tool/package-lock.json" -nt "$tool/node_modules/.package-lock.json" ]; then
    echo "verdaccio.sh: installing Verdaccio into tools/verdaccio" >&2
    mkdir -p "$dir"
    # none of its packages has an install script
    if ! (cd "$tool" && npm ci --ignore-scripts --no-audit --no-fund) >"$dir/install.log" 2>&1; then
      fail_with_log verdaccio.sh "$dir/install.log" "npm ci in tools/verdaccio failed"
    fi
  fi
}

write_config() {
  cat >"$dir/config.yaml" <<YAML
# written by scripts/verdaccio.sh; the storage is thrown away at each start
storage: $dir/storage
listen: 127.0.0.1:$port
auth:
  htpasswd:
    file: $dir/htpasswd
    max_users: -1
uplinks: {}
packages:
  '**':
    access: \$all
    publish: \$all
    unpublish: \$all
server:
  keepAliveTimeout: 60
max_body_size: 200mb
log: { type: stdout, format: pretty, level: warn }
YAML
}

alive() {
  if command -v curl >/dev/null; then
    curl -fsS -o /dev/null --max-time 2 "${url}-/ping" 2>/dev/null
  else
    node -e 'fetch(process.argv[1]).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))' "${url}-/ping"
  fi
}

start() {
  if pid_alive "$pidfile" && alive; then
    echo "$url"
    return
  fi
  install_verdaccio
  refuse_foreign_port verdaccio.sh "$port" "$pidfile"
  stop_pid "$pidfile" 10
  rm -rf "$dir/storage" "$dir/htpasswd"
  mkdir -p "$dir/storage"
  write_config
  : >"$log"
  spawn "$pidfile" "$log" node "$tool/node_modules/verdaccio/bin/verdaccio" --config "$dir/config.yaml"
  wait_until verdaccio.sh "$log" "$pidfile" 60 alive
  echo "$url"
}

case "${1:-start}" in
  start) start ;;
  stop) stop_pid "$pidfile" 10 ;;
  url) echo "$url" ;;
  token) echo "//127.0.0.1:$port/:_authToken=evtstore-test" ;;
  status) if pid_alive "$pidfile"; then echo "running: $url"; else echo "not running"; exit 3; fi ;;
  *) echo "usage: $0 start|stop|url|status|token" >&2; exit 2 ;;
esac
