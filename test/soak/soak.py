#!/usr/bin/env python3
"""Bounded soak of a roomcast server (issue 7 "Soak"): run by scripts/soak.sh / `make soak`.

Starts ROOMCAST_BIN (the ASan+UBSan build) with --threads 4, a small --max-backlog and short timeouts, and
loads it from one asyncio process (plus roomcast-bench, when given) with, all at once:
  echo      /echo round trips of 0 B..200 KiB, text and binary, with permessage-deflate (Python websockets
            offers it by default) and without; some clients reset the connection with a message in flight
  churn     raw TCP: connect+RST, half a request then RST or FIN, upgrade then RST, half a frame then RST,
            clean close handshakes, keep-alive GET /health, silent connections
  control   /ws control-protocol clients: sub (plain, "last", "since") / unsub / pub across rooms owned by
            every reactor, malformed requests; every delivery is checked: no gap, no duplicate per subscription
  rawsub    /ws/{room} raw subscribers that come and go (some reset mid-stream)
  rawpub    /publish/{room} raw publishers sending bursts; POST /publish/{room} on keep-alive connections
  slow      subscribers with a 4 KiB receive buffer that never read, on rooms fed at ~1 MB/s (the server must
            close them at --max-backlog, slow-consumer disconnect)
  fanout    rounds of 12 subscribers + a burst of 2-16 KiB messages; half the subscribers reset mid-fan-out
  bench     roomcast-bench connect --close rst (connection churn) and broadcast (fan-out), if --bench is given
Phases: warm-up load (--warmup s), quiet 3 s, RssAnon "warm"; main load (the rest of --seconds); stop, wait until
/health shows 0 WebSockets, quiet 3 s, RssAnon "final". Passes if final <= 2 * warm + 8 MiB (--rss-factor,
--rss-slack-mib), /health and /metrics are sane, no client saw a wrong answer, SIGTERM exits 0 and the
server's stderr holds no sanitizer report (LeakSanitizer runs at exit).
Every loop is bounded in time (the phase) and every operation by a timeout; loopback only.
"""
import argparse
import asyncio
import collections
import json
import os
import random
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "test", "pylib"))

from wsclient import OP_BINARY, OP_CLOSE, OP_TEXT, build_request, close_payload, encode_frame, new_key  # noqa: E402

try:
    import websockets
    import websockets.exceptions
except ImportError:  # pragma: no cover
    sys.exit("soak: needs the websockets package (Debian python3-websockets; run with /usr/bin/python3)")

SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "runtime error:", "WARNING: ThreadSanitizer",
                     "ERROR: LeakSanitizer")
OP_TIMEOUT = 20.0  # any single client operation; the ASan server on a loaded 2-core box can be slow
MIB = 1024 * 1024

stats = collections.Counter()
anomalies = []  # wrong answers: each fails the soak


def anomaly(msg):
    stats["anomalies"] += 1
    if len(anomalies) < 50:
        anomalies.append(f"[{time.strftime('%H:%M:%S')}] {msg}")
        print(f"soak: ANOMALY {msg}", flush=True)


def log(msg):
    print(f"soak: {msg}", flush=True)


def owner_reactor(name, reactors):
    h = 0xcbf29ce484222325
    for c in name.encode():
        h ^= c
        h = (h * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return (h ^ (h >> 32)) % reactors


def rooms_on_every_reactor(prefix, per_reactor, reactors):
    """Room names so that every reactor owns per_reactor of them."""
    by_owner = collections.defaultdict(list)
    k = 0
    while any(len(by_owner[r]) < per_reactor for r in range(reactors)):
        name = f"{prefix}-{k}"
        r = owner_reactor(name, reactors)
        if len(by_owner[r]) < per_reactor:
            by_owner[r].append(name)
        k += 1
    return [n for r in range(reactors) for n in by_owner[r]]


# ---- the server process -----------------------------------------------------------------------------------
class Server:
    def __init__(self, binary, args, log_dir):
        self.binary, self.args = binary, args
        self.stderr_lines, self.stdout_lines = [], []
        self.stderr_path = os.path.join(log_dir, "server.stderr")
        self.proc = None
        self.port = None

    def start(self, timeout=30.0):
        cmd = [self.binary, "--listen", "127.0.0.1:0"] + self.args
        log("server: " + " ".join(cmd))
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1)
        self._err = threading.Thread(target=self._pump_err, daemon=True)
        self._err.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            self.stdout_lines.append(line)
            m = re.search(r"listening on [0-9.]+:(\d+)", line)
            if m:
                self.port = int(m.group(1))
                threading.Thread(target=self._pump_out, daemon=True).start()
                return
        self.proc.kill()
        raise SystemExit("soak: roomcast did not start:\n" + "".join(self.stdout_lines + self.stderr_lines))

    def _pump_err(self):
        with open(self.stderr_path, "w") as f:
            for line in self.proc.stderr:
                self.stderr_lines.append(line)
                f.write(line)
                f.flush()

    def _pump_out(self):
        for line in self.proc.stdout:
            self.stdout_lines.append(line)

    def rss_anon_kib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1])
        return -1

    def alive(self):
        return self.proc.poll() is None

    def stop(self, timeout=60.0):
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                log(f"server did not exit {timeout:.0f} s after SIGTERM: SIGKILL")
                self.proc.kill()
                self.proc.wait()
        self._err.join(timeout=10)
        return self.proc.returncode

    def sanitizer_report(self):
        for i, line in enumerate(self.stderr_lines):
            if any(m in line for m in SANITIZER_MARKERS):
                return "".join(self.stderr_lines[i:])
        return ""


