"""The frame path under every SIMD kernel (--simd scalar|sse2|avx2|avx512): unmasking at every
length and mask phase, UTF-8 validation of valid and invalid text at every offset across block
boundaries, and incremental validation across fragments. Kernels the CPU lacks are skipped."""
import pytest

from roomcast_testing import CONFORMANCE_ARGS, RestartingServer, require_binary
from wsclient import OP_BINARY, OP_CONT, OP_TEXT, WsClient, assert_echo_works, encode_frame

KERNELS = ["scalar", "sse2", "avx2", "avx512"]


@pytest.fixture(scope="module", params=KERNELS)
def kernel_server(request):
    require_binary()
    holder = RestartingServer(CONFORMANCE_ARGS + ["--simd", request.param])
    try:
        holder.get()
    except RuntimeError as e:
        pytest.skip(f"--simd {request.param} not available here: {e}")
    yield holder
    holder.stop()


@pytest.fixture
def kserver(kernel_server):
    yield kernel_server.get()
    srv = kernel_server.srv
    assert srv.alive(), f"roomcast exited with {srv.proc.returncode}"
    assert_echo_works(srv.host, srv.port)


@pytest.fixture
def kws(kserver):
    c = WsClient.connect(kserver.host, kserver.port)
    yield c
    c.close_socket()


def test_simd_unmask_every_length_and_key_phase(kws):
    for key in (b"\x01\x02\x03\x04", b"\xff\x00\xaa\x55"):
        for n in range(0, 301):
            payload = bytes((i * 37 + n) & 0xFF for i in range(n))
            kws.send_frame(OP_BINARY, payload, mask_key=key)
            kws.expect_message(OP_BINARY, payload)
    kws.close_handshake()


def test_simd_unmask_fragment_phases(kws):
    # Fragment lengths that are not multiples of 4 leave each later frame at another mask phase.
    payload = bytes(range(256)) * 40
    for frag in (1, 3, 5, 63, 65, 127, 129, 1023):
        kws.send_message(OP_BINARY, payload, frag_size=frag)
        kws.expect_message(OP_BINARY, payload)
    kws.close_handshake()


def test_simd_utf8_valid_every_length(kws):
    unit = "aß€😀".encode()  # 1, 2, 3 and 4-byte characters
    for n in range(0, 300):
        msg = (b"x" * n + unit)
        kws.send_text(msg)
        kws.expect_message(OP_TEXT, msg)
    kws.close_handshake()


def test_simd_utf8_valid_split_into_fragments(kws):
    msg = ("κόσμε 中文 😀 " * 40).encode()
    for frag in range(1, 70):
        kws.send_message(OP_TEXT, msg, frag_size=frag)
        kws.expect_message(OP_TEXT, msg)
    kws.close_handshake()


@pytest.mark.parametrize("bad", [b"\xed\xa0\x80", b"\xc0\xaf", b"\xf4\x90\x80\x80", b"\x80",
                                 b"\xe2\x82"], ids=lambda b: b.hex())
def test_simd_utf8_invalid_every_offset(kserver, bad):
    for pos in range(0, 140):
        msg = b"a" * pos + bad + b"b" * 80
        c = WsClient.connect(kserver.host, kserver.port)
        try:
            c.send_text(msg)
            c.expect_close(1007)
        finally:
            c.close_socket()


@pytest.mark.parametrize("bad", [b"\xed\xa0\x80", b"\xf0\x80\x80\x80"], ids=lambda b: b.hex())
def test_simd_utf8_invalid_fail_fast_after_long_prefix(kserver, bad):
    for pos in (0, 15, 16, 31, 32, 63, 64, 65, 127):
        c = WsClient.connect(kserver.host, kserver.port)
        try:
            c.send_raw(encode_frame(OP_TEXT, "é".encode() * 20, fin=False)
                       + encode_frame(OP_CONT, b"a" * pos + bad, fin=False))
            c.expect_close(1007, timeout=2)
        finally:
            c.close_socket()
