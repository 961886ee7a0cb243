#!/usr/bin/env bash
# Stops what deploy/local/up.sh started: the services first (SIGTERM: they finish or hand back
# their work and drain), then the S3 server, PostgreSQL and NATS. Data stays in DIR.
#
#   deploy/local/down.sh [--dir DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
dir="$(pwd)/.local-stack"
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) dir="$2"; shift 2 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
pids="$dir/pids"
if [ ! -s "$pids" ]; then
  echo "Nothing is running from $dir."
  exit 0
fi

stop() { # name pid
  local name=$1 pid=$2
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid"
  for _ in $(seq 1 300); do
    kill -0 "$pid" 2>/dev/null || { echo "stopped $name"; return 0; }
    sleep 0.1
  done
  echo "$name did not stop within 30 s; killing it" >&2
  kill -KILL "$pid" 2>/dev/null || true
}

# The services all at once (each takes a few seconds to finish and hand back its work), then
# the infrastructure they use.
services=$(awk '$1 != "nats" && $1 != "postgres" && $1 != "s3"' "$pids")
while read -r name pid; do
  [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null || true
done <<< "$services"
while read -r name pid; do
  if [ -n "$pid" ]; then
    if kill -0 "$pid" 2>/dev/null; then stop "$name" "$pid"; else echo "stopped $name"; fi
  fi
done <<< "$services"
pid_of() { awk -v n="$1" '$1 == n { print $2 }' "$pids"; }
[ -n "$(pid_of s3)" ] && stop s3 "$(pid_of s3)"
# PostgreSQL may run under runuser (when we are root): pg_ctl stops the server itself.
pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
if [ -f "$dir/postgres/data/postmaster.pid" ]; then
  as_pg=()
  [ "$(id -u)" -eq 0 ] && as_pg=(runuser -u postgres --)
  "${as_pg[@]}" "$pg_bin/pg_ctl" -D "$dir/postgres/data" stop -m fast -w > /dev/null && echo "stopped postgres"
fi
[ -n "$(pid_of nats)" ] && stop nats "$(pid_of nats)"
: > "$pids"
