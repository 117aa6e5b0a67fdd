"""Timers: --handshake-timeout (silent and trickling sockets), --idle-timeout, --ping-interval.
Short values with generous upper bounds; lower bounds only guard against closing at once."""
import time

import pytest

from roomcast_testing import start_server
from wsclient import (OP_CLOSE, OP_PING, OP_TEXT, Conn, WsClient, WsEOF, WsError, WsTimeout,
                      assert_echo_works)


def _closed_within(c, bound, reply=True, eof_bound=3.0):
    """Wait for the server to end the connection: returns (elapsed, close frame or None).
    Either a close frame (the client answers it when reply=True, then TCP must close within
    eof_bound) or a bare EOF counts; data frames do not."""
    t0 = time.monotonic()
    try:
        f = c.recv_nonping(timeout=bound, answer_pings=False)
    except WsEOF:
        return time.monotonic() - t0, None
    except WsTimeout:
        raise AssertionError(f"connection still open after {bound}s") from None
    elapsed = time.monotonic() - t0
    assert f.opcode == OP_CLOSE, f"expected the server to close, got {f}"
    if reply:
        c.send_close(f.close_code)
    c.expect_eof(timeout=eof_bound, what=f"after the server's timeout close frame {f}"
                 + ("" if reply else " that the client did not answer"))
    return elapsed, f


# ---- handshake timeout -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def hs_server():
    srv = start_server(["--threads", "2", "--handshake-timeout", "500ms", "--idle-timeout", "0",
                        "--ping-interval", "0"])
    yield srv
    srv.stop()


def _read_until_closed(c, bound):
    t0 = time.monotonic()
    try:
        data = c.read_until_eof(timeout=bound)
    except WsTimeout:
        raise AssertionError(f"socket still open {bound}s into a 500ms handshake timeout") from None
    return time.monotonic() - t0, data


def test_handshake_timeout_silent_socket(hs_server):
    c = Conn.open(hs_server.host, hs_server.port)
    try:
        elapsed, data = _read_until_closed(c, 5.0)
        assert elapsed >= 0.3, f"closed after {elapsed:.3f}s, before the 500ms timeout"
        assert not data.startswith(b"HTTP/1.1 101"), data
    finally:
        c.close_socket()
    assert_echo_works(hs_server.host, hs_server.port)


def test_handshake_timeout_trickling_socket(hs_server):
    c = Conn.open(hs_server.host, hs_server.port)
    t0 = time.monotonic()
    try:
        c.send_raw(b"GET /echo HTTP/1.1\r\nHost: h\r\n")
        while time.monotonic() - t0 < 5.0:
            if not c.send_raw(b"X-Slow: a\r\n"):  # a new complete header line every 100ms
                break
            try:
                c.expect_silence(0.1)
            except WsError:
                break  # the server answered or closed
        elapsed, data = _read_until_closed(c, max(0.1, 5.0 - (time.monotonic() - t0)))
        total = time.monotonic() - t0
        assert total < 5.0, f"trickling socket kept open for {total:.1f}s"
        assert total >= 0.3, total
        assert not data.startswith(b"HTTP/1.1 101"), data
    finally:
        c.close_socket()
    assert_echo_works(hs_server.host, hs_server.port)


def test_handshake_timeout_partial_request(hs_server):
    c = Conn.open(hs_server.host, hs_server.port)
    try:
        c.send_raw(b"GET /echo HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n")
        elapsed, data = _read_until_closed(c, 5.0)
        assert elapsed >= 0.3, elapsed
    finally:
        c.close_socket()


def test_handshake_timeout_does_not_hit_upgraded_connections(hs_server):
    c = WsClient.connect(hs_server.host, hs_server.port)
    try:
        c.expect_silence(1.2)  # well past the 500ms handshake timeout
        c.send_text(b"alive")
        c.expect_message(OP_TEXT, b"alive")
        c.close_handshake()
    finally:
        c.close_socket()


def test_handshake_timeout_many_silent_sockets(hs_server):
    socks = [Conn.open(hs_server.host, hs_server.port) for _ in range(20)]
    try:
        for c in socks:
            _read_until_closed(c, 5.0)
    finally:
        for c in socks:
            c.close_socket()
    assert_echo_works(hs_server.host, hs_server.port)


# ---- idle timeout ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def idle_server():
    srv = start_server(["--threads", "2", "--idle-timeout", "500ms", "--ping-interval", "0"])
    yield srv
    srv.stop()


