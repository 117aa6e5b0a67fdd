"""Rooms: the /ws control protocol (replies, deliveries, every error code), raw subscribe/publish,
POST /publish, room-name validation, unsubscribe, disconnect while subscribed and "last"."""
import base64
import json
import time

import pytest

from roomcast_testing import RestartingServer
from rooms_helpers import (QUIET, ControlClient, http, metrics, post_publish, post_request,
                           raw_publisher, raw_subscriber, upgrade_status)
from wsclient import OP_BINARY, OP_TEXT, Conn, assert_echo_works, build_request

ARGS = ["--threads", "2", "--history", "16", "--max-message-size", "64K"] + QUIET


@pytest.fixture(scope="module")
def shared():
    rs = RestartingServer(ARGS)
    yield rs
    rs.stop()


@pytest.fixture
def server(shared):
    srv = shared.get()
    yield srv
    assert srv.alive(), "roomcast died during the test: " + "".join(srv.stderr_lines[-20:])


def test_subscribe_reply_and_delivery_formats(server):
    h, p = server.host, server.port
    c = ControlClient.connect(h, p)
    raw = raw_subscriber(h, p, "fmt.room", since=0)
    try:
        assert c.request({"op": "sub", "room": "fmt.room", "id": 1}) == \
            {"op": "subscribed", "room": "fmt.room", "seq": 0, "replayed": 0, "gap": False, "id": 1}
        # pub on /ws: the data JSON goes out verbatim (spacing kept), raw subscribers get its text.
        c.send(b'{"op":"pub","room":"fmt.room","data":{ "a" : [1, 2.5, "x"] ,"b":null}}')
        f = c.ws.recv_frame()
        assert f.opcode == OP_TEXT
        assert f.payload == b'{"room":"fmt.room","seq":1,"data":{ "a" : [1, 2.5, "x"] ,"b":null}}', f
        raw.expect_message(OP_TEXT, b'{ "a" : [1, 2.5, "x"] ,"b":null}')
        # Raw publisher: non-JSON text becomes a JSON string, binary becomes b64.
        pub = raw_publisher(h, p, "fmt.room")
        tricky = 'he said "hi"\n\t\\ caf\u00e9 \u2603 \x01 </script>'
        pub.send_text(tricky.encode())
        assert c.recv() == {"room": "fmt.room", "seq": 2, "data": tricky}
        raw.expect_message(OP_TEXT, tricky.encode())
        blob = bytes(range(256)) + b"\x00\xff"
        pub.send_binary(blob)
        m = c.recv()
        assert set(m) == {"room", "seq", "b64"} and m["room"] == "fmt.room" and m["seq"] == 3, m
        assert base64.b64decode(m["b64"]) == blob
        raw.expect_message(OP_BINARY, blob)
        # JSON text from the raw publisher is embedded as JSON.
        pub.send_text(b'[true,false,{"n":-1e3}]')
        assert c.recv() == {"room": "fmt.room", "seq": 4, "data": [True, False, {"n": -1e3}]}
        raw.expect_message(OP_TEXT, b'[true,false,{"n":-1e3}]')
        # POST: JSON body embedded, binary body as b64 / binary frame.
        r = post_publish(h, p, "fmt.room", b'{"via":"post"}')
        assert r.status == 200 and json.loads(r.body) == {"room": "fmt.room", "seq": 5}, r
        assert c.recv() == {"room": "fmt.room", "seq": 5, "data": {"via": "post"}}
        raw.expect_message(OP_TEXT, b'{"via":"post"}')
        r = post_publish(h, p, "fmt.room", b"\xff\xfe\x00bin")
        assert r.status == 200 and json.loads(r.body) == {"room": "fmt.room", "seq": 6}, r
        m = c.recv()
        assert m["seq"] == 6 and base64.b64decode(m["b64"]) == b"\xff\xfe\x00bin", m
        raw.expect_message(OP_BINARY, b"\xff\xfe\x00bin")
        # A string id is echoed too; pub sends no reply.
        assert c.request({"op": "sub", "room": "fmt.other", "id": "abc"})["id"] == "abc"
        c.pub("fmt.other", "s")
        assert c.recv() == {"room": "fmt.other", "seq": 1, "data": "s"}
        c.expect_silence(0.2)
        raw.expect_silence(0.2)
        pub.close_handshake()
        raw.close_handshake()
    finally:
        c.close()
        raw.close_socket()


