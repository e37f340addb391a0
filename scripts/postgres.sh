#!/usr/bin/env bash
# Installs (from Debian's packages, if missing) and starts a throw-away PostgreSQL
# server on 127.0.0.1 for the tests. Usage: scripts/postgres.sh start|stop|status
# `start` prints the admin URL the tests read from EVTSTORE_TEST_PG_URL.
# `stop` shuts down cleanly (pg_ctl -m fast); `stop immediate` kills the server
# the way a crash does (crash recovery at the next start).
# Settings: PGPORT (default 55432), EVTSTORE_PG_DIR (default /tmp/evtstore-rs-pg),
# EVTSTORE_PG_FSYNC (default off: test data needs no durability; use on for
# benchmarks, so that commits cost what they cost in production).
# TCP connections need a password (SCRAM), so that the tests check that the
# password really reaches the server; the Unix socket in $EVTSTORE_PG_DIR is
# trusted (this script's own psql calls, and the socket tests). TLS is on, with
# a certificate for 127.0.0.1 and localhost signed by a CA of its own,
# $EVTSTORE_PG_DIR/ca.crt (the TLS tests use it).
set -euo pipefail
port="${PGPORT:-55432}"
dir="${EVTSTORE_PG_DIR:-/tmp/evtstore-rs-pg}"

find_bin() {
  local found
  found=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  echo "$found"
}

install_server() {
  if [ -z "$(find_bin)" ]; then
    echo "postgres.sh: installing PostgreSQL from Debian's packages" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq postgresql >/dev/null
  fi
}

as_postgres() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# Unix socket: trusted; TCP (IPv4 and IPv6 loopback): SCRAM password.
write_hba() {
  local hba="$dir/data/pg_hba.conf"
  local want
  want=$'local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\nhost all all ::1/128 scram-sha-256'
  if [ "$(cat "$hba" 2>/dev/null)" != "$want" ]; then
    printf '%s\n' "$want" > "$hba"
    [ "$(id -u)" = 0 ] && chown postgres "$hba"
  fi
  return 0
}

# A certificate authority and a server certificate for 127.0.0.1 and localhost
# signed by it (kept across restarts; rustls wants a CA apart from the server's
# own certificate).
make_cert() {
  if [ ! -s "$dir/ca.crt" ] || [ ! -s "$dir/server.crt" ] || [ ! -s "$dir/server.key" ]; then
    if ! command -v openssl >/dev/null; then
      export DEBIAN_FRONTEND=noninteractive
      apt-get update -qq
      apt-get install -y -qq openssl >/dev/null
    fi
    local tmp
    tmp=$(mktemp -d)
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=evtstore-rs test CA" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
      -keyout "$tmp/ca.key" -out "$tmp/ca.crt" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout "$tmp/server.key" -out "$tmp/server.csr" 2>/dev/null
    printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
      "extendedKeyUsage=serverAuth" "subjectAltName=IP:127.0.0.1,DNS:localhost" > "$tmp/ext.cnf"
    openssl x509 -req -in "$tmp/server.csr" -CA "$tmp/ca.crt" -CAkey "$tmp/ca.key" -CAcreateserial \
      -days 3650 -extfile "$tmp/ext.cnf" -out "$tmp/server.crt" 2>/dev/null
    install -m 644 "$tmp/ca.crt" "$dir/ca.crt"
    install -m 644 "$tmp/server.crt" "$dir/server.crt"
    install -m 600 "$tmp/server.key" "$dir/server.key"
    rm -rf "$tmp"
    [ "$(id -u)" = 0 ] && chown postgres "$dir/ca.crt" "$dir/server.crt" "$dir/server.key"
  fi
  return 0
}

start() {
  install_server
  local bin
  bin=$(find_bin)
  if [ ! -s "$dir/data/PG_VERSION" ]; then
    rm -rf "$dir"
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres "$dir"
    as_postgres "$bin/initdb" -D "$dir/data" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
      -E UTF8 >/dev/null
  fi
  write_hba
  make_cert
  if ! as_postgres "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
    as_postgres "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
      -o "-h 127.0.0.1 -p $port -k $dir -c fsync=${EVTSTORE_PG_FSYNC:-off} -c max_connections=300" start >/dev/null
  fi
  # TLS on (ALTER SYSTEM: kept in the data dir), and the reload also applies
  # pg_hba.conf to a data dir made by an older version of this script
  "$bin/psql" -h "$dir" -p "$port" -U postgres -qtA \
    -c "ALTER SYSTEM SET ssl = on" \
    -c "ALTER SYSTEM SET ssl_cert_file = '$dir/server.crt'" \
    -c "ALTER SYSTEM SET ssl_key_file = '$dir/server.key'" >/dev/null
  as_postgres "$bin/pg_ctl" -D "$dir/data" reload >/dev/null
  # A password user for the tests (postgres.js and pg both send it).
  "$bin/psql" -h "$dir" -p "$port" -U postgres -qtAc \
    "DO \$\$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'evtstore') THEN CREATE ROLE evtstore LOGIN SUPERUSER; END IF; END \$\$; ALTER ROLE evtstore PASSWORD 'evtstore'" >/dev/null
  echo "postgres://evtstore:evtstore@127.0.0.1:$port/postgres"
}

stop() {
  local mode="${1:-fast}" bin
  case "$mode" in
    fast | immediate) ;;
    *) echo "usage: $0 stop [fast|immediate]" >&2; exit 2 ;;
  esac
  bin=$(find_bin)
  [ -n "$bin" ] && [ -d "$dir/data" ] && as_postgres "$bin/pg_ctl" -D "$dir/data" -m "$mode" stop >/dev/null 2>&1 || true
}

case "${1:-start}" in
  start) start ;;
  stop) stop "${2:-fast}" ;;
  status) as_postgres "$(find_bin)/pg_ctl" -D "$dir/data" status ;;
  *) echo "usage: $0 start|stop [fast|immediate]|status" >&2; exit 2 ;;
esac