# ---- small async helpers -------------------------------------------------------------------------------------
class Ctx:
    def __init__(self, port, rooms, hot_rooms, fan_rooms):
        self.host, self.port = "127.0.0.1", port
        self.rooms, self.hot_rooms, self.fan_rooms = rooms, hot_rooms, fan_rooms
        self.stop = asyncio.Event()
        self.seq_seen = collections.defaultdict(int)  # room -> highest seq seen by any /ws client (for since)

    def url(self, path):
        return f"ws://{self.host}:{self.port}{path}"


async def with_timeout(aw, t=OP_TIMEOUT):
    return await asyncio.wait_for(aw, t)


async def sleep_or_stop(ctx, seconds):
    try:
        await asyncio.wait_for(ctx.stop.wait(), seconds)
    except asyncio.TimeoutError:
        pass


def rst(writer):
    """Abort the connection with a TCP RST (SO_LINGER 0)."""
    sock = writer.get_extra_info("socket")
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except (OSError, AttributeError):
        pass
    writer.transport.abort()


def ws_rst(ws):
    """Abort a websockets connection with a RST."""
    sock = ws.transport.get_extra_info("socket")
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except (OSError, AttributeError):
        pass
    ws.transport.abort()


async def read_head(reader):
    head = await with_timeout(reader.readuntil(b"\r\n\r\n"))
    status = int(head.split(b" ", 2)[1])
    headers = {}
    for line in head.decode("latin-1").split("\r\n")[1:]:
        k, _, v = line.partition(":")
        if k:
            headers[k.strip().lower()] = v.strip()
    return status, headers


async def http_get(ctx, path):
    reader, writer = await with_timeout(asyncio.open_connection(ctx.host, ctx.port))
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {ctx.host}\r\nConnection: close\r\n\r\n".encode())
        data = await with_timeout(reader.read(-1))
    finally:
        writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


async def health(ctx):
    status, body = await http_get(ctx, "/health")
    assert status == 200, status
    return json.loads(body)


async def metrics(ctx):
    status, body = await http_get(ctx, "/metrics")
    assert status == 200, status
    out = {}
    for line in body.decode().splitlines():
        if line and not line.startswith("#"):
            k, _, v = line.rpartition(" ")
            out[k] = float(v)
    return out


EXPECTED_ERRORS = (ConnectionError, OSError, asyncio.IncompleteReadError, asyncio.TimeoutError, EOFError,
                   websockets.exceptions.ConnectionClosed, websockets.exceptions.InvalidHandshake)


def classify(name, e, slow_ok=False):
    """Count an error a client may legitimately see under churn; flag the others."""
    if isinstance(e, websockets.exceptions.ConnectionClosed):
        code = e.rcvd.code if e.rcvd is not None else 1006
        stats[f"{name}.closed.{code}"] += 1
        if code not in (1000, 1001, 1006) and not (code == 1008 and slow_ok):
            anomaly(f"{name}: server closed with {code} {e.rcvd.reason if e.rcvd else ''!r}")
    elif isinstance(e, asyncio.TimeoutError):
        stats[f"{name}.timeout"] += 1
    elif isinstance(e, websockets.exceptions.InvalidStatusCode):
        stats[f"{name}.status.{e.status_code}"] += 1
        anomaly(f"{name}: handshake answered {e.status_code}")
    elif isinstance(e, EXPECTED_ERRORS):
        stats[f"{name}.err.{type(e).__name__}"] += 1
    else:
        anomaly(f"{name}: {type(e).__name__}: {e}")