BAD_REQUESTS = [
    # (message, id echoed)
    (b"not json at all", None),
    (b"", None),
    (b'{"op":"sub","room":"x","id":9', None),
    (b'{"op":"sub","room":"x","id":9} trailing', None),
    (b"[1,2,3]", None),
    (b'"just a string"', None),
    (b'{"room":"x","id":1}', 1),                           # missing op
    (b'{"op":"subscribe","room":"x","id":2}', 2),          # unknown op
    (b'{"op":42,"room":"x","id":3}', 3),
    (b'{"op":"sub","id":4}', 4),                           # missing room
    (b'{"op":"sub","room":"","id":5}', 5),
    (b'{"op":"sub","room":"has space","id":6}', 6),
    (b'{"op":"sub","room":"slash/y","id":7}', 7),
    (b'{"op":"sub","room":"' + b"r" * 129 + b'","id":8}', 8),
    (b'{"op":"sub","room":17,"id":9}', 9),
    (b'{"op":"sub","room":"caf\xc3\xa9","id":10}', 10),
    (b'{"op":"sub","room":"x","since":"5","id":11}', 11),
    (b'{"op":"sub","room":"x","since":-1,"id":12}', 12),
    (b'{"op":"sub","room":"x","last":"yes","id":13}', 13),
    (b'{"op":"unsub","id":14}', 14),
    (b'{"op":"unsub","room":"bad room","id":15}', 15),
    (b'{"op":"pub","room":"x","id":16}', 16),              # missing data
    (b'{"op":"pub","data":1,"id":17}', 17),
    (b'{"op":"pub","room":"bad!","data":1,"id":18}', 18),
]


def test_control_errors_each_code_connection_stays_usable(server):
    h, p = server.host, server.port
    c = ControlClient.connect(h, p)
    watcher = ControlClient.connect(h, p)
    try:
        watcher.sub("x")
        for msg, rid in BAD_REQUESTS:
            c.send(msg)
            r = c.reply()
            assert r.get("op") == "error" and r.get("code") == "bad_request", (msg, r)
            assert isinstance(r.get("message"), str) and r["message"], (msg, r)
            if rid is not None:
                assert r.get("id") == rid, (msg, r)
        # A binary message is not part of the protocol.
        c.ws.send_binary(b'{"op":"sub","room":"x","id":99}')
        r = c.reply()
        assert r["op"] == "error" and r["code"] == "bad_request", r
        # none of the bad "pub"s published anything, none of the bad "sub"s subscribed
        watcher.expect_silence(0.2)
        # already_subscribed / not_subscribed, with ids.
        c.sub("x")
        r = c.request({"op": "sub", "room": "x", "id": 100})
        assert r["op"] == "error" and r["code"] == "already_subscribed" and r["id"] == 100, r
        r = c.request({"op": "unsub", "room": "never", "id": 101})
        assert r["op"] == "error" and r["code"] == "not_subscribed" and r["id"] == 101, r
        # The connection is still fully usable: exactly one delivery per publish.
        c.pub("x", {"after": "errors"})
        d = c.recv()
        assert d["room"] == "x" and d["data"] == {"after": "errors"}, d
        w = watcher.recv()
        assert w == d, (w, d)
        c.unsub("x")
        c.expect_silence(0.2)
        assert server.health()["connections"] >= 2
    finally:
        c.close()
        watcher.close()


