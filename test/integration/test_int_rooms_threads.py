"""Rooms with --threads 4: publishers and subscribers on every reactor, several rooms, concurrent
publishers; every subscriber gets every message of its rooms exactly once, in seq order. Resume
with `since` across reconnects (with and without a gap), and replay/live ordering while a publisher
keeps publishing."""
import json
import random
import threading
import time

import pytest

from roomcast_testing import start_server
from rooms_helpers import (QUIET, ControlClient, connect_on_reactor, metrics, post_publish,
                           raw_publisher, raw_subscriber, reactor_counts, upgrade_status)
from wsclient import OP_TEXT, WsTimeout

REACTORS = 4
ROOMS = [f"mt.room{i}" for i in range(6)]
PER_PUBLISHER = 150


def _run_threads(targets, timeout):
    errors = []

    def wrap(fn):
        def run():
            try:
                fn()
            except BaseException as e:  # noqa: B902 - reported to the test thread
                errors.append(e)
        return run

    threads = [threading.Thread(target=wrap(t), daemon=True) for t in targets]
    for t in threads:
        t.start()
    deadline = time.monotonic() + timeout
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    if errors:
        raise errors[0]
    assert not any(t.is_alive() for t in threads), "worker threads did not finish in time"


def test_fanout_all_reactors_exactly_once_in_order(make_server):
    srv = make_server(["--threads", str(REACTORS)] + QUIET)
    h, p = srv.host, srv.port
    roles = ["ctl_sub", "raw_sub", "ctl_pub", "raw_pub"]
    have = {r: set() for r in roles}    # role -> reactors it has a connection on
    conns = {r: [] for r in roles}      # role -> [(client, reactor, rooms)]
    total = 0
    k = 0
    while any(len(have[r]) < REACTORS for r in roles) or total < 48:
        assert total < 400, f"SO_REUSEPORT never spread the roles over all reactors: {have}"
        role = roles[k % len(roles)]
        k += 1
        n = len(conns[role])
        if role == "ctl_sub":
            rooms = sorted({ROOMS[n % 6], ROOMS[(n + 1) % 6], ROOMS[(n + 3) % 6]})
            fn = lambda: ControlClient.connect(h, p)  # noqa: E731
        elif role == "raw_sub":
            rooms = [ROOMS[n % 6]]
            fn = lambda: raw_subscriber(h, p, rooms[0], since=0)  # noqa: E731
        elif role == "ctl_pub":
            rooms = list(ROOMS)
            fn = lambda: ControlClient.connect(h, p)  # noqa: E731
        else:
            rooms = [ROOMS[n % 6]]
            fn = lambda: raw_publisher(h, p, rooms[0])  # noqa: E731
        c, reactor = connect_on_reactor(srv, fn, total)
        total += 1
        have[role].add(reactor)
        conns[role].append((c, reactor, rooms))
    counts = reactor_counts(srv)
    assert all(counts[r] > 0 for r in range(REACTORS)), counts

    for c, _, rooms in conns["ctl_sub"]:
        for room in rooms:
            r = c.sub(room)
            assert r["seq"] == 0 and r["replayed"] == 0, r

    # What each publisher will publish: (publisher id, k) per room, in its order.
    plan = {}   # pid -> [(room, k)]
    pubs = []
    for c, _, rooms in conns["ctl_pub"] + conns["raw_pub"]:
        pid = len(pubs)
        pubs.append(c)
        plan[pid] = [(rooms[(pid + i) % len(rooms)], i) for i in range(PER_PUBLISHER)]
    expected = {room: set() for room in ROOMS}
    for pid, items in plan.items():
        for room, i in items:
            expected[room].add((pid, i))

    def publisher(pid):
        c = pubs[pid]

        def run():
            for room, i in plan[pid]:
                body = json.dumps({"p": pid, "i": i, "r": room}, separators=(",", ":"))
                if isinstance(c, ControlClient):
                    c.send('{"op":"pub","room":"%s","data":%s}' % (room, body))
                else:
                    c.send_text(body.encode())
                if i % 25 == 0:
                    time.sleep(0.001)
        return run

    results = {}    # subscriber index -> {room: [(seq or None, pid, i)]}

    def ctl_reader(idx, c, rooms):
        def run():
            want = sum(len(expected[r]) for r in rooms)
            got = {r: [] for r in rooms}
            for _ in range(want):
                try:
                    m = c.recv(20.0)
                except WsTimeout:
                    raise AssertionError(f"control subscriber {idx} got {sum(map(len, got.values()))}"
                                         f" of {want}") from None
                assert "op" not in m, m
                assert m["room"] in got, m
                d = m["data"]
                assert d["r"] == m["room"], m
                got[m["room"]].append((m["seq"], d["p"], d["i"]))
            c.ws.expect_silence(0.3)
            results[("ctl", idx)] = got
        return run

    def raw_reader(idx, c, room):
        def run():
            want = len(expected[room])
            got = []
            for _ in range(want):
                try:
                    f = c.recv_frame(20.0)
                except WsTimeout:
                    raise AssertionError(f"raw subscriber {idx} got {len(got)} of {want}") from None
                assert f.opcode == OP_TEXT, f
                d = json.loads(f.payload)
                assert d["r"] == room, d
                got.append((None, d["p"], d["i"]))
            c.expect_silence(0.3)
            results[("raw", idx)] = {room: got}
        return run

    readers = [ctl_reader(i, c, rooms) for i, (c, _, rooms) in enumerate(conns["ctl_sub"])]
    readers += [raw_reader(i, c, rooms[0]) for i, (c, _, rooms) in enumerate(conns["raw_sub"])]
    _run_threads(readers + [publisher(pid) for pid in plan], timeout=60)

    seq_of = {room: {} for room in ROOMS}   # room -> (pid, i) -> seq, as seen by control subscribers
    for (kind, idx), per_room in results.items():
        for room, got in per_room.items():
            msgs = [(pid, i) for _, pid, i in got]
            assert len(msgs) == len(set(msgs)), f"{kind} subscriber {idx} got duplicates in {room}"
            assert set(msgs) == expected[room], f"{kind} subscriber {idx} missed messages in {room}"
            last = {}
            for pid, i in msgs:   # one publisher's messages keep its order
                assert i > last.get(pid, -1), f"{kind} {idx} {room}: publisher {pid} out of order"
                last[pid] = i
            if kind == "ctl":
                seqs = [s for s, _, _ in got]
                assert seqs == list(range(1, len(expected[room]) + 1)), \
                    f"control subscriber {idx} {room}: seqs not 1..N in order"
                for s, pid, i in got:   # every subscriber agrees on which message has which seq
                    assert seq_of[room].setdefault((pid, i), s) == s, (room, pid, i)
    for (kind, idx), per_room in results.items():
        if kind == "raw":
            for room, got in per_room.items():
                order = [seq_of[room][(pid, i)] for _, pid, i in got]
                assert order == list(range(1, len(order) + 1)), f"raw {idx} {room}: not in seq order"

    m = metrics(srv)
    assert m["roomcast_published_total"] == len(plan) * PER_PUBLISHER, m
    # next seq of a room continues where the publishers left off
    r = post_publish(h, p, ROOMS[0], b'{"end":1}')
    assert json.loads(r.body)["seq"] == len(expected[ROOMS[0]]) + 1, r
    for role in roles:
        for c, _, _ in conns[role]:
            (c.ws if isinstance(c, ControlClient) else c).close_socket()


