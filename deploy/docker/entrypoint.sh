#!/bin/sh
# Runs the image's binary (chosen at build time by SERVICE). The launcher gets `serve` when no
# arguments are given; arguments otherwise go to the binary unchanged.
set -eu
case "${PICTUREDAY_SERVICE:?PICTUREDAY_SERVICE is not set}" in
  pictureday)
    if [ "$#" -eq 0 ]; then set -- serve; fi
    exec /usr/local/bin/pictureday "$@"
    ;;
  *)
    exec "/usr/local/bin/pictureday-${PICTUREDAY_SERVICE}" "$@"
    ;;
esac