def test_too_many_rooms(make_server):
    srv = make_server(["--threads", "2", "--max-rooms-per-connection", "3"] + QUIET)
    c = ControlClient.connect(srv.host, srv.port)
    try:
        for r in ("m1", "m2", "m3"):
            c.sub(r)
        r = c.request({"op": "sub", "room": "m4", "id": 7})
        assert r["op"] == "error" and r["code"] == "too_many_rooms" and r["id"] == 7, r
        # m4 was not subscribed: a publish there is not delivered
        c.pub("m4", 1)
        c.expect_silence(0.2)
        c.unsub("m2")
        c.sub("m4")
        c.pub("m4", 2)
        assert c.recv() == {"room": "m4", "seq": 2, "data": 2}
        # another connection has its own budget
        d = ControlClient.connect(srv.host, srv.port)
        for r in ("m1", "m2", "m3"):
            d.sub(r)
        d.close()
    finally:
        c.close()


def test_unsubscribe_stops_deliveries(server):
    h, p = server.host, server.port
    c = ControlClient.connect(h, p)
    other = ControlClient.connect(h, p)
    try:
        c.sub("u.a")
        c.sub("u.b")
        other.sub("u.a")
        c.pub("u.a", 1)
        assert c.recv() == {"room": "u.a", "seq": 1, "data": 1}
        assert other.recv() == {"room": "u.a", "seq": 1, "data": 1}
        c.unsub("u.a")
        r = c.request({"op": "unsub", "room": "u.a", "id": 50})
        assert r["code"] == "not_subscribed", r
        for i in range(2, 12):
            c.pub("u.a", i)
        c.pub("u.b", "b")
        # only u.b arrives on c; the other subscriber of u.a still gets everything
        assert c.recv() == {"room": "u.b", "seq": 1, "data": "b"}
        c.expect_silence(0.3)
        assert [m["seq"] for m in other.deliveries(10)] == list(range(2, 12))
        # resubscribe: live again from the next seq
        r = c.sub("u.a")
        assert r["seq"] == 11 and r["replayed"] == 0, r
        c.pub("u.a", 12)
        assert c.recv() == {"room": "u.a", "seq": 12, "data": 12}
    finally:
        c.close()
        other.close()


def test_raw_subscriber_unsubscribes_on_close(server):
    h, p = server.host, server.port
    before = metrics(server)["roomcast_deliveries_total"]
    subs = [raw_subscriber(h, p, "rawclose", since=0) for _ in range(4)]
    c = ControlClient.connect(h, p)
    c.sub("rawclose")
    c.pub("rawclose", 1)
    c.recv()
    for s in subs:
        s.expect_message(OP_TEXT, b"1")
        s.close_handshake()
    time.sleep(0.2)
    mid = metrics(server)["roomcast_deliveries_total"]
    for i in range(10):
        c.pub("rawclose", i)
    assert len(c.deliveries(10)) == 10
    after = metrics(server)["roomcast_deliveries_total"]
    assert mid - before == 5, (before, mid)
    assert after - mid == 10, f"deliveries still counted for closed subscribers: {mid} -> {after}"
    c.close()


def test_disconnect_while_subscribed(server):
    h, p = server.host, server.port
    base = server.health()["connections"]
    # Subscribers that vanish in every way while messages are in flight to them.
    victims = []
    for i in range(30):
        c = ControlClient.connect(h, p)
        c.sub("dc.room")
        c.sub(f"dc.room{i % 3}")
        victims.append(c)
    raws = [raw_subscriber(h, p, "dc.room") for _ in range(10)]
    pub = raw_publisher(h, p, "dc.room")
    for i in range(50):
        pub.send_text(b"%d" % i)
    for i, c in enumerate(victims):
        if i % 3 == 0:
            c.ws.abort()                 # RST
        elif i % 3 == 1:
            c.ws.close_socket()          # FIN without a close frame
        else:
            c.ws.send_close(1000)        # polite, without waiting
            c.ws.close_socket()
    for r in raws:
        r.abort()
    for i in range(50, 200):
        pub.send_text(b"%d" % i)
    # Server alive and serving; counts fall back; new subscribers and publishes work.
    deadline = time.monotonic() + 5
    while server.health()["connections"] != base + 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.health()["connections"] == base + 1, server.health()
    fresh = ControlClient.connect(h, p)
    r = fresh.sub("dc.room", since=190)
    assert r["seq"] == 200 and r["replayed"] == 10 and r["gap"] is False, r
    assert [m["seq"] for m in fresh.deliveries(10)] == list(range(191, 201))
    pub.send_text(b"after")
    assert fresh.recv() == {"room": "dc.room", "seq": 201, "data": "after"}
    for i in range(3):             # rooms whose only subscribers are gone
        fresh.pub(f"dc.room{i}", "x")
    fresh.expect_silence(0.2)
    pub.close_handshake()
    fresh.close()
    assert_echo_works(h, p)