# ---------------------------------------------------------------------------------------------
# Resume with since (history 8) on four reactors.

@pytest.fixture(scope="module")
def hist8():
    srv = start_server(["--threads", str(REACTORS), "--history", "8"] + QUIET)
    yield srv
    assert srv.alive(), "".join(srv.stderr_lines[-20:])
    srv.stop()


def _publish(srv, room, values):
    seqs = []
    for v in values:
        r = post_publish(srv.host, srv.port, room, json.dumps({"v": v}))
        assert r.status == 200, r
        seqs.append(json.loads(r.body)["seq"])
    return seqs


def test_resume_without_gap(hist8):
    h, p = hist8.host, hist8.port
    room = "res.nogap"
    c = ControlClient.connect(h, p)
    c.sub(room)
    assert _publish(hist8, room, range(1, 6)) == [1, 2, 3, 4, 5]
    assert [m["data"]["v"] for m in c.deliveries(5)] == [1, 2, 3, 4, 5]
    c.ws.abort()
    # Several reconnects, each missing a few messages, each landing on some reactor.
    last_seen = 5
    for round_ in range(8):
        _publish(hist8, room, range(last_seen + 1, last_seen + 4))
        c = ControlClient.connect(h, p)
        r = c.sub(room, since=last_seen)
        assert r == {"op": "subscribed", "room": room, "seq": last_seen + 3, "replayed": 3,
                     "gap": False, "id": r["id"]}, r
        got = c.deliveries(3)
        assert [(m["seq"], m["data"]["v"]) for m in got] == \
            [(s, s) for s in range(last_seen + 1, last_seen + 4)], got
        last_seen += 3
        # then live
        c.pub(room, {"v": last_seen + 1})
        assert c.recv() == {"room": room, "seq": last_seen + 1, "data": {"v": last_seen + 1}}
        last_seen += 1
        c.expect_silence(0.05)
        c.close()
    # since == last: nothing replayed; since beyond last: nothing either
    for since in (last_seen, last_seen + 100):
        c = ControlClient.connect(h, p)
        r = c.sub(room, since=since)
        assert r["seq"] == last_seen and r["replayed"] == 0 and r["gap"] is False, r
        c.expect_silence(0.2)
        c.close()


