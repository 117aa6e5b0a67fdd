"""Interop: the Python `websockets` library (Debian python3-websockets 10.x) against roomcast /echo."""
import asyncio
import logging
import os

import pytest

websockets = pytest.importorskip("websockets", reason="python3-websockets not installed "
                                 "(apt-get install -y python3-websockets)")
from websockets.exceptions import ConnectionClosed  # noqa: E402

from interop_helpers import ipv6_loopback_available, require_roomcast_binary  # noqa: E402
from roomcast_server import RoomcastServer  # noqa: E402

MiB = 1 << 20
TIMEOUT = 20.0


def run(coro, timeout=TIMEOUT):
    async def bounded():
        return await asyncio.wait_for(coro, timeout)
    return asyncio.run(bounded())


def connect(url, **kw):
    kw.setdefault("compression", None)
    kw.setdefault("ping_interval", None)
    kw.setdefault("open_timeout", 5)
    kw.setdefault("close_timeout", 5)
    kw.setdefault("max_size", 16 * MiB)
    return websockets.connect(url, **kw)


async def echo(ws, msg):
    await ws.send(msg)
    got = await ws.recv()
    assert type(got) is type(msg), f"opcode changed: sent {type(msg).__name__}, got {type(got).__name__}"
    assert len(got) == len(msg)
    assert got == msg
    return got


async def close_clean(ws, code=1000, reason=""):
    await ws.close(code=code, reason=reason)
    await ws.wait_closed()
    assert ws.close_rcvd is not None, "server never sent a Close frame (client saw 1006)"
    assert ws.close_code == code, f"server replied to close {code} with {ws.close_code}"
    assert isinstance(ws.close_reason, str)


# --------------------------------------------------------------------------- basic echo

def test_echo_text_ascii(interop_server):
    async def main():
        async with connect(interop_server.url("/echo")) as ws:
            await echo(ws, "hello roomcast")
            await echo(ws, "x")
            await echo(ws, "")
            await echo(ws, "a" * 125)   # 7-bit length boundary
            await echo(ws, "b" * 126)   # 16-bit length
            await echo(ws, "c" * 65535)
            await echo(ws, "d" * 65536)  # 64-bit length
            await close_clean(ws)
    run(main())


def test_echo_text_utf8_multibyte(interop_server):
    samples = [
        "héllo wörld",                       # 2-byte
        "日本語のテキスト — €",                # 3-byte
        "emoji 🎉🚀 𝄞 astral",                 # 4-byte
        "\u0000nul and \u007f del",
        "\ufeffBOM\uffff edge \U0010ffff max",
        "Ω" * 40000,                          # 80000 bytes, 64-bit length of multi-byte text
    ]

    async def main():
        async with connect(interop_server.url("/echo")) as ws:
            for s in samples:
                await echo(ws, s)
            await close_clean(ws)
    run(main())


def test_echo_binary(interop_server):
    async def main():
        async with connect(interop_server.url("/echo")) as ws:
            await echo(ws, bytes(range(256)))
            await echo(ws, b"")
            await echo(ws, b"\xff\xfe\x00\x80 not utf-8 \xc3\x28")
            await echo(ws, os.urandom(70000))
            await close_clean(ws)
    run(main())


def test_echo_interleaved_text_and_binary_opcode_preserved(interop_server):
    async def main():
        async with connect(interop_server.url("/echo")) as ws:
            for i in range(20):
                if i % 2:
                    await ws.send(f"text-{i}")
                else:
                    await ws.send(f"bin-{i}".encode())
            for i in range(20):
                got = await ws.recv()
                if i % 2:
                    assert got == f"text-{i}"
                else:
                    assert got == f"bin-{i}".encode()
            await close_clean(ws)
    run(main())


# --------------------------------------------------------------------------- fragmentation

def test_fragmented_text(interop_server):
    parts = ["frag", "mented ", "", "ünïcödé ", "日本 ", "🎉"]

    async def main():
        async with connect(interop_server.url("/echo")) as ws:
            await ws.send(parts)              # websockets sends an iterable as fragments
            assert await ws.recv() == "".join(parts)
            await echo(ws, "after fragments")
            await close_clean(ws)
    run(main())


def test_fragmented_binary_many_fragments(interop_server):
    parts = [os.urandom(1000) for _ in range(200)] + [b""] + [os.urandom(3)]

    async def main():
        async with connect(interop_server.url("/echo")) as ws:
            await ws.send(parts)
            got = await ws.recv()
            assert isinstance(got, bytes)
            assert got == b"".join(parts)
            await close_clean(ws)
    run(main())


