"""Autobahn section 9 (limits, correctness only: no timing asserts) and section 10
(a fragmented message comes back as one message). Also the --max-message-size limit (1009)."""
import os

import pytest

from roomcast_testing import CONFORMANCE_ARGS, RestartingServer, with_flag
from wsclient import (OP_BINARY, OP_CONT, OP_PING, OP_TEXT, WsClient, WsTimeout, assert_echo_works,
                      encode_frame, encode_message)

KIB, MIB = 1024, 1024 * 1024
SIZES = [64 * KIB, 256 * KIB, 1 * MIB, 4 * MIB, 8 * MIB]
SIZE_IDS = ["64K", "256K", "1M", "4M", "8M"]


def _payload(opcode, n):
    if opcode == OP_TEXT:
        unit = "κόσμε-Hello-😀-".encode()  # multi-byte text exercises the UTF-8 validator
        s = unit * (n // len(unit))
        return s + b"*" * (n - len(s))
    return os.urandom(n)


# 9.1.1-9.1.5 text, 9.2.1-9.2.5 binary: one large frame.
@pytest.mark.parametrize("n", SIZES, ids=SIZE_IDS)
@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY], ids=["9_1_text", "9_2_binary"])
def test_case_9_1_9_2_large_message(ws, opcode, n):
    payload = _payload(opcode, n)
    ws.send_frame(opcode, payload)
    ws.expect_message(opcode, payload, timeout=30)
    ws.close_handshake(1000)


FRAG_SIZES = [64, 256, 1 * KIB, 4 * KIB, 16 * KIB, 64 * KIB, 256 * KIB, 1 * MIB, 4 * MIB]


# 9.3.x text, 9.4.x binary: a 4 MiB message fragmented into frames of 64 B ... 4 MiB.
@pytest.mark.parametrize("frag", FRAG_SIZES, ids=[f"frag{f}" for f in FRAG_SIZES])
@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY], ids=["9_3_text", "9_4_binary"])
def test_case_9_3_9_4_fragmented_4m(ws, opcode, frag):
    payload = _payload(opcode, 4 * MIB)
    ws.send_message(opcode, payload, frag_size=frag)
    ws.expect_message(opcode, payload, timeout=30)
    ws.close_handshake(1000)


CHOPS = [64, 128, 256, 512, 1024, 2048]


# 9.5.x text, 9.6.x binary: a 1 MiB frame written in chops of 64 B ... 2 KiB.
@pytest.mark.parametrize("chop", CHOPS, ids=[f"chop{c}" for c in CHOPS])
@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY], ids=["9_5_text", "9_6_binary"])
def test_case_9_5_9_6_chopped_1m(ws, opcode, chop):
    payload = _payload(opcode, 1 * MIB)
    ws.send_frame(opcode, payload, chunk=chop)
    ws.expect_message(opcode, payload, timeout=30)
    ws.close_handshake(1000)


MSG_SIZES = [0, 16, 64, 256, 1024, 4096]


# 9.7.x text, 9.8.x binary: 1000 messages one after another (send, wait for the echo).
@pytest.mark.parametrize("n", MSG_SIZES, ids=[f"size{n}" for n in MSG_SIZES])
@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY], ids=["9_7_text", "9_8_binary"])
def test_case_9_7_9_8_many_messages_round_trip(ws, opcode, n):
    payload = _payload(opcode, n)
    for _ in range(1000):
        ws.send_frame(opcode, payload)
        ws.expect_message(opcode, payload)
    ws.close_handshake(1000)


@pytest.mark.parametrize("n", [0, 1, 16, 125, 126, 1000])
def test_many_small_messages_pipelined(ws, n):
    msgs = [(OP_TEXT if i % 2 else OP_BINARY, (b"%06d" % i + b"x" * n)[:max(n, 6)])
            for i in range(5000)]
    ws.send_raw(b"".join(encode_frame(op, p) for op, p in msgs), chunk=65536)
    for op, p in msgs:
        ws.expect_message(op, p, timeout=30)
    ws.close_handshake(1000)


