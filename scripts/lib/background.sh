# shellcheck shell=bash
# Shared by the server scripts (sourced, not run): start a server in the
# background with a pid file and a log, wait until it answers, stop it.
# The server's stdin, stdout and stderr never stay tied to the caller, so that
# `url=$(scripts/x.sh start)` returns once the server is up.

# running PID: true while the process exists and is no zombie (a server
# whose starter has exited may wait as a zombie for a parent that never reaps
# it, and kill -0 succeeds on a zombie).
running() {
  local state
  state=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
  [ -n "$state" ] && [ "${state#Z}" = "$state" ]
}

# pid_alive PIDFILE: true when the pid file names a running process.
pid_alive() {
  [ -s "$1" ] && running "$(cat "$1")"
}

# port_open PORT: true when something accepts TCP connections on 127.0.0.1:PORT.
port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# fail_with_log NAME LOGFILE MESSAGE: prints the message and the log's tail, exits 1.
fail_with_log() {
  echo "$1: $3" >&2
  if [ -s "$2" ]; then
    echo "--- last lines of $2 ---" >&2
    tail -n 30 "$2" >&2
  fi
  exit 1
}

# spawn PIDFILE LOGFILE COMMAND...: runs COMMAND in a session of its own
# (a Ctrl-C in the caller's terminal does not reach it), appending its output
# to LOGFILE, and writes its pid.
spawn() {
  local pidfile="$1" log="$2"
  shift 2
  # Without job control the script is no process group leader, so setsid
  # execs the command in place and $! is the server's own pid.
  setsid "$@" </dev/null >>"$log" 2>&1 &
  echo $! >"$pidfile"
}

# wait_until NAME LOGFILE PIDFILE SECONDS CHECK...: polls CHECK every 0.2 s
# until it succeeds; fails with the log's tail when the process dies first or
# when SECONDS pass.
wait_until() {
  local name="$1" log="$2" pidfile="$3" seconds="$4" tries
  shift 4
  tries=$((seconds * 5))
  while ! "$@"; do
    if ! pid_alive "$pidfile"; then
      fail_with_log "$name" "$log" "the server exited during start"
    fi
    tries=$((tries - 1))
    if [ "$tries" -le 0 ]; then
      fail_with_log "$name" "$log" "not ready after ${seconds}s (still running, pid $(cat "$pidfile"))"
    fi
    sleep 0.2
  done
}

# stop_pid PIDFILE SECONDS: SIGTERM, then SIGKILL if it is still there after
# SECONDS; removes the pid file.
stop_pid() {
  local pidfile="$1" seconds="$2" pid tries
  if pid_alive "$pidfile"; then
    pid=$(cat "$pidfile")
    kill -TERM "$pid" 2>/dev/null || true
    tries=$((seconds * 5))
    while running "$pid" && [ "$tries" -gt 0 ]; do
      sleep 0.2
      tries=$((tries - 1))
    done
    if running "$pid"; then
      echo "stopping pid $pid: no exit after ${seconds}s, killing it" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$pidfile"
}

# refuse_foreign_port NAME PORT PIDFILE: fails when the port is in use by a
# process other than ours (a server of another checkout, say).
refuse_foreign_port() {
  if ! pid_alive "$3" && port_open "$2"; then
    echo "$1: port $2 on 127.0.0.1 is already in use by another process; choose another with the port variable" >&2
    exit 1
  fi
}
