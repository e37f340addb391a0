#!/usr/bin/env bash
# Starts or stops several of the test servers at once.
# Usage: scripts/servers.sh start|stop [names...]   (no names: all of them)
# Names: pg, pgbouncer (in front of pg, transaction mode), mysql, mongo, neo4j35,
# neo4j44, neo4j5, neo4j (the three), registry.
# `start` prints one NAME=URL line per server, in the order above, e.g.
#   vars=$(scripts/servers.sh start mysql mongo) && export $vars
# and exits 1 (after starting the rest) when one failed; its log tail is on stderr.
# Builds and installs run before the starts: the Maven builds one after the
# other (they share ~/.m2), the apt installs one after the other (apt's lock),
# each chain beside the others; then the servers start side by side.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
all=(pg pgbouncer mysql mongo neo4j35 neo4j44 neo4j5 registry)

env_name() {
  case "$1" in
    pg) echo EVTSTORE_TEST_PG_URL ;;
    pgbouncer) echo EVTSTORE_TEST_PGBOUNCER_URL ;;
    mysql) echo EVTSTORE_TEST_MYSQL_URL ;;
    mongo) echo EVTSTORE_TEST_MONGO_URL ;;
    neo4j35) echo EVTSTORE_TEST_NEO4J35_URL ;;
    neo4j44) echo EVTSTORE_TEST_NEO4J44_URL ;;
    neo4j5) echo EVTSTORE_TEST_NEO4J5_URL ;;
    registry) echo EVTSTORE_TEST_REGISTRY_URL ;;
  esac
}

# server NAME ACTION: runs that server's own script.
server() {
  case "$1" in
    pg) "$here/postgres.sh" "$2" ;;
    pgbouncer) "$here/pgbouncer.sh" "$2" ;;
    mysql) "$here/mariadb.sh" "$2" ;;
    mongo) "$here/ferretdb.sh" "$2" ;;
    neo4j35) "$here/neo4j.sh" "$2" 3.5 ;;
    neo4j44) "$here/neo4j.sh" "$2" 4.4 ;;
    neo4j5) "$here/neo4j.sh" "$2" 5 ;;
    registry) "$here/verdaccio.sh" "$2" ;;
  esac
}

# The names asked for, in the order of $all, each once.
select_names() {
  local wanted=" " name
  [ $# -eq 0 ] && set -- "${all[@]}"
  for name in "$@"; do
    case "$name" in
      pg | postgres) wanted+="pg " ;;
      pgbouncer) wanted+="pg pgbouncer " ;;
      mysql | mariadb) wanted+="mysql " ;;
      mongo | mongodb | ferretdb) wanted+="mongo " ;;
      neo4j) wanted+="neo4j35 neo4j44 neo4j5 " ;;
      neo4j35 | neo4j44 | neo4j5) wanted+="$name " ;;
      registry | verdaccio | npm) wanted+="registry " ;;
      *) echo "servers.sh: unknown server '$name' (known: ${all[*]}, neo4j)" >&2; exit 2 ;;
    esac
  done
  for name in "${all[@]}"; do
    case "$wanted" in *" $name "*) echo "$name" ;; esac
  done
}

start() {
  local names=() list name failed=0 pids=()
  list=$(select_names "$@")
  mapfile -t names <<<"$list"
  tmp=$(mktemp -d) # global: the EXIT trap runs after start has returned
  trap 'rm -rf "$tmp"' EXIT
  has() { case " ${names[*]} " in *" $1 "*) return 0 ;; esac; return 1; }
  # A failed step leaves its mark; the start of that server then reports it.
  mark() { : >"$tmp/$1.failed"; }

  # Chains that install or build, side by side. pg, mysql and the registry
  # start here already: their start is quick once installed.
  (
    for name in pg pgbouncer mysql; do
      if has $name; then server $name start >"$tmp/$name.url" || mark $name; fi
    done
  ) &
  pids+=($!)
  (
    for name in neo4j35 neo4j44 neo4j5; do
      if has $name; then server $name build || mark $name; fi
    done
  ) &
  pids+=($!)
  if has mongo; then (server mongo build || mark mongo) & pids+=($!); fi
  if has registry; then (server registry start >"$tmp/registry.url" || mark registry) & pids+=($!); fi
  wait "${pids[@]}"

  # The servers that start slowly, side by side.
  pids=()
  for name in mongo neo4j35 neo4j44 neo4j5; do
    if has $name && [ ! -e "$tmp/$name.failed" ]; then
      (server $name start >"$tmp/$name.url" || mark $name) &
      pids+=($!)
    fi
  done
  [ ${#pids[@]} -gt 0 ] && wait "${pids[@]}"

  for name in "${names[@]}"; do
    if [ -e "$tmp/$name.failed" ] || [ ! -s "$tmp/$name.url" ]; then
      echo "servers.sh: $name did not start" >&2
      failed=1
    else
      echo "$(env_name $name)=$(tail -n 1 "$tmp/$name.url")"
    fi
  done
  return $failed
}

stop() {
  local names=() list name pids=()
  list=$(select_names "$@")
  mapfile -t names <<<"$list"
  for name in "${names[@]}"; do
    server $name stop &
    pids+=($!)
  done
  wait "${pids[@]}"
}

case "${1:-}" in
  start) shift; start "$@" ;;
  stop) shift; stop "$@" ;;
  *) echo "usage: $0 start|stop [${all[*]} neo4j]" >&2; exit 2 ;;
esac
