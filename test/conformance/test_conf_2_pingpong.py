"""Autobahn section 2: pings and pongs (RFC 6455 5.5.2, 5.5.3)."""
import os

import pytest

from wsclient import OP_PING, OP_PONG, OP_TEXT, encode_frame


def test_case_2_1_ping_without_payload(ws):
    ws.send_ping(b"")
    ws.expect_pong(b"")
    ws.close_handshake(1000)


def test_case_2_2_ping_with_small_text_payload(ws):
    ws.send_ping(b"Hello, world!")
    ws.expect_pong(b"Hello, world!")
    ws.close_handshake(1000)


def test_case_2_3_ping_with_small_binary_payload(ws):
    payload = b"\x00\xff\xfe\xfd\xfc\xfb\x00\xff"
    ws.send_ping(payload)
    ws.expect_pong(payload)
    ws.close_handshake(1000)


def test_case_2_4_ping_with_125_byte_binary_payload(ws):
    payload = b"\xfe" * 125
    ws.send_ping(payload)
    ws.expect_pong(payload)
    ws.close_handshake(1000)


def test_case_2_5_ping_with_126_byte_payload_fails_1002(ws):
    ws.send_ping(b"\xfe" * 126)
    ws.expect_close(1002)


@pytest.mark.parametrize("n", [126, 200, 65535, 65536])
def test_case_2_5_ping_oversized_payload_variants_fail_1002(ws, n):
    ws.send_raw(encode_frame(OP_PING, b"\xfe" * n))
    ws.expect_close(1002)


def test_case_2_6_ping_125_bytes_sent_bytewise(ws):
    payload = b"\xfe" * 125
    ws.send_ping(payload, chunk=1)
    ws.expect_pong(payload)
    ws.close_handshake(1000)


def test_case_2_7_unsolicited_pong_without_payload(ws):
    ws.send_pong(b"")
    ws.expect_silence(0.3)
    ws.close_handshake(1000)


def test_case_2_8_unsolicited_pong_with_payload(ws):
    ws.send_pong(b"unsolicited pong payload")
    ws.expect_silence(0.3)
    ws.close_handshake(1000)


def test_case_2_9_unsolicited_pong_then_ping(ws):
    ws.send_pong(b"unsolicited pong payload")
    ws.send_ping(b"ping payload")
    ws.expect_pong(b"ping payload")
    ws.close_handshake(1000)


@pytest.mark.parametrize("chunk", [None, 1], ids=["2_10_at_once", "2_11_bytewise"])
def test_case_2_10_and_2_11_ten_pings_in_a_row(ws, chunk):
    payloads = [f"payload-{i}".encode() for i in range(10)]
    ws.send_raw(b"".join(encode_frame(OP_PING, p) for p in payloads), chunk=chunk)
    for p in payloads:
        ws.expect_pong(p)
    ws.close_handshake(1000)


@pytest.mark.parametrize("n", [0, 1, 2, 3, 4, 5, 31, 32, 33, 64, 100, 124, 125])
def test_ping_payload_lengths_binary(ws, n):
    payload = os.urandom(n)
    ws.send_ping(payload)
    ws.expect_pong(payload)
    ws.close_handshake(1000)


def test_ping_interleaved_with_messages(ws):
    # Pongs may be sent ahead of queued data, but each kind keeps its own order.
    ws.send_raw(encode_frame(OP_TEXT, b"one") + encode_frame(OP_PING, b"p1")
                + encode_frame(OP_TEXT, b"two") + encode_frame(OP_PING, b"p2"))
    frames = [ws.recv_frame() for _ in range(4)]
    assert [(f.opcode, f.payload) for f in frames if f.opcode == OP_TEXT] == \
        [(OP_TEXT, b"one"), (OP_TEXT, b"two")], frames
    assert [(f.opcode, f.payload) for f in frames if f.opcode != OP_TEXT] == \
        [(OP_PONG, b"p1"), (OP_PONG, b"p2")], frames
    assert all(f.fin for f in frames), frames
    ws.close_handshake(1000)


def test_unsolicited_pong_does_not_disturb_echo(ws):
    ws.send_raw(encode_frame(OP_PONG, b"x" * 125) + encode_frame(OP_TEXT, b"after pong"))
    ws.expect_message(OP_TEXT, b"after pong")
    ws.close_handshake(1000)
