#!/bin/bash
# A health probe without curl in the image: GET a path on this container's PICTUREDAY_LISTEN port
# and succeed on HTTP 200.   usage: pictureday-probe [/readyz|/healthz]
set -u
path="${1:-/readyz}"
port="${PICTUREDAY_LISTEN##*:}"
port="${port:-8080}"
exec 3<>"/dev/tcp/127.0.0.1/${port}" || exit 1
printf 'GET %s HTTP/1.0\r\nHost: localhost\r\nConnection: close\r\n\r\n' "$path" >&3
IFS=' ' read -r -t 5 _ status _ <&3 || exit 1
[ "$status" = "200" ]
