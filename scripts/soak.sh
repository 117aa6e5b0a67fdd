#!/usr/bin/env bash
# Bounded soak test (issue 7 "Soak"): the ASan+UBSan server under about 60 s of mixed load (connection
# churn and resets, rooms on every reactor, slow readers, disconnects mid-fan-out, deflate echo), then
# RSS back within bound, /health and /metrics at 0 connections, SIGTERM exit 0, no sanitizer report.
# `make soak` builds what it needs and runs this; details and the pass criteria are in test/soak/soak.py.
#   scripts/soak.sh [soak.py flags, e.g. --seed N --rss-factor 2 --rss-slack-mib 8]
#   env: SOAK_SECONDS (60), ROOMCAST_BIN (build/asan/roomcast),
#        SOAK_BENCH (build/release/roomcast-bench; empty = Python load only)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${ROOMCAST_BIN:-build/asan/roomcast}
BENCH=${SOAK_BENCH-build/release/roomcast-bench}
PY=/usr/bin/python3   # Debian's python: python3-websockets lives there
[ -x "$BIN" ] || { echo "soak: $BIN not built (make SANITIZE=address)" >&2; exit 2; }
if [ -n "$BENCH" ] && [ ! -x "$BENCH" ]; then
    echo "soak: $BENCH not built (make); running without it" >&2
    BENCH=""
fi
# A 16 MiB quarantine (default 256 MiB) so that RssAnon measures the server's memory, not ASan's pool
# of freed blocks; use-after-free is still caught within the last 16 MiB of frees. LSan runs at exit.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:halt_on_error=1:abort_on_error=0:quarantine_size_mb=16}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
ulimit -n 8192 2>/dev/null || true
exec "$PY" test/soak/soak.py --bin "$BIN" ${BENCH:+--bench "$BENCH"} --seconds "${SOAK_SECONDS:-60}" "$@"
