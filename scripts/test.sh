#!/usr/bin/env bash
# Sets up what is missing and runs every test: unit tests of each crate and the end-to-end suite
# (real nats-server, HTTP; every scenario on SQLite + local disk and on PostgreSQL + S3, whose
# servers the tests start on loopback), and checks of the deployment files. This is what CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo fmt --all -- --check
# Deployment files: YAML lint, compose schema, helm values schema, rendered manifests.
scripts/check-deploy.sh
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast
else
  cargo test --workspace --no-fail-fast
fi
