"""Rooms: --room-memory bounds what hostile publishers can make the server hold. A flood of distinct
room names and of big messages (over /ws and POST) leaves RssAnon bounded while the owners evict old
history and delete idle empty rooms (/metrics shows it), and a room with a live subscriber keeps
working throughout. When only rooms with subscribers are left, a subscribe or publish that would create
a room is refused with the documented answers: /ws error reply, POST 503, raw publisher close 1013, raw
subscriber 503 instead of the 101."""
import json
import time

from rooms_helpers import (QUIET, ControlClient, metrics, post_publish, raw_publisher, raw_subscriber, rss_anon_kib,
                           sanitized)
from wsclient import OP_TEXT, Conn, build_request, encode_frame, new_key

LIMIT_MESSAGE = "room memory limit reached (--room-memory)"
ROOM_MEMORY = 4 << 20
FLOOD_ROOMS = 150_000
BIG = 512 * 1024
RSS_BOUND_KIB = 32 * 1024  # allowed RssAnon growth; without --room-memory the flood holds ~100 MiB


def owner(name, reactors=2):
    """The owner reactor of a room (room.hpp: FNV-1a 64, high half folded in)."""
    h = 0xCBF29CE484222325
    for b in name.encode():
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return (h ^ (h >> 32)) % reactors


def name_on(reactor, prefix, reactors=2):
    i = 0
    while owner(f"{prefix}{i}", reactors) != reactor:
        i += 1
    return f"{prefix}{i}"


class Syncer:
    """Waits until both owners have handled everything a /ws connection published so far: a "sub" for a
    room of each owner travels behind those publishes (per-pair FIFO) and is answered after them."""

    def __init__(self, client):
        self.c = client
        self.n = 0

    def sync(self, timeout=30.0):
        for r in (0, 1):
            self.n += 1
            room = name_on(r, f"sync.{self.n}.")
            assert self.c.request({"op": "sub", "room": room, "id": f"s{self.n}"}, timeout)["op"] == "subscribed"
            assert self.c.request({"op": "unsub", "room": room}, timeout)["op"] == "unsubscribed"


def pub_frames(rooms, data="1"):
    return b"".join(encode_frame(OP_TEXT, '{"op":"pub","room":"%s","data":%s}' % (r, data)) for r in rooms)


def test_floods_stay_bounded_and_a_live_room_keeps_working(make_server):
    srv = make_server(["--threads", "2", "--room-memory", str(ROOM_MEMORY), "--max-message-size", "1M"] + QUIET)
    h, p = srv.host, srv.port
    live = ControlClient.connect(h, p)
    assert live.sub("live.room")["seq"] == 0
    live_raw = raw_subscriber(h, p, "live.room")
    live_pub = ControlClient.connect(h, p)
    flood = ControlClient.connect(h, p)
    sync = Syncer(flood)
    sent = []

    def live_publish():
        n = len(sent) + 1
        live_pub.pub("live.room", {"n": n})
        sent.append(n)

    # Warm up (allocator arenas, buffers) before the baseline.
    for _ in range(3):
        live_publish()
    flood.ws.send_raw(pub_frames([f"warm.{i}" for i in range(2000)]))
    sync.sync()
    time.sleep(0.2)
    rss_before = rss_anon_kib(srv.proc.pid)
    m0 = metrics(srv)

    # 1. Distinct names over /ws, in batches (so cross-reactor queues stay short).
    batch = 5000
    for start in range(0, FLOOD_ROOMS, batch):
        flood.ws.send_raw(pub_frames([f"r{i}" for i in range(start, start + batch)]))
        sync.sync()
        if start % 25000 == 0:
            live_publish()
    m1 = metrics(srv)
    assert m1["roomcast_rooms"] < 40_000, m1  # a few hundred bytes each within 4 MiB
    assert m1["roomcast_rooms_deleted_total"] - m0["roomcast_rooms_deleted_total"] > FLOOD_ROOMS - 40_000, m1
    assert m1["roomcast_room_memory_bytes"] <= ROOM_MEMORY, m1

    # 2. Big messages into one room over /ws (history 1024 would hold 512 MiB of them).
    big = '"' + "x" * (BIG - 2) + '"'
    for i in range(64):
        flood.ws.send_raw(pub_frames(["big.ws"], big))
        if i % 8 == 7:
            sync.sync()
            live_publish()
    # 3. Big POST bodies, each to a new room.
    for i in range(32):
        r = post_publish(h, p, f"big.post.{i}", b"y" * BIG)
        assert r.status == 200 and json.loads(r.body) == {"room": f"big.post.{i}", "seq": 1}, r
    live_publish()
    sync.sync()
    time.sleep(0.2)
    rss_after = rss_anon_kib(srv.proc.pid)
    m2 = metrics(srv)

    # The live room: every message, in order, on both subscribers; it was never deleted.
    got = live.deliveries(len(sent), timeout=20.0)
    assert [d["seq"] for d in got] == list(range(1, len(sent) + 1)), got
    assert [d["data"]["n"] for d in got] == sent
    for n in sent:
        live_raw.expect_message(OP_TEXT, json.dumps({"n": n}).encode(), timeout=10.0)
    late = ControlClient.connect(h, p)
    assert late.sub("live.room", since=0)["seq"] == len(sent)
    late.close()

    assert m2["roomcast_room_memory_bytes"] <= ROOM_MEMORY, m2
    assert m2["roomcast_room_evictions_total"] > m1["roomcast_room_evictions_total"], (m1, m2)
    assert m2["roomcast_rooms_deleted_total"] > m1["roomcast_rooms_deleted_total"], (m1, m2)
    assert m2["roomcast_room_refusals_total"] == 0, m2  # nothing is pinned here: eviction always makes room
    growth = rss_after - rss_before
    print(f"RssAnon before {rss_before} KiB, after {rss_after} KiB (growth {growth} KiB); rooms "
          f"{int(m2['roomcast_rooms'])}, room memory {int(m2['roomcast_room_memory_bytes'])} B, evictions "
          f"{int(m2['roomcast_room_evictions_total'])}, deleted {int(m2['roomcast_rooms_deleted_total'])}")
    assert growth < RSS_BOUND_KIB or sanitized(srv.proc.pid), \
        f"RssAnon grew by {growth} KiB ({rss_before} -> {rss_after}) with --room-memory {ROOM_MEMORY >> 20}M"
    for c in (live, live_pub, flood):
        c.close()
    live_raw.close_socket()


