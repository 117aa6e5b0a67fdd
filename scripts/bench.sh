#!/usr/bin/env bash
# Side-by-side benchmark: roomcast against comparison peers on loopback, same scenarios, interleaved rounds.
#
#   scripts/bench.sh                 3 rounds, 5 s per scenario (about 12 minutes)
#   scripts/bench.sh --quick         smoke run: 1 round, 2 s per scenario
#   options: --rounds N  --duration S  --warmup S  --servers "roomcast tcp beast node"
#            --scenarios "idle10k echo16_d16 ..."  --server-cpu N  --client-cpu N  --no-build  --out DIR
#            --peer NAME=COMMAND   one more server to compare, built by you outside this repository (e.g. a
#                                  uWebSockets app): COMMAND must serve the beast peer's endpoints below, take
#                                  no port (or listen on port 0) and print "listening on ADDR:PORT"; repeatable
#
# Servers (each single-threaded, pinned with taskset to the server CPU; the load generator is pinned to the
# other CPU):
#   roomcast  build/release/roomcast --threads 1
#   tcp       bench/peers/tcp_echo.cpp: epoll TCP echo, no WebSocket: the loopback ceiling (echo scenarios only,
#             driven with roomcast-bench --raw-tcp, the same framed bytes)
#   beast     bench/peers/beast_echo.cpp: Boost.Beast + Asio, one io_context on one thread
#   node      bench/peers/node_ws/server.mjs: Node `ws`
# A scenario a server does not support (e.g. broadcast before roomcast has rooms) is reported as n/a; a server
# that dies during a scenario is reported as "crash" and restarted for the next one.
#
# Output: bench/results/<date>-<host>.md (table: median (min-max) per figure, ratios roomcast/peer, versions,
# CPU), <date>-<host>.jsonl (every run's JSON line), and PNG plots <date>-<host>-throughput.png and
# <date>-<host>-latency.png (gnuplot). --quick writes <date>-<host>-quick.* instead.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

ROUNDS=3
DURATION=5
WARMUP=1
QUICK=0
BUILD=1
SERVERS="roomcast tcp beast node"
ALL_SCENARIOS="idle10k echo16_d16 echo16_d1 echo1k_d4 echo64k connect bcast1000 bcast100_10k"
SCENARIOS=$ALL_SCENARIOS
SERVER_CPU=0
CLIENT_CPU=1
OUT_DIR=bench/results
EXTRA_NAMES=""
declare -A EXTRA_CMDS=()

die() { echo "bench.sh: $*" >&2; exit 2; }
while [[ $# -gt 0 ]]; do
    case $1 in
    --quick) QUICK=1; ROUNDS=1; DURATION=2; WARMUP=0.5 ;;
    --rounds) ROUNDS=${2:?}; shift ;;
    --duration) DURATION=${2:?}; shift ;;
    --warmup) WARMUP=${2:?}; shift ;;
    --servers) SERVERS=${2:?}; shift ;;
    --scenarios) SCENARIOS=${2:?}; shift ;;
    --server-cpu) SERVER_CPU=${2:?}; shift ;;
    --client-cpu) CLIENT_CPU=${2:?}; shift ;;
    --out) OUT_DIR=${2:?}; shift ;;
    --no-build) BUILD=0 ;;
    --peer)
        spec=${2:?}; shift
        [[ $spec =~ ^([a-z][a-z0-9_]{0,15})=(.+)$ ]] || die "--peer: expected NAME=COMMAND (NAME: a-z0-9_), got '$spec'"
        [[ " roomcast tcp beast node " != *" ${BASH_REMATCH[1]} "* ]] || die "--peer: '${BASH_REMATCH[1]}' is a built-in server"
        EXTRA_NAMES+=" ${BASH_REMATCH[1]}"
        EXTRA_CMDS[${BASH_REMATCH[1]}]=${BASH_REMATCH[2]} ;;
    -h|--help) sed -n '2,26p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
    esac
    shift
