"""Helpers for the rooms integration tests (test/integration/test_int_rooms*.py): a control-protocol
client for GET /ws, raw subscribers/publishers, POST /publish, /metrics and memory probes, and
connection-to-reactor attribution through /health."""
import json
import re
import socket
import time

from wsclient import (OP_BINARY, OP_CLOSE, OP_PING, OP_TEXT, Conn, WsClient, WsError, WsTimeout,
                      build_request, new_key)

# Servers for room tests: no idle/ping timers interfering with long reads.
QUIET = ["--idle-timeout", "0", "--ping-interval", "0"]


class ControlClient:
    """A GET /ws control-protocol client. Replies and deliveries are JSON text frames; deliveries
    that arrive while waiting for a reply are kept in `pending` (in order) for recv()."""

    def __init__(self, ws):
        self.ws = ws
        self.pending = []
        self._next_id = 0

    @classmethod
    def connect(cls, host, port, path="/ws", headers=None, timeout=5.0):
        return cls(WsClient.connect(host, port, path, headers=headers, timeout=timeout))

    def next_id(self):
        self._next_id += 1
        return self._next_id

    def send(self, obj):
        self.ws.send_text(obj if isinstance(obj, (bytes, str)) else json.dumps(obj))

    def recv_raw(self, timeout=5.0):
        """Next JSON object from the server (not looking at `pending`)."""
        f = self.ws.recv_nonping(timeout)
        if f.opcode == OP_CLOSE:
            raise WsError(f"server closed the control connection: code={f.close_code} "
                          f"reason={f.close_reason!r}")
        assert f.opcode == OP_TEXT, f"control protocol frame is not text: {f}"
        return json.loads(f.payload)

    def recv(self, timeout=5.0):
        """Next delivery or reply, pending ones first."""
        if self.pending:
            return self.pending.pop(0)
        return self.recv_raw(timeout)

    def reply(self, timeout=5.0):
        """Next message with an "op" (a reply); deliveries before it go to `pending`."""
        deadline = time.monotonic() + timeout
        while True:
            m = self.recv_raw(max(0.001, deadline - time.monotonic()))
            if "op" in m:
                return m
            self.pending.append(m)

    def request(self, obj, timeout=5.0):
        self.send(obj)
        return self.reply(timeout)

    def sub(self, room, since=None, last=None, timeout=5.0):
        req = {"op": "sub", "room": room, "id": self.next_id()}
        if since is not None:
            req["since"] = since
        if last is not None:
            req["last"] = last
        r = self.request(req, timeout)
        assert r.get("op") == "subscribed" and r.get("room") == room and r.get("id") == req["id"], \
            f"sub {req} answered {r}"
        return r

    def unsub(self, room, timeout=5.0):
        rid = self.next_id()
        r = self.request({"op": "unsub", "room": room, "id": rid}, timeout)
        assert r == {"op": "unsubscribed", "room": room, "id": rid}, r
        return r

    def pub(self, room, data):
        self.send({"op": "pub", "room": room, "data": data})

    def deliveries(self, n, timeout=10.0):
        """The next n deliveries (no replies allowed in between)."""
        deadline = time.monotonic() + timeout
        out = []
        while len(out) < n:
            try:
                m = self.recv(max(0.001, deadline - time.monotonic()))
            except WsTimeout:
                raise WsTimeout(f"got {len(out)} of {n} deliveries: {out[-3:]}") from None
            assert "op" not in m, f"expected a delivery, got {m}"
            out.append(m)
        return out

    def expect_silence(self, duration=0.3):
        assert not self.pending, self.pending
        self.ws.expect_silence(duration)

    def close(self):
        self.ws.close_socket()


def raw_subscriber(host, port, room, since=None, headers=None, timeout=5.0):
    path = f"/ws/{room}" + (f"?since={since}" if since is not None else "")
    return WsClient.connect(host, port, path, headers=headers, timeout=timeout)


def raw_publisher(host, port, room, headers=None, timeout=5.0):
    return WsClient.connect(host, port, f"/publish/{room}", headers=headers, timeout=timeout)


