#!/usr/bin/env bash
# Runs the fuzz targets built by test/fuzz/fuzz.mk (use `make fuzz`, `make fuzz-smoke`, `make fuzz-replay`).
#   scripts/fuzz.sh run BIN_DIR SECONDS TARGET...   libFuzzer, FUZZ_JOBS targets at a time (default: nproc)
#   scripts/fuzz.sh replay BIN_DIR TARGET...        replay builds over corpus + crashers; stops at a failure
# run: seeds come from test/fuzz/corpus/<target>/ (read only); new inputs go to build/fuzz/corpus-<target>/,
# crashes to build/fuzz/crashes/<target>-*, logs to build/fuzz/logs/<target>.log. Exit 1 if anything crashed.
set -uo pipefail
cd "$(dirname "$0")/.."

mode=${1:?usage: fuzz.sh run|replay BIN_DIR ...}
bin_dir=${2:?missing BIN_DIR}
shift 2

if [ "$mode" = replay ]; then
    # Every target runs even after a failure, so one report names every broken target.
    start=$(date +%s%N)
    failed=()
    for t in "$@"; do
        "$bin_dir/$t" "test/fuzz/corpus/$t" "test/fuzz/crashers/$t" || failed+=("$t")
    done
    ms=$(( ($(date +%s%N) - start) / 1000000 ))
    if [ ${#failed[@]} -gt 0 ]; then
        echo "fuzz-replay: FAILED: ${failed[*]} (failing input named above; rerun: $bin_dir/<target> <file>)"
        exit 1
    fi
    echo "fuzz-replay: $# targets ok in $ms ms"
    exit 0
fi

[ "$mode" = run ] || { echo "fuzz.sh: unknown mode '$mode'" >&2; exit 2; }
seconds=${1:?missing SECONDS}
shift
jobs=${FUZZ_JOBS:-$(nproc)}
out=build/fuzz
mkdir -p "$out/logs" "$out/crashes"

# Per-target input size limits: heads up to past the 8 KiB default limit; frames with 16-bit lengths.
max_len() {
    case $1 in
        http_request|handshake) echo 10000 ;;
        frame_parser) echo 20000 ;;
        *) echo 4096 ;;
    esac
}

run_one() {
    local t=$1
    local corpus="$out/corpus-$t"
    local dict=()
    mkdir -p "$corpus"
    [ -f "test/fuzz/$t.dict" ] && dict=(-dict="test/fuzz/$t.dict")
    "$out/$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len="$(max_len "$t")" \
        -print_final_stats=1 -artifact_prefix="$out/crashes/$t-" "${dict[@]}" \
        "$corpus" "test/fuzz/corpus/$t" >"$out/logs/$t.log" 2>&1
    echo $? >"$out/logs/$t.rc"
}

start=$(date +%s)
echo "fuzz: ${#@} targets, ${seconds} s each, $jobs at a time; logs in $out/logs/"
running=0
for t in "$@"; do
    [ -x "$out/$t" ] || { echo "fuzz: $out/$t not built" >&2; exit 2; }
    run_one "$t" &
    running=$((running + 1))
    if [ "$running" -ge "$jobs" ]; then
        wait -n
        running=$((running - 1))
    fi
done
wait

# Summary from each log: executions, edge coverage at start and end, corpus size, and the verdict.
failed=0
printf '\n%-20s %12s %9s %16s %10s  %s\n' target execs exec/s "cov (new)" corpus result
for t in "$@"; do
    log="$out/logs/$t.log"
    rc=$(cat "$out/logs/$t.rc" 2>/dev/null || echo 1)
    execs=$(grep -oP 'stat::number_of_executed_units: \K[0-9]+' "$log" | tail -1)
    rate=$(grep -oP 'exec/s: \K[0-9]+' "$log" | tail -1)
    cov0=$(grep -oP 'INITED cov: \K[0-9]+' "$log" | head -1)
    cov1=$(grep -oP '^#[0-9]+.*? cov: \K[0-9]+' "$log" | tail -1)
    corp=$(grep -oP 'corp: \K[0-9]+/[0-9]+[a-zA-Z]*' "$log" | tail -1)
    if [ "$rc" -eq 0 ]; then
        result=ok
    else
        failed=1
        artifact=$(grep -oP 'Test unit written to \K\S+' "$log" | tail -1)
        why=$(grep -m1 -oP '(ERROR: AddressSanitizer: \S+|runtime error: .*|FUZZ_CHECK\(.*|ERROR: libFuzzer: \S+( \S+)?)' "$log")
        result="CRASH ${why:0:120} -> ${artifact:-see $log}"
        [ -n "$why" ] || result="CRASH exit $rc -> ${artifact:-see $log}"
    fi
    printf '%-20s %12s %9s %16s %10s  %s\n' "$t" "${execs:-?}" "${rate:-?}" \
        "${cov1:-?} (+$(( ${cov1:-0} - ${cov0:-0} )))" "${corp:-?}" "$result"
done
echo "fuzz: done in $(( $(date +%s) - start )) s"
exit $failed
