#!/usr/bin/env bash
# Installs what Pictureday needs to build, run and test, from Debian's packages. Idempotent:
# packages already present are left alone, and nothing is fetched when nothing is missing.
#   nats-server  the message bus (the embedded default starts its own)
#   mold         a fast linker (.cargo/config.toml uses it)
#   cmake nasm   build libjpeg-turbo (the JPEG fast path) from the turbojpeg crate's source
set -euo pipefail

packages=(nats-server mold cmake nasm)

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