async def loop_worker(ctx, name, body, slow_ok=False):
    """Runs body() until the phase stops; each round is bounded by its own timeouts."""
    while not ctx.stop.is_set():
        try:
            await body()
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001 - classified
            classify(name, e, slow_ok)
            await asyncio.sleep(0.05)


def payload(size, text, compressible):
    if compressible:
        chunk = "roomcast soak %d " % size
        s = (chunk * (size // len(chunk) + 1))[:size]
    else:
        s = os.urandom(size // 2 + 1).hex()[:size]
    return s if text else s.encode()


# ---- workers --------------------------------------------------------------------------------------------------
def echo_worker(ctx, deflate):
    name = "echo" + ("-deflate" if deflate else "")

    async def body():
        async with websockets.connect(ctx.url("/echo"), compression="deflate" if deflate else None,
                                      max_size=4 * MIB, open_timeout=OP_TIMEOUT, close_timeout=2,
                                      ping_interval=None) as ws:
            stats[name + ".conns"] += 1
            if deflate and ws.extensions:
                stats[name + ".negotiated"] += 1
            for _ in range(random.randint(3, 30)):
                if ctx.stop.is_set():
                    return
                size = random.choice([0, 1, 125, 126, 1000, 4096, 16000, 65536, 200000])
                msg = payload(size, random.random() < 0.6, random.random() < 0.7)
                await with_timeout(ws.send(msg))
                if random.random() < 0.03:  # reset with the echo in flight
                    ws_rst(ws)
                    stats[name + ".reset_in_flight"] += 1
                    return
                got = await with_timeout(ws.recv())
                if got != msg:
                    anomaly(f"{name}: echo of {size} bytes came back as {len(got)} different bytes")
                stats[name + ".msgs"] += 1
    return loop_worker(ctx, name, body)


def churn_worker(ctx):
    name = "churn"

    async def body():
        mode = random.randrange(10)
        stats[f"{name}.mode{mode}"] += 1
        reader, writer = await with_timeout(asyncio.open_connection(ctx.host, ctx.port))
        path = random.choice(["/echo", "/ws", "/ws/" + random.choice(ctx.rooms)])
        req = build_request(path, f"{ctx.host}:{ctx.port}", None, key=new_key())
        try:
            if mode == 0:  # connect, RST
                rst(writer)
            elif mode == 1:  # half a request, RST
                writer.write(req[:random.randrange(1, len(req))])
                await writer.drain()
                rst(writer)
            elif mode == 2:  # half a request, FIN: the server must close
                writer.write(req[:random.randrange(1, len(req))])
                writer.write_eof()
                await with_timeout(reader.read(-1))
                writer.close()
            elif mode in (3, 4, 5):
                writer.write(req)
                status, _ = await read_head(reader)
                if status != 101:
                    anomaly(f"{name}: upgrade of {path} answered {status}")
                if mode == 3:  # upgraded, RST
                    rst(writer)
                elif mode == 4:  # half a frame, RST
                    frame = encode_frame(OP_TEXT, b'{"op":"sub","room":"%s"}' % ctx.rooms[0].encode())
                    writer.write(frame[:random.randrange(1, len(frame))])
                    await writer.drain()
                    rst(writer)
                else:  # clean close handshake: the server answers close and closes TCP
                    writer.write(encode_frame(OP_CLOSE, close_payload(1000)))
                    data = await with_timeout(reader.read(-1))
                    if len(data) < 2 or data[0] & 0x0F != OP_CLOSE:
                        # deliveries may precede the close frame on a raw subscriber: find the close frame
                        if b"\x88" not in data:
                            anomaly(f"{name}: no close frame after close on {path}: {data[:40]!r}")
                    writer.close()
            elif mode == 6:  # keep-alive plain requests
                for _ in range(2):
                    writer.write(f"GET /health HTTP/1.1\r\nHost: {ctx.host}\r\n\r\n".encode())
                    status, headers = await read_head(reader)
                    await with_timeout(reader.readexactly(int(headers.get("content-length", "0"))))
                    if status != 200:
                        anomaly(f"{name}: keep-alive /health answered {status}")
                writer.close()
            elif mode == 7:  # silent connection, FIN
                writer.write_eof()
                await with_timeout(reader.read(-1))
                writer.close()
            elif mode == 8:  # upgrade with a deflate offer, send one message, RST before reading it
                req = build_request("/echo", f"{ctx.host}:{ctx.port}",
                                    {"Sec-WebSocket-Extensions": "permessage-deflate; client_max_window_bits"},
                                    key=new_key())
                writer.write(req)
                status, _ = await read_head(reader)
                writer.write(encode_frame(OP_BINARY, os.urandom(random.randrange(1, 30000))))
                await writer.drain()
                rst(writer)
            else:  # upgrade, then FIN without a close frame
                writer.write(req)
                await read_head(reader)
                writer.write_eof()
                await with_timeout(reader.read(-1))
                writer.close()
            stats[name + ".conns"] += 1
        except BaseException:
            writer.transport.abort()
            raise
    return loop_worker(ctx, name, body)


def control_worker(ctx, idx):
    name = "control"
    deflate = idx % 2 == 0

    async def body():
        async with websockets.connect(ctx.url("/ws"), compression="deflate" if deflate else None,
                                      max_size=4 * MIB, open_timeout=OP_TIMEOUT, close_timeout=2,
                                      ping_interval=None) as ws:
            stats[name + ".conns"] += 1
            expect = {}      # room -> next expected seq (None: accept the first, then contiguous)
            subscribed = set()
            pending = {}     # id -> (op, room, since, last)
            bad_no_id = [0]  # non-object requests sent and not yet answered
            next_id = 0

            async def reader():
                async for raw in ws:
                    m = json.loads(raw)
                    op = m.get("op")
                    if op is None:
                        room, seq = m.get("room"), m.get("seq")
                        stats[name + ".deliveries"] += 1
                        ctx.seq_seen[room] = max(ctx.seq_seen[room], seq)
                        if room not in expect:
                            stats[name + ".late_delivery"] += 1  # after unsub was sent: allowed
                            continue
                        want = expect[room]
                        if want is not None and seq != want:
                            anomaly(f"{name}: room {room} delivered seq {seq}, expected {want} "
                                    f"({'gap' if seq > want else 'duplicate/reorder'})")
                        expect[room] = seq + 1
                        continue
                    if op == "error" and "id" not in m and bad_no_id[0] > 0:
                        bad_no_id[0] -= 1  # the answer to a non-object request (it has no id to echo)
                        stats[name + ".bad_request_answered"] += 1
                        continue
                    req = pending.pop(m.get("id"), None)
                    if op == "subscribed":
                        _, room, since, last = req
                        seq = m["seq"]
                        if m.get("gap"):
                            expect[room] = None
                        elif since is not None:
                            expect[room] = min(since, seq) + 1
                        elif last:
                            expect[room] = seq if seq > 0 else 1
                        else:
                            expect[room] = seq + 1
                        stats[name + ".subscribed"] += 1
                    elif op == "unsubscribed":
                        stats[name + ".unsubscribed"] += 1
                    elif op == "error":
                        if req is not None and req[0] == "bad":
                            stats[name + ".bad_request_answered"] += 1
                        else:
                            anomaly(f"{name}: error reply {m} to {req}")
                    else:
                        anomaly(f"{name}: unexpected message {m}")

            rtask = asyncio.ensure_future(reader())
            try:
                for _ in range(random.randint(30, 300)):
                    if ctx.stop.is_set() or rtask.done():
                        break
                    next_id += 1
                    r = random.random()
                    if r < 0.15 and len(subscribed) < 8:
                        room = random.choice([x for x in ctx.rooms if x not in subscribed] or ctx.rooms)
                        if room in subscribed:
                            continue
                        req = {"op": "sub", "room": room, "id": next_id}
                        since = last = None
                        if random.random() < 0.3:
                            since = max(0, ctx.seq_seen[room] - random.randint(0, 100))
                            req["since"] = since
                        elif random.random() < 0.3:
                            last = True
                            req["last"] = True
                        pending[next_id] = ("sub", room, since, last)
                        subscribed.add(room)
                        await with_timeout(ws.send(json.dumps(req)))
                    elif r < 0.25 and subscribed:
                        room = random.choice(sorted(subscribed))
                        subscribed.discard(room)
                        expect.pop(room, None)
                        pending[next_id] = ("unsub", room, None, None)
                        await with_timeout(ws.send(json.dumps({"op": "unsub", "room": room, "id": next_id})))
                    elif r < 0.28:
                        pending[next_id] = ("bad", None, None, None)
                        bad = random.choice(['{"op":"nope","id":%d}', '{"op":"sub","room":"bad room!","id":%d}',
                                             '{"op":"pub","room":"x","id":%d}', '[1,2,%d]'])
                        await with_timeout(ws.send(bad % next_id))
                        if bad.startswith("["):
                            pending.pop(next_id)
                            bad_no_id[0] += 1
                    else:
                        room = random.choice(ctx.rooms)
                        data = {"c": idx, "n": next_id, "p": "x" * random.choice([0, 10, 200, 2000])}
                        await with_timeout(ws.send(json.dumps({"op": "pub", "room": room, "data": data})))
                        stats[name + ".pubs"] += 1
                    await asyncio.sleep(random.uniform(0, 0.02))
                if random.random() < 0.3:
                    ws_rst(ws)  # disconnect with subscriptions and deliveries in flight
                    stats[name + ".reset"] += 1
            finally:
                rtask.cancel()
                try:
                    await rtask
                except asyncio.CancelledError:
                    pass
                except Exception as e:  # noqa: BLE001
                    classify(name, e, slow_ok=True)
    return loop_worker(ctx, name, body, slow_ok=True)


def rawsub_worker(ctx, idx):
    name = "rawsub"

    async def body():
        room = random.choice(ctx.rooms)
        path = f"/ws/{room}" + ("?since=0" if random.random() < 0.2 else "")
        async with websockets.connect(ctx.url(path), compression="deflate" if random.random() < 0.5 else None,
                                      max_size=4 * MIB, open_timeout=OP_TIMEOUT, close_timeout=2,
                                      ping_interval=None) as ws:
            stats[name + ".conns"] += 1
            end = time.monotonic() + random.uniform(0.5, 4)
            while time.monotonic() < end and not ctx.stop.is_set():
                try:
                    await asyncio.wait_for(ws.recv(), 0.5)
                    stats[name + ".msgs"] += 1
                except asyncio.TimeoutError:
                    pass
            if random.random() < 0.3:
                ws_rst(ws)
                stats[name + ".reset"] += 1
    return loop_worker(ctx, name, body, slow_ok=True)


def rawpub_worker(ctx, idx):
    name = "rawpub"

    async def body():
        async with websockets.connect(ctx.url("/publish/" + random.choice(ctx.rooms)),
                                      compression="deflate" if idx % 2 else None, open_timeout=OP_TIMEOUT,
                                      close_timeout=2, ping_interval=None) as ws:
            stats[name + ".conns"] += 1
            for _ in range(random.randint(1, 10)):
                if ctx.stop.is_set():
                    return
                for _ in range(random.randint(1, 40)):
                    text = random.random() < 0.5
                    await with_timeout(ws.send(payload(random.randint(16, 8192), text, random.random() < 0.5)))
                    stats[name + ".msgs"] += 1
                await asyncio.sleep(random.uniform(0.01, 0.1))
    return loop_worker(ctx, name, body)


def hot_publisher(ctx):
    """Feeds the slow readers' rooms at about 1 MB/s each (8 KiB messages)."""
    name = "hotpub"

    async def body():
        conns = []
        try:
            for r in ctx.hot_rooms:
                conns.append(await with_timeout(websockets.connect(ctx.url("/publish/" + r), compression=None,
                                                                   open_timeout=OP_TIMEOUT, ping_interval=None)))
            for _ in range(200):
                if ctx.stop.is_set():
                    return
                for ws in conns:
                    for _ in range(4):
                        await with_timeout(ws.send(os.urandom(8192)))
                        stats[name + ".msgs"] += 1
                await asyncio.sleep(0.03)
        finally:
            for ws in conns:
                await ws.close()
    return loop_worker(ctx, name, body)


def slow_reader(ctx, idx):
    """Subscribes with a tiny receive window and never reads; resets after a while."""
    name = "slow"

    async def body():
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        try:
            await with_timeout(loop.sock_connect(sock, (ctx.host, ctx.port)))
        except BaseException:
            sock.close()
            raise
        reader, writer = await asyncio.open_connection(sock=sock, limit=4096)
        try:
            room = ctx.hot_rooms[idx % len(ctx.hot_rooms)]
            control = idx % 2 == 1
            writer.write(build_request("/ws" if control else f"/ws/{room}", f"{ctx.host}:{ctx.port}", None,
                                       key=new_key()))
            status, _ = await read_head(reader)
            if status != 101:
                anomaly(f"{name}: upgrade answered {status}")
            if control:
                writer.write(encode_frame(OP_TEXT, json.dumps({"op": "sub", "room": room, "id": 1}).encode()))
                await writer.drain()
            stats[name + ".conns"] += 1
            writer.transport.pause_reading()  # stop reading: the 4 KiB window fills, the server's backlog grows
            await sleep_or_stop(ctx, random.uniform(4, 10))
            rst(writer)
        except BaseException:
            writer.transport.abort()
            raise
    return loop_worker(ctx, name, body)


def post_worker(ctx):
    name = "post"

    async def body():
        reader, writer = await with_timeout(asyncio.open_connection(ctx.host, ctx.port))
        try:
            for _ in range(random.randint(1, 30)):
                if ctx.stop.is_set():
                    break
                room = random.choice(ctx.rooms)
                body_ = json.dumps({"post": random.randrange(10**6), "p": "y" * random.choice([0, 100, 3000])})
                if random.random() < 0.2:
                    body_ = os.urandom(random.randint(1, 500)).hex()
                writer.write(f"POST /publish/{room} HTTP/1.1\r\nHost: {ctx.host}\r\n"
                             f"Content-Length: {len(body_)}\r\n\r\n{body_}".encode())
                status, headers = await read_head(reader)
                resp = await with_timeout(reader.readexactly(int(headers.get("content-length", "0"))))
                if status != 200:
                    anomaly(f"{name}: POST /publish/{room} answered {status} {resp[:100]!r}")
                else:
                    r = json.loads(resp)
                    if r.get("room") != room or not isinstance(r.get("seq"), int) or r["seq"] < 1:
                        anomaly(f"{name}: POST answer {r}")
                stats[name + ".posts"] += 1
                await asyncio.sleep(random.uniform(0.005, 0.03))
            writer.close()
        except BaseException:
            writer.transport.abort()
            raise
    return loop_worker(ctx, name, body)


def fanout_worker(ctx):
    """Subscribers that disconnect in the middle of a fan-out burst."""
    name = "fanout"

    async def body():
        room = random.choice(ctx.fan_rooms)
        subs = []
        try:
            for i in range(12):
                subs.append(await with_timeout(websockets.connect(
                    ctx.url(f"/ws/{room}"), compression="deflate" if i % 3 == 0 else None, max_size=4 * MIB,
                    open_timeout=OP_TIMEOUT, close_timeout=1, ping_interval=None)))
            pub = await with_timeout(websockets.connect(ctx.url(f"/publish/{room}"), compression=None,
                                                        open_timeout=OP_TIMEOUT, close_timeout=1,
                                                        ping_interval=None))
            subs.append(pub)
            for _ in range(100):
                await with_timeout(pub.send(payload(random.randint(2048, 16384), False, random.random() < 0.5)))
            stats[name + ".msgs"] += 100
            await asyncio.sleep(random.uniform(0, 0.03))
            for ws in subs[0:12:2]:
                ws_rst(ws)  # mid-fan-out disconnects
                stats[name + ".reset"] += 1
            end = time.monotonic() + 2.0
            for ws in subs[1:12:2]:
                try:
                    while time.monotonic() < end:
                        await asyncio.wait_for(ws.recv(), 0.3)
                        stats[name + ".recv"] += 1
                except asyncio.TimeoutError:
                    pass
                except websockets.exceptions.ConnectionClosed as e:
                    classify(name, e, slow_ok=True)  # e.g. 1008: it fell behind the burst
            stats[name + ".rounds"] += 1
        finally:
            # concurrently: a subscriber with a full receive queue only closes at its close_timeout
            await asyncio.gather(*(ws.close() for ws in subs), return_exceptions=True)
    return loop_worker(ctx, name, body, slow_ok=True)


async def progress(ctx, srv, phase, t0, peak):
    while not ctx.stop.is_set():
        await sleep_or_stop(ctx, 5)
        now = time.monotonic()
        rss = srv.rss_anon_kib()
        peak[0] = max(peak[0], rss)
        try:
            h = await health(ctx)
            conns = f"{h['connections']} ws / {h['sockets']} sockets, per reactor " + \
                    ",".join(str(r["connections"]) for r in h["reactors"])
        except Exception as e:  # noqa: BLE001
            conns = f"/health failed: {type(e).__name__}"
        log(f"[{phase} {now - t0:5.1f}s] RssAnon {rss / 1024:.1f} MiB; {conns}; echo "
            f"{stats['echo.msgs'] + stats['echo-deflate.msgs']} churn {stats['churn.conns']} control-pubs "
            f"{stats['control.pubs']} deliveries {stats['control.deliveries']} rawsub {stats['rawsub.msgs']} "
            f"rawpub {stats['rawpub.msgs']} posts {stats['post.posts']} slow {stats['slow.conns']} "
            f"fanout {stats['fanout.rounds']}/{stats['fanout.msgs'] // 100} anomalies {stats['anomalies']}")


async def run_phase(ctx, srv, phase, seconds, args, peak):
    ctx.stop.clear()
    t0 = time.monotonic()
    workers = [("echo-deflate", echo_worker(ctx, True)) for _ in range(3)]
    workers += [("echo", echo_worker(ctx, False)) for _ in range(2)]
    workers += [("churn", churn_worker(ctx)) for _ in range(3)]
    workers += [("control", control_worker(ctx, i)) for i in range(6)]
    workers += [("rawsub", rawsub_worker(ctx, i)) for i in range(6)]
    workers += [("rawpub", rawpub_worker(ctx, i)) for i in range(2)]
    workers += [("hotpub", hot_publisher(ctx))] + [("slow", slow_reader(ctx, i)) for i in range(4)]
    workers += [("post", post_worker(ctx)), ("fanout", fanout_worker(ctx))]
    workers += [("progress", progress(ctx, srv, phase, t0, peak))]
    tasks = [asyncio.get_running_loop().create_task(w, name=n) for n, w in workers]
    bench = []
    if args.bench and os.access(args.bench, os.X_OK):
        common = ["--port", str(ctx.port), "--duration", str(max(1, int(seconds) - 1)), "--warmup", "0",
                  "--quiet", "--setup-timeout", "20"]
        for mode_args in (["connect", "--close", "rst", "--concurrency", "8"],
                          ["connect", "--close", "clean", "--concurrency", "4"],
                          ["broadcast", "--subscribers", "40", "--publishers", "2", "--rate", "200",
                           "--size", "256", "--room", ctx.rooms[-1]]):
            bench.append(await asyncio.create_subprocess_exec(
                args.bench, *mode_args, *common, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE))
    await asyncio.sleep(seconds)
    ctx.stop.set()
    # workers finish their round (each operation is bounded); stragglers are cancelled (their sockets are
    # aborted or reaped by the server's --idle-timeout before the quiet check)
    done, not_done = await asyncio.wait(tasks, timeout=15)
    for t in not_done:
        stats["stuck_tasks_cancelled." + t.get_name()] += 1
        t.cancel()
    for t in done:
        if t.exception() is not None:
            anomaly(f"worker crashed: {t.exception()!r}")
    for p in bench:
        try:
            out, err = await asyncio.wait_for(p.communicate(), 60)
        except asyncio.TimeoutError:
            p.kill()
            out, err = await p.communicate()
            anomaly("roomcast-bench did not finish")
        line = out.decode().strip().splitlines()[-1:] or [""]
        stats[f"bench.rc{p.returncode}"] += 1
        log(f"bench (rc {p.returncode}): {line[0][:400]}")
        if p.returncode != 0:
            log("bench stderr: " + err.decode()[-600:])
    log(f"{phase}: load stopped after {time.monotonic() - t0:.1f} s")


async def quiesce(ctx, srv, timeout=30.0):
    """Waits until /health shows no WebSocket and only our own socket, then 3 s more."""
    deadline = time.monotonic() + timeout
    while True:
        h = await health(ctx)
        if h["connections"] == 0 and h["sockets"] <= 1:
            break
        if time.monotonic() > deadline:
            return h
        await asyncio.sleep(0.25)
    await asyncio.sleep(3)
    return await health(ctx)


async def soak(args, srv):
    reactors = args.threads
    ctx = Ctx(srv.port, rooms_on_every_reactor("soak", 3, reactors), rooms_on_every_reactor("hot", 1, 2)[:2],
              rooms_on_every_reactor("fan", 1, reactors))
    log(f"rooms {ctx.rooms} (owners {[owner_reactor(r, reactors) for r in ctx.rooms]}), hot {ctx.hot_rooms}, "
        f"fan-out {ctx.fan_rooms}")
    peak = [srv.rss_anon_kib()]
    failures = []
    log(f"start RssAnon {peak[0] / 1024:.1f} MiB")

    await run_phase(ctx, srv, "warm-up", args.warmup, args, peak)
    h = await quiesce(ctx, srv)
    warm = srv.rss_anon_kib()
    log(f"warm RssAnon {warm / 1024:.1f} MiB (after warm-up and 3 s quiet; /health {h['connections']} ws)")

    await run_phase(ctx, srv, "main", args.seconds - args.warmup, args, peak)
    h = await quiesce(ctx, srv)
    if h["connections"] != 0 or h["sockets"] > 1:
        failures.append(f"/health after the load: {h['connections']} WebSockets, {h['sockets']} sockets "
                        f"(want 0 and <= 1 (this request)); reactors {h['reactors']}")
    final = srv.rss_anon_kib()
    bound = int(args.rss_factor * warm + args.rss_slack_mib * 1024)
    log(f"final RssAnon {final / 1024:.1f} MiB, warm {warm / 1024:.1f} MiB, peak {peak[0] / 1024:.1f} MiB, "
        f"bound {bound / 1024:.1f} MiB ({args.rss_factor} x warm + {args.rss_slack_mib} MiB)")
    if final > bound:
        failures.append(f"RssAnon {final} KiB after the load > bound {bound} KiB")

    for _ in range(20):
        m = await metrics(ctx)
        if m.get("roomcast_websockets") == 0 and m.get("roomcast_sockets", 99) <= 1:
            break
        await asyncio.sleep(0.25)
    log("metrics: " + ", ".join(f"{k.replace('roomcast_', '')}={v:g}" for k, v in m.items()))
    if m.get("roomcast_websockets") != 0:
        failures.append(f"/metrics roomcast_websockets = {m.get('roomcast_websockets')} after the load")
    if m.get("roomcast_sockets", 99) > 1:
        failures.append(f"/metrics roomcast_sockets = {m.get('roomcast_sockets')} after the load")
    for k in ("roomcast_published_total", "roomcast_deliveries_total", "roomcast_messages_received_total"):
        if not m.get(k):
            failures.append(f"/metrics {k} is {m.get(k)}: the load did not reach the server")
    if not m.get("roomcast_slow_consumer_disconnects_total"):  # coverage: the slow-reader path ran
        failures.append("no slow-consumer disconnect: the slow readers never passed --max-backlog")
    return warm, final, peak[0], failures


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.environ.get("ROOMCAST_BIN", os.path.join(ROOT, "build/asan/roomcast")))
    ap.add_argument("--bench", default="", help="roomcast-bench binary (extra churn and fan-out load)")
    ap.add_argument("--seconds", type=float, default=60, help="total load time, warm-up included [60]")
    ap.add_argument("--warmup", type=float, default=10, help="warm-up load before the warm RSS sample [10]")
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--rss-factor", type=float, default=2.0)
    ap.add_argument("--rss-slack-mib", type=float, default=8.0)
    ap.add_argument("--log-dir", default=os.path.join(ROOT, "build", "soak"))
    ap.add_argument("--seed", type=int, default=None)
    args = ap.parse_args()
    if args.seconds <= args.warmup:
        ap.error("--seconds must exceed --warmup")
    seed = args.seed if args.seed is not None else int(time.time())
    random.seed(seed)
    os.makedirs(args.log_dir, exist_ok=True)
    server_args = ["--threads", str(args.threads), "--max-backlog", "64K", "--slow-consumer", "disconnect",
                   "--handshake-timeout", "2s", "--idle-timeout", "5s", "--ping-interval", "2s",
                   "--drain-timeout", "2s", "--history", "64", "--max-message-size", "1M",
                   "--max-connections", "2000", "--log-level", "warn"]
    srv = Server(args.bin, server_args, args.log_dir)
    t_start = time.monotonic()
    srv.start()
    log(f"seed {seed}; pid {srv.proc.pid}, port {srv.port}; ASAN_OPTIONS={os.environ.get('ASAN_OPTIONS', '')}")
    failures = []
    warm = final = peak = -1
    try:
        warm, final, peak, failures = asyncio.run(soak(args, srv))
    except Exception as e:  # noqa: BLE001
        failures.append(f"soak driver failed: {type(e).__name__}: {e}")
    finally:
        alive = srv.alive()
        rc = srv.stop()
    if not alive:
        failures.append(f"server died during the soak (exit {rc})")
    elif rc != 0:
        failures.append(f"server exited {rc} after SIGTERM (want 0)")
    report = srv.sanitizer_report()
    if report:
        failures.append("sanitizer report in the server's stderr:\n" + report[:6000])
    if anomalies:
        failures.append(f"{stats['anomalies']} wrong answers seen by clients:\n  " + "\n  ".join(anomalies[:20]))

    print("\n== soak summary", flush=True)
    print(f"  wall {time.monotonic() - t_start:.0f} s, seed {seed}, server exit {rc}, "
          f"stderr in {srv.stderr_path}")
    print(f"  RssAnon warm {warm / 1024:.1f} MiB, final {final / 1024:.1f} MiB, peak under load {peak / 1024:.1f} MiB")
    groups = collections.defaultdict(list)
    for k in sorted(stats):
        groups[k.split(".")[0]].append(f"{k.split('.', 1)[-1]}={stats[k]}")
    for g, items in groups.items():
        print(f"  {g}: " + " ".join(items))
    if failures:
        print("SOAK FAILED:")
        for f in failures:
            print("  - " + f)
        return 1
    print("SOAK PASSED")
    return 0


if __name__ == "__main__":
    sys.exit(main())