def test_pipelined_mixed_sizes_with_pings(ws):
    stream, expect = [], []
    for i in range(300):
        n = (i * 977) % 70000
        op = OP_BINARY if i % 3 else OP_TEXT
        p = _payload(op, n)
        stream.append(encode_message(op, p, frag_size=(i % 5) * 4000 or None))
        expect.append((op, p))
        if i % 7 == 0:
            stream.append(encode_frame(OP_PING, b"%d" % i))
            expect.append((0xA, b"%d" % i))
    # Write in 50 KB chunks and read what has come back after each: the server applies backpressure
    # (it stops reading a client whose unread echoes pass --max-backlog), so a client that only wrote
    # would wait forever. (One thread: an SSL socket must not be read and written concurrently.)
    data = b"".join(stream)
    want_msgs = [e for e in expect if e[0] != 0xA]
    pings = [e for e in expect if e[0] == 0xA]
    msgs, pongs = [], []

    def take(timeout):
        f = ws.recv_frame(timeout=timeout)
        (pongs if f.opcode == 0xA else msgs).append((f.opcode, f.payload))

    for off in range(0, len(data), 50000):
        ws.send_raw(data[off:off + 50000])
        try:
            while True:
                take(0.005)
        except WsTimeout:
            pass
    while len(msgs) < len(want_msgs) or not pongs or pongs[-1] != pings[-1]:
        take(30)
    assert msgs == want_msgs
    # §5.5.3: while earlier pongs are unsent the server MAY answer only the most recent ping, so the
    # pongs are an in-order subsequence of the pings that ends with the last one.
    it = iter(pings)
    assert all(any(p == q for q in it) for p in pongs), pongs
    ws.close_handshake(1000)


# 10.1.1: a 65536-byte message in 1300-byte fragments comes back as one message.
def test_case_10_1_1_fragmented_message_echoed_as_one(ws):
    payload = b"*" * 65536
    ws.send_message(OP_TEXT, payload, frag_size=1300)
    ws.expect_message(OP_TEXT, payload)
    ws.close_handshake(1000)


@pytest.mark.parametrize("frag", [1, 7, 125, 126, 65535, 65536])
@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY], ids=["text", "binary"])
def test_fragmented_message_echoed_as_one_frame(ws, opcode, frag):
    payload = _payload(opcode, 200000 if frag > 7 else 5000)
    ws.send_message(opcode, payload, frag_size=frag)
    ws.expect_message(opcode, payload, timeout=30)  # expect_message requires FIN on the first frame
    ws.close_handshake(1000)


# ---- --max-message-size ----------------------------------------------------------------------

LIMIT = 64 * KIB


@pytest.fixture(scope="module")
def _small_holder():
    holder = RestartingServer(with_flag(CONFORMANCE_ARGS, "--max-message-size", "64K"))
    yield holder
    holder.stop()


@pytest.fixture
def small_server(_small_holder):
    return _small_holder.get()


@pytest.fixture
def sws(small_server):
    c = WsClient.connect(small_server.host, small_server.port)
    yield c
    c.close_socket()
    assert small_server.alive(), f"roomcast exited with {small_server.proc.returncode}"
    assert_echo_works(small_server.host, small_server.port)


@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY], ids=["text", "binary"])
def test_message_at_limit_is_echoed(sws, opcode):
    payload = _payload(opcode, LIMIT)
    sws.send_frame(opcode, payload)
    sws.expect_message(opcode, payload)
    sws.send_message(opcode, payload, frag_size=1000)
    sws.expect_message(opcode, payload)
    sws.close_handshake(1000)


@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY], ids=["text", "binary"])
def test_message_one_over_limit_fails_1009(sws, opcode):
    sws.send_frame(opcode, _payload(opcode, LIMIT + 1))
    sws.expect_close(1009)


@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY], ids=["text", "binary"])
def test_oversized_frame_header_alone_fails_1009(sws, opcode):
    # The server can decide from the length field; it must not wait for the payload.
    sws.send_raw(encode_frame(opcode, b"", declared_length=100 * MIB)[:14])
    sws.expect_close(1009)


@pytest.mark.parametrize("frag", [1000, 32 * KIB, LIMIT])
@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY], ids=["text", "binary"])
def test_fragmented_total_over_limit_fails_1009(sws, opcode, frag):
    payload = _payload(opcode, LIMIT + frag)
    sws.send_message(opcode, payload, frag_size=frag)
    sws.expect_close(1009)


def test_fragments_over_limit_fail_before_message_ends(sws):
    # Fragments each under the limit, total over it: 1009 without waiting for FIN.
    sws.send_frame(OP_BINARY, b"a" * (LIMIT - 10), fin=False)
    sws.send_frame(OP_CONT, b"b" * 11, fin=False)
    sws.expect_close(1009)


def test_control_frames_do_not_count_toward_limit(sws):
    sws.send_frame(OP_BINARY, b"a" * (LIMIT - 100), fin=False)
    for _ in range(10):
        sws.send_ping(b"p" * 125)
        sws.expect_pong(b"p" * 125)
    sws.send_frame(OP_CONT, b"b" * 100)
    sws.expect_message(OP_BINARY, b"a" * (LIMIT - 100) + b"b" * 100)
    sws.close_handshake(1000)


def test_limit_is_per_message_not_per_connection(sws):
    payload = b"z" * (LIMIT // 2 + 1)
    for _ in range(6):
        sws.send_binary(payload)
        sws.expect_message(OP_BINARY, payload)
    sws.close_handshake(1000)


def test_small_server_still_serves_after_1009(small_server):
    assert_echo_works(small_server.host, small_server.port)
