#!/usr/bin/env bash
# Sets up what is missing and runs every test: unit tests of each crate and the end-to-end suite
# (real nats-server, HTTP; every scenario on SQLite + local disk and on PostgreSQL + S3, whose
# servers the tests start on loopback), and checks of the deployment files. This is what CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
source scripts/env.sh
cargo fmt --all -- --check
# Deployment files: YAML lint, compose schema, helm values schema, rendered manifests.
scripts/check-deploy.sh
# nextest runs every test in its own process, which the tests rely on: each installs its own
# OpenTelemetry exporters, and the process tests start and kill services of their own.
if ! cargo nextest --version >/dev/null 2>&1; then
  echo "cargo-nextest is required (cargo install cargo-nextest --locked)" >&2
  exit 1
fi
cargo nextest run --workspace --no-fail-fast