def test_last_true_gives_latest_at_once(server):
    h, p = server.host, server.port
    c = ControlClient.connect(h, p)
    try:
        r = c.sub("last.empty", last=True)
        assert r["seq"] == 0 and r["replayed"] == 0, r
        for i in range(1, 6):
            assert post_publish(h, p, "last.room", json.dumps({"v": i})).status == 200
        r = c.sub("last.room", last=True)
        assert r == {"op": "subscribed", "room": "last.room", "seq": 5, "replayed": 1, "gap": False,
                     "id": r["id"]}, r
        assert c.recv() == {"room": "last.room", "seq": 5, "data": {"v": 5}}
        c.expect_silence(0.2)
        c.pub("last.room", {"v": 6})
        assert c.recv() == {"room": "last.room", "seq": 6, "data": {"v": 6}}
        # last:false is a plain live subscribe
        d = ControlClient.connect(h, p)
        r = d.sub("last.room", last=False)
        assert r["seq"] == 6 and r["replayed"] == 0, r
        d.expect_silence(0.2)
        d.close()
    finally:
        c.close()


@pytest.mark.parametrize("room", ["a b", "a/b", "a%20b", "caf%C3%A9", "x" * 129, "a?b", "semi;colon",
                                  "plus+", "tilde~", "star*"])
def test_bad_room_names_http(server, room):
    h, p = server.host, server.port
    for path in (f"/ws/{room}", f"/publish/{room}"):
        r = upgrade_status(h, p, path)
        if room == "a?b":   # "?b" is a query: room "a" is fine
            assert r.status == 101, (path, r)
            continue
        assert r.status == 400, (path, r)
    r = http(h, p, post_request(None, b"x", path=f"/publish/{room}"))
    if room == "a?b":
        assert r.status == 200, r
    else:
        assert r.status == 400, r
        if " " not in room:      # (a space breaks the request line itself)
            assert b"room" in r.body, r


def test_empty_room_name_http(server):
    h, p = server.host, server.port
    assert upgrade_status(h, p, "/ws/").status == 400
    assert upgrade_status(h, p, "/publish/").status == 400
    assert http(h, p, post_request(None, b"x", path="/publish/")).status == 400


def test_good_room_names_edge_cases(server):
    h, p = server.host, server.port
    for room in ("Q", "g" * 128, "AZaz09._:@-", "user@example.com", "feed:BTC-USD.l2"):
        c = ControlClient.connect(h, p)
        raw = raw_subscriber(h, p, room, since=0)
        c.sub(room)
        r = post_publish(h, p, room, b'"hello"')
        assert r.status == 200 and json.loads(r.body)["room"] == room, r
        m = c.recv()
        assert m["room"] == room and m["data"] == "hello", m
        raw.expect_message(OP_TEXT, b'"hello"')
        c.close()
        raw.close_socket()


