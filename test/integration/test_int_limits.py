"""Connection cap (503 at --max-connections, existing connections keep working), an 8 MiB echo
at --max-message-size 8M (and 1009 one byte over), and SIGPIPE resilience: peers that reset the
connection while the server is writing to them never kill it."""
import os
import socket
import time

import pytest

from roomcast_testing import start_server
from wsclient import (OP_BINARY, OP_TEXT, Conn, WsClient, WsError, assert_echo_works, build_request,
                      encode_frame)

CAP = 6
MIB = 1024 * 1024


def _upgrade_status(srv):
    """Try a WebSocket upgrade on a new connection; (status, Conn). Status 0: closed silently."""
    c = WsClient(Conn.open(srv.host, srv.port).sock)
    c.send_raw(build_request("/echo", f"{srv.host}:{srv.port}"))
    try:
        r = c.read_http_response(body=False)
    except WsError:
        return 0, c
    return r.status, c


def test_connection_cap_503_then_still_serving(make_server):
    srv = make_server(["--threads", "2", "--max-connections", str(CAP), "--idle-timeout", "0",
                       "--ping-interval", "0"])
    clients = [WsClient.connect(srv.host, srv.port) for _ in range(CAP)]
    try:
        for _ in range(3):
            c = Conn.open(srv.host, srv.port)
            try:
                c.send_raw(build_request("/echo", f"{srv.host}:{srv.port}"))
                r = c.read_http_response()
                assert r.status == 503, r
                c.expect_eof(what="after the 503 at the connection cap")
            finally:
                c.close_socket()
        # Plain HTTP at the cap is refused the same way.
        status, headers, _ = srv.http_get("/health")
        assert status == 503, (status, headers)
        # Existing connections keep working.
        for i, c in enumerate(clients):
            c.send_binary(b"still here %d" % i)
            c.expect_message(OP_BINARY, b"still here %d" % i)
        # Free one slot: a new connection is accepted again (once the server has noticed).
        clients.pop().close_handshake()
        deadline = time.monotonic() + 5
        while True:
            status, c = _upgrade_status(srv)
            if status == 101:
                clients.append(WsClient(c.sock))
                break
            c.close_socket()
            assert status == 503, status
            assert time.monotonic() < deadline, "a freed slot was never reused"
            time.sleep(0.05)
        # ... and the cap holds again.
        status, c = _upgrade_status(srv)
        c.close_socket()
        assert status == 503
        last = clients[-1]
        last.send_text(b"new one works")
        last.expect_message(OP_TEXT, b"new one works")
    finally:
        for c in clients:
            c.close_socket()
    deadline = time.monotonic() + 5
    while True:
        try:
            assert_echo_works(srv.host, srv.port)
            break
        except (WsError, AssertionError, OSError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    assert srv.alive()


def test_aborted_connections_free_their_slots(make_server):
    srv = make_server(["--threads", "2", "--max-connections", "4"])
    for _ in range(5):
        cs = [WsClient.connect(srv.host, srv.port) for _ in range(4)]
        for c in cs:
            c.abort()
        time.sleep(0.1)
    deadline = time.monotonic() + 5
    while True:
        try:
            cs = [WsClient.connect(srv.host, srv.port) for _ in range(4)]
            break
        except WsError:
            assert time.monotonic() < deadline, "slots of reset connections were never freed"
            time.sleep(0.1)
    for c in cs:
        c.close_handshake()


@pytest.fixture(scope="module")
def big_server():
    srv = start_server(["--threads", "2", "--max-message-size", "8M"])
    yield srv
    srv.stop()


@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY], ids=["text", "binary"])
def test_8mib_echo(big_server, opcode):
    payload = (b"0123456789abcdef" * (8 * MIB // 16)) if opcode == OP_TEXT else os.urandom(8 * MIB)
    c = WsClient.connect(big_server.host, big_server.port)
    try:
        c.send_frame(opcode, payload)
        c.expect_message(opcode, payload, timeout=30)
        c.send_message(opcode, payload, frag_size=1 * MIB + 3)
        c.expect_message(opcode, payload, timeout=30)
        c.close_handshake()
    finally:
        c.close_socket()


def test_8mib_plus_one_fails_1009(big_server):
    c = WsClient.connect(big_server.host, big_server.port)
    try:
        c.send_binary(b"\x00" * (8 * MIB + 1))
        c.expect_close(1009, timeout=10)
    finally:
        c.close_socket()
    assert_echo_works(big_server.host, big_server.port)


def test_two_8mib_echoes_concurrently(big_server):
    a = WsClient.connect(big_server.host, big_server.port)
    b = WsClient.connect(big_server.host, big_server.port)
    pa, pb = os.urandom(8 * MIB), os.urandom(8 * MIB)
    fa = encode_frame(OP_BINARY, pa)
    try:
        a.send_raw(fa[: 4 * MIB])
        b.send_raw(encode_frame(OP_BINARY, pb))
        a.send_raw(fa[4 * MIB:])
        b.expect_message(OP_BINARY, pb, timeout=30)
        a.expect_message(OP_BINARY, pa, timeout=30)
        a.close_handshake()
        b.close_handshake()
    finally:
        a.close_socket()
        b.close_socket()


# ---- SIGPIPE ---------------------------------------------------------------------------------

def test_sigpipe_reset_during_large_echo(big_server):
    payload = os.urandom(4 * MIB)
    for i in range(6):
        c = WsClient.connect(big_server.host, big_server.port)
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        c.send_binary(payload)
        if i % 2:
            try:
                c.recv_frame(timeout=0.05)  # read a little so the server is mid-write
            except WsError:
                pass
        time.sleep(0.05)
        c.abort()
    time.sleep(0.2)
    assert big_server.alive(), "roomcast died (SIGPIPE?): " + "".join(big_server.stderr_lines[-20:])
    assert_echo_works(big_server.host, big_server.port)


def test_sigpipe_reset_after_close_and_http(big_server):
    for _ in range(5):
        # A close frame whose reply goes to a reset socket.
        c = WsClient.connect(big_server.host, big_server.port)
        c.send_close(1000)
        c.abort()
        # A /health request whose response goes to a reset socket.
        h = Conn.open(big_server.host, big_server.port)
        h.send_raw(build_request("/health", "h", upgrade=False) * 50)
        h.abort()
        # Pings whose pongs go to a reset socket.
        p = WsClient.connect(big_server.host, big_server.port)
        p.send_raw(encode_frame(0x9, b"x" * 125) * 2000)
        p.abort()
    time.sleep(0.2)
    assert big_server.alive(), "roomcast died (SIGPIPE?): " + "".join(big_server.stderr_lines[-20:])
    assert_echo_works(big_server.host, big_server.port)