def test_resume_with_gap(hist8):
    h, p = hist8.host, hist8.port
    room = "res.gap"
    c = ControlClient.connect(h, p)
    c.sub(room)
    _publish(hist8, room, range(1, 4))
    assert [m["seq"] for m in c.deliveries(3)] == [1, 2, 3]
    c.close()
    _publish(hist8, room, range(4, 24))     # 20 missed, the ring holds 16..23
    c = ControlClient.connect(h, p)
    r = c.sub(room, since=3)
    assert r == {"op": "subscribed", "room": room, "seq": 23, "replayed": 8, "gap": True,
                 "id": r["id"]}, r
    got = c.deliveries(8)
    assert [(m["seq"], m["data"]["v"]) for m in got] == [(s, s) for s in range(16, 24)], got
    c.pub(room, {"v": 24})
    assert c.recv()["seq"] == 24
    c.expect_silence(0.1)
    c.close()
    # exactly at the edge: since = oldest-1 is no gap, since = oldest-2 is a gap
    c = ControlClient.connect(h, p)
    r = c.sub(room, since=16)
    assert r["seq"] == 24 and r["replayed"] == 8 and r["gap"] is False, r
    assert [m["seq"] for m in c.deliveries(8)] == list(range(17, 25))
    c.close()
    c = ControlClient.connect(h, p)
    r = c.sub(room, since=15)
    assert r["seq"] == 24 and r["replayed"] == 8 and r["gap"] is True, r
    assert [m["seq"] for m in c.deliveries(8)] == list(range(17, 25))
    c.close()
    # since=0 on a room with more than history: gap, from the oldest held
    c = ControlClient.connect(h, p)
    r = c.sub(room, since=0)
    assert r["gap"] is True and r["replayed"] == 8, r
    assert [m["seq"] for m in c.deliveries(8)] == list(range(17, 25))
    c.close()


