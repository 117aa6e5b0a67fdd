"""Autobahn sections 12 and 13: permessage-deflate (RFC 7692) on /echo.

Section 12: compressed echo of the Autobahn|Testsuite data files (12.1 JSON, 12.2 bitmap, 12.3 text,
12.4 HTML, 12.5 PDF) at payload sizes 16 B .. 128 KiB, whole and auto-fragmented, default offer.
Section 13: the same sizes under each offer combination (no context takeover either way, window
bits, several offers), against a server without and with --deflate-context-takeover.
Plus negotiation (offer -> exact Sec-WebSocket-Extensions answer, or none) and hostile input:
RSV1 where it is not allowed (1002), corrupt data (1007), a back-reference beyond the agreed client
window (1007), bombs (1009), invalid UTF-8 after inflation (1007).

The client side is Python's zlib with raw deflate (wbits=-N): an independent implementation. When
server_no_context_takeover is agreed, every server message is inflated by a fresh decompressor,
which proves the server reset its window; when client_no_context_takeover is not agreed, the
client keeps its window, which proves the server keeps its own.

Message counts are scaled down from Autobahn's 1000 per case to keep the module under ~30 s.
"""
import random
import zlib

import pytest

from roomcast_testing import CONFORMANCE_ARGS, RestartingServer
from wsclient import (OP_BINARY, OP_CONT, OP_PING, OP_TEXT, RSV1, RSV2, RSV3, WsClient,
                      encode_frame)
from wsdeflate import AUTOBAHN_FILES, TAIL, DeflateClient, autobahn_data, compress_message

DEFLATE_ARGS = CONFORMANCE_ARGS + ["--deflate", "on"]
TAKEOVER_ARGS = DEFLATE_ARGS + ["--deflate-context-takeover"]
SMALL_LIMIT_ARGS = [a if a != "16M" else "1M" for a in DEFLATE_ARGS]
OFF_ARGS = CONFORMANCE_ARGS + ["--deflate", "off"]
TUNED_ARGS = DEFLATE_ARGS + ["--deflate-level", "9", "--deflate-window-bits", "10",
                             "--deflate-min-size", "1000"]

SIZES = [16, 64, 256, 1024, 4096, 8192, 16384, 32768, 65536, 131072]
MIN_SIZE = 64  # the default --deflate-min-size
DEFAULT_OFFER = "permessage-deflate; client_max_window_bits"  # what Autobahn and browsers send
BOTH_NCT = "permessage-deflate; server_no_context_takeover; client_no_context_takeover"


@pytest.fixture(scope="module")
def server_args():
    return DEFLATE_ARGS


def _holder(args):
    holder = RestartingServer(args)
    yield holder
    holder.stop()


@pytest.fixture(scope="module")
def _takeover_holder():
    yield from _holder(TAKEOVER_ARGS)


@pytest.fixture(scope="module")
def _small_holder():
    yield from _holder(SMALL_LIMIT_ARGS)


@pytest.fixture(scope="module")
def _off_holder():
    yield from _holder(OFF_ARGS)


@pytest.fixture(scope="module")
def _tuned_holder():
    yield from _holder(TUNED_ARGS)


@pytest.fixture
def takeover_server(_takeover_holder):
    return _takeover_holder.get()


@pytest.fixture
def small_server(_small_holder):
    return _small_holder.get()


@pytest.fixture
def off_server(_off_holder):
    return _off_holder.get()


@pytest.fixture
def tuned_server(_tuned_holder):
    return _tuned_holder.get()


def connect(srv, offer=DEFAULT_OFFER, **kw):
    return DeflateClient.connect(srv.host, srv.port, offer, **kw)


def _data(name):
    data = autobahn_data(name)
    if data is None:
        pytest.skip(f"Autobahn test data {name} not found (../shared/autobahn-testdata)")
    return data


