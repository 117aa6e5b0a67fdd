"""Autobahn section 6: UTF-8 handling (RFC 6455 8.1). Valid text (every boundary code point,
split at every byte across fragments) is echoed; invalid text (the categories of Markus Kuhn's
UTF-8 decoder stress test) fails with 1007, whole and fragmented, and as soon as the bad bytes
arrive (fail fast), not at the end of the message. Binary messages are never validated."""
import time

import pytest

from wsclient import OP_BINARY, OP_CONT, OP_TEXT, WsClient, WsTimeout, encode_frame

KOSME = b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"  # "κόσμε"
HELLO = "Hello-µ@ßöäüàá-UTF-8!!".encode()


def first_invalid(data):
    """Index of the byte at which `data` stops being a prefix of well-formed UTF-8 (Unicode
    table 3-7), or None if it is a (possibly incomplete) well-formed prefix."""
    i, n = 0, len(data)
    while i < n:
        b = data[i]
        if b < 0x80:
            i += 1
            continue
        if 0xC2 <= b <= 0xDF:
            ranges = [(0x80, 0xBF)]
        elif b == 0xE0:
            ranges = [(0xA0, 0xBF), (0x80, 0xBF)]
        elif 0xE1 <= b <= 0xEC or 0xEE <= b <= 0xEF:
            ranges = [(0x80, 0xBF)] * 2
        elif b == 0xED:
            ranges = [(0x80, 0x9F), (0x80, 0xBF)]
        elif b == 0xF0:
            ranges = [(0x90, 0xBF), (0x80, 0xBF), (0x80, 0xBF)]
        elif 0xF1 <= b <= 0xF3:
            ranges = [(0x80, 0xBF)] * 3
        elif b == 0xF4:
            ranges = [(0x80, 0x8F), (0x80, 0xBF), (0x80, 0xBF)]
        else:
            return i
        for k, (lo, hi) in enumerate(ranges):
            j = i + 1 + k
            if j >= n:
                return None
            if not lo <= data[j] <= hi:
                return j
        i += 1 + len(ranges)
    return None


def is_valid(data):
    try:
        data.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def _cases(prefix, seqs):
    return [(f"{prefix}_{i + 1}", s) for i, s in enumerate(seqs)]


VALID = (
    [("6_1_1", b""), ("6_2_1", HELLO), ("6_2_4", KOSME)]
    + _cases("6_5", [KOSME, HELLO, "中文测试: 你好，世界".encode(), "emoji 😀🎉 𝄞".encode(),
                     "Ωmega ǅ ﬃ ‱ ∑ ≠ ∞ ⌘ 𐍈".encode()])
    # 6.6: "κόσμε" cut after every byte; the cuts on a code point boundary are valid.
    + [(f"6_6_{i}", KOSME[:i]) for i in range(1, 12) if is_valid(KOSME[:i])]
    + _cases("6_7", [b"\x00", b"\xc2\x80", b"\xe0\xa0\x80", b"\xf0\x90\x80\x80"])
    + _cases("6_9", [b"\x7f", b"\xdf\xbf", b"\xef\xbf\xbf", b"\xf4\x8f\xbf\xbf"])
    + _cases("6_11", [b"\xed\x9f\xbf", b"\xee\x80\x80", b"\xef\xbf\xbd", b"\xf4\x8f\xbf\xbf"])
    # 6.22: non-characters are valid UTF-8 (U+FFFE, U+FFFF, U+1FFFE ... U+10FFFF).
    + _cases("6_22", [chr(cp).encode("utf-8", "surrogatepass")
                      for plane in range(0, 17) for cp in (plane * 0x10000 + 0xFFFE,
                                                          plane * 0x10000 + 0xFFFF)])
    + _cases("6_23", ["\ufff9".encode(), "\ufffa".encode(), "\ufffb".encode(), "\ufffc".encode(),
                      "\ufffd".encode(), "\ufeff".encode(), "e\u0301".encode()])
)

