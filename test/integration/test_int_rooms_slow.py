"""Rooms: --slow-consumer disconnect | drop | conflate with subscribers that stop reading (a small
SO_RCVBUF, never read). The fast subscribers keep receiving everything, the publisher is never held
back, server memory stays bounded, and the slow ones get exactly the documented treatment."""
import json
import threading
import time

from rooms_helpers import (QUIET, ControlClient, metrics, padded_json, payload_index, raw_publisher,
                           raw_subscriber, rss_anon_kib, sanitized, small_rcvbuf_socket, ws_over_socket)
from wsclient import OP_CLOSE, OP_TEXT, WsTimeout

SIZE = 64 * 1024          # bytes per message
N = 1500                  # messages published (~96 MiB in total)
BACKLOG = 512 * 1024
WINDOW = 4                # the publisher stays at most this many messages ahead of the fast readers
RSS_BOUND_KIB = 24 * 1024  # allowed RssAnon growth (the slow subscribers' share alone would be ~190 MiB)
ROOM = "slow.feed"


def _server(make_server, policy):
    return make_server(["--threads", "2", "--history", "4", "--max-backlog", str(BACKLOG),
                         "--slow-consumer", policy, "--max-message-size", "1M"] + QUIET)


class Setup:
    """Two fast subscribers (raw and control), two slow ones (control and raw) on one room, a raw
    publisher paced by the fast readers, an RSS sampler."""

    def __init__(self, srv):
        self.srv = srv
        h, p = srv.host, srv.port
        self.slow_ctl = ControlClient(ws_over_socket(small_rcvbuf_socket(h, p), h, p, "/ws"))
        self.slow_ctl.sub(ROOM)
        self.slow_raw = ws_over_socket(small_rcvbuf_socket(h, p), h, p, f"/ws/{ROOM}?since=0")
        self.fast_raw = raw_subscriber(h, p, ROOM, since=0)
        self.fast_ctl = ControlClient.connect(h, p)
        self.fast_ctl.sub(ROOM)
        self.pub = raw_publisher(h, p, ROOM)
        self.got = {"raw": 0, "ctl": 0}
        self.errors = []
        self.published = 0
        self.rss_base = rss_anon_kib(srv.proc.pid)
        self.rss_max = self.rss_base
        self.threads = []

    def _guard(self, fn):
        def run():
            try:
                fn()
            except BaseException as e:  # noqa: B902
                self.errors.append(e)
        return run

    def _read_fast_raw(self):
        while self.got["raw"] < N:
            f = self.fast_raw.recv_frame(20.0)
            assert f.opcode == OP_TEXT, f
            i = payload_index(f.payload)
            assert i == self.got["raw"] + 1, f"fast raw subscriber: got {i} after {self.got['raw']}"
            self.got["raw"] = i

    def _read_fast_ctl(self):
        while self.got["ctl"] < N:
            f = self.fast_ctl.ws.recv_frame(20.0)
            assert f.opcode == OP_TEXT, f
            assert f.payload.startswith(b'{"room":"%s","seq":%d,"data":{"i":%d,'
                                        % (ROOM.encode(), self.got["ctl"] + 1, self.got["ctl"] + 1)), \
                f"fast control subscriber after {self.got['ctl']}: {f.payload[:60]!r}"
            self.got["ctl"] += 1

    def _publish(self):
        for i in range(1, N + 1):
            deadline = time.monotonic() + 20
            while min(self.got.values()) < i - WINDOW:
                assert not self.errors, "a fast reader failed"
                assert time.monotonic() < deadline, \
                    f"fast subscribers stalled at {self.got} (message {i}): the slow one holds them up"
                time.sleep(0.0005)
            assert self.pub.send_text(padded_json(i, SIZE)), "publisher connection closed"
            self.published = i
            if i % 25 == 0:
                self.rss_max = max(self.rss_max, rss_anon_kib(self.srv.proc.pid))

    def start(self):
        for fn in (self._read_fast_raw, self._read_fast_ctl, self._publish):
            t = threading.Thread(target=self._guard(fn), daemon=True)
            t.start()
            self.threads.append(t)

    def join(self, timeout=60):
        deadline = time.monotonic() + timeout
        for t in self.threads:
            t.join(max(0.0, deadline - time.monotonic()))
        if self.errors:
            raise self.errors[0]
        assert not any(t.is_alive() for t in self.threads), f"did not finish: {self.got}"
        assert self.got == {"raw": N, "ctl": N}
        self.rss_max = max(self.rss_max, rss_anon_kib(self.srv.proc.pid))
        growth = self.rss_max - self.rss_base
        assert growth < RSS_BOUND_KIB or sanitized(self.srv.proc.pid), \
            f"RssAnon grew by {growth} KiB while {N * SIZE >> 20} MiB went to slow subscribers"

    def after_check(self):
        """Publishing continues to work; the fast ones get the next message."""
        self.pub.send_text(b'{"i":%d,"end":true}' % (N + 1))
        f = self.fast_raw.recv_frame(10.0)
        assert payload_index(f.payload) == N + 1
        m = self.fast_ctl.recv(10.0)
        assert m["seq"] == N + 1, m

    def close(self):
        for c in (self.slow_ctl.ws, self.slow_raw, self.fast_raw, self.fast_ctl.ws, self.pub):
            c.close_socket()


def _read_slow_ctl(c, timeout=5.0, quiet=1.0):
    """Seqs of everything a resumed slow control subscriber receives until it goes quiet or closes;
    returns (seqs, close frame or None)."""
    seqs = []
    deadline = time.monotonic() + timeout
    while True:
        try:
            f = c.ws.recv_frame(min(quiet, max(0.001, deadline - time.monotonic())))
        except WsTimeout:
            return seqs, None
        if f.opcode == OP_CLOSE:
            return seqs, f
        assert f.opcode == OP_TEXT, f
        m = json.loads(f.payload)
        assert m.get("room") == ROOM and "op" not in m, str(m)[:80]
        assert m["data"]["i"] == m["seq"], str(m)[:80]
        seqs.append(m["seq"])