def post_request(room, body, headers=None, path=None):
    if isinstance(body, str):
        body = body.encode()
    hdrs = {"Content-Length": str(len(body))}
    hdrs.update(headers or {})
    return build_request(path or f"/publish/{room}", upgrade=False, method="POST", headers=hdrs,
                         body=body)


def post_publish(host, port, room, body, headers=None, timeout=5.0):
    """One POST /publish/{room} on a new connection; returns the HttpResponse."""
    c = Conn.open(host, port, timeout)
    try:
        c.send_raw(post_request(room, body, headers))
        return c.read_http_response(timeout)
    finally:
        c.close_socket()


def http(host, port, raw, timeout=5.0):
    c = Conn.open(host, port, timeout)
    try:
        c.send_raw(raw)
        return c.read_http_response(timeout)
    finally:
        c.close_socket()


def upgrade_status(host, port, path, headers=None, timeout=5.0):
    """Status of a WebSocket upgrade request to path (101 on success; the socket is closed)."""
    c = Conn.open(host, port, timeout)
    try:
        c.send_raw(build_request(path, f"{host}:{port}", headers, key=new_key()))
        return c.read_http_response(timeout, body=False)
    finally:
        c.close_socket()


def metrics(srv):
    status, _, body = srv.http_get("/metrics")
    assert status == 200, status
    out = {}
    for line in body.decode().splitlines():
        if line and not line.startswith("#"):
            k, _, v = line.rpartition(" ")
            out[k] = float(v)
    return out


def rss_anon_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    raise AssertionError("no RssAnon in /proc/PID/status")


def sanitized(pid):
    """True if the process runs under ASan/TSan (their allocators keep freed memory in quarantine,
    so RSS bounds do not apply)."""
    with open(f"/proc/{pid}/maps") as f:
        maps = f.read()
    return "libasan" in maps or "libtsan" in maps


def reactor_counts(srv):
    return {r["id"]: r["connections"] for r in srv.health()["reactors"]}


def connect_on_reactor(srv, connect_fn, total_before, timeout=5.0):
    """Opens one WebSocket with connect_fn() and finds which reactor took it by diffing /health.
    total_before: the connection count before. Returns (client, reactor id)."""
    before = reactor_counts(srv)
    assert sum(before.values()) == total_before, (before, total_before)
    c = connect_fn()
    deadline = time.monotonic() + timeout
    while True:
        after = reactor_counts(srv)
        if sum(after.values()) == total_before + 1:
            grew = [r for r in after if after[r] == before.get(r, 0) + 1]
            assert len(grew) == 1, (before, after)
            return c, grew[0]
        assert time.monotonic() < deadline, f"/health did not count the new connection: {after}"
        time.sleep(0.01)


def payload_index(payload):
    """The "i" of a payload that starts with {"i":N,... (cheap for big payloads)."""
    m = re.match(rb'\{"i":(\d+)', payload)
    assert m, f"unexpected payload {payload[:60]!r}"
    return int(m.group(1))


def padded_json(i, size):
    """A JSON object text of exactly `size` bytes (for size >= 32): {"i":N,"p":"xxx..."}."""
    head = b'{"i":%d,"p":"' % i
    return head + b"x" * (size - len(head) - 2) + b'"}'


def small_rcvbuf_socket(host, port, rcvbuf=4096):
    """A TCP socket with a small receive buffer set before connect (so the window stays small)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(5.0)
    s.connect((host, port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def ws_over_socket(sock, host, port, path, timeout=5.0):
    """Upgrade handshake on an already-connected socket; returns a WsClient."""
    c = WsClient(sock)
    c.send_raw(build_request(path, f"{host}:{port}", None, key=new_key()))
    r = c.read_http_response(timeout, body=False)
    assert r.status == 101, r
    c.response = r
    return c


__all__ = ["ControlClient", "raw_subscriber", "raw_publisher", "post_request", "post_publish", "http",
           "upgrade_status", "metrics", "rss_anon_kib", "sanitized", "reactor_counts", "connect_on_reactor",
           "payload_index", "padded_json", "small_rcvbuf_socket", "ws_over_socket", "QUIET",
           "OP_TEXT", "OP_BINARY", "OP_PING"]
