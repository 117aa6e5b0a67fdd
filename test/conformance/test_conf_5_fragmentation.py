"""Autobahn section 5: fragmentation (RFC 6455 5.4). Fragmented messages are echoed as one
unfragmented frame; control frames may be interleaved but never fragmented; continuation frames
need a started message and a new data frame may not start inside one."""
import time

import pytest

from wsclient import OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT, encode_frame

# How the stream is written: all at once, one byte per write, or one write per frame with a
# small pause between (Autobahn's "chops with delay").
MODES = ["at_once", "octetwise", "delayed"]


def _send(ws, frames, mode):
    if mode == "at_once":
        ws.send_raw(b"".join(frames))
    elif mode == "octetwise":
        ws.send_raw(b"".join(frames), chunk=1)
    else:
        for f in frames:
            ws.send_raw(f)
            time.sleep(0.01)


def test_case_5_1_ping_in_two_fragments(ws):
    ws.send_raw(encode_frame(OP_PING, b"fragment1", fin=False) + encode_frame(OP_CONT, b"fragment2"))
    ws.expect_close(1002)


def test_case_5_2_pong_in_two_fragments(ws):
    ws.send_raw(encode_frame(OP_PONG, b"fragment1", fin=False) + encode_frame(OP_CONT, b"fragment2"))
    ws.expect_close(1002)


@pytest.mark.parametrize("mode", MODES, ids=["5_3", "5_4_octetwise", "5_5_delayed"])
def test_case_5_3_to_5_5_text_in_two_fragments(ws, mode):
    _send(ws, [encode_frame(OP_TEXT, b"fragment1", fin=False), encode_frame(OP_CONT, b"fragment2")],
          mode)
    ws.expect_message(OP_TEXT, b"fragment1fragment2")
    ws.close_handshake(1000)


@pytest.mark.parametrize("mode", MODES, ids=["5_6", "5_7_octetwise", "5_8_delayed"])
def test_case_5_6_to_5_8_text_in_two_fragments_ping_between(ws, mode):
    _send(ws, [encode_frame(OP_TEXT, b"fragment1", fin=False),
               encode_frame(OP_PING, b"ping payload"),
               encode_frame(OP_CONT, b"fragment2")], mode)
    ws.expect_pong(b"ping payload")
    ws.expect_message(OP_TEXT, b"fragment1fragment2")
    ws.close_handshake(1000)


@pytest.mark.parametrize("mode", MODES, ids=["5_9", "5_10_octetwise", "5_11_delayed"])
def test_case_5_9_to_5_11_continuation_fin_without_start(ws, mode):
    _send(ws, [encode_frame(OP_CONT, b"non-continuation payload", fin=True),
               encode_frame(OP_TEXT, b"Hello, world!")], mode)
    ws.expect_close(1002)


@pytest.mark.parametrize("mode", MODES, ids=["5_12", "5_13_octetwise", "5_14_delayed"])
def test_case_5_12_to_5_14_continuation_nofin_without_start(ws, mode):
    _send(ws, [encode_frame(OP_CONT, b"non-continuation payload", fin=False),
               encode_frame(OP_TEXT, b"Hello, world!")], mode)
    ws.expect_close(1002)


def test_case_5_15_message_then_stray_continuation(ws):
    ws.send_raw(encode_frame(OP_TEXT, b"fragment1", fin=False) + encode_frame(OP_CONT, b"fragment2")
                + encode_frame(OP_CONT, b"fragment3", fin=False) + encode_frame(OP_TEXT, b"fragment4"))
    ws.expect_message(OP_TEXT, b"fragment1fragment2")
    ws.expect_close(1002)


@pytest.mark.parametrize("fin", [False, True], ids=["5_16_nofin", "5_17_fin"])
def test_case_5_16_5_17_repeated_stray_continuations(ws, fin):
    one = (encode_frame(OP_CONT, b"fragment1", fin=fin) + encode_frame(OP_TEXT, b"fragment2", fin=False)
           + encode_frame(OP_CONT, b"fragment3"))
    ws.send_raw(one + one)
    ws.expect_close(1002)


def test_case_5_18_two_text_starts(ws):
    ws.send_raw(encode_frame(OP_TEXT, b"fragment1", fin=False) + encode_frame(OP_TEXT, b"fragment2"))
    ws.expect_close(1002)


@pytest.mark.parametrize("delay", [0.0, 0.05], ids=["5_19", "5_20_slower"])
def test_case_5_19_5_20_five_fragments_with_pings(ws, delay):
    ws.send_frame(OP_TEXT, b"fragment1", fin=False)
    ws.send_frame(OP_CONT, b"fragment2", fin=False)
    ws.send_ping(b"pongme 1!")
    ws.expect_pong(b"pongme 1!")
    time.sleep(delay)
    ws.send_frame(OP_CONT, b"fragment3", fin=False)
    time.sleep(delay)
    ws.send_frame(OP_CONT, b"fragment4", fin=False)
    ws.send_ping(b"pongme 2!")
    ws.expect_pong(b"pongme 2!")
    time.sleep(delay)
    ws.send_frame(OP_CONT, b"fragment5", fin=True)
    ws.expect_message(OP_TEXT, b"fragment1fragment2fragment3fragment4fragment5")
    ws.close_handshake(1000)


