#!/usr/bin/env bash
# TLS vs plain and deflate on vs off, roomcast --threads 1 pinned to SERVER_CPU, roomcast-bench pinned to
# CLIENT_CPU; each pair interleaved ROUNDS times; prints a markdown table of medians and ratios.
#   bench/load/tls-deflate-bench.sh [ROUNDS=3] [DURATION=5] [OUT=/tmp/tls-deflate]
# env: ONLY="tls deflate" (which pairs), INFLATE_SAMPLE=10 (deflate pair: subscribers inflate 1 in N compressed
# messages, so the client's inflation -- 1000x the server's compression -- does not cap the rate; 1 = all),
# SERVER_CPU=0 CLIENT_CPU=1 WARMUP=1 CERTS=/tmp/bench-certs
# Needs build/release/roomcast and build/release/roomcast-bench, openssl (scripts/gen-cert.sh) and curl.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
ROUNDS=${1:-3}
DURATION=${2:-5}
OUT=${3:-/tmp/tls-deflate}
WARMUP=${WARMUP:-1}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
CERTS=${CERTS:-/tmp/bench-certs}
ONLY=${ONLY:-tls deflate}
INFLATE_SAMPLE=${INFLATE_SAMPLE:-10}
SRV=build/release/roomcast
GEN=build/release/roomcast-bench
mkdir -p "$OUT"
: >"$OUT/runs.jsonl"
scripts/gen-cert.sh "$CERTS" >/dev/null

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
start() {  # name port args...
    local name=$1 port=$2
    shift 2
    taskset -c "$SERVER_CPU" "$SRV" --threads 1 --listen "127.0.0.1:$port" --log-level warn "$@" >"$OUT/$name.log" 2>&1 &
    pids+=($!)
    eval "PID_$name=$!"
}
start plain 18080 --deflate off
start tls 18443 --deflate off --tls-cert "$CERTS/server.pem" --tls-key "$CERTS/server-key.pem"
start dflon 18081 --deflate on
start dfloff 18082 --deflate off
sleep 0.5
for p in 18080 18081 18082; do curl -sf "127.0.0.1:$p/health" >/dev/null || { echo "server on $p not up" >&2; exit 1; }; done

metric() { curl -s "127.0.0.1:$1/metrics" | awk -v m="$2" '$1 == m { print $2 }'; }

