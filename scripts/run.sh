#!/usr/bin/env bash
# Sets up what is missing, builds, and runs the embedded default: every service in one process,
# SQLite and photos under ./data, and a nats-server it starts itself.
# Extra arguments go to `pictureday serve` (e.g. --listen 0.0.0.0:8080 --data-dir /srv/pictureday).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
source scripts/env.sh
bin=$(scripts/build-release.sh)
exec "$bin/pictureday" serve "$@"
