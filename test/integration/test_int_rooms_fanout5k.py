"""Rooms: 5,000 raw subscribers of one room (one process, non-blocking sockets and selectors) on
four reactors; every subscriber receives every one of 20 messages exactly once, in order."""
import base64
import os
import resource
import selectors
import socket
import struct
import time

import pytest

from rooms_helpers import QUIET, metrics, post_publish

SUBSCRIBERS = 5000
MESSAGES = 20
BATCH = 500
ROOM = "fan.5k"


def _raise_nofile(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = need if hard == resource.RLIM_INFINITY else min(max(soft, need), hard)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        pytest.skip(f"RLIMIT_NOFILE hard limit {hard} is below {need}")


class Sub:
    __slots__ = ("sock", "buf", "state", "frames")

    def __init__(self, sock):
        self.sock, self.buf, self.state, self.frames = sock, bytearray(), "connecting", []


def _parse_frames(sub):
    """Moves complete server frames out of sub.buf into sub.frames as (opcode, payload)."""
    b = sub.buf
    pos = 0
    while len(b) - pos >= 2:
        b0, b1 = b[pos], b[pos + 1]
        assert not b1 & 0x80, "server frame is masked"
        n = b1 & 0x7F
        hdr = 2
        if n == 126:
            if len(b) - pos < 4:
                break
            n = struct.unpack_from("!H", b, pos + 2)[0]
            hdr = 4
        elif n == 127:
            if len(b) - pos < 10:
                break
            n = struct.unpack_from("!Q", b, pos + 2)[0]
            hdr = 10
        if len(b) - pos < hdr + n:
            break
        assert b0 & 0x80, "fragmented frame"
        sub.frames.append((b0 & 0x0F, bytes(b[pos + hdr:pos + hdr + n])))
        pos += hdr + n
    del b[:pos]


def _handshake_batch(host, port, sel, subs, deadline):
    key = base64.b64encode(os.urandom(16)).decode()
    req = (f"GET /ws/{ROOM}?since=0 HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
           ).encode()
    for s in subs:
        s.sock.setblocking(False)
        err = s.sock.connect_ex((host, port))
        assert err in (0, 115), os.strerror(err)   # EINPROGRESS
        sel.register(s.sock, selectors.EVENT_WRITE, s)
    waiting = len(subs)
    while waiting:
        assert time.monotonic() < deadline, f"{waiting} of a batch did not finish the handshake"
        for key_, ev in sel.select(timeout=1.0):
            s = key_.data
            if s.state == "connecting":
                err = s.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                assert err == 0, f"connect failed: {os.strerror(err)}"
                s.sock.send(req)        # small: goes out in one piece
                s.state = "handshake"
                sel.modify(s.sock, selectors.EVENT_READ, s)
            else:
                data = s.sock.recv(4096)
                assert data, "server closed a subscriber during the handshake"
                s.buf += data
                if b"\r\n\r\n" in s.buf:
                    head, _, rest = bytes(s.buf).partition(b"\r\n\r\n")
                    assert head.startswith(b"HTTP/1.1 101"), head[:80]
                    s.buf = bytearray(rest)
                    s.state = "open"
                    sel.unregister(s.sock)
                    waiting -= 1


def test_fanout_5000_subscribers_one_room(make_server):
    _raise_nofile(SUBSCRIBERS + 200)
    # The server inherits the raised limit.
    srv = make_server(["--threads", "4", "--history", "64", "--max-connections", "10000"] + QUIET)
    h, p = srv.host, srv.port
    t0 = time.monotonic()
    deadline = t0 + 60
    sel = selectors.DefaultSelector()
    subs = []
    try:
        for i in range(0, SUBSCRIBERS, BATCH):
            batch = [Sub(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
                     for _ in range(min(BATCH, SUBSCRIBERS - i))]
            subs += batch
            _handshake_batch(h, p, sel, batch, deadline)
        health = srv.health()
        assert health["connections"] == SUBSCRIBERS, health
        assert all(r["connections"] > 0 for r in health["reactors"]), health

        # Publish 20 messages by POST (each answered with its seq, so the order is known). The
        # subscribers joined with since=0: each gets 1..20 exactly once however its subscription
        # raced the first publishes.
        expected = []
        for i in range(MESSAGES):
            body = b"msg-%02d" % i + b"." * (i * 7)
            expected.append(body)
            r = post_publish(h, p, ROOM, body)
            assert r.status == 200 and r.body == b'{"room":"%s","seq":%d}\n' % (ROOM.encode(), i + 1), r

        for s in subs:
            sel.register(s.sock, selectors.EVENT_READ, s)
        pending = set(range(len(subs)))
        index = {id(s): n for n, s in enumerate(subs)}
        while pending:
            assert time.monotonic() < deadline, \
                f"{len(pending)} subscribers still missing messages, e.g. " \
                f"{subs[next(iter(pending))].frames[-1:]}"
            for key_, _ in sel.select(timeout=1.0):
                s = key_.data
                data = s.sock.recv(65536)
                assert data, "server closed a subscriber"
                s.buf += data
                _parse_frames(s)
                n = index[id(s)]
                if len(s.frames) >= MESSAGES and n in pending:
                    pending.discard(n)
        # Nothing more arrives (no duplicates).
        time.sleep(0.3)
        for key_, _ in sel.select(timeout=0):
            s = key_.data
            s.buf += s.sock.recv(65536)
            _parse_frames(s)
        for n, s in enumerate(subs):
            assert s.frames == [(1, e) for e in expected], \
                f"subscriber {n}: {[f[1][:8] for f in s.frames]}"
            assert not s.buf, f"subscriber {n}: extra bytes {bytes(s.buf[:40])!r}"
        m = metrics(srv)
        assert m["roomcast_published_total"] == MESSAGES, m
        assert m["roomcast_slow_consumer_disconnects_total"] == 0, m
        assert srv.alive()
    finally:
        sel.close()
        for s in subs:
            s.sock.close()
