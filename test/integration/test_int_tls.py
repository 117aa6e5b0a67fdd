"""wss:// on the same reactors: openssl s_client handshake and ALPN, echo and room deliveries over TLS with
Python websockets trusting the test CA, a client that stalls mid-handshake is dropped at
--handshake-timeout, SIGHUP reloads the certificate with connections open (a bad file keeps the old one),
a bad certificate at start-up is one line and exit 2, and --tls-listen beside a plain port."""
import asyncio
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time

import pytest

from roomcast_server import BIN, ROOT, RoomcastServer

GEN = os.path.join(ROOT, "scripts", "gen-cert.sh")
websockets = pytest.importorskip("websockets")


@pytest.fixture(scope="module")
def certs():
    d = tempfile.mkdtemp(prefix="roomcast-certs-")
    subprocess.run(["bash", GEN, os.path.join(d, "a")], check=True, capture_output=True)
    subprocess.run(["bash", GEN, os.path.join(d, "b")], check=True, capture_output=True)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def _ctx(ca):
    return ssl.create_default_context(cafile=ca)


def _tls_args(certs, which="a"):
    return ["--tls-cert", os.path.join(certs, which, "server.pem"), "--tls-key", os.path.join(certs, which, "server-key.pem")]


def _fingerprint(port, ca):
    with socket.create_connection(("127.0.0.1", port)) as s:
        with _ctx(ca).wrap_socket(s, server_hostname="127.0.0.1") as t:
            return t.getpeercert(binary_form=True)


def test_s_client_handshake_and_alpn(certs):
    with RoomcastServer(_tls_args(certs) + ["--threads", "2"]) as srv:
        out = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{srv.port}", "-alpn", "http/1.1",
                              "-CAfile", os.path.join(certs, "a", "ca.pem"), "-servername", "localhost"],
                             input=b"", capture_output=True, timeout=20).stdout.decode()
        assert "ALPN protocol: http/1.1" in out, out
        assert "Verify return code: 0 (ok)" in out, out
        assert "TLSv1.3" in out, out
        # TLS 1.1 is refused.
        old = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{srv.port}", "-tls1_1"],
                             input=b"", capture_output=True, timeout=20)
        assert "Cipher is (NONE)" in old.stdout.decode() or old.returncode != 0


def test_echo_and_rooms_over_wss(certs):
    ca = os.path.join(certs, "a", "ca.pem")
    with RoomcastServer(_tls_args(certs) + ["--threads", "2"]) as srv:
        async def run():
            url = f"wss://127.0.0.1:{srv.port}"
            async with websockets.connect(url + "/echo", ssl=_ctx(ca), max_size=None) as ws:
                for msg in ["hello", "é" * 1000, b"\x00\xff" * 100000]:
                    await ws.send(msg)
                    assert await ws.recv() == msg
            subs = [await websockets.connect(url + "/ws", ssl=_ctx(ca)) for _ in range(4)]
            for s in subs:
                await s.send(json.dumps({"op": "sub", "room": "tls-room", "id": 1}))
                assert json.loads(await s.recv())["op"] == "subscribed"
            raw = await websockets.connect(url + "/ws/tls-room", ssl=_ctx(ca))
            pub = await websockets.connect(url + "/publish/tls-room", ssl=_ctx(ca))
            await asyncio.sleep(0.2)
            for i in range(20):
                await pub.send(json.dumps({"i": i}))
            for s in subs:
                got = [json.loads(await asyncio.wait_for(s.recv(), 10)) for _ in range(20)]
                assert [g["seq"] for g in got] == list(range(1, 21))
                assert [g["data"]["i"] for g in got] == list(range(20))
            assert [json.loads(await asyncio.wait_for(raw.recv(), 10))["i"] for _ in range(20)] == list(range(20))
            for c in subs + [raw, pub]:
                await c.close()
        asyncio.run(run())


def test_large_frames_in_one_record_burst_are_echoed_exactly(certs):
    # Frames over the copy threshold decrypted in one read are echoed from the read buffer; the records
    # are written before OpenSSL decrypts the next read into it.
    from wsclient import OP_BINARY, WsClient, build_request, encode_frame, new_key
    ca = os.path.join(certs, "a", "ca.pem")
    with RoomcastServer(_tls_args(certs) + ["--threads", "1"]) as srv:
        raw = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        c = WsClient(_ctx(ca).wrap_socket(raw, server_hostname="127.0.0.1"))
        c.send_raw(build_request("/echo", f"127.0.0.1:{srv.port}", None, key=new_key()))
        assert c.read_http_response(5, body=False).status == 101
        expected = []
        for burst in range(20):
            msgs = [bytes([burst, j]) * (2048 + 1500 * j) for j in range(6)]
            expected += msgs
            c.send_raw(b"".join(encode_frame(OP_BINARY, m) for m in msgs))
            if burst % 5 == 4:
                for m in expected[-30:]:
                    f = c.recv_nonping(timeout=10)
                    assert f.opcode == OP_BINARY and f.payload == m, (len(f.payload), len(m))
        c.sock.close()


