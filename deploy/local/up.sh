#!/usr/bin/env bash
# The distributed topology on one machine: nats-server (JetStream), PostgreSQL, an S3 server
# (s3s-fs) and every service as its own process, with N image-processors sharing one durable
# consumer. Everything runs in the background; deploy/local/down.sh stops it.
#
#   deploy/local/up.sh [--image-processors N] [--dir DIR] [--debug]
#
# DIR (default .local-stack/ in the checkout) holds the data, the logs, the settings files
# (settings/<service>.env, each with only what that service uses) and the pids. Ports
# (loopback): the whole API on 8080 (the gateway); behind it ingest 8081, roster 8082,
# reporting 8083; matcher 8084, image-processors 8090.., NATS 4222 (monitoring 8222),
# PostgreSQL 5433, S3 9000.
# PICTUREDAY_LOCAL_PORT_BASE (default 8080) moves the services' ports.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$(pwd)

processors=3
dir="$repo/.local-stack"
profile=release
while [ $# -gt 0 ]; do
  case "$1" in
    --image-processors) processors="$2"; shift 2 ;;
    --dir) dir="$2"; shift 2 ;;
    --debug) profile=debug; shift ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
if ! [[ "$processors" =~ ^[1-9][0-9]*$ ]]; then
  echo "--image-processors must be a positive number, not '$processors'" >&2
  exit 2
fi
base=${PICTUREDAY_LOCAL_PORT_BASE:-8080}
nats_port=${PICTUREDAY_LOCAL_NATS_PORT:-4222}
pg_port=${PICTUREDAY_LOCAL_PG_PORT:-5433}
s3_port=${PICTUREDAY_LOCAL_S3_PORT:-9000}

if [ -f "$dir/pids" ] && grep -q . "$dir/pids"; then
  echo "A stack is already running from $dir (deploy/local/down.sh stops it)." >&2
  exit 1
fi

scripts/install-deps.sh
source scripts/env.sh
if [ "$profile" = release ]; then
  # The same build as scripts/run.sh and the benchmarks, so none of them rebuilds for another.
  bin=$(scripts/build-release.sh)
else
  cargo build --workspace --bins
  target_dir=$(cargo metadata --format-version 1 --no-deps \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
  bin="$target_dir/debug"
fi

mkdir -p "$dir"/{logs,nats,s3/pictureday,spool,postgres}
dir=$(cd "$dir" && pwd)
: > "$dir/pids"

started() { echo "$1 $2" >> "$dir/pids"; }

wait_for_port() { # name port
  for _ in $(seq 1 200); do
    if (echo > "/dev/tcp/127.0.0.1/$2") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "$1 did not open port $2; see $dir/logs/$1.log" >&2
  exit 1
}

wait_ready() { # name port
  for _ in $(seq 1 600); do
    if python3 - "$2" <<'PY' 2>/dev/null
import sys, urllib.request
urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/readyz", timeout=1)
PY
    then return 0; fi
    sleep 0.1
  done
  echo "$1 did not become ready; see $dir/logs/$1.log" >&2
  exit 1
}

# NATS with JetStream, its store in DIR/nats; a single node syncs every write before it
# acknowledges it (there is no replica to recover a write from). Clients need the token made at
# the first start: no other local process reads the districts' events or forges them.
nats_token_file="$dir/nats-token"
if [ ! -f "$nats_token_file" ]; then
  (umask 077; python3 -c 'import secrets; print(secrets.token_hex(32))' > "$nats_token_file")
fi
nats_token=$(cat "$nats_token_file")
(umask 077; : > "$dir/nats.conf")
cat > "$dir/nats.conf" <<NATS
server_name: pictureday-local
listen: "127.0.0.1:$nats_port"
http_port: $((nats_port + 4000))
authorization {
  token: "$nats_token"
}
jetstream {
  store_dir: "$dir/nats"
  sync_interval: always
}
NATS
nats-server --config "$dir/nats.conf" > "$dir/logs/nats.log" 2>&1 &
started nats $!
wait_for_port nats "$nats_port"

# PostgreSQL refuses to run as root: then it runs as the postgres user, in directories it owns.
pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
as_pg=()
if [ "$(id -u)" -eq 0 ]; then
  chown postgres: "$dir/postgres"
  as_pg=(runuser -u postgres --)
fi
if [ ! -f "$dir/postgres/data/PG_VERSION" ]; then
  "${as_pg[@]}" "$pg_bin/initdb" -D "$dir/postgres/data" -A trust -U postgres -E UTF8 \
    --no-locale > "$dir/logs/initdb.log"
fi
"${as_pg[@]}" "$pg_bin/postgres" -D "$dir/postgres/data" -p "$pg_port" -h 127.0.0.1 \
  -k "$dir/postgres" > "$dir/logs/postgres.log" 2>&1 &
started postgres $!
wait_for_port postgres "$pg_port"
for _ in $(seq 1 100); do
  "$pg_bin/pg_isready" -h 127.0.0.1 -p "$pg_port" -q && break
  sleep 0.1
done
if ! "$pg_bin/psql" -h 127.0.0.1 -p "$pg_port" -U postgres -tAc \
  "SELECT 1 FROM pg_database WHERE datname = 'pictureday'" | grep -q 1; then
  "$pg_bin/createdb" -h 127.0.0.1 -p "$pg_port" -U postgres pictureday
fi

# S3: s3s-fs keeps the bucket `pictureday` as a directory.
s3_key=pictureday-local
s3_secret_file="$dir/s3-secret"
[ -f "$s3_secret_file" ] || python3 -c 'import secrets; print(secrets.token_hex(24))' > "$s3_secret_file"
s3_secret=$(cat "$s3_secret_file")
.tools/bin/s3s-fs --host 127.0.0.1 --port "$s3_port" --access-key "$s3_key" \
  --secret-key "$s3_secret" "$dir/s3" > "$dir/logs/s3.log" 2>&1 &
started s3 $!
wait_for_port s3 "$s3_port"

token_file="$dir/operator-token"
[ -f "$token_file" ] || python3 -c 'import secrets; print(secrets.token_urlsafe(32))' > "$token_file"
chmod 600 "$token_file" "$s3_secret_file"

# A settings file for each service with only what it uses (flags and the environment would
# override it): the matcher gets no database and no storage, the image-processors no database.
mkdir -p "$dir/settings"
settings_file() { # name group...
  local file="$dir/settings/$1.env"
  shift
  : > "$file"
  chmod 600 "$file"
  echo "NATS_URL=nats://$nats_token@127.0.0.1:$nats_port" >> "$file"
  for group in "$@"; do
    case "$group" in
      database) echo "DATABASE_URL=postgres://postgres@127.0.0.1:$pg_port/pictureday" >> "$file" ;;
      storage) printf 'PICTUREDAY_STORAGE=s3://pictureday/photos\nPICTUREDAY_S3_FORCE_PATH_STYLE=true\n' >> "$file" ;;
      token) echo "PICTUREDAY_OPERATOR_TOKEN=$(cat "$token_file")" >> "$file" ;;
    esac
  done
}
settings_file roster database storage token
settings_file ingest database storage token
# The SFTP drop folders (docs/sftp.md) beside the API ports: base + 22.
echo "PICTUREDAY_SFTP_LISTEN=127.0.0.1:$((base + 22))" >> "$dir/settings/ingest.env"
settings_file reporting database token
settings_file matcher
settings_file image-processor storage

