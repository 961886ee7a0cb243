#!/usr/bin/env bash
# The one release build every command uses (scripts/run.sh, deploy/local/up.sh, the
# benchmarks): every binary of the workspace, so features unify the same way each time and one
# build serves them all. Prints the directory the binaries are in.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --workspace --bins >&2
target_dir=$(cargo metadata --format-version 1 --no-deps \
  | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
echo "$target_dir/release"