def test_raw_resume_since(hist8):
    h, p = hist8.host, hist8.port
    room = "res.raw"
    _publish(hist8, room, range(1, 6))
    s = raw_subscriber(h, p, room, since=2)
    for v in (3, 4, 5):
        s.expect_message(OP_TEXT, json.dumps({"v": v}).encode())
    _publish(hist8, room, [6])
    s.expect_message(OP_TEXT, b'{"v": 6}')
    s.close_handshake()
    _publish(hist8, room, range(7, 30))
    s = raw_subscriber(h, p, room, since=6)   # gap: starts at the oldest held, 22
    for v in range(22, 30):
        s.expect_message(OP_TEXT, json.dumps({"v": v}).encode())
    s.expect_silence(0.2)
    s.close_socket()
    for since in ("29", "1000"):
        s = raw_subscriber(h, p, room, since=since)
        s.expect_silence(0.2)
        s.close_socket()
    for bad in ("x", "-1", "", "1.5", "99999999999999999999999"):
        r = upgrade_status(h, p, f"/ws/{room}?since={bad}")
        assert r.status == 400, (bad, r)


def test_resume_many_rooms_one_connection(hist8):
    """One /ws connection resumes several rooms (owned by different reactors) at once."""
    h, p = hist8.host, hist8.port
    rooms = [f"res.multi{i}" for i in range(8)]
    for i, room in enumerate(rooms):
        _publish(hist8, room, range(1, 3 + i))      # room i has 2+i messages
    c = ControlClient.connect(h, p)
    for i, room in enumerate(rooms):
        n = 2 + i
        r = c.sub(room, since=1)
        want_gap = n - 1 > 8
        assert r["seq"] == n and r["gap"] is want_gap, r
        got = c.deliveries(r["replayed"])
        assert [m["seq"] for m in got] == list(range(n - r["replayed"] + 1, n + 1)), got
        assert all(m["room"] == room for m in got)
    c.close()


# ---------------------------------------------------------------------------------------------
# Replay/live ordering while a publisher keeps publishing.

def test_replay_live_ordering_under_concurrent_publishing(make_server):
    srv = make_server(["--threads", str(REACTORS), "--history", "1024"] + QUIET)
    h, p = srv.host, srv.port
    room = "race.room"
    total = 3000
    latest = [0]
    done = threading.Event()
    resumes = []

    tracker = ControlClient.connect(h, p)
    tracker.sub(room)
    pub = raw_publisher(h, p, room)

    def track():
        while latest[0] < total:
            m = tracker.recv(20.0)
            assert m["seq"] == latest[0] + 1, (m, latest[0])
            assert json.loads(json.dumps(m["data"]))["i"] == m["seq"], m
            latest[0] = m["seq"]
        done.set()

    def publish():
        for i in range(1, total + 1):
            pub.send_text(b'{"i":%d}' % i)
            if i % 4 == 0:
                time.sleep(0.001)

    def resumer(n, raw):
        rng = random.Random(n)

        def run():
            while latest[0] < 50:
                time.sleep(0.005)
            while not done.is_set() and latest[0] < total - 60:
                since = max(0, latest[0] - rng.randint(0, 60))
                if raw:
                    c = raw_subscriber(h, p, room, since=since)
                    want = since + 1
                    stop = min(total, since + 120)
                    while want <= stop:
                        f = c.recv_frame(20.0)
                        i = json.loads(f.payload)["i"]
                        assert i == want, f"raw resume since={since}: got {i}, expected {want}"
                        want += 1
                    c.close_socket()
                else:
                    c = ControlClient.connect(h, p)
                    r = c.sub(room, since=since)
                    assert r["gap"] is False, r
                    assert r["seq"] >= since and r["replayed"] == r["seq"] - since, (since, r)
                    want = since + 1
                    stop = min(total, max(r["seq"], since) + 60)
                    while want <= stop:
                        m = c.recv(20.0)
                        assert "op" not in m, m
                        assert m["seq"] == want and m["data"]["i"] == want, \
                            f"resume since={since} (reply {r}): got seq {m['seq']}, expected {want}"
                        want += 1
                    c.close()
                resumes.append((raw, since))
        return run

    _run_threads([track, publish] + [resumer(n, raw=n % 2 == 1) for n in range(6)], timeout=60)
    assert latest[0] == total
    assert len(resumes) >= 12, f"only {len(resumes)} resumes happened while publishing"
    assert any(r for r, _ in resumes) and any(not r for r, _ in resumes)
    pub.close_handshake()
    tracker.close()