def test_post_publish(server):
    h, p = server.host, server.port
    c = ControlClient.connect(h, p)
    try:
        c.sub("post.room")
        seqs = []
        for i in range(3):
            r = post_publish(h, p, "post.room", json.dumps({"n": i}))
            assert r.status == 200, r
            assert r.header("content-type").startswith("application/json"), r
            doc = json.loads(r.body)
            assert doc == {"room": "post.room", "seq": i + 1}, doc
            seqs.append(doc["seq"])
        assert [(m["seq"], m["data"]) for m in c.deliveries(3)] == [(1, {"n": 0}), (2, {"n": 1}),
                                                                     (3, {"n": 2})]
        # 413 over --max-message-size (64K), nothing published
        r = http(h, p, post_request("post.room", b"y" * (64 * 1024 + 1)))
        assert r.status == 413, r
        r = http(h, p, build_request("/publish/post.room", upgrade=False, method="POST",
                                     headers={"Content-Length": str(10 * 1024 * 1024)}))
        assert r.status == 413, r
        # exactly the limit is fine
        r = post_publish(h, p, "post.room", b"z" * (64 * 1024))
        assert r.status == 200 and json.loads(r.body)["seq"] == 4, r
        assert c.recv()["seq"] == 4
        # 411 without Content-Length, and with chunked encoding
        r = http(h, p, build_request("/publish/post.room", upgrade=False, method="POST"))
        assert r.status == 411, r
        r = http(h, p, build_request("/publish/post.room", upgrade=False, method="POST",
                                     headers={"Transfer-Encoding": "chunked"}, body=b"1\r\nx\r\n0\r\n\r\n"))
        assert r.status == 411, r
        # GET on /publish without upgrade is not a publish
        r = http(h, p, build_request("/publish/post.room", upgrade=False))
        assert r.status in (405, 426), r
        c.expect_silence(0.2)
        # body split across several TCP segments
        conn = Conn.open(h, p)
        conn.send_raw(post_request("post.room", b'{"split":true}'), chunk=7, delay=0.002)
        r = conn.read_http_response()
        conn.close_socket()
        assert r.status == 200 and json.loads(r.body)["seq"] == 5, r
        assert c.recv() == {"room": "post.room", "seq": 5, "data": {"split": True}}
    finally:
        c.close()


def test_post_publish_keep_alive(server):
    """Two POSTs on one keep-alive connection (HTTP/1.1 default) both publish and are answered."""
    h, p = server.host, server.port
    c = ControlClient.connect(h, p)
    conn = Conn.open(h, p)
    try:
        c.sub("ka.room")
        conn.send_raw(post_request("ka.room", b'"one"'))
        r1 = conn.read_http_response()
        assert r1.status == 200 and json.loads(r1.body) == {"room": "ka.room", "seq": 1}, r1
        assert "close" not in (r1.header("connection") or "").lower(), \
            f"POST /publish answer closes a keep-alive connection: {r1}"
        assert conn.send_raw(post_request("ka.room", b'"two"'))
        r2 = conn.read_http_response()
        assert r2.status == 200 and json.loads(r2.body) == {"room": "ka.room", "seq": 2}, r2
        # and two pipelined in one write
        conn.send_raw(post_request("ka.room", b'"three"') + post_request("ka.room", b'"four"'))
        assert json.loads(conn.read_http_response().body)["seq"] == 3
        assert json.loads(conn.read_http_response().body)["seq"] == 4
        assert [m["data"] for m in c.deliveries(4)] == ["one", "two", "three", "four"]
    finally:
        conn.close_socket()
        c.close()


def test_post_publish_status_reason_phrases(server):
    h, p = server.host, server.port
    r = http(h, p, build_request("/publish/rp", upgrade=False, method="POST"))
    assert (r.status, r.reason) == (411, "Length Required"), r
    r = http(h, p, post_request("rp", b"y" * (64 * 1024 + 1)))
    assert r.status == 413 and r.reason in ("Payload Too Large", "Content Too Large"), r


def test_raw_publisher_and_subscriber_many_rooms(server):
    h, p = server.host, server.port
    rooms = [f"rr{i}" for i in range(8)]
    subs = {r: raw_subscriber(h, p, r, since=0) for r in rooms}
    pubs = {r: raw_publisher(h, p, r) for r in rooms}
    try:
        for i in range(20):
            for r in rooms:
                pubs[r].send_text(f"{r}:{i}".encode())
        for r in rooms:
            for i in range(20):
                subs[r].expect_message(OP_TEXT, f"{r}:{i}".encode())
            subs[r].expect_silence(0.05)
        # what a raw subscriber sends is ignored; it keeps receiving
        subs["rr0"].send_text(b"ignored")
        pubs["rr0"].send_text(b"more")
        subs["rr0"].expect_message(OP_TEXT, b"more")
    finally:
        for c in list(subs.values()) + list(pubs.values()):
            c.close_socket()
