#!/bin/sh
# Builds the powerfs daemon: build.sh OUTPUT. Writes OUTPUT atomically so that parallel test
# workers never run a half-written binary.
set -eu
out=${1:?usage: build.sh OUTPUT}
src=$(dirname "$0")/powerfs.c
command -v pkg-config >/dev/null 2>&1 || { echo "pkg-config is not installed" >&2; exit 3; }
pkg-config --exists fuse3 || { echo "libfuse3 development files are missing (apt-get install libfuse3-dev)" >&2; exit 3; }
mkdir -p "$(dirname "$out")"
tmp="$out.$$.tmp"
# shellcheck disable=SC2046
${CC:-cc} -std=gnu11 -O2 -g -Wall -Wextra -Werror -Wno-format-truncation -o "$tmp" "$src" $(pkg-config --cflags --libs fuse3)
mv -f "$tmp" "$out"