def test_fragmented_async_iterator_with_ping_between(interop_server):
    """Fragments trickle in; a ping from another task may land between them (control frames
    are allowed in the middle of a fragmented message, RFC 6455 5.4)."""
    async def main():
        async with connect(interop_server.url("/echo")) as ws:
            async def gen():
                for i in range(5):
                    yield f"part{i}-"
                    await asyncio.sleep(0.02)

            async def pinger():
                await asyncio.sleep(0.03)
                waiter = await ws.ping(b"mid")
                await asyncio.wait_for(waiter, 5)

            await asyncio.gather(ws.send(gen()), pinger())
            assert await ws.recv() == "".join(f"part{i}-" for i in range(5))
            await close_clean(ws)
    run(main())


# --------------------------------------------------------------------------- large messages

def test_large_1mib_binary_and_text(interop_server):
    async def main():
        async with connect(interop_server.url("/echo")) as ws:
            await echo(ws, os.urandom(MiB))
            await echo(ws, ("0123456789abcdé" * (MiB // 30 + 1))[: MiB // 2])  # 512 Ki chars, mixed 1/2-byte UTF-8
            await echo(ws, "z" * MiB)
            await close_clean(ws)
    run(main())


def test_large_8mib_binary(interop_server):
    async def main():
        async with connect(interop_server.url("/echo"), max_size=16 * MiB) as ws:
            await echo(ws, os.urandom(8 * MiB))
            await close_clean(ws)
    run(main())


def test_large_8mib_fragmented(interop_server):
    parts = [os.urandom(MiB) for _ in range(8)]

    async def main():
        async with connect(interop_server.url("/echo"), max_size=16 * MiB) as ws:
            await ws.send(parts)
            assert await ws.recv() == b"".join(parts)
            await close_clean(ws)
    run(main())


def test_message_over_limit_closed_with_1009():
    """Server-initiated close: a message above --max-message-size gets Close 1009 (RFC 6455 7.4.1)."""
    require_roomcast_binary()
    with RoomcastServer(["--threads", "1", "--max-message-size", "65536"]) as srv:
        async def main():
            async with connect(srv.url("/echo")) as ws:
                await echo(ws, b"y" * 65536)            # exactly at the limit: fine
                await ws.send(b"x" * 65537)
                with pytest.raises(ConnectionClosed):
                    await ws.recv()
                assert ws.close_rcvd is not None, "no Close frame from server (1006)"
                assert ws.close_code == 1009, ws.close_code

            async with connect(srv.url("/echo")) as ws:  # same limit across fragments
                await ws.send([b"f" * 40000, b"g" * 40000])
                with pytest.raises(ConnectionClosed):
                    await ws.recv()
                assert ws.close_code == 1009, ws.close_code
        run(main())
        assert srv.alive()


# --------------------------------------------------------------------------- control frames

def test_ping_pong(interop_server):
    async def main():
        async with connect(interop_server.url("/echo")) as ws:
            for payload in (b"", b"abc", os.urandom(125)):
                waiter = await ws.ping(payload)
                await asyncio.wait_for(waiter, 5)     # resolves only on a Pong with this payload
            await echo(ws, "still alive after pings")
            await close_clean(ws)
    run(main())


def test_client_auto_pings_keep_connection(interop_server):
    """websockets' own keepalive (ping_interval) against the server."""
    async def main():
        async with connect(interop_server.url("/echo"), ping_interval=0.1, ping_timeout=2) as ws:
            await asyncio.sleep(0.5)
            await echo(ws, "keepalive ok")
            await close_clean(ws)
    run(main())


def test_server_pings_answered_by_client():
    """roomcast's --ping-interval pings reach websockets, which answers them automatically; the
    connection must stay up and usable."""
    require_roomcast_binary()
    pings = []

    class Capture(logging.Handler):
        def emit(self, record):
            msg = record.getMessage()
            if msg.startswith("< PING"):
                pings.append(msg)

    log = logging.getLogger("roomcast.interop.websockets.serverping")
    log.setLevel(logging.DEBUG)
    log.propagate = False
    handler = Capture()
    log.addHandler(handler)
    try:
        with RoomcastServer(["--threads", "1", "--ping-interval", "100"]) as srv:
            async def main():
                async with connect(srv.url("/echo"), logger=log) as ws:
                    for i in range(4):
                        await asyncio.sleep(0.3)        # idle gaps well above the ping interval
                        await echo(ws, f"tick {i}")
                    await close_clean(ws)
            run(main())
            assert srv.alive()
    finally:
        log.removeHandler(handler)
    assert pings, "no server Ping reached the client in ~1.2 s with --ping-interval 100"


# --------------------------------------------------------------------------- close

def test_close_1000(interop_server):
    async def main():
        async with connect(interop_server.url("/echo")) as ws:
            await echo(ws, "bye")
            await ws.close()
            assert ws.close_rcvd is not None, "server never sent a Close frame"
            assert ws.close_code == 1000
            with pytest.raises(websockets.exceptions.ConnectionClosedOK):
                await ws.recv()
    run(main())


def test_close_4000_with_reason(interop_server):
    async def main():
        async with connect(interop_server.url("/echo")) as ws:
            await echo(ws, "bye")
            await close_clean(ws, 4000, "custom reason ✓")
            assert ws.close_code == 4000
    run(main())


def test_close_1001_going_away(interop_server):
    async def main():
        async with connect(interop_server.url("/echo")) as ws:
            await close_clean(ws, 1001, "going away")
    run(main())


# --------------------------------------------------------------------------- concurrency

def test_many_concurrent_clients(interop_server):
    n_clients, n_msgs = 50, 5

    async def client(i):
        async with connect(interop_server.url("/echo")) as ws:
            for j in range(n_msgs):
                if j % 2:
                    await echo(ws, f"client {i} msg {j} ✓" * (j + 1))
                else:
                    await echo(ws, os.urandom(100 * (i + 1) + j))
            await close_clean(ws)
        return i

    async def main():
        done = await asyncio.gather(*(client(i) for i in range(n_clients)))
        assert sorted(done) == list(range(n_clients))
    run(main(), timeout=30)


def test_sequential_reconnects_over_several_seconds():
    """Connect/echo/close churn for longer than a few seconds, as a browser tab reloading or a
    reconnecting client would: every connection must work and the server must stay up."""
    require_roomcast_binary()
    with RoomcastServer(["--threads", "2"]) as srv:
        async def main():
            loop = asyncio.get_running_loop()
            t_end = loop.time() + 5.0
            n = 0
            while loop.time() < t_end:
                try:
                    async with connect(srv.url("/echo")) as ws:
                        await echo(ws, f"reconnect {n}")
                        await close_clean(ws)
                except (OSError, websockets.exceptions.WebSocketException) as e:
                    raise AssertionError(f"connection #{n} failed after {n} good ones: {e!r}; "
                                         f"server exit status {srv.proc.poll()}") from e
                n += 1
                await asyncio.sleep(0.02)
            return n
        n = run(main(), timeout=15)
        assert n > 50
        assert srv.alive(), f"server exit status {srv.proc.poll()}"


# --------------------------------------------------------------------------- extensions

def test_compression_disabled_no_extension(interop_server):
    async def main():
        async with connect(interop_server.url("/echo"), compression=None) as ws:
            assert ws.extensions == []
            await echo(ws, "plain")
            await close_clean(ws)
    run(main())


def test_default_permessage_deflate_offer_negotiated(interop_server):
    """websockets offers permessage-deflate by default; the server accepts it (RFC 7692) and
    compressed echo works both ways, also for fragmented and large messages."""
    async def main():
        async with websockets.connect(interop_server.url("/echo"), ping_interval=None,
                                      open_timeout=5, close_timeout=5, max_size=16 * MiB) as ws:
            ext = ws.response_headers.get("Sec-WebSocket-Extensions", "")
            assert ext.startswith("permessage-deflate"), ext
            assert len(ws.extensions) == 1
            await echo(ws, "compressible " * 1000)
            await echo(ws, bytes(5000))
            await echo(ws, os.urandom(MiB))
            await ws.send(["a" * 1000, "b" * 1000])
            assert await ws.recv() == "a" * 1000 + "b" * 1000
            await close_clean(ws)
    run(main())


def test_handshake_headers_seen_by_client(interop_server):
    async def main():
        async with connect(interop_server.url("/echo")) as ws:
            h = ws.response_headers
            assert h["Upgrade"].lower() == "websocket"
            assert "upgrade" in h["Connection"].lower()
            assert ws.subprotocol is None
            await close_clean(ws)
    run(main())


# --------------------------------------------------------------------------- IPv6

def test_ipv6_loopback():
    if not ipv6_loopback_available():
        pytest.skip("::1 not available on this host")
    require_roomcast_binary()
    with RoomcastServer(["--threads", "2"], host="::1") as srv:
        assert srv.url("/echo").startswith("ws://[::1]:")

        async def main():
            async with connect(srv.url("/echo")) as ws:
                await echo(ws, "over ipv6 ✓")
                await echo(ws, os.urandom(100000))
                await ws.send(["v6-", "frag"])
                assert await ws.recv() == "v6-frag"
                await close_clean(ws, 4000, "v6 bye")
        run(main())