def test_stalled_handshake_is_dropped_at_the_timeout(certs):
    with RoomcastServer(_tls_args(certs) + ["--handshake-timeout", "500ms"]) as srv:
        s = socket.create_connection(("127.0.0.1", srv.port))
        s.sendall(b"\x16\x03\x01\x00\xff\x01")  # the start of a ClientHello, then nothing
        s.settimeout(5)
        t0 = time.monotonic()
        try:
            data = s.recv(100)
        except ConnectionResetError:
            data = b""
        assert data == b"", data
        assert time.monotonic() - t0 < 4
        # A normal client is still served.
        async def run():
            async with websockets.connect(f"wss://127.0.0.1:{srv.port}/echo", ssl=_ctx(os.path.join(certs, "a", "ca.pem"))) as ws:
                await ws.send("ok")
                assert await ws.recv() == "ok"
        asyncio.run(run())


def test_sighup_reloads_certificate_with_connections_open(certs):
    d = tempfile.mkdtemp(prefix="roomcast-live-")
    try:
        shutil.copy(os.path.join(certs, "a", "server.pem"), os.path.join(d, "server.pem"))
        shutil.copy(os.path.join(certs, "a", "server-key.pem"), os.path.join(d, "server-key.pem"))
        with RoomcastServer(["--tls-cert", os.path.join(d, "server.pem"), "--tls-key", os.path.join(d, "server-key.pem")]) as srv:
            ca_a, ca_b = os.path.join(certs, "a", "ca.pem"), os.path.join(certs, "b", "ca.pem")
            before = _fingerprint(srv.port, ca_a)
            # An open connection across the reload.
            raw = socket.create_connection(("127.0.0.1", srv.port))
            tls_sock = _ctx(ca_a).wrap_socket(raw, server_hostname="127.0.0.1")
            key = "dGhlIHNhbXBsZSBub25jZQ=="
            tls_sock.sendall(f"GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                             f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
            assert b" 101 " in tls_sock.recv(4096)
            # A bad new file keeps the old certificate.
            with open(os.path.join(d, "server.pem"), "w") as f:
                f.write("garbage\n")
            srv.send_signal(signal.SIGHUP)
            time.sleep(0.3)
            assert _fingerprint(srv.port, ca_a) == before
            assert any("keeping the old certificate" in l for l in srv.stderr_lines), srv.stderr_lines
            # The new pair is served to new connections after SIGHUP.
            shutil.copy(os.path.join(certs, "b", "server.pem"), os.path.join(d, "server.pem"))
            shutil.copy(os.path.join(certs, "b", "server-key.pem"), os.path.join(d, "server-key.pem"))
            srv.send_signal(signal.SIGHUP)
            time.sleep(0.3)
            after = _fingerprint(srv.port, ca_b)
            assert after != before
            # The old connection still echoes: a masked text frame "hi".
            mask = b"\x01\x02\x03\x04"
            tls_sock.sendall(b"\x81\x82" + mask + bytes(c ^ mask[i % 4] for i, c in enumerate(b"hi")))
            assert tls_sock.recv(100) == b"\x81\x02hi"
            tls_sock.close()
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_bad_certificate_is_one_line_and_exit_2(certs, tmp_path):
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate\n")
    for args in (["--tls-cert", str(bad), "--tls-key", str(bad)],
                 ["--tls-cert", "/nonexistent.pem", "--tls-key", os.path.join(certs, "a", "server-key.pem")],
                 ["--tls-cert", os.path.join(certs, "a", "server.pem"), "--tls-key", os.path.join(certs, "b", "server-key.pem")],
                 ["--tls-cert", os.path.join(certs, "a", "server.pem")]):
        p = subprocess.run([BIN, "--listen", "127.0.0.1:0"] + args, capture_output=True, text=True, timeout=10)
        assert p.returncode == 2, (args, p.stderr)
        lines = [l for l in p.stderr.splitlines() if l.strip()]
        assert len(lines) == 1 and lines[0].startswith("roomcast: "), p.stderr


def test_tls_listen_beside_plain_port(certs):
    with RoomcastServer(_tls_args(certs) + ["--tls-listen", "127.0.0.1:0"]) as srv:
        tls_port = None
        deadline = time.monotonic() + 5
        while tls_port is None and time.monotonic() < deadline:
            for l in srv.stdout_lines:
                if "TLS listening on" in l:
                    tls_port = int(l.split("TLS listening on ")[1].split()[0].rsplit(":", 1)[1])
            time.sleep(0.05)
        assert tls_port
        status, _, body = srv.http_get("/health")  # the --listen port stays plain
        assert status == 200
        assert _fingerprint(tls_port, os.path.join(certs, "a", "ca.pem"))