INVALID = (
    [("6_3_1", KOSME + b"\xed\xa0\x80" + b"edited")]
    + [(f"6_6_{i}", KOSME[:i]) for i in range(1, 12) if not is_valid(KOSME[:i])]
    + _cases("6_8", [b"\xf8\x88\x80\x80\x80", b"\xfc\x84\x80\x80\x80\x80"])
    + _cases("6_10", [b"\xf7\xbf\xbf\xbf", b"\xfb\xbf\xbf\xbf\xbf", b"\xfd\xbf\xbf\xbf\xbf\xbf"])
    + [("6_11_5", b"\xf4\x90\x80\x80")]
    + _cases("6_12", [b"\x80", b"\xbf", b"\x80\xbf", b"\x80\xbf\x80", b"\x80\xbf\x80\xbf",
                      b"\x80\xbf\x80\xbf\x80", b"\x80\xbf\x80\xbf\x80\xbf", bytes(range(0x80, 0xC0))])
    + _cases("6_13", [b"".join(bytes([c]) + b" " for c in range(lo, hi + 1))
                      for lo, hi in [(0xC0, 0xDF), (0xE0, 0xEF), (0xF0, 0xF7), (0xF8, 0xFB),
                                     (0xFC, 0xFD)]])
    + _cases("6_14", [b"\xc0", b"\xe0\x80", b"\xf0\x80\x80", b"\xf8\x80\x80\x80",
                      b"\xfc\x80\x80\x80\x80", b"\xdf", b"\xef\xbf", b"\xf7\xbf\xbf",
                      b"\xfb\xbf\xbf\xbf", b"\xfd\xbf\xbf\xbf\xbf"])
    + [("6_15_1", b"\xc0\xe0\x80\xf0\x80\x80\xf8\x80\x80\x80\xfc\x80\x80\x80\x80\xdf\xef\xbf"
                  b"\xf7\xbf\xbf\xfb\xbf\xbf\xbf\xfd\xbf\xbf\xbf\xbf")]
    + _cases("6_16", [b"\xfe", b"\xff", b"\xfe\xfe\xff\xff"])
    + _cases("6_17", [b"\xc0\xaf", b"\xe0\x80\xaf", b"\xf0\x80\x80\xaf", b"\xf8\x80\x80\x80\xaf",
                      b"\xfc\x80\x80\x80\x80\xaf"])
    + _cases("6_18", [b"\xc1\xbf", b"\xe0\x9f\xbf", b"\xf0\x8f\xbf\xbf", b"\xf8\x87\xbf\xbf\xbf",
                      b"\xfc\x83\xbf\xbf\xbf\xbf"])
    + _cases("6_19", [b"\xc0\x80", b"\xe0\x80\x80", b"\xf0\x80\x80\x80", b"\xf8\x80\x80\x80\x80",
                      b"\xfc\x80\x80\x80\x80\x80"])
    + _cases("6_20", [b"\xed\xa0\x80", b"\xed\xad\xbf", b"\xed\xae\x80", b"\xed\xaf\xbf",
                      b"\xed\xb0\x80", b"\xed\xbe\x80", b"\xed\xbf\xbf"])
    + _cases("6_21", [a + b for a in (b"\xed\xa0\x80", b"\xed\xad\xbf", b"\xed\xae\x80",
                                      b"\xed\xaf\xbf")
                      for b in (b"\xed\xb0\x80", b"\xed\xbf\xbf")])
    + [("x_f5_lead", b"\xf5\x80\x80\x80"), ("x_ascii_then_trunc", b"abc\xe2\x82"),
       ("x_cont_after_ascii", b"abc\x80def")]
)

for _name, _seq in VALID:
    assert is_valid(_seq), _name
for _name, _seq in INVALID:
    assert not is_valid(_seq), _name

VALID_IDS = [name for name, _ in VALID]
INVALID_IDS = [name for name, _ in INVALID]
VALID_SEQS = [seq for _, seq in VALID]
INVALID_SEQS = [seq for _, seq in INVALID]
FAIL_FAST = [(name, seq) for name, seq in INVALID if first_invalid(seq) is not None]

# Every valid boundary sequence in one string, to be split at every byte.
ALL_VALID = b"|".join(VALID_SEQS)


def _frames(parts, opcode=OP_TEXT):
    return b"".join(encode_frame(opcode if i == 0 else OP_CONT, p, fin=(i == len(parts) - 1))
                    for i, p in enumerate(parts))


# ---- valid -----------------------------------------------------------------------------------

@pytest.mark.parametrize("seq", VALID_SEQS, ids=VALID_IDS)
def test_case_6_valid_whole(ws, seq):
    ws.send_text(seq)
    ws.expect_message(OP_TEXT, seq)
    ws.close_handshake(1000)


@pytest.mark.parametrize("seq", VALID_SEQS, ids=VALID_IDS)
def test_case_6_valid_one_byte_per_fragment(ws, seq):
    parts = [seq[i:i + 1] for i in range(len(seq))] or [b""]
    ws.send_raw(_frames(parts))
    ws.expect_message(OP_TEXT, seq)
    ws.close_handshake(1000)