def payload_of(data, size, i, text):
    """Message i of `size` bytes cut from `data` (different places for different i); text stays
    valid UTF-8 at exactly `size` bytes (partial characters at the cut are replaced by spaces)."""
    n = len(data)
    if size >= n:
        piece = (data * (size // n + 1))[:size]
    else:
        start = (i * 7919 + size * 3) % (n - size)
        piece = data[start:start + size]
    if text:
        piece = piece.decode("utf-8", "ignore").encode()
        piece += b" " * (size - len(piece))
    return piece


def count_for(size, budget=256 * 1024, most=16):
    return max(2, min(most, budget // size))


def echo_many(c, data, opcode, sizes, budget=256 * 1024, frag_size=None, most=16):
    """Send compressed messages of every size (several each) one by one and check every echo.
    Returns the number of echoes the server sent compressed."""
    text = opcode == OP_TEXT
    compressed = 0
    for size in sizes:
        for i in range(count_for(size, budget, most)):
            p = payload_of(data, size, i, text)
            c.send_compressed(opcode, p, frag_size=frag_size)
            was = c.expect_echo(opcode, p)
            compressed += was
            server_compresses = c.params.get("server_max_window_bits", 15) >= 9
            if size < MIN_SIZE or not server_compresses:
                assert not was, f"{size}-byte echo was compressed (min size {MIN_SIZE}, {c.params})"
            elif text:
                assert was, f"{size}-byte text echo was not compressed ({c.params})"
    return compressed


# ---------------------------------------------------------------------------------------------
# Negotiation: offer -> the exact answer (None: no Sec-WebSocket-Extensions header at all).

NEGOTIATION_DEFAULT = [
    (None, None),
    ("permessage-deflate", BOTH_NCT),
    ("permessage-deflate; client_max_window_bits", BOTH_NCT + "; client_max_window_bits=15"),
    ("permessage-deflate; client_max_window_bits=10", BOTH_NCT + "; client_max_window_bits=10"),
    ('permessage-deflate; client_max_window_bits="12"', BOTH_NCT + "; client_max_window_bits=12"),
    ("permessage-deflate; client_max_window_bits=8", BOTH_NCT + "; client_max_window_bits=8"),
    ("permessage-deflate; server_max_window_bits=10", BOTH_NCT + "; server_max_window_bits=10"),
    ("permessage-deflate; server_max_window_bits=8", BOTH_NCT + "; server_max_window_bits=8"),
    ("permessage-deflate; server_no_context_takeover", BOTH_NCT),
    ("permessage-deflate; client_no_context_takeover", BOTH_NCT),
    ("permessage-deflate; client_max_window_bits=9; server_max_window_bits=12; "
     "client_no_context_takeover; server_no_context_takeover",
     BOTH_NCT + "; server_max_window_bits=12; client_max_window_bits=9"),
    # declined offers: bad values, missing values, unknown and duplicate parameters
    ("permessage-deflate; server_max_window_bits=7", None),
    ("permessage-deflate; server_max_window_bits=16", None),
    ("permessage-deflate; client_max_window_bits=0", None),
    ("permessage-deflate; client_max_window_bits=abc", None),
    ('permessage-deflate; client_max_window_bits="1 5"', None),
    ("permessage-deflate; client_max_window_bits=08", None),
    ("permessage-deflate; server_max_window_bits", None),
    ("permessage-deflate; server_no_context_takeover=1", None),
    ("permessage-deflate; foo", None),
    ("permessage-deflate; server_no_context_takeover; server_no_context_takeover", None),
    ("permessage-deflate; client_max_window_bits; client_max_window_bits=10", None),
    ('permessage-deflate; client_max_window_bits="10', None),  # unterminated quote
    ("PERMESSAGE-DEFLATE", None),
    ("x-webkit-deflate-frame", None),
    # several offers: the first acceptable one
    ("permessage-deflate; client_max_window_bits=16, permessage-deflate; client_max_window_bits=9",
     BOTH_NCT + "; client_max_window_bits=9"),
    ("permessage-deflate; foo, permessage-deflate; server_max_window_bits=11, permessage-deflate",
     BOTH_NCT + "; server_max_window_bits=11"),
    ('foo; bar="a, permessage-deflate; x", permessage-deflate', BOTH_NCT),
    # several header lines
    (["x-webkit-deflate-frame", "permessage-deflate; client_max_window_bits"],
     BOTH_NCT + "; client_max_window_bits=15"),
    (["permessage-deflate; bad", "permessage-deflate; server_max_window_bits=9"],
     BOTH_NCT + "; server_max_window_bits=9"),
]

NEGOTIATION_TAKEOVER = [
    ("permessage-deflate", "permessage-deflate"),
    ("permessage-deflate; client_max_window_bits", "permessage-deflate; client_max_window_bits=15"),
    ("permessage-deflate; server_no_context_takeover", "permessage-deflate; server_no_context_takeover"),
    ("permessage-deflate; client_no_context_takeover", "permessage-deflate; client_no_context_takeover"),
    ("permessage-deflate; server_max_window_bits=12", "permessage-deflate; server_max_window_bits=12"),
]


def _id(offer):
    return "none" if offer is None else (" | ".join(offer) if isinstance(offer, list) else offer)


def check_answer(srv, offer, want):
    c = connect(srv, offer)
    try:
        got = [v for k, v in c.response.raw_headers if k.lower() == "sec-websocket-extensions"]
        assert got == ([] if want is None else [want]), f"offer {offer!r}: answer {got!r}"
        # whatever was agreed, a message still echoes
        payload = b"negotiated " * 20
        if c.negotiated:
            c.send_compressed(OP_TEXT, payload)
        else:
            c.send_text(payload)
        c.expect_echo(OP_TEXT, payload)
        c.close_handshake(1000)
    finally:
        c.close_socket()


@pytest.mark.parametrize("offer,want", NEGOTIATION_DEFAULT, ids=[_id(o) for o, _ in NEGOTIATION_DEFAULT])
def test_negotiation_default_server(server, offer, want):
    check_answer(server, offer, want)


@pytest.mark.parametrize("offer,want", NEGOTIATION_TAKEOVER, ids=[_id(o) for o, _ in NEGOTIATION_TAKEOVER])
def test_negotiation_context_takeover_server(takeover_server, offer, want):
    check_answer(takeover_server, offer, want)


def test_negotiation_deflate_off(off_server):
    check_answer(off_server, DEFAULT_OFFER, None)


def test_negotiation_server_window_is_capped_by_the_flag(tuned_server):
    check_answer(tuned_server, "permessage-deflate; server_max_window_bits=12",
                 BOTH_NCT + "; server_max_window_bits=10")
    check_answer(tuned_server, "permessage-deflate; server_max_window_bits=9",
                 BOTH_NCT + "; server_max_window_bits=9")


# ---------------------------------------------------------------------------------------------
# Section 12: the Autobahn data files, default offer.

@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("case", list(AUTOBAHN_FILES))
def test_case_12_compressed_echo(server, case, size):
    name, opcode = AUTOBAHN_FILES[case]
    data = _data(name)
    c = connect(server)
    try:
        assert c.params == {"server_no_context_takeover": True, "client_no_context_takeover": True,
                            "client_max_window_bits": 15}, c.params
        echo_many(c, data, opcode, [size])
        c.close_handshake(1000)
    finally:
        c.close_socket()


# 12.x.11-18: the same, every message auto-fragmented into 256-byte frames (RSV1 on the first).
@pytest.mark.parametrize("size", [1024, 8192, 65536, 131072])
@pytest.mark.parametrize("case", list(AUTOBAHN_FILES))
def test_case_12_fragmented_compressed_echo(server, case, size):
    name, opcode = AUTOBAHN_FILES[case]
    data = _data(name)
    c = connect(server)
    try:
        echo_many(c, data, opcode, [size], budget=128 * 1024, frag_size=256, most=4)
        c.close_handshake(1000)
    finally:
        c.close_socket()


# ---------------------------------------------------------------------------------------------
# Section 13: every size under each offer combination, both server configurations.

OFFERS_13 = {
    "13.1-default": "permessage-deflate",
    "13.2-server_nct": "permessage-deflate; server_no_context_takeover",
    "13.3-server_bits_8": "permessage-deflate; server_max_window_bits=8",
    "13.4-server_bits_15": "permessage-deflate; server_max_window_bits=15",
    "13.5-server_nct_bits_8": "permessage-deflate; server_no_context_takeover; server_max_window_bits=8",
    "13.6-server_nct_bits_15": "permessage-deflate; server_no_context_takeover; server_max_window_bits=15",
    "13.7-three_offers": ["permessage-deflate; server_no_context_takeover; server_max_window_bits=8, "
                          "permessage-deflate; server_no_context_takeover, permessage-deflate"],
    "client_nct": "permessage-deflate; client_no_context_takeover",
    "client_bits_none": "permessage-deflate; client_max_window_bits",
    "client_bits_9": "permessage-deflate; client_max_window_bits=9",
    "client_bits_15": "permessage-deflate; client_max_window_bits=15",
    "client_bits_8": "permessage-deflate; client_max_window_bits=8",
    "all_nct_bits_9": "permessage-deflate; client_no_context_takeover; server_no_context_takeover; "
                      "client_max_window_bits=9; server_max_window_bits=9",
    "client_nct_bits_10_server_bits_12": "permessage-deflate; client_no_context_takeover; "
                                         "client_max_window_bits=10; server_max_window_bits=12",
}


@pytest.mark.parametrize("takeover", [False, True], ids=["shared", "takeover"])
@pytest.mark.parametrize("combo", list(OFFERS_13))
def test_case_13_offer_combinations(request, combo, takeover):
    srv = request.getfixturevalue("takeover_server" if takeover else "server")
    json_data, bmp = _data("data1.json"), _data("lena512.bmp")
    c = connect(srv, OFFERS_13[combo])
    try:
        assert c.negotiated, f"offer {OFFERS_13[combo]!r} was declined"
        if "8" in str(c.params.get("server_max_window_bits")):
            assert c.params["server_max_window_bits"] == 8
        # One connection through every size, text and binary interleaved, so that windows carry
        # over between messages of different sizes wherever context takeover was agreed.
        compressed = echo_many(c, json_data, OP_TEXT, SIZES, budget=96 * 1024, most=6)
        compressed += echo_many(c, bmp, OP_BINARY, SIZES[::3], budget=64 * 1024, most=3)
        if c.params.get("server_max_window_bits", 15) == 8:
            assert compressed == 0  # zlib cannot honour a 256-byte window: the server sends plain
        c.close_handshake(1000)
    finally:
        c.close_socket()


# ---------------------------------------------------------------------------------------------
# Mixed traffic on one connection.

def test_uncompressed_messages_do_not_touch_the_window(takeover_server):
    """RSV1 is per message (RFC 7692 6): plain messages pass the LZ77 window by."""
    c = connect(takeover_server, "permessage-deflate")
    try:
        a = b'{"room":"BTC-USD","bid":"42000.5","ask":"42001.0"}' * 20
        c.send_compressed(OP_TEXT, a)
        c.expect_echo(OP_TEXT, a)
        c.send_text(b"plain in between " * 10)
        c.expect_echo(OP_TEXT, b"plain in between " * 10)
        c.send_compressed(OP_TEXT, a)  # refers back into the first message
        c.expect_echo(OP_TEXT, a)
        c.close_handshake(1000)
    finally:
        c.close_socket()


def test_ping_between_fragments_of_a_compressed_message(server):
    c = connect(server)
    try:
        p = b"fragmented and compressed " * 200
        data = c.compress(p)
        half = len(data) // 2
        c.send_raw(encode_frame(OP_TEXT, data[:half], fin=False, rsv=RSV1))
        c.send_ping(b"in between")
        c.expect_pong(b"in between")
        c.send_raw(encode_frame(OP_CONT, data[half:]))
        c.expect_echo(OP_TEXT, p)
        c.close_handshake(1000)
    finally:
        c.close_socket()


def test_octet_wise_compressed_message(server):
    c = connect(server)
    try:
        p = b"one byte at a time " * 30
        c.send_compressed(OP_TEXT, p, frag_size=3, chunk=1)
        c.expect_echo(OP_TEXT, p)
        c.close_handshake(1000)
    finally:
        c.close_socket()


def test_empty_compressed_messages(server):
    c = connect(server)
    try:
        c.send_compressed(OP_TEXT, b"")               # the canonical empty message: one 0x00 byte
        c.expect_echo(OP_TEXT, b"")
        c.send_compressed_raw(OP_BINARY, b"")          # no payload at all
        c.expect_echo(OP_BINARY, b"")
        c.send_compressed_raw(OP_TEXT, b"\x00", frag_size=None)
        c.expect_echo(OP_TEXT, b"")
        c.send_raw(encode_frame(OP_TEXT, b"", fin=False, rsv=RSV1) + encode_frame(OP_CONT, b"\x00", fin=False)
                   + encode_frame(OP_CONT, b""))       # empty fragments (RFC 7692 7.2.3.6)
        c.expect_echo(OP_TEXT, b"")
        c.close_handshake(1000)
    finally:
        c.close_socket()


def test_final_block_message(server):
    """RFC 7692 7.2.3.4: a sender may end a message with a BFINAL block."""
    c = connect(server)
    try:
        for i in range(3):
            p = f"final block {i} ".encode() * 40
            c.send_compressed(OP_TEXT, p, final_block=True)
            c.expect_echo(OP_TEXT, p)
        c.close_handshake(1000)
    finally:
        c.close_socket()


def test_utf8_split_across_compressed_fragments(server):
    c = connect(server)
    try:
        p = ("κόσμε \U0001f600 " * 100).encode()
        c.send_compressed(OP_TEXT, p, frag_size=7)
        c.expect_echo(OP_TEXT, p)
        c.close_handshake(1000)
    finally:
        c.close_socket()


def test_min_size_and_level_and_window_flags(tuned_server):
    """--deflate-min-size 1000 --deflate-level 9 --deflate-window-bits 10."""
    c = connect(tuned_server, "permessage-deflate")
    try:
        c.server_window = 10  # inflate with a 1 KiB window: a server using more would be caught
        small = b"x" * 999
        c.send_compressed(OP_TEXT, small)
        assert not c.expect_echo(OP_TEXT, small)
        data = _data("pg2229.txt")
        for size in (1000, 4096, 65536):
            p = payload_of(data, size, 1, True)
            c.send_compressed(OP_TEXT, p)
            assert c.expect_echo(OP_TEXT, p), f"{size} bytes not compressed at min size 1000"
        c.close_handshake(1000)
    finally:
        c.close_socket()


# ---------------------------------------------------------------------------------------------
# Hostile input.

def test_rsv1_on_control_frame_is_1002(server):
    c = connect(server)
    try:
        c.send_frame(OP_PING, b"ping", rsv=RSV1)
        c.expect_close(1002)
    finally:
        c.close_socket()


def test_rsv1_on_continuation_is_1002(server):
    c = connect(server)
    try:
        data = c.compress(b"hello " * 50)
        c.send_compressed_raw(OP_TEXT, data, frag_size=len(data) // 2 + 1, rsv_on_cont=True)
        c.expect_close(1002)
    finally:
        c.close_socket()


def test_rsv1_on_continuation_of_uncompressed_message_is_1002(server):
    c = connect(server)
    try:
        c.send_frame(OP_TEXT, b"plain ", fin=False)
        c.send_frame(OP_CONT, b"then rsv1", rsv=RSV1)
        c.expect_close(1002)
    finally:
        c.close_socket()


@pytest.mark.parametrize("offer", [None, "permessage-deflate; foo", "x-webkit-deflate-frame"])
def test_rsv1_without_negotiation_is_1002(server, offer):
    c = connect(server, offer)
    try:
        assert not c.negotiated
        c.send_raw(encode_frame(OP_TEXT, zlib.compress(b"hello")[2:-4], rsv=RSV1))
        c.expect_close(1002)
    finally:
        c.close_socket()


def test_rsv1_with_deflate_off_is_1002(off_server):
    c = connect(off_server)
    try:
        assert not c.negotiated
        c.send_compressed_raw(OP_TEXT, b"\xf2\x48\xcd\xc9\xc9\x07\x00")  # "Hello" (RFC 7692 7.2.3.1)
        c.expect_close(1002)
    finally:
        c.close_socket()


@pytest.mark.parametrize("rsv", [RSV2, RSV3, RSV1 | RSV2])
def test_other_rsv_bits_with_deflate_are_1002(server, rsv):
    c = connect(server)
    try:
        c.send_frame(OP_TEXT, c.compress(b"hello"), rsv=rsv)
        c.expect_close(1002)
    finally:
        c.close_socket()


def test_rfc_7692_examples_decode(server):
    """RFC 7692 7.2.3.1-7.2.3.3: "Hello" as one compressed block, twice with a shared window
    (only without client_no_context_takeover), and as a stored block."""
    c = connect(takeover_or_plain := server, "permessage-deflate; client_max_window_bits")
    del takeover_or_plain
    try:
        c.send_compressed_raw(OP_TEXT, b"\xf2\x48\xcd\xc9\xc9\x07\x00")
        c.expect_echo(OP_TEXT, b"Hello")
        c.send_compressed_raw(OP_TEXT, b"\x00\x05\x00\xfa\xffHello\x00")
        c.expect_echo(OP_TEXT, b"Hello")
        c.close_handshake(1000)
    finally:
        c.close_socket()


def test_rfc_7692_shared_window_example(takeover_server):
    c = connect(takeover_server, "permessage-deflate")
    try:
        c.send_compressed_raw(OP_TEXT, b"\xf2\x48\xcd\xc9\xc9\x07\x00")
        c.expect_echo(OP_TEXT, b"Hello")
        c.send_compressed_raw(OP_TEXT, b"\xf2\x00\x11\x00\x00")  # a back-reference into "Hello"
        c.expect_echo(OP_TEXT, b"Hello")
        c.close_handshake(1000)
    finally:
        c.close_socket()


@pytest.mark.parametrize("data", [b"\x07", b"\xff\xff\xff\xff\xff\xff", b"\x00\x05\x00\x00\x00hello"],
                         ids=["reserved_btype", "garbage", "bad_nlen"])
def test_corrupt_compressed_data_is_1007(server, data):
    c = connect(server)
    try:
        c.send_compressed_raw(OP_BINARY, data)
        c.expect_close(1007)
    finally:
        c.close_socket()


def test_truncated_compressed_message_is_1007(server):
    c = connect(server)
    try:
        data = c.compress(payload_of(_data("data1.json"), 20000, 0, True))
        c.send_compressed_raw(OP_TEXT, data[:len(data) // 2])
        c.expect_close(1007)
    finally:
        c.close_socket()


def test_back_reference_past_a_reset_window_is_1007(server):
    """client_no_context_takeover was agreed (the default server always answers it), so the
    server's inflater starts empty: a reference into the previous message is corrupt."""
    c = connect(server)
    try:
        assert c.client_nct
        c.send_compressed_raw(OP_TEXT, b"\xf2\x48\xcd\xc9\xc9\x07\x00")
        c.expect_echo(OP_TEXT, b"Hello")
        c.send_compressed_raw(OP_TEXT, b"\xf2\x00\x11\x00\x00")
        c.expect_close(1007)
    finally:
        c.close_socket()


def _far_reference_message():
    """1100 random bytes, then 100 of them again from 550 bytes back, compressed by zlib at window 15:
    one back-reference at distance 550. Returns (payload, compressed message)."""
    rng = random.Random(3)
    head = bytes(rng.randrange(256) for _ in range(1100))
    payload = head + head[1100 - 550:1100 - 550 + 100]
    data = compress_message(zlib.compressobj(6, zlib.DEFLATED, -15), payload)
    assert zlib.decompressobj(-10).decompress(data + TAIL) == payload
    return payload, data


@pytest.mark.parametrize("frag_size", [None, 5], ids=["whole", "5_byte_fragments"])
def test_back_reference_beyond_the_agreed_client_window_is_1007(server, frag_size):
    """RFC 7692 7.1.2.2: a client that agreed client_max_window_bits=9 must not refer further back
    than 512 bytes. One that does (distance 550) is closed with 1007 whether the message arrives
    whole or in 5-byte fragments; the same message is echoed when the agreed window is 10."""
    payload, data = _far_reference_message()
    c = connect(server, "permessage-deflate; client_max_window_bits=9")
    try:
        assert c.params.get("client_max_window_bits") == 9
        c.send_compressed_raw(OP_BINARY, data, frag_size=frag_size)
        c.expect_close(1007)
    finally:
        c.close_socket()
    c = connect(server, "permessage-deflate; client_max_window_bits=10")
    try:
        assert c.params.get("client_max_window_bits") == 10
        c.send_compressed_raw(OP_BINARY, data, frag_size=frag_size)
        c.expect_echo(OP_BINARY, payload)
        c.close_handshake(1000)
    finally:
        c.close_socket()


def test_invalid_utf8_inside_compressed_text_is_1007(server):
    c = connect(server)
    try:
        c.send_compressed(OP_TEXT, b"valid prefix " * 10 + b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"
                          + b"\xed\xa0\x80" + b" and more")
        c.expect_close(1007)
    finally:
        c.close_socket()


def test_invalid_utf8_at_the_end_of_a_fragmented_compressed_text_is_1007(server):
    c = connect(server)
    try:
        c.send_compressed(OP_TEXT, b"abc " * 100 + b"\xf0\x9f\x98", frag_size=10)  # truncated emoji
        c.expect_close(1007)
    finally:
        c.close_socket()


def _bomb(n_bytes):
    co = zlib.compressobj(9, zlib.DEFLATED, -15)
    chunk = b"\x00" * (1 << 20)
    out = b"".join(co.compress(chunk) for _ in range(n_bytes >> 20))
    return out + co.flush(zlib.Z_SYNC_FLUSH)[:-4]


def test_compression_bomb_is_1009(small_server):
    """10 MiB of zeros in ~10 KB against --max-message-size 1M: closed with 1009 without the
    server inflating (or allocating) much more than the limit."""
    bomb = _bomb(10 << 20)
    assert len(bomb) < 16 * 1024
    rss_before = small_server.rss_kib()
    c = connect(small_server)
    try:
        c.send_compressed_raw(OP_BINARY, bomb)
        c.expect_close(1009)
    finally:
        c.close_socket()
    assert small_server.rss_kib() - rss_before < 16 * 1024, "bomb grew the server by > 16 MiB"
    assert small_server.alive()


def test_fragmented_compression_bomb_is_1009(small_server):
    c = connect(small_server)
    try:
        c.send_compressed_raw(OP_TEXT, _bomb(4 << 20), frag_size=64)
        c.expect_close(1009)
    finally:
        c.close_socket()


def test_compression_bomb_against_the_16m_limit_is_1009(server):
    c = connect(server)
    try:
        c.send_compressed_raw(OP_BINARY, _bomb(64 << 20))  # ~64 KB on the wire
        c.expect_close(1009, timeout=10)
    finally:
        c.close_socket()


def test_inflated_size_exactly_at_the_limit_is_echoed(small_server):
    c = connect(small_server)
    try:
        p = payload_of(_data("pg2229.txt"), 1 << 20, 0, True)
        c.send_compressed(OP_TEXT, p)
        c.expect_echo(OP_TEXT, p, timeout=10)
        c.send_compressed(OP_TEXT, p + b" ")  # one byte over
        c.expect_close(1009)
    finally:
        c.close_socket()


def test_unstripped_tail_is_1007(server):
    """RFC 7692 7.2.1: the sender MUST remove 00 00 ff ff; keeping it leaves the stream inside a
    stored block header once the receiver appends its own."""
    c = connect(server)
    try:
        co = zlib.compressobj(6, zlib.DEFLATED, -15)
        data = co.compress(b"hello hello hello") + co.flush(zlib.Z_SYNC_FLUSH)
        assert data.endswith(TAIL)
        c.send_compressed_raw(OP_TEXT, data)
        c.expect_close(1007)
    finally:
        c.close_socket()


def test_compress_message_helper_is_sane():
    """The test client's own framing (no server involved)."""
    co = zlib.compressobj(6, zlib.DEFLATED, -15)
    data = compress_message(co, b"Hello")
    assert zlib.decompressobj(-15).decompress(data + TAIL) == b"Hello"
    assert isinstance(WsClient, type)
