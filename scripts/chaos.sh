#!/usr/bin/env bash
# The chaos run (docs/operations.md, "Chaos"): the distributed stack takes 10,000 photos in 3
# districts while image-processors are killed with kill -9, nats-server and PostgreSQL are
# restarted and the roster service is stopped for 70 s; then the embedded default is killed
# outright mid-batch. Prints, per district, what happened to every file and exits non-zero
# unless nothing was lost, nothing applied twice, every job is final and no outage turned into
# a rejection.
#
#   scripts/chaos.sh [--debug] [chaos flags: --photos N --processor-kills N --nats-restarts N
#                    --postgres-restarts N --roster-outage-secs S --embedded-kills N --help …]
#
# --debug uses a debug build (faster to build, slower to run). Data and logs are kept in a
# temporary directory the run prints (--dir DIR to choose).
set -euo pipefail
cd "$(dirname "$0")/.."

profile=release
if [ "${1:-}" = --debug ]; then
  profile=debug
  shift
fi

scripts/install-deps.sh
source scripts/env.sh
if [ "$profile" = release ]; then
  # The one release build of every binary (the chaos command among them).
  bin=$(scripts/build-release.sh)
else
  cargo build --workspace --bins >&2
  target_dir=$(cargo metadata --format-version 1 --no-deps \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
  bin="$target_dir/debug"
fi
exec "$bin/chaos" --bin-dir "$bin" "$@"