run() {  # scenario variant server-name url args...
    local sc=$1 var=$2 srv=$3 url=$4
    shift 4
    local pid_var="PID_$srv" port=${url##*:}
    port=${port%%/*}
    local before_shared="" before_pub=""
    if [[ $srv == dfl* ]]; then
        before_shared=$(metric "$port" roomcast_deflate_shared_frames_total)
        before_pub=$(metric "$port" roomcast_published_total)
    fi
    local load
    load=$(cut -d' ' -f1 /proc/loadavg)
    local line
    line=$("$GEN" "$@" --url "$url" --duration "$DURATION" --warmup "$WARMUP" --pin "$CLIENT_CPU" \
        --server-pid "${!pid_var}" --quiet --label "$sc/$var" | grep '^JSON ' | cut -c6-)
    local extra="\"load1\":$load"
    if [[ $srv == dfl* ]]; then
        local s1 p1
        s1=$(metric "$port" roomcast_deflate_shared_frames_total)
        p1=$(metric "$port" roomcast_published_total)
        extra="$extra,\"shared_frames\":$((s1 - before_shared)),\"server_published\":$((p1 - before_pub))"
    fi
    echo "{\"scenario\":\"$sc\",\"variant\":\"$var\",$extra,\"r\":$line}" >>"$OUT/runs.jsonl"
    echo "  $sc/$var: $(echo "$line" | python3 -c 'import json,sys; r=json.load(sys.stdin); print("%.0f/s, %.0f per server CPU-s, server core %.0f%%, client %.0f%%, errors %d" % (r["per_s"], r["per_server_cpu_s"], 100*r["server_cpu_util"], 100*r["client_cpu_s"]/r["duration_s"], r["errors_total"]))')" >&2
}

ECHO=(echo --connections 100 --depth 4 --size 1024 --binary)
B64=(broadcast --subscribers 1000 --publishers 1 --size 64 --binary)
B1K=(broadcast --subscribers 1000 --publishers 1 --size 1024 --payload json)
echo "load at start: $(uptime)" | tee "$OUT/uptime.txt" >&2
for ((round = 1; round <= ROUNDS; round++)); do
    echo "round $round/$ROUNDS" >&2
    # Alternate which side of each pair goes first.
    if ((round % 2)); then A=plain; B=tls; else A=tls; B=plain; fi
    [[ " $ONLY " == *" tls "* ]] || A= B=
    for v in $A $B; do
        [[ $v == plain ]] && u=ws://127.0.0.1:18080 || u=wss://127.0.0.1:18443
        run echo1k_d4 "$v" "$v" "$u/echo" "${ECHO[@]}"
    done
    for v in $A $B; do
        [[ $v == plain ]] && u=ws://127.0.0.1:18080 || u=wss://127.0.0.1:18443
        run bcast1000_64 "$v" "$v" "$u" "${B64[@]}"
    done
    for v in $A $B; do
        [[ $v == plain ]] && u=ws://127.0.0.1:18080 || u=wss://127.0.0.1:18443
        run bcast1000_1k_json "$v" "$v" "$u" "${B1K[@]}"
    done
    if ((round % 2)); then A=dflon; B=dfloff; else A=dfloff; B=dflon; fi
    [[ " $ONLY " == *" deflate "* ]] || A= B=
    for v in $A $B; do
        [[ $v == dflon ]] && u=ws://127.0.0.1:18081 || u=ws://127.0.0.1:18082
        run bcast1000_1k_json_deflate "$v" "$v" "$u" "${B1K[@]}" --deflate --inflate-sample "$INFLATE_SAMPLE"
    done
done
echo "load at end: $(uptime)" | tee -a "$OUT/uptime.txt" >&2

python3 - "$OUT/runs.jsonl" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
def med(sc, var, f):
    v = [f(r) for r in rows if r['scenario'] == sc and r['variant'] == var]
    return statistics.median(v) if v else float('nan'), v
def k(x):
    return f"{x/1e6:.2f}M" if x >= 1e6 else f"{x/1e3:.1f}k" if x >= 1e4 else f"{x:.0f}"
pairs = [('echo1k_d4', 'tls', 'plain', 'msgs'), ('bcast1000_64', 'tls', 'plain', 'deliveries'),
         ('bcast1000_1k_json', 'tls', 'plain', 'deliveries'), ('bcast1000_1k_json_deflate', 'dflon', 'dfloff', 'deliveries')]
print('| scenario | variant | work/s | work per server CPU-s (runs) | server core | client core | p50 us | payload/wire | errors |')
print('|---|---|---|---|---|---|---|---|---|')
ratios = []
for sc, a, b, noun in pairs:
    if not any(r['scenario'] == sc for r in rows): continue
    for var in (b, a):
        pc, pcs = med(sc, var, lambda r: r['r']['per_server_cpu_s'])
        ps, _ = med(sc, var, lambda r: r['r']['per_s'])
        util, _ = med(sc, var, lambda r: r['r']['server_cpu_util'])
        cl, _ = med(sc, var, lambda r: r['r']['client_cpu_s'] / r['r']['duration_s'])
        p50, _ = med(sc, var, lambda r: r['r']['latency_us']['p50'])
        wr, _ = med(sc, var, lambda r: r['r']['wire_ratio'])
        err = sum(r['r']['errors_total'] for r in rows if r['scenario'] == sc and r['variant'] == var)
        print(f"| {sc} | {var} | {k(ps)} {noun} | **{k(pc)}** ({', '.join(k(x) for x in pcs)}) | {100*util:.0f}% | {100*cl:.0f}% | {p50:.0f} | {wr:.2f} | {err} |")
    ra = med(sc, a, lambda r: r['r']['per_server_cpu_s'])[0] / med(sc, b, lambda r: r['r']['per_server_cpu_s'])[0]
    rr = med(sc, a, lambda r: r['r']['per_s'])[0] / med(sc, b, lambda r: r['r']['per_s'])[0]
    ratios.append(f"| {sc} | {a}/{b} | {ra:.2f} | {rr:.2f} |")
print('\n| scenario | ratio | per server CPU-s | work/s |\n|---|---|---|---|')
print('\n'.join(ratios))
print('\ndeflate runs: shared compressed frames vs messages published (server counters, whole run incl. warmup)')
for r in rows:
    if 'shared_frames' in r:
        print(f"  {r['variant']}: shared_frames {r['shared_frames']}  published {r['server_published']}  "
              f"deflate agreed on {r['r']['deflate_conns']} conns, compressed msgs received {r['r']['compressed_msgs']} "
              f"(inflated 1 in {r['r']['inflate_sample']}), gaps {r['r']['gaps']}, load1 {r['load1']}")
print('load1 per run:', ' '.join(str(r['load1']) for r in rows))
EOF
