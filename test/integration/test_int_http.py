"""HTTP side of roomcast: upgrade validation statuses (RFC 6455 4.2.1/4.4, RFC 7230), 404/405/
426/431, /health JSON and plain HTTP/1.1 keep-alive. After every hostile request a normal client
must still be served."""
import json

import pytest

from roomcast_testing import start_server
from wsclient import (Conn, WsClient, accept_for, assert_echo_works, build_request, http_request,
                      new_key)

MAX_HEADER_BYTES = 4096


@pytest.fixture(scope="module")
def server():
    srv = start_server(["--threads", "2", "--max-header-bytes", str(MAX_HEADER_BYTES)])
    yield srv
    srv.stop()


@pytest.fixture(autouse=True)
def _still_serving(server):
    yield
    assert server.alive(), "".join(server.stderr_lines[-20:])
    assert_echo_works(server.host, server.port)


def _req(server, raw):
    r, c = http_request(server.host, server.port, raw)
    c.close_socket()
    return r


def _upgrade(server, path="/echo", headers=None, **kw):
    return build_request(path, f"{server.host}:{server.port}", headers, **kw)


def _expect(server, raw, status):
    r = _req(server, raw)
    assert r.status == status, r
    assert r.header("sec-websocket-accept") is None, r
    return r


# ---- the good case ---------------------------------------------------------------------------

def test_upgrade_101_with_correct_accept(server):
    key = new_key()
    r, c = http_request(server.host, server.port, _upgrade(server, key=key))
    try:
        assert r.status == 101, r
        assert r.header("upgrade").lower() == "websocket"
        assert "upgrade" in r.header("connection").lower()
        assert r.header("sec-websocket-accept") == accept_for(key)
        assert r.header("sec-websocket-protocol") is None
    finally:
        c.close_socket()


def test_upgrade_rfc_example_key(server):
    # RFC 6455 1.3: key "dGhlIHNhbXBsZSBub25jZQ==" -> accept "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=".
    c = WsClient.connect(server.host, server.port, key="dGhlIHNhbXBsZSBub25jZQ==")
    assert c.response.header("sec-websocket-accept") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    c.close_handshake()


@pytest.mark.parametrize("headers", [
    {"Upgrade": "WebSocket", "Connection": "upgrade"},
    {"Connection": "keep-alive, Upgrade"},
    {"Connection": "Upgrade, keep-alive"},
    {"Sec-WebSocket-Version": " 13 "},
    {"Origin": "http://example.com", "User-Agent": "pytest"},
], ids=["case_insensitive_tokens", "connection_token_list", "connection_token_list_first",
        "version_whitespace", "extra_headers"])
def test_upgrade_accepts_legal_variants(server, headers):
    c = WsClient.connect(server.host, server.port, headers=headers)
    c.send_text(b"ok")
    c.expect_message(0x1, b"ok")
    c.close_handshake()


def test_upgrade_with_request_split_bytewise(server):
    key = new_key()
    c = Conn.open(server.host, server.port)
    try:
        c.send_raw(_upgrade(server, key=key), chunk=1)
        r = c.read_http_response(body=False)
        assert r.status == 101 and r.header("sec-websocket-accept") == accept_for(key), r
    finally:
        c.close_socket()


def test_frame_in_same_write_as_upgrade_request(server):
    from wsclient import OP_TEXT, encode_frame
    key = new_key()
    c = WsClient(Conn.open(server.host, server.port).sock)
    c.send_raw(_upgrade(server, key=key) + encode_frame(OP_TEXT, b"early"))
    r = c.read_http_response(body=False)
    assert r.status == 101, r
    c.expect_message(OP_TEXT, b"early")
    c.close_handshake()


# ---- statuses --------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/nope", "/echo/extra", "/echoo", "/health/x"])
def test_unknown_path_404(server, path):
    _expect(server, build_request(path, "h", upgrade=False), 404)


def test_unknown_path_with_upgrade_404(server):
    _expect(server, _upgrade(server, "/no-such-endpoint"), 404)