def test_case_6_1_2_fragmented_empty(ws):
    ws.send_raw(_frames([b"", b"", b""]))
    ws.expect_message(OP_TEXT, b"")
    ws.close_handshake(1000)


def test_case_6_1_3_empty_fragments_around_middle(ws):
    ws.send_raw(_frames([b"", b"middle frame payload", b""]))
    ws.expect_message(OP_TEXT, b"middle frame payload")
    ws.close_handshake(1000)


def test_case_6_2_2_fragmented_on_code_point_boundary(ws):
    ws.send_raw(_frames([HELLO[:11], HELLO[11:]]))
    ws.expect_message(OP_TEXT, HELLO)
    ws.close_handshake(1000)


@pytest.mark.parametrize("seq", [HELLO, KOSME], ids=["6_2_3_hello", "6_2_4_kosme"])
def test_case_6_2_3_6_2_4_fragmented_bytewise_frames(ws, seq):
    ws.send_raw(_frames([seq[i:i + 1] for i in range(len(seq))]))
    ws.expect_message(OP_TEXT, seq)
    ws.close_handshake(1000)


def test_valid_split_at_every_byte_into_two_fragments(ws):
    for i in range(len(ALL_VALID) + 1):
        ws.send_raw(_frames([ALL_VALID[:i], ALL_VALID[i:]]))
        ws.expect_message(OP_TEXT, ALL_VALID)
    ws.close_handshake(1000)


def test_valid_split_at_every_byte_into_three_fragments_with_pings(ws):
    s = "a€𐍈ß中😀".encode()
    for i in range(len(s) + 1):
        for j in range(i, len(s) + 1):
            ws.send_raw(encode_frame(OP_TEXT, s[:i], fin=False) + encode_frame(0x9, b"p")
                        + encode_frame(OP_CONT, s[i:j], fin=False) + encode_frame(OP_CONT, s[j:]))
            ws.expect_pong(b"p")
            ws.expect_message(OP_TEXT, s)
    ws.close_handshake(1000)


@pytest.mark.parametrize("char", ["ß", "€", "😀"], ids=["2byte", "3byte", "4byte"])
def test_valid_multibyte_at_every_block_offset(ws, char):
    # Long ASCII runs with a multi-byte character at every offset across SIMD block boundaries.
    c = char.encode()
    for pos in range(0, 140):
        msg = b"a" * pos + c + b"b" * (200 - pos)
        ws.send_text(msg)
        ws.expect_message(OP_TEXT, msg)
    ws.close_handshake(1000)


def test_valid_long_mixed_text(ws):
    msg = ("ascii κόσμε 中文 😀 " * 5000).encode()
    ws.send_text(msg)
    ws.expect_message(OP_TEXT, msg)
    ws.send_message(OP_TEXT, msg, frag_size=1001)  # 1001 splits characters at many phases
    ws.expect_message(OP_TEXT, msg)
    ws.close_handshake(1000)


# ---- invalid ---------------------------------------------------------------------------------

@pytest.mark.parametrize("seq", INVALID_SEQS, ids=INVALID_IDS)
def test_case_6_invalid_whole(ws, seq):
    ws.send_text(seq)
    ws.expect_close(1007)


@pytest.mark.parametrize("seq", INVALID_SEQS, ids=INVALID_IDS)
def test_case_6_invalid_one_byte_per_fragment(ws, seq):
    ws.send_raw(_frames([seq[i:i + 1] for i in range(len(seq))]))
    ws.expect_close(1007)


def test_case_6_3_2_invalid_fragmented_bytewise_frames(ws):
    seq = INVALID_SEQS[0]
    ws.send_raw(_frames([seq[i:i + 1] for i in range(len(seq))]))
    ws.expect_close(1007)


@pytest.mark.parametrize("seq", INVALID_SEQS, ids=INVALID_IDS)
def test_case_6_invalid_split_at_every_byte(server, seq):
    for i in range(1, len(seq)):
        c = WsClient.connect(server.host, server.port)
        try:
            c.send_raw(_frames([seq[:i], seq[i:]]))
            c.expect_close(1007)
        finally:
            c.close_socket()


@pytest.mark.parametrize("seq", INVALID_SEQS, ids=INVALID_IDS)
def test_binary_is_not_utf8_validated(ws, seq):
    ws.send_binary(seq)
    ws.expect_message(OP_BINARY, seq)
    ws.close_handshake(1000)


# ---- fail fast -------------------------------------------------------------------------------