done
SERVERS+="$EXTRA_NAMES"  # --peer servers join whatever --servers chose
[[ $ROUNDS =~ ^[1-9][0-9]?$ ]] || die "--rounds: expected 1..99, got '$ROUNDS'"
for s in $SERVERS; do [[ " roomcast tcp beast node $EXTRA_NAMES " == *" $s "* ]] || die "unknown server '$s'"; done
for s in $SCENARIOS; do [[ " $ALL_SCENARIOS " == *" $s "* ]] || die "unknown scenario '$s'"; done
if [[ $(nproc) -lt 2 ]]; then
    echo "bench.sh: warning: one CPU only; server and load generator share it" >&2
    CLIENT_CPU=$SERVER_CPU
fi

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# ---- build and dependencies -------------------------------------------------------------------------------
REL=build/release
ROOMCAST_OK=1
if [[ $BUILD == 1 ]]; then
    log "building roomcast-bench and peers"
    make -j2 --no-print-directory $REL/roomcast-bench peers >/dev/null || die "make roomcast-bench peers failed"
    log "building roomcast"
    if ! make -j2 --no-print-directory $REL/roomcast >/dev/null; then
        log "roomcast does not build: its column will be n/a"
        ROOMCAST_OK=0
    fi
fi
[[ -x $REL/roomcast ]] || ROOMCAST_OK=0
BENCH=$REL/roomcast-bench
[[ -x $BENCH ]] || die "$BENCH missing"
if [[ " $SERVERS " == *" node "* ]]; then
    if [[ ! -d bench/peers/node_ws/node_modules/ws ]]; then
        log "npm install (bench/peers/node_ws)"
        (cd bench/peers/node_ws && npm install --no-audit --no-fund >/dev/null) || die "npm install failed"
    fi
fi
HAVE_GNUPLOT=1
if ! command -v gnuplot >/dev/null; then
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
        log "installing gnuplot-nox"
        apt-get install -y gnuplot-nox >/dev/null 2>&1 || HAVE_GNUPLOT=0
    else
        HAVE_GNUPLOT=0
    fi
fi
command -v python3 >/dev/null || die "python3 is needed for the report"
# 10,000 idle connections: the generator and the servers need more than 10k descriptors.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# ---- servers ------------------------------------------------------------------------------------------------
WORK=$(mktemp -d /tmp/roomcast-bench.XXXXXX)
SERVER_PID=
SERVER_PORT=
cleanup() {
    if [[ -n $SERVER_PID ]]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

server_cmd() {
    case $1 in
    roomcast) echo "$REL/roomcast --listen 127.0.0.1:0 --threads 1" ;;
    tcp) echo "$REL/peer-tcp_echo --listen 127.0.0.1:0" ;;
    beast) echo "$REL/peer-beast_echo --listen 127.0.0.1:0" ;;
    node) echo "node bench/peers/node_ws/server.mjs --listen 127.0.0.1:0" ;;
    *) echo "${EXTRA_CMDS[$1]}" ;;
    esac
}

start_server() {  # NAME -> sets SERVER_PID, SERVER_PORT; returns 1 when it does not come up
    local name=$1 logf=$WORK/$1.log
    : >"$logf"
    # shellcheck disable=SC2046
    taskset -c "$SERVER_CPU" $(server_cmd "$name") >"$logf" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 100); do
        if grep -q 'listening on' "$logf"; then
            SERVER_PORT=$(grep -m1 -o 'listening on [^ ]*' "$logf" | sed 's/.*://')
            return 0
        fi
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    log "$name did not start: $(tail -c 300 "$logf" | tr '\n' ' ')"
    stop_server
    return 1
}

stop_server() {
    [[ -n $SERVER_PID ]] || return 0
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
}

# ---- scenarios --------------------------------------------------------------------------------------------------
supports() {  # SERVER SCENARIO
    case $1 in
    tcp) [[ $2 == echo* ]] ;;
    *) return 0 ;;
    esac
}

