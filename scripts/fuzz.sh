#!/usr/bin/env bash
# Fuzzes the parsers that read what uploaders send (fuzz/, docs/security.md "Hostile input and
# fuzzing"): the roster CSV, the mapping CSV, the zip directory and listing, image sniffing and
# the image stage's header checks and decoders, the PSPA index and its assignment. Each target
# runs for a bounded time; a crash leaves its input in fuzz/artifacts/<target>/ and makes the
# script exit non-zero. Not part of scripts/test.sh (CI): it needs nightly and takes minutes.
#
#   scripts/fuzz.sh [TARGET…]        # default: every target
#
# FUZZ_SECONDS      seconds per target (default 60)
# FUZZ_SANITIZER    none (default: fastest to build and run) or address
# FUZZ_TOOLCHAIN    default nightly
# FUZZ_JOBS         fuzzing processes per target (default 1; more uses libFuzzer's -fork)
# FUZZ_SEED         1 (default) seeds each target's corpus from scripts/hostile-corpus.sh's files
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

seconds="${FUZZ_SECONDS:-60}"
sanitizer="${FUZZ_SANITIZER:-none}"
toolchain="${FUZZ_TOOLCHAIN:-nightly}"
jobs="${FUZZ_JOBS:-1}"
seed="${FUZZ_SEED:-1}"

if ! rustup toolchain list | grep -q "^$toolchain"; then
  rustup toolchain install "$toolchain" --profile minimal
fi
if ! cargo "+$toolchain" fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi

root="$PWD"
if [ "$#" -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cd fuzz && cargo "+$toolchain" fuzz list)
fi

# Seeds: the hostile corpus's files of the right kind, small enough to mutate quickly (libFuzzer
# takes the largest seed as its input size limit), plus a few hand-written lines.
seed_dir="$root/fuzz/target/hostile-corpus"
if [ "$seed" = 1 ] && [ ! -d "$seed_dir" ]; then
  scripts/hostile-corpus.sh "$seed_dir" >/dev/null
fi
seeds_for() {
  local target="$1" pattern
  case "$target" in
    roster_csv) pattern='roster.csv' ;;
    mapping_csv) pattern='mapping.csv' ;;
    zip_directory | zip_listing) pattern='*.zip' ;;
    image_sniff | image_process) pattern='files/*' ;;
    *) return 0 ;;
  esac
  [ -d "$seed_dir" ] || return 0
  find "$seed_dir" -path "*/$pattern" -type f -size -64k
}

mkdir -p fuzz/logs
cd fuzz
cargo "+$toolchain" fuzz build -O --sanitizer "$sanitizer"
triple="$(rustc "+$toolchain" -vV | sed -n 's/^host: //p')"

# More than one process: libFuzzer's fork mode, each worker logging to fuzz-N.log.
parallel=()
if [ "$jobs" -gt 1 ]; then
  parallel=(-fork="$jobs")
fi

summary=()
failed=0
for target in "${targets[@]}"; do
  corpus="corpus/$target"
  mkdir -p "$corpus" "artifacts/$target"
  while IFS= read -r file; do
    cp "$file" "$corpus/seed-$(basename "$(dirname "$file")")-$(basename "$file")"
  done < <(seeds_for "$target")
  case "$target" in
    roster_csv)
      printf 'role,email,sis_id,student_number,first_name,last_name,school\nstudent,a@b.c,S1,1,Ada,Lovelace,North\n' >"$corpus/seed-roster"
      ;;
    mapping_csv)
      printf 'S1001,1001.jpg\n"ada@x.org","a b.jpg"\n' >"$corpus/seed-mapping"
      ;;
    pspa_index)
      printf 'SPA\tFirst\tLast\tGrade\tTeacher\tImage\n1001\tAda\tLovelace\t5\tSmith\t0001.jpg\n' >"$corpus/seed-index"
      ;;
    pspa_assign)
      printf 'CD1/0001.jpg\n0002.jpg\0\0CD1/MASTER.TXT\n1001\tAda\tLovelace\t5\tSmith\t0001.jpg\0\0INDEX.TXT\n1002,Grace,Hopper,6,Jones,0002.jpg\n' >"$corpus/seed-assign"
      ;;
  esac
  log="logs/$target.log"
  echo "== $target: ${seconds}s"
  status=0
  # The binary built above, run directly: `cargo fuzz run` would build again whenever a source
  # changed meanwhile, and every target must be the same build.
  "target/$triple/release/$target" "$corpus" -artifact_prefix="artifacts/$target/" \
    -max_total_time="$seconds" -timeout=20 -rss_limit_mb=4096 -print_final_stats=1 \
    "${parallel[@]}" >"$log" 2>&1 || status=$?
  runs=$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -Eo '[0-9]+$' | tail -n 1 || true)
  if [ -z "$runs" ]; then
    runs=$(grep -Eo 'Done [0-9]+ runs' "$log" | grep -Eo '[0-9]+' | tail -n 1 || true)
  fi
  cov=$(grep -Eo 'cov: [0-9]+' "$log" | tail -n 1 | grep -Eo '[0-9]+' || true)
  crashes=$(find "artifacts/$target" -type f | wc -l)
  summary+=("$(printf '%-14s runs %-10s coverage %-6s crash inputs %s (exit %s)' \
    "$target" "${runs:-?}" "${cov:-?}" "$crashes" "$status")")
  if [ "$status" -ne 0 ] || [ "$crashes" -ne 0 ]; then
    failed=1
    echo "   $target failed: see fuzz/$log and fuzz/artifacts/$target/" >&2
  fi
done

echo
printf '%s\n' "${summary[@]}"
exit "$failed"