# ---- beyond the numbered cases ---------------------------------------------------------------

@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY], ids=["text", "binary"])
@pytest.mark.parametrize("mode", MODES)
def test_fragmented_with_interleaved_pings(ws, opcode, mode):
    frames = []
    parts = [b"aa", b"bbb", b"", b"c", b"dddd"]
    for i, p in enumerate(parts):
        frames.append(encode_frame(opcode if i == 0 else OP_CONT, p, fin=(i == len(parts) - 1)))
        if i < len(parts) - 1:
            frames.append(encode_frame(OP_PING, b"p%d" % i))
    _send(ws, frames, mode)
    for i in range(len(parts) - 1):
        ws.expect_pong(b"p%d" % i)
    ws.expect_message(opcode, b"".join(parts))
    ws.close_handshake(1000)


@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY], ids=["text", "binary"])
@pytest.mark.parametrize("n", [2, 10, 200, 1000])
def test_fragments_of_one_byte(ws, opcode, n):
    payload = bytes(0x41 + (i % 26) for i in range(n))
    frames = [encode_frame(opcode if i == 0 else OP_CONT, payload[i:i + 1], fin=(i == n - 1))
              for i in range(n)]
    ws.send_raw(b"".join(frames))
    ws.expect_message(opcode, payload)
    ws.close_handshake(1000)


def test_fragments_of_one_byte_sent_bytewise(ws):
    payload = b"0123456789abcdef"
    n = len(payload)
    frames = [encode_frame(OP_BINARY if i == 0 else OP_CONT, payload[i:i + 1], fin=(i == n - 1))
              for i in range(n)]
    ws.send_raw(b"".join(frames), chunk=1)
    ws.expect_message(OP_BINARY, payload)
    ws.close_handshake(1000)


@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY], ids=["text", "binary"])
def test_all_fragments_empty(ws, opcode):
    ws.send_raw(encode_frame(opcode, b"", fin=False) + encode_frame(OP_CONT, b"", fin=False)
                + encode_frame(OP_CONT, b""))
    ws.expect_message(opcode, b"")
    ws.close_handshake(1000)


@pytest.mark.parametrize("first,second", [(OP_TEXT, OP_BINARY), (OP_BINARY, OP_TEXT),
                                          (OP_BINARY, OP_BINARY)],
                         ids=["text_then_binary", "binary_then_text", "binary_then_binary"])
@pytest.mark.parametrize("second_fin", [True, False], ids=["fin", "nofin"])
def test_nested_data_frame_start(ws, first, second, second_fin):
    ws.send_raw(encode_frame(first, b"abc", fin=False) + encode_frame(second, b"def", fin=second_fin))
    ws.expect_close(1002)


def test_nested_start_after_several_fragments(ws):
    ws.send_raw(encode_frame(OP_TEXT, b"a", fin=False) + encode_frame(OP_CONT, b"b", fin=False)
                + encode_frame(OP_PING, b"x"))
    ws.expect_pong(b"x")
    ws.send_frame(OP_BINARY, b"c")
    ws.expect_close(1002)


@pytest.mark.parametrize("opcode,payload", [(OP_PING, b"ping"), (OP_PONG, b"pong"),
                                            (OP_CLOSE, b"\x03\xe8")], ids=["ping", "pong", "close"])
def test_control_frame_without_fin(ws, opcode, payload):
    ws.send_frame(opcode, payload, fin=False)
    ws.expect_close(1002)


@pytest.mark.parametrize("opcode", [OP_PING, OP_PONG, OP_CLOSE], ids=["ping", "pong", "close"])
def test_control_frame_without_fin_inside_fragmented_message(ws, opcode):
    ws.send_raw(encode_frame(OP_TEXT, b"abc", fin=False) + encode_frame(opcode, b"", fin=False))
    ws.expect_close(1002)


def test_message_after_fragmented_message_is_independent(ws):
    ws.send_raw(encode_frame(OP_TEXT, b"a", fin=False) + encode_frame(OP_CONT, b"b")
                + encode_frame(OP_BINARY, b"c") + encode_frame(OP_BINARY, b"d", fin=False)
                + encode_frame(OP_CONT, b"e"))
    ws.expect_message(OP_TEXT, b"ab")
    ws.expect_message(OP_BINARY, b"c")
    ws.expect_message(OP_BINARY, b"de")
    ws.close_handshake(1000)