def test_echo_without_upgrade_headers_426(server):
    r = _expect(server, build_request("/echo", "h", upgrade=False), 426)
    assert r.header("sec-websocket-version") == "13", r


@pytest.mark.parametrize("version", ["8", "12", "14", "0", "abc", "13, 8", ""],
                         ids=["v8", "v12", "v14", "v0", "abc", "list", "empty"])
def test_wrong_websocket_version_426(server, version):
    r = _expect(server, _upgrade(server, headers={"Sec-WebSocket-Version": version}), 426)
    assert r.header("sec-websocket-version") == "13", r


def test_missing_websocket_version_426(server):
    r = _expect(server, _upgrade(server, headers={"Sec-WebSocket-Version": None}), 426)
    assert r.header("sec-websocket-version") == "13", r


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_non_get_upgrade_405(server, method):
    _expect(server, _upgrade(server, method=method), 405)


def test_http10_upgrade_400(server):
    _expect(server, _upgrade(server, version="HTTP/1.0"), 400)


def test_missing_host_400(server):
    _expect(server, _upgrade(server, headers={"Host": None}), 400)


def test_duplicate_host_400(server):
    raw = _upgrade(server, headers=[("Host", "a.example"), ("Host", "b.example")])
    _expect(server, raw, 400)


@pytest.mark.parametrize("key", ["", "not base64!!", "dGhlIHNhbXBsZSBub25jZQ", "AAAAAAAAAAAAAAAAAAAAAA",
                                 "dGhlIHNhbXBsZSBub25jZXg=", "dGhlIHNhbXBsZSBub25j", "x" * 24,
                                 "dGhlIHNhbXBsZSBub25jZQ==dGhl"],
                         ids=["empty", "not_base64", "no_padding", "no_padding_zeros", "17_bytes",
                              "15_bytes", "24_garbage", "too_long"])
def test_bad_key_400(server, key):
    _expect(server, _upgrade(server, headers={"Sec-WebSocket-Key": key}), 400)


def test_missing_key_400(server):
    _expect(server, _upgrade(server, headers={"Sec-WebSocket-Key": None}), 400)


def test_duplicate_key_400(server):
    raw = _upgrade(server, headers=[("Sec-WebSocket-Key", new_key()), ("Sec-WebSocket-Key", new_key())])
    _expect(server, raw, 400)


@pytest.mark.parametrize("connection", [None, "keep-alive", "close", "Upgrades"],
                         ids=["missing", "keep_alive", "close", "wrong_token"])
def test_missing_connection_upgrade_400(server, connection):
    _expect(server, _upgrade(server, headers={"Connection": connection}), 400)


def test_body_on_upgrade_400(server):
    raw = _upgrade(server, headers={"Content-Length": "5"}, body=b"hello")
    _expect(server, raw, 400)


def test_chunked_body_on_upgrade_400(server):
    raw = _upgrade(server, headers={"Transfer-Encoding": "chunked"}, body=b"5\r\nhello\r\n0\r\n\r\n")
    _expect(server, raw, 400)


@pytest.mark.parametrize("raw", [b"GARBAGE\r\n\r\n", b"GET\r\n\r\n", b"GET /echo\r\n\r\n",
                                 b"GET /echo HTTP/1.1\r\nNoColonHere\r\n\r\n",
                                 b"GET /echo HTTP/9.9\r\nHost: h\r\n\r\n",
                                 b"GET /echo HTTP/1.1\r\n Host: folded\r\n\r\n"],
                         ids=["garbage", "no_target", "no_version", "header_without_colon",
                              "bad_version", "leading_whitespace_header"])
def test_malformed_request_400(server, raw):
    r = _req(server, raw)
    assert r.status in (400, 505), r


def test_header_over_max_header_bytes_431(server):
    raw = _upgrade(server, headers={"X-Filler": "a" * (MAX_HEADER_BYTES + 100)})
    c = Conn.open(server.host, server.port)
    try:
        c.send_raw(raw)  # may be cut short if the server answers and closes early
        r = c.read_http_response()
        assert r.status == 431, r
    finally:
        c.close_socket()