scenario_args() {  # SCENARIO -> roomcast-bench arguments
    case $1 in
    idle10k) echo "idle --connections 10000 --concurrency 128" ;;
    echo16_d16) echo "echo --connections 100 --depth 16 --size 16 --binary" ;;
    echo16_d1) echo "echo --connections 100 --depth 1 --size 16 --binary" ;;
    echo1k_d4) echo "echo --connections 100 --depth 4 --size 1024 --binary" ;;
    echo64k) echo "echo --connections 10 --depth 4 --size 65536 --binary" ;;
    connect) echo "connect --concurrency 64 --close clean --source-ips 4" ;;
    bcast1000) echo "broadcast --subscribers 1000 --publishers 1 --size 64 --rate 0 --window 64" ;;
    bcast100_10k) echo "broadcast --subscribers 100 --publishers 1 --size 64 --rate 10000" ;;
    esac
}

RAW=$WORK/results.jsonl
: >"$RAW"
record() {  # SERVER SCENARIO ROUND STATUS [JSON]
    printf '{"server":"%s","scenario":"%s","round":%s,"status":"%s","result":%s}\n' "$1" "$2" "$3" "$4" "${5:-null}" >>"$RAW"
}

run_scenario() {  # SERVER SCENARIO ROUND
    local server=$1 sc=$2 round=$3 out=$WORK/run.out err=$WORK/run.err args extra=""
    args=$(scenario_args "$sc")
    [[ $server == tcp ]] && extra="--raw-tcp"
    local duration=$DURATION warmup=$WARMUP
    [[ $sc == idle10k ]] && { duration=1; warmup=1; }
    # shellcheck disable=SC2086
    if ! "$BENCH" $args $extra --url "ws://127.0.0.1:$SERVER_PORT/echo" --duration "$duration" --warmup "$warmup" \
        --pin "$CLIENT_CPU" --server-pid "$SERVER_PID" --quiet --setup-timeout 30 --label "$server/$sc/$round" \
        >"$out" 2>"$err"; then
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            log "  $server $sc: server died (crash)"
            record "$server" "$sc" "$round" crash
            SERVER_PID=
            return 1
        fi
        log "  $server $sc: n/a ($(tail -n1 "$err"))"
        record "$server" "$sc" "$round" n/a
        return 0
    fi
    local json
    json=$(grep '^JSON ' "$out" | sed 's/^JSON //')
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        log "  $server $sc: server died during the run (crash)"
        record "$server" "$sc" "$round" crash "$json"
        SERVER_PID=
        return 1
    fi
    record "$server" "$sc" "$round" ok "$json"
    python3 - "$sc" "$server" "$json" >&2 <<'EOF'
import json, sys
sc, server, r = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
def h(v):
    for d, s in ((1e9, 'G'), (1e6, 'M'), (1e3, 'k')):
        if abs(v) >= d: return f"{v/d:.2f}{s}"
    return f"{v:.0f}"
lat = r['latency_us']
if sc == 'idle10k':
    msg = f"{r['still_open']} open, {r['rss_per_conn_bytes']:.0f} B RSS per connection"
else:
    msg = (f"{h(r['per_s'])} {r['work']}/s, {h(r['per_server_cpu_s'])} per server CPU-s "
           f"(server {100*r['server_cpu_util']:.0f}% busy), {r['mb_per_s']:.0f} MB/s, p50 {lat['p50']:.0f} us p99 {lat['p99']:.0f} us")
errs = r['errors_total']
print(f"[bench]   {server:8} {sc:13} {msg}" + (f"  ERRORS {errs}" if errs else ""))
EOF
}

