"""/health with --threads 2: open WebSocket connections are counted per reactor, SO_REUSEPORT
spreads them over both reactors, and the counts fall back when they close."""
import json
import time

import pytest

from roomcast_testing import start_server
from wsclient import OP_TEXT, WsClient, assert_echo_works

N = 32


@pytest.fixture(scope="module")
def server():
    srv = start_server(["--threads", "2", "--idle-timeout", "0", "--ping-interval", "0"])
    yield srv
    srv.stop()


def _wait_connections(server, n, timeout=5.0):
    deadline = time.monotonic() + timeout
    while True:
        doc = server.health()
        if doc["connections"] == n or time.monotonic() > deadline:
            return doc
        time.sleep(0.05)


def test_health_counts_connections_on_both_reactors(server):
    assert _wait_connections(server, 0)["connections"] == 0
    clients = [WsClient.connect(server.host, server.port) for _ in range(N)]
    try:
        for i, c in enumerate(clients):
            c.send_text(b"c%d" % i)
            c.expect_message(OP_TEXT, b"c%d" % i)
        doc = _wait_connections(server, N)
        assert doc["connections"] == N, doc
        reactors = {r["id"]: r["connections"] for r in doc["reactors"]}
        assert sorted(reactors) == [0, 1], doc
        assert sum(reactors.values()) == N, doc
        assert reactors[0] > 0 and reactors[1] > 0, f"one reactor got no connections: {doc}"
        # Closing half of them is reflected too.
        for c in clients[: N // 2]:
            c.close_handshake()
        doc = _wait_connections(server, N - N // 2)
        assert doc["connections"] == N - N // 2, doc
        assert sum(r["connections"] for r in doc["reactors"]) == N - N // 2, doc
    finally:
        for c in clients:
            c.close_socket()
    doc = _wait_connections(server, 0)
    assert doc["connections"] == 0, doc
    assert all(r["connections"] == 0 for r in doc["reactors"]), doc


def test_health_not_counting_plain_http_or_aborted(server):
    # Aborted (RST) WebSockets and plain HTTP connections are not counted once gone.
    for _ in range(8):
        c = WsClient.connect(server.host, server.port)
        c.abort()
    from wsclient import Conn
    idle_http = Conn.open(server.host, server.port)
    try:
        doc = _wait_connections(server, 0)
        assert doc["connections"] == 0, doc
    finally:
        idle_http.close_socket()
    assert_echo_works(server.host, server.port)


def test_health_uptime_increases(server):
    a = server.health()["uptime_s"]
    time.sleep(0.2)
    b = server.health()["uptime_s"]
    assert isinstance(a, float) or isinstance(a, int)
    assert b > a, (a, b)


def test_health_body_is_single_json_object(server):
    status, headers, body = server.http_get("/health")
    assert status == 200
    doc = json.loads(body)
    assert set(doc) >= {"status", "uptime_s", "connections", "reactors"}, doc
    assert headers.get("content-length") == str(len(body)), headers


def test_each_reactor_echoes(server):
    # Many connections, each echoes on whichever reactor it landed on.
    clients = [WsClient.connect(server.host, server.port) for _ in range(16)]
    try:
        for i, c in enumerate(clients):
            c.send_message(0x2, bytes([i]) * 70000, frag_size=9000)
        for i, c in enumerate(clients):
            c.expect_message(0x2, bytes([i]) * 70000)
        for c in clients:
            c.close_handshake()
    finally:
        for c in clients:
            c.close_socket()
