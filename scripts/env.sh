# Sourced by the scripts that run Pictureday or its tests: the tools scripts/install-deps.sh
# installed into .tools/bin (nats-server, s3s-fs) come first on PATH.
tools_bin="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/.tools/bin"
case ":$PATH:" in
  *":$tools_bin:"*) ;;
  *) export PATH="$tools_bin:$PATH" ;;
esac
