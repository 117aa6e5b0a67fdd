"""Rooms: --publish-token / --subscribe-token on every way to publish and subscribe (Authorization:
Bearer or ?token=), 401 missing / 403 wrong, /ws refused only for a token good for neither, then
per-op "forbidden" errors."""
import json

import pytest

from roomcast_testing import start_server
from rooms_helpers import (QUIET, ControlClient, http, post_request, raw_publisher, raw_subscriber,
                           upgrade_status)
from wsclient import OP_TEXT, build_request

PUB, SUB = "pub-s3cret", "sub-t0ken"


@pytest.fixture(scope="module")
def server():
    srv = start_server(["--threads", "2", "--publish-token", PUB, "--subscribe-token", SUB] + QUIET)
    yield srv
    srv.stop()


def bearer(t):
    return {"Authorization": f"Bearer {t}"}


def post(server, room, body, headers=None, query=""):
    return http(server.host, server.port,
                post_request(room, body, headers, path=f"/publish/{room}{query}"))


@pytest.mark.parametrize("path,good", [
    ("/ws/tok.room", SUB), ("/ws/tok.room?since=0", SUB), ("/publish/tok.room", PUB)])
def test_upgrade_token_statuses(server, path, good):
    h, p = server.host, server.port
    other = PUB if good == SUB else SUB
    sep = "&" if "?" in path else "?"
    r = upgrade_status(h, p, path)
    assert r.status == 401, r
    assert upgrade_status(h, p, path, bearer("nope")).status == 403
    assert upgrade_status(h, p, path, bearer(other)).status == 403
    assert upgrade_status(h, p, path + f"{sep}token=nope").status == 403
    assert upgrade_status(h, p, path + f"{sep}token={other}").status == 403
    assert upgrade_status(h, p, path, {"Authorization": f"Basic {good}"}).status in (401, 403)
    assert upgrade_status(h, p, path, bearer(good + "x")).status == 403
    assert upgrade_status(h, p, path, bearer(good[:-1])).status == 403
    assert upgrade_status(h, p, path, bearer(good)).status == 101
    assert upgrade_status(h, p, path + f"{sep}token={good}").status == 101


def test_post_publish_tokens(server):
    r = post(server, "tok.post", b"1")
    assert r.status == 401, r
    assert "bearer" in (r.header("www-authenticate") or "").lower(), r
    assert post(server, "tok.post", b"1", bearer("wrong")).status == 403
    assert post(server, "tok.post", b"1", bearer(SUB)).status == 403
    assert post(server, "tok.post", b"1", query="?token=wrong").status == 403
    r = post(server, "tok.post", b"1", bearer(PUB))
    assert r.status == 200 and json.loads(r.body) == {"room": "tok.post", "seq": 1}, r
    r = post(server, "tok.post", b"2", query=f"?token={PUB}")
    assert r.status == 200 and json.loads(r.body) == {"room": "tok.post", "seq": 2}, r


def test_ws_control_tokens(server):
    h, p = server.host, server.port
    assert upgrade_status(h, p, "/ws").status == 401
    assert upgrade_status(h, p, "/ws", bearer("wrong")).status == 403
    assert upgrade_status(h, p, "/ws?token=wrong").status == 403

    subber = ControlClient.connect(h, p, "/ws", headers=bearer(SUB))
    pubber = ControlClient.connect(h, p, f"/ws?token={PUB}")
    try:
        subber.sub("tok.ctl")
        # the subscribe-only connection may not publish...
        subber.send({"op": "pub", "room": "tok.ctl", "data": "x", "id": 1})
        r = subber.reply()
        assert r["op"] == "error" and r["code"] == "forbidden" and r["id"] == 1, r
        # ...and the publish-only one may not subscribe
        r = pubber.request({"op": "sub", "room": "tok.ctl", "id": 2})
        assert r["op"] == "error" and r["code"] == "forbidden" and r["id"] == 2, r
        pubber.pub("tok.ctl", {"ok": True})
        assert subber.recv() == {"room": "tok.ctl", "seq": 1, "data": {"ok": True}}
        # both connections still work after the forbidden errors
        pubber.pub("tok.ctl", 2)
        assert subber.recv()["seq"] == 2
        pubber.expect_silence(0.2)
        subber.expect_silence(0.1)
    finally:
        subber.close()
        pubber.close()


def test_raw_endpoints_with_tokens_deliver(server):
    h, p = server.host, server.port
    sub = raw_subscriber(h, p, "tok.raw", since=0, headers=bearer(SUB))
    sub2 = raw_subscriber(h, p, f"tok.raw?token={SUB}")
    pub = raw_publisher(h, p, f"tok.raw?token={PUB}")
    try:
        pub.send_text(b"hello")
        sub.expect_message(OP_TEXT, b"hello")
        sub2.expect_message(OP_TEXT, b"hello")
        r = post(server, "tok.raw", b"world", bearer(PUB))
        assert r.status == 200 and json.loads(r.body)["seq"] == 2, r
        sub.expect_message(OP_TEXT, b"world")
        sub2.expect_message(OP_TEXT, b"world")
    finally:
        for c in (sub, sub2, pub):
            c.close_socket()


def test_only_publish_token_set(make_server):
    """With only --publish-token, subscribing is open and /ws with no token may subscribe."""
    srv = make_server(["--threads", "2", "--publish-token", PUB] + QUIET)
    h, p = srv.host, srv.port
    assert upgrade_status(h, p, "/ws/open.room").status == 101
    assert upgrade_status(h, p, "/publish/open.room").status == 401
    c = ControlClient.connect(h, p)
    try:
        c.sub("open.room")
        r = c.request({"op": "pub", "room": "open.room", "data": 1, "id": 3})
        assert r["code"] == "forbidden" and r["id"] == 3, r
        assert http(h, p, build_request("/publish/open.room", upgrade=False, method="POST",
                                        headers={"Content-Length": "1"}, body=b"1")).status == 401
        r = http(h, p, post_request("open.room", b"7", bearer(PUB)))
        assert r.status == 200, r
        assert c.recv() == {"room": "open.room", "seq": 1, "data": 7}
    finally:
        c.close()
