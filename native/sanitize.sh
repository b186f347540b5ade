#!/usr/bin/env bash
# Builds the addon with AddressSanitizer + UndefinedBehaviorSanitizer into
# build/sanitize/ (apart from the normal build) and runs the native-facing tests against
# it. Exits nonzero on any sanitizer report or test failure.
#
# Node itself is not instrumented, so the ASan runtime is preloaded; leak checking is
# off because Node deliberately leaves memory behind at exit.
set -euo pipefail
cd "$(dirname "$0")/.."

out=build/sanitize
rm -rf "$out"
mkdir -p "$out/logs"
chmod 0777 "$out/logs"  # the EACCES test runs a child as nobody, which logs here too

node_include=""
for dir in "$(npm config get nodedir 2>/dev/null)/include/node" \
           "$(dirname "$(dirname "$(command -v node)")")/include/node" \
           "$HOME/.cache/node-gyp/$(node -p 'process.versions.node')/include/node"; do
  if [[ -f "$dir/node_api.h" ]]; then node_include="$dir"; break; fi
done
if [[ -z "$node_include" ]]; then
  echo "sanitize: cannot find Node's headers (node_api.h)" >&2
  exit 2
fi
napi_include="$(node -p "require('node-addon-api').include_dir")"

asan="$(g++ -print-file-name=libasan.so)"
ubsan="$(g++ -print-file-name=libubsan.so)"
if [[ ! -f "$asan" || ! -f "$ubsan" ]]; then
  echo "sanitize: g++ has no libasan/libubsan here" >&2
  exit 2
fi

arch_flags=()
[[ "$(uname -m)" == "x86_64" ]] && arch_flags=(-msse4.2)

echo "sanitize: building $out/ptpvts.node with -fsanitize=address,undefined"
g++ -std=c++17 -shared -fPIC -O1 -g -fno-omit-frame-pointer \
  -fsanitize=address,undefined -fno-sanitize-recover=all \
  -DNAPI_VERSION=8 -DNAPI_CPP_EXCEPTIONS -DNODE_GYP_MODULE_NAME=ptpvts -fexceptions \
  -Wall -Wextra "${arch_flags[@]}" \
  -I"$node_include" -I"$napi_include" \
  native/*.cc -o "$out/ptpvts.node"

export PTPVTS_NATIVE="$PWD/$out/ptpvts.node"
export LD_PRELOAD="$asan $ubsan"
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:log_path=$PWD/$out/logs/asan:allow_user_segv_handler=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$PWD/$out/logs/ubsan"
# Fewer SIGKILL rounds than the normal run: every child starts under ASan.
export PTPVTS_CRASH_ITERATIONS="${PTPVTS_CRASH_ITERATIONS:-60}"

status=0
node node_modules/vitest/vitest.mjs run \
  src/native.test.ts firmware-sim/ssc/features.test.ts src/hotpath src/transport/sgio src/transport/pty test/crash || status=$?

reports=$(find "$out/logs" -type f -size +0 | sort)
if [[ -n "$reports" ]]; then
  echo "sanitize: sanitizer reports:" >&2
  for r in $reports; do echo "== $r" >&2; cat "$r" >&2; done
  exit 1
fi
if [[ $status -ne 0 ]]; then
  echo "sanitize: tests failed under the sanitizers (exit $status)" >&2
  exit "$status"
fi
echo "sanitize: clean (no ASan/UBSan reports, all tests passed)"
