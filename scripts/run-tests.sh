#!/usr/bin/env bash
# Runs every test suite against an already-built tree and prints one pass/fail summary.
#   BUILD=build/release (default) or build/asan, build/tsan ...
# Suites: GoogleTest unit tests, then pytest (conformance, integration, interop with real peers).
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build/release}
PY=/usr/bin/python3   # Debian's python: python3-pytest and python3-websockets live there
export ROOMCAST_BIN="$PWD/$BUILD/roomcast"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1}

total_pass=0
total_fail=0
total_skip=0
results=()
start=$(date +%s)

# GoogleTest: count from its summary lines.
log=$(mktemp)
echo "== unit tests ($BUILD/unit_tests)"
"$BUILD/unit_tests" --gtest_brief=1 2>&1 | tee "$log" | tail -n 30
rc=${PIPESTATUS[0]}
p=$(grep -oP '^\[  PASSED  \] \K[0-9]+' "$log" | tail -1); p=${p:-0}
f=$(grep -oP '^\[  FAILED  \] \K[0-9]+(?= test)' "$log" | tail -1); f=${f:-0}
if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
results+=("unit tests: $p passed, $f failed")
total_pass=$((total_pass + p)); total_fail=$((total_fail + f))

# Fuzz corpus replay: every libFuzzer target (built with the same compiler and flags) over its
# committed corpus and saved crashers, so a fixed bug stays fixed. One test per target.
targets=$(ls test/fuzz/*_fuzz.cpp 2>/dev/null | sed 's#test/fuzz/##; s#_fuzz.cpp##')
if [ -n "$targets" ]; then
    echo "== fuzz corpus replay ($BUILD/fuzz)"
    p=0; f=0
    for t in $targets; do
        if "$BUILD/fuzz/$t" "test/fuzz/corpus/$t" "test/fuzz/crashers/$t" > "$log" 2>&1; then
            p=$((p + 1))
        else
            f=$((f + 1)); echo "  FAILED: $t"; tail -n 15 "$log"
        fi
    done
    echo "  $p passed, $f failed"
    results+=("fuzz replay: $p passed, $f failed")
    total_pass=$((total_pass + p)); total_fail=$((total_fail + f))
fi

# One pytest session: LABEL then pytest arguments; counts its closing line into the totals.
run_pytest() {
    local label=$1; shift
    echo "== $label"
    $PY -m pytest -q -p no:cacheprovider "$@" 2>&1 | tee "$log" | tail -n 40
    local rc=${PIPESTATUS[0]}
    local line p f e s
    line=$(grep -E '(passed|failed|skipped|error)' "$log" | tail -1)
    p=$(echo "$line" | grep -oP '[0-9]+(?= passed)'); p=${p:-0}
    f=$(echo "$line" | grep -oP '[0-9]+(?= failed)'); f=${f:-0}
    e=$(echo "$line" | grep -oP '[0-9]+(?= error)'); e=${e:-0}
    s=$(echo "$line" | grep -oP '[0-9]+(?= skipped)'); s=${s:-0}
    f=$((f + e))
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
    results+=("$label: $p passed, $f failed, $s skipped")
    total_pass=$((total_pass + p)); total_fail=$((total_fail + f)); total_skip=$((total_skip + s))
}

# pytest: every Python suite in one session.
suites=()
for d in test/conformance test/integration test/interop; do
    ls "$d"/test_*.py >/dev/null 2>&1 && suites+=("$d")
done
[ ${#suites[@]} -gt 0 ] && run_pytest "pytest" "${suites[@]}"

# The conformance suite once more over wss:// (same cases, TLS on the server's --listen port).
if ls test/conformance/test_*.py >/dev/null 2>&1; then
    certs=build/certs
    if bash scripts/gen-cert.sh "$certs" >/dev/null 2>&1; then
        ROOMCAST_TEST_TLS_CA="$PWD/$certs/ca.pem" ROOMCAST_TEST_TLS_CERT="$PWD/$certs/server.pem" \
        ROOMCAST_TEST_TLS_KEY="$PWD/$certs/server-key.pem" run_pytest "conformance over TLS" test/conformance
    else
        echo "  FAILED: scripts/gen-cert.sh"
        results+=("conformance over TLS: 0 passed, 1 failed (no certificate)")
        total_fail=$((total_fail + 1))
    fi
fi
rm -f "$log"

echo
echo "== summary ($(( $(date +%s) - start )) s)"
for r in "${results[@]}"; do echo "  $r"; done
echo "tests: $total_pass passed, $total_fail failed, $total_skip skipped"
[ "$total_fail" -eq 0 ]
