#!/usr/bin/env bash
# Builds (when needed) and starts a throw-away Neo4j server on 127.0.0.1 for
# the tests: org.neo4j.test:neo4j-harness from Maven Central, in the small
# Maven projects of tools/neo4j. Usage: scripts/neo4j.sh start|stop|url|status|build 3.5|4.4|5
# `start` prints the Bolt URL the tests read from EVTSTORE_TEST_NEO4J35_URL,
# EVTSTORE_TEST_NEO4J44_URL or EVTSTORE_TEST_NEO4J5_URL (bolt://127.0.0.1:PORT).
# Authentication is off: a client may send any user and password, or none.
# Running `start` again only prints the URL. The database is new at each start
# (the harness keeps it in a temporary folder that it deletes on stop).
# Settings: EVTSTORE_NEO4J35_PORT (default 57687), EVTSTORE_NEO4J44_PORT
# (57688), EVTSTORE_NEO4J5_PORT (57689); EVTSTORE_NEO4J_HEAP (default 512m,
# the Java heap of each); EVTSTORE_NEO4J_DIR (default /tmp/evtstore-rs-neo4j:
# a folder per version with the log and pid).
# The first build downloads the harness and its dependencies (~470 MB for the
# three) from Maven Central into ~/.m2.
set -euo pipefail
. "$(dirname "$0")/lib/background.sh"
repo="$(cd "$(dirname "$0")/.." && pwd)"

usage() {
  echo "usage: $0 start|stop|url|status|build 3.5|4.4|5" >&2
  exit 2
}

action="${1:-}"
version="${2:-}"
java_opens=()
project="$repo/tools/neo4j/v$version"
# 3.5 has a main of its own; 4.4 and 5 share tools/neo4j/neo4j-builders.
case "$version" in
  3.5) port="${EVTSTORE_NEO4J35_PORT:-57687}"; main=evtstore.testserver.Neo4j35; sources="$project/src" ;;
  4.4) port="${EVTSTORE_NEO4J44_PORT:-57688}"; main=evtstore.testserver.Neo4jBuildersServer ;;
  5) port="${EVTSTORE_NEO4J5_PORT:-57689}"; main=evtstore.testserver.Neo4jBuildersServer ;;
  *) usage ;;
esac
[ "$version" = 3.5 ] || sources="$repo/tools/neo4j/neo4j-builders"
# On Java 17, Neo4j 3.5 and 4.4 reach into JDK internals (direct buffers,
# unsafe, reflection) that the module system closes unless opened here.
if [ "$version" != 5 ]; then
  for package in java.lang java.lang.reflect java.lang.invoke java.io java.net java.nio java.util \
    java.util.concurrent java.util.concurrent.atomic sun.nio.ch jdk.internal.misc jdk.internal.ref; do
    java_opens+=("--add-opens=java.base/$package=ALL-UNNAMED")
  done
  java_opens+=(--add-exports=java.base/jdk.internal.misc=ALL-UNNAMED --add-exports=java.base/sun.nio.ch=ALL-UNNAMED)
fi
dir="${EVTSTORE_NEO4J_DIR:-/tmp/evtstore-rs-neo4j}/v$version"
log="$dir/server.log"
pidfile="$dir/server.pid"
url="bolt://127.0.0.1:$port"

install_tools() {
  local missing=()
  command -v java >/dev/null || missing+=(openjdk-17-jdk-headless)
  command -v mvn >/dev/null || missing+=(maven)
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "neo4j.sh: installing ${missing[*]} from Debian's packages" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

# Built when target/build.stamp is missing or older than the pom or a source.
build() {
  local stamp="$project/target/build.stamp" stale
  if [ -f "$stamp" ]; then
    stale=$(find "$project/pom.xml" "$sources" "$repo/tools/neo4j/common" -newer "$stamp" -type f 2>/dev/null | head -n 1 || true)
    [ -z "$stale" ] && return
  fi
  install_tools
  echo "neo4j.sh: building the Neo4j $version test server (Maven)" >&2
  mkdir -p "$dir"
  rm -rf "$project/target/lib"
  if ! (cd "$project" && mvn -B -q compile dependency:copy-dependencies -DoutputDirectory=target/lib) >"$dir/build.log" 2>&1; then
    fail_with_log neo4j.sh "$dir/build.log" "the Maven build of tools/neo4j/v$version failed"
  fi
  touch "$stamp"
}

start() {
  if pid_alive "$pidfile" && port_open "$port"; then
    echo "$url"
    return
  fi
  build
  install_tools
  refuse_foreign_port neo4j.sh "$port" "$pidfile"
  # The harness puts its database in java.io.tmpdir and deletes it on close;
  # a folder of our own, emptied here, also drops what a killed server left.
  rm -rf "$dir/tmp"
  mkdir -p "$dir/tmp"
  : >"$log"
  spawn "$pidfile" "$log" java "-Xmx${EVTSTORE_NEO4J_HEAP:-512m}" -XX:+UseSerialGC \
    -Djava.io.tmpdir="$dir/tmp" "${java_opens[@]}" \
    -cp "$project/target/classes:$project/target/lib/*" "$main" "$port"
  wait_until neo4j.sh "$log" "$pidfile" 180 ready
  echo "$url"
}

ready() {
  grep -q '^ready neo4j' "$log" && port_open "$port"
}

case "$action" in
  start) start ;;
  stop) stop_pid "$pidfile" 30 ;;
  url) echo "$url" ;;
  build) build ;;
  status) if pid_alive "$pidfile"; then echo "running: $url"; else echo "not running"; exit 3; fi ;;
  *) usage ;;
esac