def test_many_headers_over_max_header_bytes_431(server):
    hdrs = [(f"X-H{i}", "v" * 50) for i in range(MAX_HEADER_BYTES // 50 + 10)]
    c = Conn.open(server.host, server.port)
    try:
        c.send_raw(_upgrade(server, headers=hdrs))
        assert c.read_http_response().status == 431
    finally:
        c.close_socket()


def test_endless_header_without_terminator_431(server):
    # The server must answer once the limit is passed, not wait for the end of the head.
    c = Conn.open(server.host, server.port)
    try:
        c.send_raw(b"GET /echo HTTP/1.1\r\nHost: h\r\nX-Endless: " + b"a" * (MAX_HEADER_BYTES + 1000))
        assert c.read_http_response().status == 431
    finally:
        c.close_socket()


def test_head_just_under_max_header_bytes_ok(server):
    base = len(_upgrade(server, headers={"X-Filler": ""}))
    raw = _upgrade(server, headers={"X-Filler": "a" * (MAX_HEADER_BYTES - base - 64)})
    assert len(raw) < MAX_HEADER_BYTES
    r = _req(server, raw)
    assert r.status == 101, r


# ---- /health and keep-alive ------------------------------------------------------------------

def _health_request(server, close=False):
    return build_request("/health", f"{server.host}:{server.port}", upgrade=False,
                         headers={"Connection": "close"} if close else None)


def _check_health(r):
    assert r.status == 200, r
    assert "json" in (r.header("content-type") or ""), r
    doc = json.loads(r.body)
    assert doc["status"] == "ok"
    assert isinstance(doc["uptime_s"], (int, float)) and doc["uptime_s"] >= 0
    assert isinstance(doc["connections"], int) and doc["connections"] >= 0
    assert isinstance(doc["reactors"], list) and len(doc["reactors"]) == 2
    assert sorted(r_["id"] for r_ in doc["reactors"]) == [0, 1]
    assert all(isinstance(r_["connections"], int) for r_ in doc["reactors"])
    return doc


def test_health_json(server):
    doc = _check_health(_req(server, _health_request(server, close=True)))
    assert doc["connections"] == sum(r["connections"] for r in doc["reactors"])


def test_health_keep_alive_two_requests_one_socket(server):
    c = Conn.open(server.host, server.port)
    try:
        c.send_raw(_health_request(server))
        d1 = _check_health(c.read_http_response())
        c.send_raw(_health_request(server))
        d2 = _check_health(c.read_http_response())
        assert d2["uptime_s"] >= d1["uptime_s"]
    finally:
        c.close_socket()


def test_health_keep_alive_pipelined(server):
    c = Conn.open(server.host, server.port)
    try:
        c.send_raw(_health_request(server) + _health_request(server) + _health_request(server, close=True))
        for _ in range(3):
            _check_health(c.read_http_response())
        c.expect_eof(what="after a Connection: close response")
    finally:
        c.close_socket()


def test_health_then_upgrade_on_same_socket(server):
    from wsclient import OP_TEXT
    c = WsClient(Conn.open(server.host, server.port).sock)
    c.send_raw(_health_request(server))
    _check_health(c.read_http_response())
    key = new_key()
    c.send_raw(_upgrade(server, key=key))
    r = c.read_http_response(body=False)
    assert r.status == 101 and r.header("sec-websocket-accept") == accept_for(key), r
    c.send_text(b"after keep-alive")
    c.expect_message(OP_TEXT, b"after keep-alive")
    c.close_handshake()


def test_404_keeps_or_closes_cleanly(server):
    c = Conn.open(server.host, server.port)
    try:
        c.send_raw(build_request("/nope", "h", upgrade=False))
        r = c.read_http_response()
        assert r.status == 404
        assert r.header("content-length") is not None or r.header("connection") == "close", r
    finally:
        c.close_socket()
