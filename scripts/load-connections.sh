#!/usr/bin/env bash
# Connection load on loopback (docs/operations.md, "Connection limits and timeouts"): starts the
# embedded default (debug build) on a temporary data directory, then holds 2,000 idle
# connections and 200 request bodies trickling below the minimum rate while a batch of photos is
# imported, asking /healthz every 50 ms. Prints the worst /healthz latency and exits non-zero if
# it was over 100 ms or the batch did not finish. Not part of scripts/test.sh.
#
#   scripts/load-connections.sh [--idle N] [--slow N] [--photos N]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

cargo build -p pictureday-tests --bin pictureday-under-test --bin load-connections >&2
target_dir=$(cargo metadata --format-version 1 --no-deps \
  | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
bin="$target_dir/debug"

# The load holds thousands of sockets on each side.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
echo "open-file limit: $(ulimit -n)" >&2

dir=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
token="load-$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
server_pid=
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$dir"
}
trap cleanup EXIT

PICTUREDAY_OPERATOR_TOKEN="$token" RUST_LOG=warn \
  "$bin/pictureday-under-test" serve --data-dir "$dir/data" --listen "127.0.0.1:$port" \
  >"$dir/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 600); do
  if curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$server_pid" 2>/dev/null; then cat "$dir/server.log" >&2; exit 1; fi
  sleep 0.1
done

status=0
"$bin/load-connections" --url "http://127.0.0.1:$port" --token "$token" "$@" || status=$?
if [ "$status" -ne 0 ]; then
  echo "server log (last lines):" >&2
  tail -n 20 "$dir/server.log" >&2
fi
exit "$status"
