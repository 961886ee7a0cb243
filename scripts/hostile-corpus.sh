#!/usr/bin/env bash
# Writes the hostile-input corpus (tests/corpus.rs) to DIR (default ./hostile-corpus): one folder
# per case with the files it sends (zips, images named .jpg that are not, bombs, CSVs) and a
# README.txt saying how to send it and exactly what Pictureday must answer. Generated, never
# committed: the end-to-end test (tests/e2e/corpus.rs) builds the same cases in memory.
#
#   scripts/hostile-corpus.sh [DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
dir="${1:-hostile-corpus}"
cargo run --quiet -p pictureday-tests --bin hostile-corpus -- "$dir"
