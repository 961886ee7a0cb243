#!/usr/bin/env bash
# Installs the comparison tools used by `imaging-bench` (the image stage benchmark):
#   - vipsthumbnail, from Debian's libvips-tools (apt)
#   - sharp, from npm, into shared/imaging/bench/node_modules (git-ignored)
# Idempotent: anything already present is left alone. Failures are reported, not fatal:
# the benchmark runs without whatever could not be installed and says what it skipped.
set -uo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bench_dir="$repo_root/shared/imaging/bench"
status=0

sudo_cmd=()
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then
    sudo_cmd=(sudo)
fi

if command -v vipsthumbnail >/dev/null 2>&1; then
    echo "bench-deps: vipsthumbnail already installed ($(vips --version 2>/dev/null || echo unknown version))"
elif command -v apt-get >/dev/null 2>&1; then
    echo "bench-deps: installing libvips-tools"
    if ! { "${sudo_cmd[@]}" apt-get update -qq && \
           DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends libvips-tools; }; then
        echo "bench-deps: could not install libvips-tools; the benchmark will skip vipsthumbnail" >&2
        status=1
    fi
else
    echo "bench-deps: no apt-get; install libvips-tools (vipsthumbnail) yourself" >&2
    status=1
fi

if ! command -v npm >/dev/null 2>&1; then
    echo "bench-deps: npm not found; the benchmark will skip sharp" >&2
    status=1
elif [ -d "$bench_dir/node_modules/sharp" ] && \
     (cd "$bench_dir" && node -e 'require("sharp")' >/dev/null 2>&1); then
    echo "bench-deps: sharp already installed ($(cd "$bench_dir" && node -p 'require("sharp").versions.sharp'))"
else
    echo "bench-deps: installing sharp into $bench_dir/node_modules"
    mkdir -p "$bench_dir"
    if ! (cd "$bench_dir" && npm install --no-save --no-package-lock --no-audit --no-fund sharp >/dev/null); then
        echo "bench-deps: could not install sharp; the benchmark will skip it" >&2
        status=1
    fi
fi

exit "$status"