def _expect_fail_fast(c, what):
    try:
        c.expect_close(1007, timeout=2.0)
    except WsTimeout:
        raise AssertionError(f"no close 1007 within 2s after {what}; the server must fail fast "
                             f"on invalid UTF-8, before the message ends") from None


@pytest.mark.parametrize("name,seq", FAIL_FAST, ids=[n for n, _ in FAIL_FAST])
def test_utf8_fail_fast_first_fragment(ws, name, seq):
    bad = first_invalid(seq)
    ws.send_frame(OP_TEXT, seq[:bad + 1], fin=False)
    _expect_fail_fast(ws, f"a first fragment {seq[:bad + 1]!r} that can never become valid")


@pytest.mark.parametrize("name,seq", FAIL_FAST, ids=[n for n, _ in FAIL_FAST])
def test_utf8_fail_fast_continuation_fragment(ws, name, seq):
    bad = first_invalid(seq)
    ws.send_frame(OP_TEXT, b"valid start ", fin=False)
    ws.send_frame(OP_CONT, seq[:bad + 1], fin=False)
    _expect_fail_fast(ws, f"a continuation {seq[:bad + 1]!r} that can never become valid")


@pytest.mark.parametrize("name,seq", FAIL_FAST, ids=[n for n, _ in FAIL_FAST])
def test_utf8_fail_fast_sequence_split_across_fragments(server, name, seq):
    # The bad sequence starts in one fragment and is completed (wrongly) in the next.
    bad = first_invalid(seq)
    for i in range(1, bad + 1):
        c = WsClient.connect(server.host, server.port)
        try:
            c.send_frame(OP_TEXT, seq[:i], fin=False)
            c.send_frame(OP_CONT, seq[i:bad + 1], fin=False)
            _expect_fail_fast(c, f"fragments {seq[:i]!r} + {seq[i:bad + 1]!r}")
        finally:
            c.close_socket()


def test_case_6_4_1_fail_fast_three_fragments(ws):
    ws.send_frame(OP_TEXT, KOSME, fin=False)
    time.sleep(0.1)
    ws.send_frame(OP_CONT, b"\xf4\x90\x80\x80", fin=False)
    _expect_fail_fast(ws, "fragment 2 of 3")


def test_case_6_4_2_fail_fast_code_point_split(ws):
    ws.send_frame(OP_TEXT, KOSME + b"\xf4", fin=False)
    time.sleep(0.1)
    ws.send_frame(OP_CONT, b"\x90", fin=False)
    _expect_fail_fast(ws, "fragment 2 (0x90 after 0xF4)")


@pytest.mark.parametrize("bad", [b"\xf4\x90\x80\x80", b"\xf4\x90"], ids=["6_4_3", "6_4_4"])
def test_case_6_4_3_6_4_4_invalid_inside_a_chopped_frame(ws, bad):
    # One frame in three chops; the close may come before or after the frame completes.
    frame = encode_frame(OP_TEXT, KOSME + bad + b"edited")
    head = len(frame) - len(KOSME + bad + b"edited")
    cut1, cut2 = head + len(KOSME), head + len(KOSME) + len(bad)
    ws.send_raw(frame[:cut1])
    time.sleep(0.1)
    ws.send_raw(frame[cut1:cut2])
    try:
        ws.expect_close(1007, timeout=0.5)
        return
    except WsTimeout:
        pass
    ws.send_raw(frame[cut2:])
    ws.expect_close(1007)


INVALID_IN_ASCII = [b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xe0\x80\xaf", b"\x80",
                    b"\xe2\x82", b"\xff"]


@pytest.mark.parametrize("bad", INVALID_IN_ASCII, ids=[b.hex() for b in INVALID_IN_ASCII])
def test_invalid_at_every_block_offset(server, bad):
    # Invalid bytes at every offset of a long ASCII run, across SIMD block boundaries.
    for pos in range(0, 134):
        msg = b"a" * pos + bad + b"b" * (150 - pos)
        c = WsClient.connect(server.host, server.port)
        try:
            c.send_text(msg)
            c.expect_close(1007)
        finally:
            c.close_socket()


def test_invalid_after_valid_echo(ws):
    ws.send_text(KOSME)
    ws.send_text(b"\xc0\xaf")
    ws.expect_message(OP_TEXT, KOSME)
    ws.expect_close(1007)


def test_truncated_at_message_end_fails_1007(ws):
    # A valid prefix in the first fragment, then the message ends mid-character.
    ws.send_raw(_frames([b"abc\xe2", b"\x82"]))
    ws.expect_close(1007)