def _read_slow_raw(c, timeout=5.0, quiet=1.0):
    idx = []
    deadline = time.monotonic() + timeout
    while True:
        try:
            f = c.recv_frame(min(quiet, max(0.001, deadline - time.monotonic())))
        except WsTimeout:
            return idx, None
        if f.opcode == OP_CLOSE:
            return idx, f
        assert f.opcode == OP_TEXT, f
        idx.append(payload_index(f.payload))


def _wait_metric(srv, name, value, timeout=30.0):
    deadline = time.monotonic() + timeout
    while True:
        v = metrics(srv)[name]
        if v >= value or time.monotonic() > deadline:
            return v
        time.sleep(0.02)


def test_slow_consumer_disconnect(make_server):
    srv = _server(make_server, "disconnect")
    s = Setup(srv)
    try:
        s.start()
        # As soon as the server gives up on both slow ones, they read again: everything they were
        # sent is a contiguous run from seq 1, then close 1008 naming --max-backlog, then EOF.
        assert _wait_metric(srv, "roomcast_slow_consumer_disconnects_total", 2) == 2, metrics(srv)
        for name, reader, c in (("control", _read_slow_ctl, s.slow_ctl),
                                ("raw", _read_slow_raw, s.slow_raw)):
            seqs, close = reader(c, timeout=10.0, quiet=5.0)
            assert close is not None, f"slow {name} subscriber got no close frame after {len(seqs)}" \
                                      f" messages (last {seqs[-1:]})"
            assert close.close_code == 1008, close
            assert b"--max-backlog" in close.close_reason, close
            assert seqs == list(range(1, len(seqs) + 1)), f"slow {name}: not contiguous from 1"
            assert len(seqs) < N
            ws = c.ws if hasattr(c, "ws") else c
            ws.expect_eof(3.0, "after the 1008 close")
            ws.close_socket()
        s.join()
        s.after_check()
        m = metrics(srv)
        assert m["roomcast_slow_consumer_disconnects_total"] == 2, m
        assert m["roomcast_dropped_total"] == 0, m
        deadline = time.monotonic() + 5
        while srv.health()["connections"] != 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        h = srv.health()
        assert h["connections"] == 3, h   # two fast subscribers and the publisher
    finally:
        s.close()


def test_slow_consumer_drop(make_server):
    srv = _server(make_server, "drop")
    s = Setup(srv)
    try:
        s.start()
        s.join()
        # Resume reading: in order, without duplicates, from 1; what did not fit the backlog when it
        # arrived is missing (usually one run at the end, but the kernel may take a few more bytes while
        # the client is stalled, so a later message can fit again: the seq jumps show it either way);
        # the connection is still open.
        ctl, close = _read_slow_ctl(s.slow_ctl)
        assert close is None, close
        raw, close = _read_slow_raw(s.slow_raw)
        assert close is None, close
        for name, got in (("control", ctl), ("raw", raw)):
            assert got and got[0] == 1 and got == sorted(set(got)), f"slow {name}: {got[:5]}..{got[-5:]}"
            assert len(got) < N, f"slow {name} subscriber got everything: nothing was dropped"
        m = metrics(srv)
        assert m["roomcast_dropped_total"] == (N - len(ctl)) + (N - len(raw)), (m, len(ctl), len(raw))
        assert m["roomcast_slow_consumer_disconnects_total"] == 0, m
        # The next messages arrive: the seq jump shows exactly what was missed.
        s.after_check()
        for i in range(N + 2, N + 6):
            s.pub.send_text(b'{"i":%d}' % i)
        nxt, _ = _read_slow_ctl(s.slow_ctl, quiet=0.5)
        assert nxt == list(range(N + 1, N + 6)), nxt
        nxt, _ = _read_slow_raw(s.slow_raw, quiet=0.5)
        assert nxt == list(range(N + 1, N + 6)), nxt
        assert srv.health()["connections"] == 5
    finally:
        s.close()


def test_slow_consumer_conflate(make_server):
    srv = _server(make_server, "conflate")
    s = Setup(srv)
    try:
        s.start()
        s.join()
        ctl, close = _read_slow_ctl(s.slow_ctl)
        assert close is None, close
        raw, close = _read_slow_raw(s.slow_raw)
        assert close is None, close
        for name, got in (("control", ctl), ("raw", raw)):
            assert got == sorted(set(got)), f"slow {name}: not strictly increasing"
            assert got[0] == 1, got[:5]
            assert len(got) < N, f"slow {name} subscriber got everything: nothing was conflated"
            # older messages (already on their way when it stopped reading), then the newest
            assert got[-1] == N, f"slow {name} subscriber did not get the newest message: {got[-5:]}"
            assert got[-2] < N - 1, \
                f"slow {name} subscriber: stale pending messages kept before the newest " \
                f"(only the newest pending message per room should be): tail {got[-8:]}"
        m = metrics(srv)
        assert m["roomcast_dropped_total"] == (N - len(ctl)) + (N - len(raw)), (m, len(ctl), len(raw))
        s.after_check()
        nxt, _ = _read_slow_ctl(s.slow_ctl, quiet=0.5)
        assert nxt == [N + 1], nxt
        nxt, _ = _read_slow_raw(s.slow_raw, quiet=0.5)
        assert nxt == [N + 1], nxt
        assert srv.health()["connections"] == 5
    finally:
        s.close()
