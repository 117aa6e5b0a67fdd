"""Autobahn section 7: the closing handshake (RFC 6455 5.5.1, 7.4). Valid close codes are echoed
and TCP is closed; invalid codes, a 1-byte payload and a non-UTF-8 reason fail with 1002/1007;
nothing is sent after the close frame and anything the client sends after its close is ignored."""
import socket

import pytest

import wsclient

from wsclient import (EMPTY, OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_TEXT, WsClient,
                      close_payload, encode_frame)


def test_case_7_1_1_echo_then_close(ws):
    ws.send_text(b"Hello World!")
    ws.expect_message(OP_TEXT, b"Hello World!")
    ws.send_close(1000)
    ws.expect_close(1000)


def test_case_7_1_2_close_twice(ws):
    ws.send_raw(encode_frame(OP_CLOSE, close_payload(1000)) + encode_frame(OP_CLOSE, close_payload(1000)))
    ws.expect_close(1000)  # exactly one close back, then EOF


def test_case_7_1_3_ping_after_close(ws):
    ws.send_raw(encode_frame(OP_CLOSE, close_payload(1000)) + encode_frame(OP_PING, b"Hello World!"))
    ws.expect_close(1000)  # no pong


def test_case_7_1_4_text_after_close(ws):
    ws.send_raw(encode_frame(OP_CLOSE, close_payload(1000)) + encode_frame(OP_TEXT, b"Hello World!"))
    ws.expect_close(1000)  # no echo


def test_data_after_close_sent_separately_is_ignored(ws):
    ws.send_close(1000)
    ws.send_text(b"ignored")
    ws.send_ping(b"ignored")
    ws.expect_close(1000)


def test_case_7_1_5_close_while_fragmented_message_in_progress(ws):
    ws.send_raw(encode_frame(OP_TEXT, b"fragment1", fin=False) + encode_frame(OP_CLOSE, close_payload(1000))
                + encode_frame(OP_CONT, b"fragment2"))
    ws.expect_close(1000)  # the partial message is never echoed


@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY], ids=["text", "binary"])
def test_close_while_fragmented_message_in_progress_separate_writes(ws, opcode):
    ws.send_frame(opcode, b"part", fin=False)
    ws.send_close(1001, b"going away")
    ws.expect_close(1001)


def test_case_7_1_6_large_message_then_close_then_ping(ws):
    big = b"BAsd7&jh23" * 26214 + b"Bjdhw"  # 262145 bytes
    ws.send_raw(encode_frame(OP_TEXT, big) + encode_frame(OP_CLOSE, close_payload(1000))
                + encode_frame(OP_PING, b"Hello World!"))
    ws.expect_message(OP_TEXT, big, timeout=10)
    ws.expect_close(1000)


def test_case_7_3_1_close_empty_payload(ws):
    ws.send_close()
    ws.expect_close((EMPTY, 1000))


def test_case_7_3_2_close_one_byte_payload(ws):
    ws.send_frame(OP_CLOSE, b"a")
    ws.expect_close(1002)


def test_case_7_3_3_close_1000_no_reason(ws):
    ws.send_close(1000)
    ws.expect_close(1000)


def test_case_7_3_4_close_1000_with_reason(ws):
    ws.send_close(1000, b"Hello World!")
    ws.expect_close(1000)


def test_case_7_3_5_close_1000_with_123_byte_reason(ws):
    ws.send_close(1000, b"*" * 123)
    ws.expect_close(1000)


def test_case_7_3_6_close_1000_with_124_byte_reason(ws):
    # 2 + 124 = 126 bytes: a control frame payload over 125 bytes.
    ws.send_close(1000, b"*" * 124)
    ws.expect_close(1002)


@pytest.mark.parametrize("reason", [b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited",
                                    b"\xff", b"\xc0\xaf", b"ok\xe2\x82"],
                         ids=["7_5_1", "ff", "overlong", "truncated"])
def test_case_7_5_1_close_reason_invalid_utf8(ws, reason):
    ws.send_close(1000, reason)
    ws.expect_close(1007)


def test_close_reason_valid_multibyte_utf8(ws):
    ws.send_close(1000, "κόσμε 😀".encode())
    ws.expect_close(1000)


VALID_CODES = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999]


@pytest.mark.parametrize("code", VALID_CODES, ids=[f"7_7_{i + 1}_{c}" for i, c in enumerate(VALID_CODES)])
def test_case_7_7_valid_close_code_echoed(ws, code):
    ws.send_close(code)
    ws.expect_close(code)


@pytest.mark.parametrize("code", [1012, 1013, 1014, 3001, 4001])
def test_more_valid_close_codes_echoed(ws, code):
    ws.send_close(code, b"reason")
    ws.expect_close(code)


INVALID_CODES = [0, 999, 1004, 1005, 1006, 1016, 1100, 2000, 2999]


@pytest.mark.parametrize("code", INVALID_CODES,
                         ids=[f"7_9_{i + 1}_{c}" for i, c in enumerate(INVALID_CODES)])
def test_case_7_9_invalid_close_code(ws, code):
    ws.send_close(code)
    ws.expect_close(1002)


@pytest.mark.parametrize("code", [1015, 1017, 1999, 5000, 65535],
                         ids=["1015", "1017", "1999", "7_13_1_5000", "7_13_2_65535"])
def test_case_7_13_more_invalid_close_codes(ws, code):
    ws.send_close(code, b"reason")
    ws.expect_close(1002)


def test_close_split_bytewise(ws):
    ws.send_close(3003, b"bytewise", chunk=1)
    ws.expect_close(3003)


def test_close_after_pipelined_messages_all_echoed_first(ws):
    msgs = [b"m%d" % i for i in range(20)]
    ws.send_raw(b"".join(encode_frame(OP_BINARY, m) for m in msgs)
                + encode_frame(OP_CLOSE, close_payload(1000)))
    for m in msgs:
        ws.expect_message(OP_BINARY, m)
    ws.expect_close(1000)


@pytest.mark.skipif(bool(wsclient.TLS_CA), reason="TCP-level half-close: Python's SSLSocket.shutdown() drops TLS")
def test_tcp_half_close_after_close_frame(ws):
    # The client closes its write side right after its close frame; the server still answers.
    ws.send_close(1000)
    ws.sock.shutdown(socket.SHUT_WR)
    ws.expect_close(1000)


def test_tcp_close_without_close_frame_leaves_server_serving(server):
    for _ in range(5):
        c = WsClient.connect(server.host, server.port)
        c.send_frame(OP_TEXT, b"half", fin=False)
        c.close_socket()
    for _ in range(5):
        c = WsClient.connect(server.host, server.port)
        c.send_text(b"x" * 1000)
        c.abort()
