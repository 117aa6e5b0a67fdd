#!/usr/bin/env bash
# Installs what roomcast needs to build, test and benchmark on Debian 12. Idempotent and quiet when
# everything is already there. Set ROOMCAST_SETUP_SKIP=1 to skip (e.g. on a non-Debian machine).
set -euo pipefail
[ "${ROOMCAST_SETUP_SKIP:-0}" = 1 ] && exit 0
cd "$(dirname "$0")/.."

# Build: compiler, OpenSSL, zlib, liburing, GoogleTest, Google Benchmark, clang (fuzzing).
# Tests: pytest and websockets (Python peers), Node.js + npm (the `ws` peer), Chromium (browser peer).
# Bench: Boost (Beast peer), gnuplot (plots), perf.
packages=(g++ make pkg-config libssl-dev zlib1g-dev liburing-dev libgtest-dev libbenchmark-dev clang libclang-rt-14-dev
          python3 python3-pytest python3-websockets chromium libboost-dev gnuplot-nox
          openssl curl procps iproute2)
# Node.js: machines may already have it (with npm) from another source; Debian's npm would conflict.
command -v node >/dev/null 2>&1 || packages+=(nodejs)
command -v npm >/dev/null 2>&1 || packages+=(npm)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO=sudo
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm packages for the interop tests and the Node peer (node_modules are not committed).
for dir in test/interop/node bench/peers/node_ws; do
    if [ -f "$dir/package.json" ] && [ ! -d "$dir/node_modules" ]; then
        echo "setup: npm install in $dir"
        (cd "$dir" && npm install --no-audit --no-fund --silent >/dev/null)
    fi
done
exit 0
