#!/usr/bin/env bash
# Proves that the test servers work, each with a real client from this machine:
# MariaDB with the mariadb CLI; FerretDB and Neo4j with the npm `mongodb` and
# `neo4j-driver` packages (installed into /tmp/evtstore-rs-clients, not into
# the project); Verdaccio with npm publish of a throw-away package and npm
# install of it into an empty folder.
# Usage: scripts/servers-check.sh [names...]  (the names of scripts/servers.sh;
# starts them first; exits 1 when a check fails)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
clients=/tmp/evtstore-rs-clients
vars=$("$here/servers.sh" start "$@")
# shellcheck disable=SC2163,SC2086 # one NAME=URL word each
export $vars
failed=0

need_clients() {
  if [ ! -d "$clients/node_modules/mongodb" ] || [ ! -d "$clients/node_modules/neo4j-driver" ]; then
    mkdir -p "$clients"
    echo '{ "name": "evtstore-rs-clients", "private": true }' >"$clients/package.json"
    (cd "$clients" && npm install --no-audit --no-fund --silent mongodb@6.22.0 neo4j-driver@5.28.3)
  fi
}

check_mysql() {
  local url="$1" rest user pass hostport port db
  # mysql://USER:PASS@127.0.0.1:PORT/DB
  rest=${url#mysql://}
  user=${rest%%:*}; rest=${rest#*:}
  pass=${rest%%@*}; rest=${rest#*@}
  hostport=${rest%%/*}; db=${rest#*/}
  port=${hostport#*:}
  local sql=(mariadb --no-defaults -h 127.0.0.1 -P "$port" -u "$user" "-p$pass" "$db" -N -B)
  local table="check_$$"
  "${sql[@]}" -e "CREATE TABLE $table (stream VARCHAR(64), position INT, PRIMARY KEY (stream, position));
    INSERT INTO $table VALUES ('s', 1), ('s', 2);" || return 1
  local count duplicate version
  count=$("${sql[@]}" -e "SELECT COUNT(*) FROM $table WHERE stream = 's'")
  duplicate=$("${sql[@]}" -e "INSERT INTO $table VALUES ('s', 1)" 2>&1 || true)
  version=$("${sql[@]}" -e "SELECT VERSION()")
  "${sql[@]}" -e "DROP TABLE $table"
  if [ "$count" = 2 ] && [[ "$duplicate" == *"ERROR 1062"* ]]; then
    echo "mysql ok: $url ($version; write, read, duplicate key error 1062)"
  else
    echo "mysql check failed: count=$count duplicate=$duplicate" >&2
    return 1
  fi
}

check_registry() {
  local url="$1" work name
  work=$(mktemp -d /tmp/evtstore-rs-registry-check.XXXXXX)
  name="evtstore-registry-check-$$"
  mkdir -p "$work/pkg" "$work/app"
  echo "{ \"name\": \"$name\", \"version\": \"1.0.0\", \"main\": \"index.js\" }" >"$work/pkg/package.json"
  echo "module.exports = 'published to the local registry'" >"$work/pkg/index.js"
  "$here/verdaccio.sh" token >"$work/pkg/.npmrc"
  (cd "$work/pkg" && npm publish --registry "$url" --silent) || { rm -rf "$work"; return 1; }
  echo '{ "name": "app", "version": "1.0.0", "private": true }' >"$work/app/package.json"
  (cd "$work/app" && npm install --registry "$url" --no-audit --no-fund --silent "$name") || { rm -rf "$work"; return 1; }
  local said
  said=$(cd "$work/app" && node -p "require('$name')")
  rm -rf "$work"
  if [ "$said" = "published to the local registry" ]; then
    echo "registry ok: $url (npm publish, npm install into an empty folder)"
  else
    echo "registry check failed: the installed package said '$said'" >&2
    return 1
  fi
}

for line in $vars; do
  name=${line%%=*}
  url=${line#*=}
  case "$name" in
    EVTSTORE_TEST_PG_URL) continue ;; # the project's own tests cover PostgreSQL
    EVTSTORE_TEST_MYSQL_URL) check_mysql "$url" || failed=1 ;;
    EVTSTORE_TEST_MONGO_URL) need_clients; NODE_PATH="$clients/node_modules" node "$here/checks/mongo-check.js" "$url" || failed=1 ;;
    EVTSTORE_TEST_NEO4J*) need_clients; NODE_PATH="$clients/node_modules" node "$here/checks/neo4j-check.js" "$url" || failed=1 ;;
    EVTSTORE_TEST_REGISTRY_URL) check_registry "$url" || failed=1 ;;
  esac
done
exit $failed
