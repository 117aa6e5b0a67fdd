"""Autobahn section 3: reserved bits (RFC 6455 5.2: no extension negotiated, so any RSV bit set
MUST fail the connection with 1002). Frames before the bad one are still handled, in order."""
import pytest

from wsclient import (OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT, close_payload,
                      encode_frame)


def test_case_3_1_text_rsv1(ws):
    ws.send_frame(OP_TEXT, b"Hello, world!", rsv=1)
    ws.expect_close(1002)


def _text_bad_ping(rsv):
    return [encode_frame(OP_TEXT, b"Hello, world!"),
            encode_frame(OP_TEXT, b"Hello, world!", rsv=rsv),
            encode_frame(OP_PING, b"")]


def test_case_3_2_text_then_rsv2_then_ping(ws):
    ws.send_raw(b"".join(_text_bad_ping(2)))
    ws.expect_message(OP_TEXT, b"Hello, world!")
    ws.expect_close(1002)  # no pong: nothing is processed after the bad frame


def test_case_3_3_text_then_rsv3_then_ping_framewise(ws):
    frames = _text_bad_ping(3)
    ws.send_raw(frames[0])
    ws.expect_message(OP_TEXT, b"Hello, world!")
    ws.send_raw(frames[1])
    ws.send_raw(frames[2])  # may race with the close; the server must ignore it
    ws.expect_close(1002)


def test_case_3_4_text_then_rsv4_then_ping_octetwise(ws):
    ws.send_raw(b"".join(_text_bad_ping(4)), chunk=1)
    ws.expect_message(OP_TEXT, b"Hello, world!")
    ws.expect_close(1002)


def test_case_3_5_binary_rsv5(ws):
    ws.send_frame(OP_BINARY, b"\x00\xff\xfe\xfd\xfc\xfb\x00\xff", rsv=5)
    ws.expect_close(1002)


def test_case_3_6_ping_rsv6(ws):
    ws.send_frame(OP_PING, b"\x00\xff\xfe\xfd\xfc\xfb\x00\xff", rsv=6)
    ws.expect_close(1002)


def test_case_3_7_close_rsv7(ws):
    ws.send_frame(OP_CLOSE, close_payload(1000), rsv=7)
    ws.expect_close(1002)


KINDS = {
    "text": (OP_TEXT, b"Hello"),
    "binary": (OP_BINARY, b"\x00\x01"),
    "ping": (OP_PING, b"ping"),
    "pong": (OP_PONG, b"pong"),
    "close": (OP_CLOSE, close_payload(1000)),
    "empty_text": (OP_TEXT, b""),
}


@pytest.mark.parametrize("rsv", range(1, 8))
@pytest.mark.parametrize("kind", list(KINDS))
def test_rsv_every_bit_on_every_kind(ws, kind, rsv):
    opcode, payload = KINDS[kind]
    ws.send_frame(opcode, payload, rsv=rsv)
    ws.expect_close(1002)


@pytest.mark.parametrize("rsv", [1, 2, 4])
@pytest.mark.parametrize("kind", ["text", "binary", "ping", "close"])
def test_rsv_after_valid_echo_echo_comes_first(ws, kind, rsv):
    opcode, payload = KINDS[kind]
    ws.send_raw(encode_frame(OP_BINARY, b"valid") + encode_frame(opcode, payload, rsv=rsv))
    ws.expect_message(OP_BINARY, b"valid")
    ws.expect_close(1002)


@pytest.mark.parametrize("rsv", [1, 2, 4])
def test_rsv_on_continuation_frame(ws, rsv):
    ws.send_frame(OP_TEXT, b"frag1", fin=False)
    ws.send_frame(OP_CONT, b"frag2", fin=True, rsv=rsv)
    ws.expect_close(1002)