run_service() { # name binary port settings
  local name=$1 binary=$2 port=$3 settings=$4
  mkdir -p "$dir/spool/$name"
  PICTUREDAY_CONFIG="$dir/settings/$settings.env" \
  PICTUREDAY_LISTEN="127.0.0.1:$port" \
  PICTUREDAY_SPOOL_DIR="$dir/spool/$name" \
  PICTUREDAY_INSTANCE="$name" \
  AWS_ENDPOINT_URL="http://127.0.0.1:$s3_port" \
  AWS_REGION=us-east-1 \
  AWS_ACCESS_KEY_ID="$s3_key" \
  AWS_SECRET_ACCESS_KEY="$s3_secret" \
    "$bin/$binary" > "$dir/logs/$name.log" 2>&1 &
  started "$name" $!
}

# roster first: the matcher asks it.
run_service roster pictureday-roster $((base + 2)) roster
wait_ready roster $((base + 2))
run_service ingest pictureday-ingest $((base + 1)) ingest
run_service reporting pictureday-reporting $((base + 3)) reporting
run_service matcher pictureday-matcher $((base + 4)) matcher
for n in $(seq 0 $((processors - 1))); do
  run_service "image-processor-$n" pictureday-image-processor $((base + 10 + n)) image-processor
done
wait_ready ingest $((base + 1))
wait_ready reporting $((base + 3))
PICTUREDAY_LISTEN="127.0.0.1:$base" \
PICTUREDAY_INGEST_URL="http://127.0.0.1:$((base + 1))" \
PICTUREDAY_ROSTER_URL="http://127.0.0.1:$((base + 2))" \
PICTUREDAY_REPORTING_URL="http://127.0.0.1:$((base + 3))" \
PICTUREDAY_OPERATOR_TOKEN="$(cat "$token_file")" \
  "$bin/pictureday" gateway > "$dir/logs/gateway.log" 2>&1 &
started gateway $!
wait_ready gateway "$base"
wait_ready matcher $((base + 4))
for n in $(seq 0 $((processors - 1))); do
  wait_ready "image-processor-$n" $((base + 10 + n))
done

cat <<MSG
Pictureday is running as separate processes ($processors image-processors), data in $dir.
  API          http://127.0.0.1:$base   (the gateway, in front of:)
  Console      http://127.0.0.1:$base/console   (sign in with the operator token or a district's)
    ingest     http://127.0.0.1:$((base + 1))   (imports)
  SFTP         sftp -P $((base + 22)) <account>@127.0.0.1   (ingest's drop folders)
    roster     http://127.0.0.1:$((base + 2))   (districts, tokens, people, photos, reports, applying previews)
    reporting  http://127.0.0.1:$((base + 3))   (jobs and their logs)
  NATS         nats://127.0.0.1:$nats_port (monitoring http://127.0.0.1:$((nats_port + 4000)))
  PostgreSQL   postgres://postgres@127.0.0.1:$pg_port/pictureday
  S3           http://127.0.0.1:$s3_port (bucket pictureday)
Operator token: $(cat "$token_file")
Logs: $dir/logs/   Stop: deploy/local/down.sh${dir:+ --dir $dir}
MSG
