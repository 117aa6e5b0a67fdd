#!/usr/bin/env python3
"""Writes the hand-made seed corpora under test/fuzz/corpus/<target>/ (committed; rerun after editing).

Every seed is a small input that reaches one meaningful path: real browser and library upgrade requests,
each handshake rejection, frames of every kind and every framing rule, UTF-8 edge cases, unmask lengths
around the vector widths. The byte layouts of the non-HTTP targets are described at the top of each
<target>_fuzz.cpp.
"""
import os
import shutil
import struct

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def write(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def head(lines, first="GET /chat HTTP/1.1"):
    return ("\r\n".join([first] + lines) + "\r\n\r\n").encode()


KEY = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="
BASE = ["Host: server.example.com", "Upgrade: websocket", "Connection: Upgrade", KEY,
        "Sec-WebSocket-Version: 13"]

# ---- HTTP heads: shared by http_request and handshake ---------------------------------------------------
heads = {
    "rfc6455_example": head(["Host: server.example.com", "Upgrade: websocket", "Connection: Upgrade", KEY,
                             "Origin: http://example.com", "Sec-WebSocket-Protocol: chat, superchat",
                             "Sec-WebSocket-Version: 13"]),
    "chrome": head(["Host: localhost:8080", "Connection: Upgrade", "Pragma: no-cache",
                    "Cache-Control: no-cache",
                    "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
                    "Chrome/120.0.0.0 Safari/537.36",
                    "Upgrade: websocket", "Origin: http://localhost:8080", "Sec-WebSocket-Version: 13",
                    "Accept-Encoding: gzip, deflate, br", "Accept-Language: en-US,en;q=0.9",
                    "Sec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==",
                    "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits"],
                   "GET /ws/lobby?since=42 HTTP/1.1"),
    "firefox": head(["Host: localhost:8080",
                     "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
                     "Accept: */*", "Accept-Language: en-US,en;q=0.5", "Accept-Encoding: gzip, deflate, br",
                     "Sec-WebSocket-Version: 13", "Origin: http://localhost:8080",
                     "Sec-WebSocket-Protocol: roomcast.v1, chat",
                     "Sec-WebSocket-Extensions: permessage-deflate",
                     "Sec-WebSocket-Key: Iv8io/9s+lYFgZWcXczP8Q==", "Connection: keep-alive, Upgrade",
                     "Sec-Fetch-Dest: empty", "Sec-Fetch-Mode: websocket", "Sec-Fetch-Site: same-origin",
                     "Pragma: no-cache", "Cache-Control: no-cache", "Upgrade: websocket"],
                    "GET /ws/room HTTP/1.1"),
    "safari": head(["Upgrade: websocket", "Connection: Upgrade", "Host: example.com:443",
                    "Origin: https://example.com", "Sec-WebSocket-Key: AQIDBAUGBwgJCgsMDQ4PEA==",
                    "Sec-WebSocket-Version: 13",
                    "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits=15; "
                    "server_no_context_takeover"]),
    "python_websockets": head(["Host: 127.0.0.1:8080", "Upgrade: websocket", "Connection: Upgrade",
                               "Sec-WebSocket-Key: 8dGJtVq9ZC0RPLFlLg5lHA==", "Sec-WebSocket-Version: 13",
                               "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits",
                               "User-Agent: Python/3.11 websockets/10.4"], "GET /ws/ticker HTTP/1.1"),
    "node_ws": head(["Sec-WebSocket-Version: 13", "Sec-WebSocket-Key: +UDvCsLZrjgrV0TgtNDRwQ==",
                     "Connection: Upgrade", "Upgrade: websocket",
                     "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits",
                     "Host: 127.0.0.1:8080"]),
    "plain_get_health": head(["Host: 127.0.0.1:8080", "User-Agent: curl/7.88.1", "Accept: */*"],
                             "GET /health HTTP/1.1"),
    "plain_get_http10": head(["Host: a", "Connection: keep-alive"], "GET /metrics HTTP/1.0"),
    "leading_crlf": b"\r\n" + head(BASE),
    "pipelined": head(["Host: a"], "GET /health HTTP/1.1") + head(BASE),
    "incomplete_head": head(BASE)[:-2],
    "lowercase_tokens": head(["host: a", "upgrade: WebSocket", "connection: keep-alive,  upgrade",
                              "sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==", "sec-websocket-version: 13"]),
    "split_connection_headers": head(["Host: a", "Upgrade: websocket", "Connection: keep-alive",
                                      "Connection: Upgrade", KEY, "Sec-WebSocket-Version: 13"]),
    "tabs_and_spaces": head(["Host:\t a \t", "Upgrade:   websocket  ", "Connection:\tUpgrade", KEY,
                             "Sec-WebSocket-Version: 13", "Sec-WebSocket-Protocol: ,, chat ,\t, v2 ,"]),
    "method_post": head(BASE, "POST /chat HTTP/1.1"),
    "http10_upgrade": head(BASE, "GET /chat HTTP/1.0"),
    "http2_version": head(BASE, "GET /chat HTTP/2.0"),
    "absolute_target": head(BASE, "GET http://a/chat HTTP/1.1"),
    "missing_host": head(BASE[1:]),
    "duplicate_host": head(BASE + ["Host: b"]),
    "missing_upgrade": head([h for h in BASE if not h.startswith("Upgrade")]),
    "missing_connection_token": head(["Host: a", "Upgrade: websocket", "Connection: keep-alive", KEY,
                                      "Sec-WebSocket-Version: 13"]),
    "duplicate_key": head(BASE + ["Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA=="]),
    "noncanonical_key": head(BASE[:3] + ["Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZR==",
                                         "Sec-WebSocket-Version: 13"]),
    "short_key": head(BASE[:3] + ["Sec-WebSocket-Key: dGhlIHNhbXBsZQ==", "Sec-WebSocket-Version: 13"]),
    "version_8": head(BASE[:4] + ["Sec-WebSocket-Version: 8"]),
    "version_list": head(BASE[:4] + ["Sec-WebSocket-Version: 13, 8"]),
    "missing_version": head(BASE[:4]),
    "content_length": head(BASE + ["Content-Length: 5"]) + b"hello",
    "transfer_encoding": head(BASE + ["Transfer-Encoding: chunked"]),
    "obs_fold": head(BASE[:2] + [" continued"] + BASE[2:]),
    "bare_lf": b"GET / HTTP/1.1\nHost: a\n\n",
    "ctl_in_value": head(["Host: a\x01b"] + BASE[1:]),
    "space_before_colon": head(["Host : a"] + BASE[1:]),
    "no_colon": head(["Host a"] + BASE[1:]),
    "header_64": head(["X-H%d: v" % i for i in range(64)]),
    "header_65": head(["X-H%d: v" % i for i in range(65)]),
    "long_target": head(BASE, "GET /" + "a" * 1500 + "?q=" + "b" * 500 + " HTTP/1.1"),
    "obs_text_value": head(["Host: a", "X-Name: caf\xc3\xa9".encode("latin-1").decode("latin-1")] + BASE[1:]),
    "extensions_hostile": head(BASE + ["Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=8; "
                                       "client_max_window_bits=08, permessage-deflate; foo=bar, "
                                       "permessage-deflate; server_no_context_takeover; "
                                       "server_no_context_takeover, x-webkit-deflate-frame, "
                                       "permessage-deflate; client_max_window_bits=\"10\""]),
}
for name, data in heads.items():
    if isinstance(data, str):
        data = data.encode("latin-1")
    write("http_request", name, data)
    write("handshake", name, data)

# ---- frames -----------------------------------------------------------------------------------------------
MASK = bytes([0x37, 0xFA, 0x21, 0x3D])  # the RFC 6455 §5.7 example key


def frame(op, payload=b"", fin=True, rsv=0, masked=True, key=MASK, length_form=None):
    b0 = (0x80 if fin else 0) | (rsv << 4) | op
    n = len(payload) if length_form is None else length_form[1]
    m = 0x80 if masked else 0
    form = "auto" if length_form is None else length_form[0]
    if form == "7" or (form == "auto" and n < 126):
        hdr = bytes([b0, m | n])
    elif form == "16" or (form == "auto" and n <= 0xFFFF):
        hdr = bytes([b0, m | 126]) + struct.pack(">H", n)
    else:
        hdr = bytes([b0, m | 127]) + struct.pack(">Q", n)
    if not masked:
        return hdr + payload
    return hdr + key + bytes(c ^ key[i % 4] for i, c in enumerate(payload))


def close(code=None, reason=b""):
    return frame(0x8, b"" if code is None else struct.pack(">H", code) + reason)


# Config byte: bits 0-2 limit (0: 16 MiB, 1: 0, 2: 1, 3: 64, 4: 125, 5: 126, 6: 1000, 7: 65536),
# bit 3 allow RSV1, bits 4-5 kernel for the chunked run, bit 6 stop at event byte 1, bit 7 pool keeps.
def fp(name, stream, config=0x00, stop_at=0, chunks=b""):
    write("frame_parser", name, bytes([config, stop_at, len(chunks)]) + chunks + stream)


text_hello = frame(0x1, b"Hello")
fp("rfc_masked_hello", text_hello)
fp("rfc_masked_hello_bytewise", text_hello, 0x30, chunks=b"\x01")
fp("text_binary_ping_pong_close", text_hello + frame(0x2, bytes(range(40))) + frame(0x9, b"ping") +
   frame(0xA, b"pong") + close(1000, b"bye") + text_hello, 0x10, chunks=b"\x03\x07")
fp("fragmented_text_with_ping", frame(0x1, b"Hel", fin=False) + frame(0x9, b"!") +
   frame(0x0, b"lo", fin=False) + frame(0x0, b" world"), 0x20, chunks=b"\x02\x00\x05")
fp("utf8_split_across_fragments", frame(0x1, "€uro ".encode()[:2], fin=False) +
   frame(0x0, "€uro 😀".encode()[2:]), 0x30, chunks=b"\x04")
fp("binary_16bit_length", frame(0x2, bytes(i & 0xFF for i in range(300))), 0x30, chunks=b"\x20\x61")
fp("binary_64bit_length_partial", frame(0x2, bytes(200), length_form=("64", 70000))[:220], 0x00)
fp("text_64bit_length_too_big", frame(0x1, b"", length_form=("64", 1 << 40)), 0x00)
fp("many_tiny_fragments", frame(0x2, b"a", fin=False) + b"".join(frame(0x0, b"b", fin=False) for _ in range(40)) +
   frame(0x0, b""), 0x13, chunks=b"\x05")
fp("empty_frames", frame(0x1, b"") + frame(0x2, b"") + frame(0x9) + frame(0xA) + close())
fp("close_1005_then_data", close() + text_hello)
fp("close_one_byte_payload", frame(0x8, b"\x03"))
fp("close_bad_code_999", close(999))
fp("close_reserved_1004", close(1004))
fp("close_4999_reason", close(4999, "ça va".encode()), 0x30, chunks=b"\x01\x02")
fp("close_invalid_utf8_reason", close(1000, b"\xff\xfe"))
fp("invalid_utf8_text", frame(0x1, b"ab\xc0\xafcd"))
fp("invalid_utf8_first_fragment", frame(0x1, b"\xed\xa0\x80", fin=False) + frame(0x0, b"x"))
fp("truncated_utf8_at_fin", frame(0x1, b"\xe2\x82"))
fp("unmasked_frame", frame(0x1, b"Hello", masked=False))
fp("rsv1_without_extension", frame(0x1, b"x", rsv=4))
fp("rsv1_deflate_allowed", frame(0x1, b"\xf2\x48\xcd\xc9\xc9\x07\x00", rsv=4) + text_hello, 0x08)
fp("rsv1_on_continuation", frame(0x1, b"a", fin=False, rsv=4) + frame(0x0, b"b", rsv=4), 0x08)
fp("rsv1_on_ping", frame(0x9, b"a", rsv=4), 0x08)
fp("rsv2_rsv3", frame(0x2, b"a", rsv=3))
fp("reserved_opcode_3", frame(0x3, b"a"))
fp("reserved_opcode_b", frame(0xB, b"a"))
fp("ping_fragmented", frame(0x9, b"a", fin=False))
fp("ping_126_bytes", frame(0x9, bytes(126)))
fp("ping_125_bytes_split", frame(0x9, bytes(range(125))), 0x20, chunks=b"\x03\x3c")
fp("length_16_not_minimal", frame(0x2, bytes(100), length_form=("16", 100)))
fp("length_64_not_minimal", frame(0x2, bytes(1000), length_form=("64", 1000)))
fp("length_64_top_bit", frame(0x2, b"", length_form=("64", 1 << 63)))
fp("continuation_without_start", frame(0x0, b"a"))
fp("text_inside_fragmented", frame(0x1, b"a", fin=False) + frame(0x1, b"b"))
fp("message_too_big_limit_64", frame(0x2, bytes(65)), 0x03)
fp("fragments_sum_too_big_limit_64", frame(0x2, bytes(40), fin=False) + frame(0x0, bytes(40)), 0x03)
fp("limit_zero_empty_message", frame(0x1, b"") + frame(0x1, b"a"), 0x01)
fp("handler_stops_second_event", text_hello + frame(0x9, b"p") + text_hello, 0x40, stop_at=1, chunks=b"\x04")
fp("pool_reuse_split_messages", b"".join(frame(0x2, bytes([i]) * 30) for i in range(6)), 0x80, chunks=b"\x11")
fp("split_header_every_size", frame(0x2, bytes(130)) + frame(0x1, "é".encode() * 20), 0x10,
   chunks=b"\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d")

# ---- UTF-8 ------------------------------------------------------------------------------------------------
# Layout: start state (%9), offset (&63), ASCII pad (if start is accept), k, k chunk sizes, text.
def u8(name, text, state=0, offset=0, pad=0, chunks=b""):
    write("utf8_differential", name, bytes([state, offset, pad, len(chunks)]) + chunks + text)


mixed = ("roomcast ✓ — κόσμε 😀 ж " * 6).encode()
u8("ascii", b"Hello, world! " * 5)
u8("mixed_all_widths", mixed, offset=3, chunks=b"\x07\x40")
u8("mixed_odd_offset_pad", mixed, offset=17, pad=61)
u8("boundary_4byte_at_63", "😀".encode(), pad=62)
u8("boundary_3byte_at_31", "€".encode() + b"abc", pad=30, chunks=b"\x20")
u8("max_code_point", b"\xf4\x8f\xbf\xbf" * 20, pad=1)
u8("above_max_f4_90", b"abc\xf4\x90\x80\x80", pad=60)
u8("f5_lead", b"\xf5\x80\x80\x80")
u8("overlong_c0", b"\xc0\xaf", pad=63)
u8("overlong_e0", b"\xe0\x80\xaf")
u8("overlong_f0", b"\xf0\x80\x80\xaf")
u8("surrogate_ed_a0", b"\xed\xa0\x80", pad=64)
u8("last_before_surrogate", b"\xed\x9f\xbf" * 30)
u8("lone_continuation", b"\x80", pad=32)
u8("truncated_at_end", mixed[:-1], offset=5)
u8("two_byte_truncated_after_block", b"a" * 63 + b"\xc3", chunks=b"\x40")
u8("continue_from_need1", b"\xa9 rest", state=2)
u8("continue_from_after_e0", b"\xa0\x80", state=5)
u8("continue_from_after_ed_bad", b"\xa0\x80", state=6)
u8("continue_from_after_f0", b"\x90\x80\x80ok", state=7)
u8("continue_from_after_f4_bad", b"\x90\x80\x80", state=8)
u8("long_ascii_then_error", b"x" * 200 + b"\xff" + b"y" * 60, chunks=b"\x21\x00\x45")

# ---- unmask -----------------------------------------------------------------------------------------------
# Layout: phase | offset << 2, key (4), repeat (%16), k, k chunk sizes, payload.
def um(name, payload, phase=0, offset=0, key=MASK, repeat=0, chunks=b""):
    write("unmask_differential", name, bytes([phase | (offset << 2)]) + key + bytes([repeat, len(chunks)]) +
          chunks + payload)


for n in (0, 1, 3, 7, 15, 16, 31, 32, 33, 63, 64, 65, 127, 255, 256, 257, 320):
    um("len_%d" % n, bytes((i * 7) & 0xFF for i in range(n)), phase=n % 4, offset=(n * 5) % 64)
um("long_repeated_all_phases_chunks", bytes(range(256)) * 2, phase=3, offset=1, repeat=15, chunks=b"\x01\x03\x41\xf1")
um("key_zero", bytes(100), key=b"\0\0\0\0", chunks=b"\x05")
um("key_ff_offset_63", bytes(range(200)), key=b"\xff\xff\xff\xff", offset=63, phase=1)

# ---- Sec-WebSocket-Extensions offers ----------------------------------------------------------------------
# Layout: config (bit 0 enabled, bits 1-3 window 9 + v % 7, bit 4 context takeover), then header values,
# one per line.
def ext(name, lines, config=0x0D):
    write("extensions", name, bytes([config]) + "\n".join(lines).encode())


ext("chrome", ["permessage-deflate; client_max_window_bits"])
ext("firefox", ["permessage-deflate"])
ext("safari", ["permessage-deflate; client_max_window_bits=15; server_no_context_takeover"], 0x1D)
ext("all_params_quoted", ['permessage-deflate; server_no_context_takeover; client_no_context_takeover; '
                          'server_max_window_bits="10"; client_max_window_bits=12'])
ext("server_bits_8", ["permessage-deflate; server_max_window_bits=8"], 0x0F)
ext("declined_then_accepted", ["permessage-deflate; client_max_window_bits=08, permessage-deflate; foo",
                               "x-webkit-deflate-frame, permessage-deflate; server_max_window_bits=9"])
ext("duplicate_param", ["permessage-deflate; server_no_context_takeover; server_no_context_takeover"])
ext("bad_quotes", ['permessage-deflate; server_max_window_bits="1\\0"', 'permessage-deflate; a="'])
ext("disabled", ["permessage-deflate"], 0x00)
ext("many_offers", [", ".join(["permessage-deflate; bogus"] * 20) + ", permessage-deflate"])

# ---- control protocol -------------------------------------------------------------------------------------
# Layout: byte 0 bit 0 binary payload, bytes 1-8 seq (big-endian), then the message text.
def ctl(name, text, binary=False, seq=42):
    write("control", name, bytes([1 if binary else 0]) + struct.pack(">Q", seq) +
          (text if isinstance(text, bytes) else text.encode()))


ctl("sub", '{"op":"sub","room":"lobby","id":1}')
ctl("sub_since_last", '{"op":"sub","room":"prices:BTC-USD","since":18446744073709551615,"last":true,"id":"a\\u00e9"}')
ctl("unsub", '{"op":"unsub","room":"chat.room_1@eu"}')
ctl("pub_object", '{"op":"pub","room":"lobby","data":{"price":1.5e3,"tags":["a",null,true,false],"n":-0.25}}')
ctl("pub_string", '{"op":"pub","room":"lobby","data":"hi \\ud83d\\ude00 \\n"}', seq=2 ** 64 - 1)
ctl("pub_missing_data", '{"op":"pub","room":"lobby"}')
ctl("unknown_op", '{"op":"dance","room":"lobby"}')
ctl("bad_room", '{"op":"sub","room":"lob by"}')
ctl("duplicate_key", '{"op":"sub","op":"sub","room":"a"}')
ctl("not_object", '[1,2,3]')
ctl("lone_surrogate", '{"op":"sub","room":"a","id":"\\ud800"}')
ctl("deep_nesting", "[" * 70 + "]" * 70)
ctl("depth_64", "[" * 64 + "]" * 64)
ctl("numbers", '[0,-0,1.0e+10,-1E-2,01,1.,.5]')
ctl("control_char_in_string", b'{"op":"sub","room":"a\x01"}')
ctl("invalid_utf8_string", b'{"op":"sub","room":"a","id":"\xc3\x28"}')
ctl("trailing_garbage", '{"op":"sub","room":"a"} x')
ctl("binary_payload", b"\x00\xff\x10binary", binary=True)
ctl("plain_text_payload", "not json, but \"quoted\" and \\ slashed\t")

# ---- room table -------------------------------------------------------------------------------------------
# Layout (room_table_fuzz.cpp): reactors - 2, config (bits 0-2 history index, 3-4 ring index, 5 hold, 6 abrupt,
# 7 echo), echo budget, then operations. Owners of the six rooms: 2 reactors 1 0 0 1 0 1, 3 reactors
# 0 1 2 1 2 0, 4 reactors 1 0 2 3 0 1. Connection c lives on reactor c % reactors.
HISTORY = {0: 0, 1: 1, 2: 2, 3: 3, 4: 4, 8: 5, 16: 6, 64: 7}
RING = {2: 0, 4: 1, 16: 2, 256: 3}


def rt_config(history=16, ring=256, hold=False, abrupt=False, echo=False):
    return HISTORY[history] | RING[ring] << 3 | hold << 5 | abrupt << 6 | echo << 7


def sub(conn, room, envelope=False, last=False, since=None):
    flags = envelope | last << 1 | (since is not None) << 2
    return bytes([0, conn, room, flags, 0 if since is None else since])


def unsub(conn, pick=0):
    return bytes([1, conn, pick])


def pub(conn, room, payload=b"m", ack=False, binary=False):
    payload = payload if isinstance(payload, bytes) else payload.encode()
    return bytes([2, conn, room, ack | binary << 1, len(payload)]) + payload


def disconnect(conn):
    return bytes([3, conn])


def pump(reactor, budget=0):
    return bytes([4, reactor, budget])


def flush(reactor):
    return bytes([5, reactor])


def write_out(reactor, n=0):
    return bytes([6, reactor, n])


SETTLE = bytes([7])


def sleep(reactor):
    return bytes([8, reactor])


def rt(name, ops, reactors=2, echo_budget=0, memory=0, **config):
    # memory: index into budget_choices (--room-memory of all reactors; 0 = unlimited)
    write("room_table", name, bytes([reactors - 2 | memory << 4, rt_config(**config), echo_budget]) + b"".join(ops))


rt("live_raw_and_envelope", [sub(0, 0), sub(1, 0, envelope=True), SETTLE, pub(1, 0, "hello", ack=True),
                             pub(0, 0, '{"p":1}', ack=True), pub(0, 0, b"\x00\xff", binary=True), SETTLE])
rt("resume_in_reach_gap_last_ahead", [pub(2, 1, "m%d" % i) for i in range(10)] + [SETTLE] +
   [sub(0, 1, since=7), sub(1, 1, since=2), sub(2, 1, since=0x81), sub(3, 1, last=True), sub(4, 1, since=0xFF),
    sub(5, 1, envelope=True, since=0), SETTLE, pub(2, 1, "x", ack=True), pub(1, 1, "y"), SETTLE],
   reactors=3, history=4)
rt("cancel_while_pending", [pub(0, 1, "a"), SETTLE, sub(1, 1, since=0), unsub(1, 0), sub(1, 1, envelope=True),
                            pump(1), pump(0), unsub(1, 1), pump(1), sub(3, 2), disconnect(3), SETTLE])
rt("tiny_rings_flood", [sub(1, 1), sub(3, 1, envelope=True), sub(5, 2), SETTLE] +
   [pub(c, 1 + c % 2, "f%d" % c, ack=c % 3 == 0) for c in range(24)] +
   [pump(0, 1), pump(1, 3), flush(1), pump(0, 2), flush(0), pump(1, 1), SETTLE], ring=2, history=64)
rt("stale_deliveries_after_disconnect", [sub(1, 1), SETTLE, pub(0, 1, "1"), pub(0, 1, "2"), pub(0, 1, "3"),
                                         pump(0), flush(0), disconnect(1), sub(1, 1, since=0), flush(1), SETTLE,
                                         pub(1, 1, "4"), SETTLE])
rt("slow_writers_and_callback_publishes",
   [sub(0, 0), sub(4, 0), sub(1, 2, envelope=True), sub(2, 3, last=True), SETTLE, pub(3, 0, "a", ack=True),
    pub(5, 2, "b"), pump(1), pump(0), write_out(0, 1), pump(2), pump(3), SETTLE, write_out(1, 2), pub(6, 3, "c"),
    SETTLE, write_out(0)],
   reactors=4, echo_budget=12, hold=True, echo=True, history=2)
rt("abrupt_shutdown_in_flight", [sub(1, 1), sub(0, 0, envelope=True), SETTLE, pub(0, 1, "x"),
                                 pub(1, 0, "y", ack=True), pump(0), sub(1, 1, since=0), pub(1, 1, "z")],
   abrupt=True, hold=True, ring=2)
rt("history_zero_last_value", [pub(0, 0, "v1"), pub(0, 0, "v2"), SETTLE, sub(1, 0, last=True),
                               sub(0, 0, envelope=True, last=True), sub(2, 0, since=0), sub(3, 0, since=1),
                               SETTLE, pub(1, 0, "v3"), SETTLE], history=0)
# --room-memory seeds: history evicted under a tiny budget (resume then reports a gap), rooms deleted when
# empty and unsubscribed (seqs restart), creations refused while subscribed rooms fill the budget.
rt("memory_evicts_history_then_gap", [sub(1, 1), SETTLE] + [pub(0, 1, "h%02d" % i, ack=True) for i in range(20)] +
   [SETTLE, sub(3, 1, since=0), sub(2, 1, envelope=True, since=3), SETTLE, pub(2, 1, "tail"), SETTLE],
   history=64, memory=4)
rt("memory_rooms_deleted_and_restarted", [pub(0, r, "a%d" % r) for r in range(6)] + [SETTLE] +
   [pub(1, r, "b%d" % r, ack=True) for r in range(6)] + [SETTLE, sub(0, 2), sub(1, 3, last=True), SETTLE, unsub(0, 0),
                                                         unsub(1, 0), SETTLE, pub(2, 2, "again", ack=True), SETTLE],
   reactors=3, history=4, memory=2)
rt("memory_refusals_with_subscribed_rooms", [sub(c, c % 6, envelope=c % 2 == 1) for c in range(6)] + [SETTLE] +
   [pub(c, c % 6, "x" * 40, ack=True) for c in range(12)] + [SETTLE, sub(7, 5, since=0), pub(6, 4, "y", ack=True),
                                                               disconnect(0), disconnect(1), SETTLE, pub(2, 0, "z"),
                                                               SETTLE],
   history=16, memory=1)
rt("stale_handles_ignored", [sub(0, 0), SETTLE, unsub(0, 0), sub(0, 0), unsub(0, 0), unsub(0, 0), unsub(0, 2),
                             SETTLE, pub(1, 0, "only the second"), SETTLE], history=1)
rt("four_reactors_everything",
   [sub(c, c % 6, envelope=c % 2 == 1, since=c if c % 3 == 0 else None) for c in range(8)] +
   [pub(c, (c * 5) % 6, "p%d" % c, ack=c % 2 == 0, binary=c % 4 == 3) for c in range(8)] +
   [pump(r, 2) for r in range(4)] + [flush(r) for r in range(4)] + [disconnect(2), unsub(5, 0)] +
   [pump(r) for r in (3, 1, 0, 2)] + [sub(2, 4, since=0x80), SETTLE], reactors=4, history=3, ring=4)
rt("sleeping_reactors_are_woken", [sub(1, 1), sub(2, 1, envelope=True), sub(4, 0), SETTLE, sleep(1), sleep(2),
                                    sleep(0)] + [pub(3, 1, "w%d" % i, ack=i == 5) for i in range(9)] +
   [flush(0), sleep(0), pump(1, 1), pump(2), sleep(1), pump(0), pump(1), pub(1, 0, "back", ack=True), sleep(1),
    sleep(2), SETTLE], reactors=3, ring=2, history=8)
