"""Autobahn section 1: framing of text and binary messages, plus RFC 6455 5.2 length and
masking rules (non-minimal lengths, 64-bit length with the top bit set, unmasked frames)."""
import pytest

from wsclient import OP_BINARY, OP_CLOSE, OP_PING, OP_TEXT, encode_frame

LENGTHS = [0, 125, 126, 127, 128, 65535, 65536]


def _payload(opcode, n):
    return b"*" * n if opcode == OP_TEXT else b"\xfe" * n


# 1.1.1-1.1.7 (text) and 1.2.1-1.2.7 (binary): one frame, all written at once.
@pytest.mark.parametrize("n", LENGTHS, ids=[f"1_{i + 1}_len{n}" for i, n in enumerate(LENGTHS)])
@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY], ids=["text", "binary"])
def test_case_1_x_lengths(ws, opcode, n):
    payload = _payload(opcode, n)
    ws.send_frame(opcode, payload)
    ws.expect_message(opcode, payload)
    ws.close_handshake(1000)


# 1.1.8 / 1.2.8: 65536 bytes in one frame, written in chops of 997 bytes.
@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY], ids=["1_1_8_text", "1_2_8_binary"])
def test_case_1_x_8_chopped_997(ws, opcode):
    payload = _payload(opcode, 65536)
    ws.send_frame(opcode, payload, chunk=997)
    ws.expect_message(opcode, payload)
    ws.close_handshake(1000)


# Every length boundary again, with the frame split into small chunks so the header itself
# (length field and mask key) arrives piecemeal.
@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 7])
@pytest.mark.parametrize("n", [0, 1, 125, 126, 127, 128, 300])
def test_framing_split_writes(ws, n, chunk):
    payload = bytes((i * 7 + 1) & 0xFF for i in range(n))
    ws.send_frame(OP_BINARY, payload, chunk=chunk)
    ws.expect_message(OP_BINARY, payload)
    text = ("a" * n).encode()
    ws.send_frame(OP_TEXT, text, chunk=chunk)
    ws.expect_message(OP_TEXT, text)
    ws.close_handshake(1000)


@pytest.mark.parametrize("n", [65535, 65536, 70000])
def test_framing_split_writes_large(ws, n):
    payload = bytes((i * 13) & 0xFF for i in range(n))
    ws.send_frame(OP_BINARY, payload, chunk=4093)
    ws.expect_message(OP_BINARY, payload)
    ws.close_handshake(1000)


# Minimal but explicit forms are fine: 126..65535 in 16 bits, >= 65536 in 64 bits.
@pytest.mark.parametrize("n,form", [(126, 16), (65535, 16), (65536, 64), (100000, 64)])
def test_framing_minimal_explicit_forms_accepted(ws, n, form):
    payload = b"m" * n
    ws.send_frame(OP_TEXT, payload, length_form=form)
    ws.expect_message(OP_TEXT, payload)
    ws.close_handshake(1000)


# RFC 6455 5.2: "the minimal number of bytes MUST be used to encode the length".
@pytest.mark.parametrize("n,form", [(0, 16), (5, 16), (125, 16), (0, 64), (125, 64), (126, 64),
                                    (65535, 64)])
@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY], ids=["text", "binary"])
def test_framing_nonminimal_length_fails_1002(ws, opcode, n, form):
    ws.send_frame(opcode, b"x" * n, length_form=form)
    ws.expect_close(1002)


def test_framing_nonminimal_length_after_echo_fails_1002(ws):
    ws.send_text(b"first")
    ws.send_frame(OP_TEXT, b"second", length_form=16)
    ws.expect_message(OP_TEXT, b"first")
    ws.expect_close(1002)


# RFC 6455 5.2: "the most significant bit MUST be 0" in the 64-bit length.
@pytest.mark.parametrize("declared", [1 << 63, (1 << 63) + 10, (1 << 64) - 1])
@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY], ids=["text", "binary"])
def test_framing_64bit_length_top_bit_fails_1002(ws, opcode, declared):
    # Only the header (and a few payload bytes) are sent; the server must not wait for 2^63 bytes.
    ws.send_raw(encode_frame(opcode, b"abcd", length_form=64, declared_length=declared))
    ws.expect_close(1002)


# RFC 6455 5.1: a server MUST close the connection on an unmasked client frame.
@pytest.mark.parametrize("opcode,payload", [(OP_TEXT, b"hello"), (OP_BINARY, b"\x01\x02"),
                                            (OP_TEXT, b""), (OP_PING, b"p"),
                                            (OP_CLOSE, b"\x03\xe8")],
                         ids=["text", "binary", "empty_text", "ping", "close"])
def test_framing_unmasked_client_frame_fails_1002(ws, opcode, payload):
    ws.send_frame(opcode, payload, mask=False)
    ws.expect_close(1002)


def test_framing_unmasked_after_valid_echo_fails_1002(ws):
    ws.send_text(b"masked")
    ws.expect_message(OP_TEXT, b"masked")
    ws.send_frame(OP_TEXT, b"unmasked", mask=False)
    ws.expect_close(1002)


def test_framing_all_zero_mask_key_is_valid(ws):
    ws.send_frame(OP_TEXT, b"zero key", mask_key=b"\x00\x00\x00\x00")
    ws.expect_message(OP_TEXT, b"zero key")
    ws.close_handshake(1000)


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 129, 255,
                               257, 1023, 1025, 4099])
def test_framing_unmask_every_phase(ws, n):
    # Lengths around SIMD widths; odd lengths put the tail of the mask at every phase.
    payload = bytes((i * 31 + n) & 0xFF for i in range(n))
    ws.send_frame(OP_BINARY, payload, mask_key=b"\x01\x80\xfe\x7f")
    ws.expect_message(OP_BINARY, payload)
    ws.close_handshake(1000)
