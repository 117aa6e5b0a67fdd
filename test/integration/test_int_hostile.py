"""Hostile-client limits of the core: --allowed-origins (exact matching, null), --max-connections-per-ip
(pending and open connections, 503), --max-messages-per-second (close 1008, also for floods of empty
fragments and pings), and a ping flood at a client that never reads (only the latest ping answered,
memory bounded). After each case a normal client is still served."""
import socket
import time

from wsclient import (OP_BINARY, OP_CONT, OP_PING, OP_PONG, OP_TEXT, Conn, WsClient, WsError,
                      assert_echo_works, build_request, encode_frame)


def _upgrade(srv, headers):
    c = Conn.open(srv.host, srv.port)
    try:
        c.send_raw(build_request("/echo", f"{srv.host}:{srv.port}", list(headers.items())))
        return c.read_http_response()
    finally:
        c.close_socket()


def test_allowed_origins_exact_matching(make_server):
    srv = make_server(["--allowed-origins", "app.example.com,http://localhost:3000"])
    ok = ["https://app.example.com", "http://APP.example.com:8080", "http://localhost:3000"]
    bad = ["https://evil-app.example.com", "https://app.example.com.evil.test", "https://x.app.example.com",
           "http://localhost:3001", "https://localhost:3000", "null", "app.example.com", "https://user@app.example.com"]
    for origin in ok:
        assert _upgrade(srv, {"Origin": origin}).status == 101, origin
    for origin in bad:
        r = _upgrade(srv, {"Origin": origin})
        assert r.status == 403, (origin, r)
    # No Origin (not a browser): allowed.
    assert _upgrade(srv, {}).status == 101
    assert_echo_works(srv.host, srv.port)


def test_allowed_origins_null_when_listed(make_server):
    srv = make_server(["--allowed-origins", "null"])
    assert _upgrade(srv, {"Origin": "null"}).status == 101
    assert _upgrade(srv, {"Origin": "https://a.test"}).status == 403


def test_max_connections_per_ip_counts_pending_and_open(make_server):
    srv = make_server(["--max-connections-per-ip", "3", "--handshake-timeout", "10s", "--threads", "2"])
    # Two pending (no request sent yet) and one open WebSocket fill the quota.
    pending = [Conn.open(srv.host, srv.port) for _ in range(2)]
    ws = WsClient.connect(srv.host, srv.port)
    try:
        for _ in range(3):
            c = Conn.open(srv.host, srv.port)
            try:
                c.send_raw(build_request("/echo", f"{srv.host}:{srv.port}"))
                r = c.read_http_response()
                assert r.status == 503, r
                assert b"max-connections-per-ip" in r.body
            finally:
                c.close_socket()
        ws.send_text(b"still served")
        ws.expect_message(OP_TEXT, b"still served")
        # Closing the pending ones frees the quota.
        for p in pending:
            p.close_socket()
        deadline = time.monotonic() + 5
        while True:
            try:
                other = WsClient.connect(srv.host, srv.port)
                other.close_socket()
                break
            except WsError:
                assert time.monotonic() < deadline, "quota never freed"
                time.sleep(0.05)
    finally:
        ws.close_socket()
    # Another address (::1 is not the same client) is not affected: serve IPv4 here only, so check
    # that a freed quota allows a normal echo.
    assert_echo_works(srv.host, srv.port)


def test_message_rate_limit_closes_1008(make_server):
    srv = make_server(["--max-messages-per-second", "50"])
    ws = WsClient.connect(srv.host, srv.port)
    burst = b"".join(encode_frame(OP_BINARY, b"m%d" % i) for i in range(500))
    ws.send_raw(burst)
    got = 0
    while True:
        f = ws.recv_frame()
        if f.opcode == OP_BINARY:
            got += 1
            continue
        assert f.opcode == 8, f
        assert f.close_code == 1008, f
        break
    assert got < 500
    ws.expect_eof()
    assert_echo_works(srv.host, srv.port)


def test_rate_limit_counts_empty_fragments_and_pings(make_server):
    srv = make_server(["--max-messages-per-second", "100"])
    ws = WsClient.connect(srv.host, srv.port)
    flood = encode_frame(OP_TEXT, b"", fin=False) + b"".join(encode_frame(OP_CONT, b"", fin=False) for _ in range(1000))
    ws.send_raw(flood)
    ws.expect_close(1008)
    ws2 = WsClient.connect(srv.host, srv.port)
    ws2.send_raw(b"".join(encode_frame(OP_PING, b"p") for _ in range(1000)))
    # Pongs come back first; then the close.
    while True:
        f = ws2.recv_frame()
        if f.opcode == OP_PONG:
            continue
        assert f.opcode == 8 and f.close_code == 1008, f
        break
    assert_echo_works(srv.host, srv.port)


def test_under_the_rate_limit_nothing_happens(make_server):
    srv = make_server(["--max-messages-per-second", "1000"])
    ws = WsClient.connect(srv.host, srv.port)
    for i in range(300):
        ws.send_text(b"x%d" % i)
        ws.expect_message(OP_TEXT, b"x%d" % i)
    ws.close_handshake()


def _rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    return 0


def test_ping_flood_at_a_client_that_never_reads(make_server):
    srv = make_server(["--idle-timeout", "0", "--ping-interval", "0"])
    s = socket.create_connection((srv.host, srv.port))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    c = WsClient(s)
    c.send_raw(build_request("/echo", f"{srv.host}:{srv.port}"))
    r = c.read_http_response(body=False)
    assert r.status == 101
    before = _rss_kib(srv.proc.pid)
    # First fill the server's send path with echoes we never read, then flood pings (~60 MB of pongs
    # if every one were answered).
    big = encode_frame(OP_BINARY, b"x" * 60000)
    s.setblocking(False)
    sent_pings = 0
    deadline = time.monotonic() + 8
    ping = encode_frame(OP_PING, b"p" * 125)
    data = big * 40 + ping * 400000
    view = memoryview(data)
    while view and time.monotonic() < deadline:
        try:
            n = s.send(view[:65536])
            view = view[n:]
        except BlockingIOError:
            time.sleep(0.01)
    s.setblocking(True)
    after = _rss_kib(srv.proc.pid)
    # Bounded: the backlog cap (4 MiB) plus slack, not tens of MB of pongs.
    assert after - before < 24 * 1024, (before, after)
    assert srv.alive()
    s.close()
    assert_echo_works(srv.host, srv.port)