def test_idle_timeout_closes_idle_websocket(idle_server):
    c = WsClient.connect(idle_server.host, idle_server.port)
    try:
        elapsed, f = _closed_within(c, 5.0)
        assert elapsed >= 0.3, f"closed after {elapsed:.3f}s, before the 500ms idle timeout"
    finally:
        c.close_socket()
    assert_echo_works(idle_server.host, idle_server.port)


def test_idle_timeout_unanswered_close_still_closes_tcp(idle_server):
    # A dead peer never answers the server's close: TCP must still be closed, not leaked.
    c = WsClient.connect(idle_server.host, idle_server.port)
    try:
        _closed_within(c, 5.0, reply=False, eof_bound=6.0)
    finally:
        c.close_socket()


def test_idle_timeout_closes_after_last_activity(idle_server):
    c = WsClient.connect(idle_server.host, idle_server.port)
    try:
        for i in range(8):  # 1.2s of activity, longer than the idle timeout
            c.send_text(b"tick %d" % i)
            c.expect_message(OP_TEXT, b"tick %d" % i)
            time.sleep(0.15)
        elapsed, f = _closed_within(c, 5.0)
        assert elapsed >= 0.2, elapsed
    finally:
        c.close_socket()


def test_idle_timeout_active_connection_stays_up(idle_server):
    c = WsClient.connect(idle_server.host, idle_server.port)
    try:
        t0 = time.monotonic()
        while time.monotonic() - t0 < 1.5:
            c.send_ping(b"keepalive")
            c.expect_pong(b"keepalive")
            time.sleep(0.1)
        c.close_handshake()
    finally:
        c.close_socket()


def test_idle_timeout_zero_disables(make_server):
    srv = make_server(["--threads", "1", "--idle-timeout", "0", "--ping-interval", "0"])
    c = WsClient.connect(srv.host, srv.port)
    try:
        c.expect_silence(1.0)
        c.send_text(b"x")
        c.expect_message(OP_TEXT, b"x")
        c.close_handshake()
    finally:
        c.close_socket()


# ---- ping interval ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ping_server():
    srv = start_server(["--threads", "2", "--ping-interval", "200ms", "--idle-timeout", "1s"])
    yield srv
    srv.stop()


def test_ping_interval_answering_peer_stays_up(ping_server):
    c = WsClient.connect(ping_server.host, ping_server.port)
    pings = 0
    try:
        t0 = time.monotonic()
        while time.monotonic() - t0 < 2.5:  # 2.5x the idle timeout
            try:
                f = c.recv_frame(timeout=0.5)
            except WsTimeout:
                continue
            assert f.opcode == OP_PING, f"unexpected frame from an idle echo connection: {f}"
            assert len(f.payload) <= 125
            pings += 1
            c.send_pong(f.payload)
        assert pings >= 3, f"only {pings} pings in 2.5s at --ping-interval 200ms"
        c.send_text(b"still up")
        f = c.recv_nonping(timeout=5)
        assert (f.opcode, f.payload) == (OP_TEXT, b"still up"), f
        c.close_handshake()
    finally:
        c.close_socket()


def test_ping_interval_silent_peer_is_closed(ping_server):
    # Never answers pings (never sends anything): closed around the 1s idle timeout, and TCP is
    # closed even though it does not answer the close frame either.
    c = WsClient.connect(ping_server.host, ping_server.port)
    pings = 0
    t0 = time.monotonic()
    try:
        while True:
            try:
                f = c.recv_frame(timeout=max(0.01, 5.0 - (time.monotonic() - t0)))
            except WsEOF:
                break
            except WsTimeout:
                raise AssertionError("peer that never answers pings still open after 5s") from None
            if f.opcode == OP_PING:
                pings += 1
                continue
            assert f.opcode == OP_CLOSE, f
            c.expect_eof(timeout=6.0, what=f"after the server's close frame {f} (not answered)")
            break
        elapsed = time.monotonic() - t0
        assert pings >= 1, "the server never pinged"
        assert elapsed >= 0.5, elapsed
    finally:
        c.close_socket()
    assert_echo_works(ping_server.host, ping_server.port)


def test_ping_interval_peer_answering_close_is_closed_promptly(ping_server):
    c = WsClient.connect(ping_server.host, ping_server.port)
    try:
        elapsed, f = _closed_within(c, 5.0, reply=True)
        assert f is None or f.close_code is not None, f
        assert elapsed >= 0.5, elapsed
    finally:
        c.close_socket()


def test_ping_interval_server_pings_are_well_formed(ping_server):
    c = WsClient.connect(ping_server.host, ping_server.port)
    try:
        f = c.recv_frame(timeout=3)
        assert f.opcode == OP_PING and f.fin and not f.masked and f.rsv == 0, f
        c.send_pong(f.payload)
        c.close_handshake()
    finally:
        c.close_socket()