def test_new_rooms_are_refused_when_only_subscribed_rooms_are_left(make_server):
    srv = make_server(["--threads", "2", "--room-memory", "256K", "--max-rooms-per-connection", "100000"] + QUIET)
    h, p = srv.host, srv.port
    subs = ControlClient.connect(h, p)
    n = 3000  # far more rooms than 128 KiB per reactor can pin
    subs.ws.send_raw(b"".join(encode_frame(OP_TEXT, json.dumps({"op": "sub", "room": f"p.{i}", "id": i}))
                              for i in range(n)))
    replies = {}
    while len(replies) < n:
        m = subs.recv(10.0)
        replies[m["id"]] = m
    ok = [i for i in range(n) if replies[i]["op"] == "subscribed"]
    refused = [i for i in range(n) if replies[i]["op"] == "error"]
    assert len(ok) + len(refused) == n
    assert len(ok) > 300 and len(refused) > n // 2, (len(ok), len(refused))
    for i in refused:
        assert replies[i] == {"op": "error", "code": "room_memory_limit", "message": LIMIT_MESSAGE, "id": i}
    assert {owner(f"p.{i}") for i in refused} == {0, 1}  # both owners are full
    assert metrics(srv)["roomcast_room_refusals_total"] == len(refused)

    # Now every way of creating a room is refused, each with its answer.
    c = ControlClient.connect(h, p)
    assert c.request({"op": "pub", "room": "new.ws", "data": [1, 2], "id": "x-1"}) == \
        {"op": "error", "code": "room_memory_limit", "message": LIMIT_MESSAGE, "id": "x-1"}
    c.send({"op": "pub", "room": "new.ws2", "data": 3})  # no id: the reply has none
    assert c.reply() == {"op": "error", "code": "room_memory_limit", "message": LIMIT_MESSAGE}
    assert c.request({"op": "sub", "room": "new.sub", "id": 7}) == \
        {"op": "error", "code": "room_memory_limit", "message": LIMIT_MESSAGE, "id": 7}
    assert c.request({"op": "unsub", "room": "new.sub", "id": 8})["code"] == "not_subscribed"  # it never started
    r = post_publish(h, p, "new.post", b'{"a":1}')
    assert r.status == 503 and r.body == (LIMIT_MESSAGE + "\n").encode(), r
    pub = raw_publisher(h, p, "new.raw")  # the 101 comes first: the room is made by the first message
    pub.send_text(b"hello")
    pub.expect_close(1013, reason=LIMIT_MESSAGE.encode())
    conn = Conn.open(h, p)
    conn.send_raw(build_request("/ws/new.rawsub", f"{h}:{p}", None, key=new_key()))
    r = conn.read_http_response(5.0)
    assert r.status == 503 and r.body == (LIMIT_MESSAGE + "\n").encode(), r
    conn.expect_eof()
    assert metrics(srv)["roomcast_room_refusals_total"] == len(refused) + 6
    # The /ws connection is still usable, and rooms that exist still work.
    c.pub(f"p.{ok[0]}", "still here")
    assert subs.recv() == {"room": f"p.{ok[0]}", "seq": 1, "data": "still here"}
    assert c.request({"op": "sub", "room": f"p.{ok[1]}", "id": 9})["op"] == "subscribed"

    # The subscribers leave: their empty rooms are deleted and new rooms fit again.
    before = metrics(srv)["roomcast_rooms_deleted_total"]
    subs.close()
    deadline = time.monotonic() + 10
    while metrics(srv)["roomcast_rooms"] > 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    m = metrics(srv)
    assert m["roomcast_rooms"] <= 2, m  # p.ok[1] (c's subscription) and p.ok[0] (holds a message)
    assert m["roomcast_rooms_deleted_total"] >= before + len(ok) - 2, m
    r = post_publish(h, p, "new.post", b'{"a":1}')
    assert r.status == 200 and json.loads(r.body) == {"room": "new.post", "seq": 1}, r
    c.close()