# ---- the runs: interleaved rounds ------------------------------------------------------------------------------
START_LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
log "servers: $SERVERS; scenarios: $SCENARIOS; $ROUNDS round(s) of ${DURATION}s (warmup ${WARMUP}s); server CPU $SERVER_CPU, generator CPU $CLIENT_CPU"
# Each scenario runs on every server back to back, each on a freshly started server, and the server order
# rotates from round to round: pairs measured seconds apart, so a machine whose speed drifts (shared hosts,
# VMs) moves both sides of a ratio together; the report's ratios are medians of per-round ratios.
for round in $(seq "$ROUNDS"); do
    read -r -a order <<<"$SERVERS"
    shift_by=$(((round - 1) % ${#order[@]}))
    order=("${order[@]:shift_by}" "${order[@]:0:shift_by}")
    log "round $round/$ROUNDS (server order: ${order[*]})"
    for sc in $SCENARIOS; do
        for server in "${order[@]}"; do
            if [[ $server == roomcast && $ROOMCAST_OK == 0 ]] || ! supports "$server" "$sc"; then
                record "$server" "$sc" "$round" n/a
                continue
            fi
            SERVER_PID=
            if ! start_server "$server"; then record "$server" "$sc" "$round" crash; continue; fi
            run_scenario "$server" "$sc" "$round" || true
            stop_server
        done
    done
done
END_LOAD=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- report -------------------------------------------------------------------------------------------------------
mkdir -p "$OUT_DIR"
STAMP="$(date +%Y-%m-%d)-$(hostname -s)"
[[ $QUICK == 1 ]] && STAMP="$STAMP-quick"
cp "$RAW" "$OUT_DIR/$STAMP.jsonl"
BOOST_VERSION=$(grep -m1 -o 'BOOST_LIB_VERSION "[^"]*"' /usr/include/boost/version.hpp 2>/dev/null | cut -d'"' -f2 | tr _ .)
WS_VERSION=$(node -p "require('./bench/peers/node_ws/node_modules/ws/package.json').version" 2>/dev/null || echo "?")
export BENCH_META
BENCH_META=$(python3 -c 'import json,sys; print(json.dumps(dict(zip(sys.argv[1::2], sys.argv[2::2]))))' \
    date "$(date -u +'%Y-%m-%d %H:%M UTC')" host "$(hostname -s)" \
    cpu "$(lscpu | sed -n 's/^Model name: *//p' | head -1) ($(nproc) CPUs)" kernel "$(uname -r)" \
    gxx "$(g++ --version | head -1)" boost "${BOOST_VERSION:-?}" node "$(node --version 2>/dev/null || echo '?')" \
    ws "$WS_VERSION" commit "$(git rev-parse --short HEAD 2>/dev/null || echo 'no commit')$(git diff --quiet HEAD -- 2>/dev/null || echo ' + local changes')" \
    rounds "$ROUNDS" duration "$DURATION" warmup "$WARMUP" server_cpu "$SERVER_CPU" client_cpu "$CLIENT_CPU" \
    load_start "$START_LOAD" load_end "$END_LOAD" servers "$SERVERS" stamp "$STAMP" gnuplot "$HAVE_GNUPLOT")

python3 - "$RAW" "$OUT_DIR" "$WORK" <<'EOF'
import json, os, statistics, subprocess, sys
raw, out_dir, work = sys.argv[1:4]
meta = json.loads(os.environ['BENCH_META'])
rows = [json.loads(l) for l in open(raw) if l.strip()]
servers = meta['servers'].split()
scen_order = []
for r in rows:
    if r['scenario'] not in scen_order: scen_order.append(r['scenario'])

# (key, label, unit, scale, higher_is_better)
FIGURES = {
    'idle10k':      [('rss_per_conn_bytes', 'server RSS per idle connection', 'B', 1, False)],
    'echo16_d16':   [('per_server_cpu_s', 'msgs per server CPU-s', '', 1, True), ('per_s', 'msgs/s', '', 1, True)],
    'echo16_d1':    [('per_s', 'msgs/s', '', 1, True), ('p99', 'RTT p99', 'us', 1, False), ('per_server_cpu_s', 'msgs per server CPU-s', '', 1, True)],
    'echo1k_d4':    [('per_server_cpu_s', 'msgs per server CPU-s', '', 1, True), ('per_s', 'msgs/s', '', 1, True)],
    'echo64k':      [('mb_per_s', 'GB/s each way', 'GB/s', 1e-3, True), ('per_server_cpu_s', 'msgs per server CPU-s', '', 1, True)],
    'connect':      [('per_server_cpu_s', 'handshakes per server CPU-s', '', 1, True), ('per_s', 'handshakes/s', '', 1, True)],
    'bcast1000':    [('per_server_cpu_s', 'deliveries per server CPU-s', '', 1, True), ('per_s', 'deliveries/s', '', 1, True)],
    'bcast100_10k': [('p99', 'publish-to-delivery p99', 'us', 1, False), ('per_s', 'deliveries/s', '', 1, True)],
}
TITLES = {
    'idle10k': 'memory, 10,000 idle WebSockets', 'echo16_d16': 'echo 100 x 16 B, 16 in flight',
    'echo16_d1': 'echo 100 x 16 B, 1 in flight', 'echo1k_d4': 'echo 100 x 1 KiB, 4 in flight',
    'echo64k': 'echo 10 x 64 KiB binary, 4 in flight', 'connect': 'connect storm, 64 in flight, clean close',
    'bcast1000': 'broadcast 1,000 subscribers x 64 B, max rate', 'bcast100_10k': 'broadcast 100 subscribers at 10k msgs/s',
}

def value(r, key):
    res = r['result']
    if key in ('p50', 'p90', 'p99', 'p999', 'max'): return res['latency_us'][key]
    return res[key]

def collect(server, sc, key, scale):
    vals, status = [], set()
    for r in rows:
        if r['server'] != server or r['scenario'] != sc: continue
        status.add(r['status'])
        if r['status'] == 'ok':
            v = value(r, key)
            if v is not None and v >= 0: vals.append(v * scale)
    return vals, status

def paired_ratios(sc, key, peer):
    """roomcast / peer within each round (the two ran seconds apart), for the rounds where both have a value."""
    by_round = {}
    for r in rows:
        if r['scenario'] == sc and r['status'] == 'ok' and r['server'] in ('roomcast', peer):
            v = value(r, key)
            if v is not None and v >= 0: by_round.setdefault(r['round'], {})[r['server']] = v
    return [d['roomcast'] / d[peer] for d in by_round.values() if 'roomcast' in d and d.get(peer)]

def fmt(v, unit=''):
    if unit in ('GB/s',): return f"{v:.2f}"
    if unit in ('us', 'B'): return f"{v:,.0f}" if v >= 100 else f"{v:.1f}"
    for d, s in ((1e9, 'G'), (1e6, 'M'), (1e3, 'k')):
        if abs(v) >= d: return f"{v/d:.2f}{s}"
    return f"{v:.0f}"

def cell(vals, status, unit):
    if not vals: return 'crash' if 'crash' in status else 'n/a'
    med = statistics.median(vals)
    s = fmt(med, unit)
    if len(vals) > 1: s += f" ({fmt(min(vals), unit)}–{fmt(max(vals), unit)})"
    if 'crash' in status: s += ' ⚠crash'
    return s

names = {'roomcast': 'roomcast', 'tcp': 'TCP echo (ceiling)', 'beast': 'Boost.Beast', 'node': 'Node ws'}
short = {'roomcast': 'roomcast', 'tcp': 'TCP ceiling', 'beast': 'Beast', 'node': 'Node ws'}
colors = {'roomcast': '#cc3311', 'tcp': '#999999', 'beast': '#0077bb', 'node': '#009988'}
for i, s in enumerate(x for x in servers if x not in names):  # --peer servers
    names[s] = short[s] = s
    colors[s] = ('#ee7733', '#aa3377', '#33bbee', '#bbbbbb')[i % 4]
peers = [s for s in servers if s != 'roomcast']
header = ['scenario', 'figure'] + [names[s] for s in servers] + [f"roomcast/{names[p].split(' ')[0]}" for p in peers if 'roomcast' in servers]
lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
summary = []
medians = {}
for sc in scen_order:
    for key, label, unit, scale, higher in FIGURES[sc]:
        row = [TITLES[sc], label + (f" ({unit})" if unit and unit != 'GB/s' else '')]
        for s in servers:
            vals, status = collect(s, sc, key, scale)
            row.append(cell(vals, status, unit))
            if vals: medians[(s, sc, key)] = statistics.median(vals)
        if 'roomcast' in servers:
            for p in peers:
                rs = paired_ratios(sc, key, p)
                row.append(f"{statistics.median(rs):.2f}" if rs else 'n/a')
        lines.append('| ' + ' | '.join(row) + ' |')
table = '\n'.join(lines)

# Detail: every server's latency percentiles and how busy its core was (a server core below ~95 % means the
# generator, not the server, was the limit: read the per-CPU-s figures then).
det = ['| scenario | server | rate/s | server core busy | client core busy | p50 us | p90 us | p99 us | p99.9 us | max us | errors |',
       '|---|---|---|---|---|---|---|---|---|---|---|']
for sc in scen_order:
    if sc == 'idle10k': continue
    for s in servers:
        rs = [r for r in rows if r['server'] == s and r['scenario'] == sc and r['status'] == 'ok']
        if not rs: continue
        med = lambda f: statistics.median(f(r['result']) for r in rs)
        det.append('| ' + ' | '.join([
            sc, names[s], fmt(med(lambda x: x['per_s'])), f"{100*med(lambda x: x['server_cpu_util']):.0f}%",
            f"{100*med(lambda x: x['client_cpu_s'] / max(x['duration_s'], 1e-9)):.0f}%",
            *[fmt(med(lambda x, k=k: x['latency_us'][k]), 'us') for k in ('p50', 'p90', 'p99', 'p999', 'max')],
            str(sum(r['result']['errors_total'] for r in rs))]) + ' |')
detail = '\n'.join(det)

stamp = meta['stamp']
plots = ''
if meta['gnuplot'] == '1':
    # Throughput: one small bar chart per scenario (units differ), median with min-max error bars.
    tp = [(sc, FIGURES[sc][0]) for sc in scen_order if FIGURES[sc][0][4]]
    script = [f"set terminal pngcairo size 1500,{420 * ((len(tp) + 2) // 3)} font ',10'",
              f"set output '{out_dir}/{stamp}-throughput.png'",
              f"set multiplot layout {(len(tp) + 2) // 3},3 title 'roomcast vs peers, one server core ({meta['cpu']}); median, bars = min-max'",
              "set style fill solid 0.8 border -1", "set boxwidth 0.6", "set yrange [0:*]", "set grid ytics",
              "unset key", "set format y '%.1s%c'"]
    for i, (sc, (key, label, unit, scale, higher)) in enumerate(tp):
        path = f"{work}/tp{i}.dat"
        with open(path, 'w') as f:
            for j, s in enumerate(servers):
                vals, _ = collect(s, sc, key, scale)
                if vals:
                    rgb = int(colors[s][1:], 16)
                    f.write(f'{j} "{short[s]}" {statistics.median(vals)} {min(vals)} {max(vals)} {rgb}\n')
        if os.path.getsize(path) == 0: continue
        script += ["set format y '%.1f'" if unit == 'GB/s' else "set format y '%.1s%c'",
                   f'set title "{TITLES[sc]}\\n{label}"', f"set xrange [-0.6:{len(servers) - 0.4}]",
                   f"plot '{path}' using 1:3:6:xtic(2) with boxes lc rgb variable, '' using 1:3:4:5 with yerrorbars lc rgb 'black' pt 0"]
    script.append("unset multiplot")
    # Latency percentiles per server for the latency scenarios.
    lat_pref = ('echo16_d1', 'echo16_d16', 'bcast100_10k', 'connect', 'echo1k_d4', 'echo64k', 'bcast1000')
    lat_sc = [sc for sc in lat_pref if sc in scen_order][:4]
    if lat_sc: script += [f"set terminal pngcairo size 1500,{420 * ((len(lat_sc) + 1) // 2)} font ',10'",
               f"set output '{out_dir}/{stamp}-latency.png'",
               f"set multiplot layout {(len(lat_sc) + 1) // 2},2 title 'latency percentiles (median of rounds), microseconds, log scale'",
               "set logscale y", "set yrange [*:*]", "set xrange [-0.3:4.3]", "set key top left", "set format y '%g'",
               "set xtics ('p50' 0, 'p90' 1, 'p99' 2, 'p99.9' 3, 'max' 4)"]
    for sc in lat_sc if lat_sc else []:
        plots_for = []
        for s in servers:
            rs = [r for r in rows if r['server'] == s and r['scenario'] == sc and r['status'] == 'ok']
            if not rs: continue
            path = f"{work}/lat-{sc}-{s}.dat"
            with open(path, 'w') as f:
                for x, k in enumerate(('p50', 'p90', 'p99', 'p999', 'max')):
                    f.write(f"{x} {max(statistics.median(r['result']['latency_us'][k] for r in rs), 0.1)}\n")
            plots_for.append(f"'{path}' using 1:2 with linespoints lw 2 pt 7 lc rgb '{colors[s]}' title '{short[s]}'")
        if plots_for:
            script += [f"set title '{TITLES[sc]}'", 'plot ' + ', '.join(plots_for)]
    if lat_sc: script.append("unset multiplot")
    gp = f"{work}/plots.gp"
    open(gp, 'w').write('\n'.join(script) + '\n')
    if subprocess.run(['gnuplot', gp]).returncode == 0:
        plots = f"![throughput]({stamp}-throughput.png)\n\n![latency]({stamp}-latency.png)\n"

md = f"""# roomcast benchmark {meta['date']} on {meta['host']}

Each server runs on ONE core (taskset CPU {meta['server_cpu']}); the load generator `build/roomcast-bench` runs on
CPU {meta['client_cpu']}. {meta['rounds']} round(s); in each, every scenario runs on every server back to back (a fresh
server process each time; the server order rotates per round), {meta['duration']} s measured after {meta['warmup']} s
warmup. Cells: median (min–max over rounds). Ratios are paired: roomcast / peer within each round, median over the
rounds (robust to a machine whose speed drifts between minutes; for latency and memory lower is better, so a ratio
below 1 favours roomcast). "per server CPU-s" divides the work by
the server's user+sys CPU time (/proc/PID/stat) over the measured interval: the efficiency figure that does not
depend on the generator keeping up. n/a = the server does not offer that scenario (yet).

{table}

{plots}
## Details

{detail}

## Set-up

| | |
|---|---|
| CPU | {meta['cpu']} |
| kernel | {meta['kernel']} |
| compiler | {meta['gxx']} |
| roomcast | commit {meta['commit']}, `--threads 1` |
| Boost (Beast peer) | {meta['boost']} |
| Node / ws | {meta['node']} / ws {meta['ws']} |
| load average at start / end | {meta['load_start']} / {meta['load_end']} |

Scenarios (roomcast-bench arguments; echo uses `--url ws://127.0.0.1:PORT/echo`, the TCP ceiling adds `--raw-tcp`):

- idle10k: `idle --connections 10000`; server RssAnon (anonymous resident memory) before connecting and after, divided by 10,000
- echo16_d16: `echo --connections 100 --depth 16 --size 16 --binary`
- echo16_d1: `echo --connections 100 --depth 1 --size 16 --binary`
- echo1k_d4: `echo --connections 100 --depth 4 --size 1024 --binary`
- echo64k: `echo --connections 10 --depth 4 --size 65536 --binary`
- connect: `connect --concurrency 64 --close clean --source-ips 4` (full handshake, close handshake, server FIN)
- bcast1000: `broadcast --subscribers 1000 --publishers 1 --size 64 --rate 0 --window 64` (raw /ws/bench, /publish/bench)
- bcast100_10k: `broadcast --subscribers 100 --publishers 1 --size 64 --rate 10000`

Reproduce: `scripts/bench.sh` (or `scripts/bench.sh --quick` for a 2-minute smoke run). Raw JSON lines of every
run: `{stamp}.jsonl`. A busy machine (see the load average) lowers msgs/s; the per-CPU-s figures hold up better.
"""
path = f"{out_dir}/{stamp}.md"
open(path, 'w').write(md)
print(f"\n{table}\n\nreport: {path}" + (f"\nplots: {out_dir}/{stamp}-throughput.png {out_dir}/{stamp}-latency.png" if plots else ''))
EOF
