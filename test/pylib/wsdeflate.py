"""permessage-deflate (RFC 7692) on top of wsclient.WsClient, for conformance tests.

Compression uses Python's zlib with raw deflate (wbits=-N): an independent implementation of the
wire format, not the server's code.

    c = DeflateClient.connect(host, port, "permessage-deflate; client_max_window_bits")
    c.params            # the server's answer: {"server_no_context_takeover": True, ...} or None
    c.send_compressed(OP_TEXT, b"hello" * 100, frag_size=256)
    op, payload, compressed = c.recv_message()
"""
import os
import zlib

from wsclient import (OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT, OPCODE_NAMES, RSV1,
                      WsClient, WsError, encode_frame)

TAIL = b"\x00\x00\xff\xff"
AUTOBAHN_DIR = os.environ.get(
    "ROOMCAST_AUTOBAHN_DATA",
    os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))))), "shared", "autobahn-testdata"))
AUTOBAHN_FILES = {  # Autobahn|Testsuite 12.1 .. 12.5
    "12.1": ("data1.json", OP_TEXT),
    "12.2": ("lena512.bmp", OP_BINARY),
    "12.3": ("pg2229.txt", OP_TEXT),
    "12.4": ("data1.html", OP_TEXT),
    "12.5": ("10.1.1.105.5439.pdf", OP_BINARY),
}


def autobahn_data(name):
    """Bytes of an Autobahn test data file, or None if the directory is missing."""
    path = os.path.join(AUTOBAHN_DIR, name)
    if not os.path.exists(path):
        return None
    with open(path, "rb") as f:
        return f.read()


def parse_extensions(value):
    """Parse a server's Sec-WebSocket-Extensions answer into {name: value-or-True} for
    permessage-deflate. Raises on anything a server must not send."""
    if value is None:
        return None
    offers = [o.strip() for o in value.split(",")]
    assert len(offers) == 1, f"server answered several extensions: {value!r}"
    parts = [p.strip() for p in offers[0].split(";")]
    assert parts[0] == "permessage-deflate", value
    params = {}
    for p in parts[1:]:
        k, eq, v = p.partition("=")
        k = k.strip()
        assert k not in params, f"duplicate parameter {k} in {value!r}"
        params[k] = int(v.strip().strip('"')) if eq else True
    for k in ("server_max_window_bits", "client_max_window_bits"):
        assert k not in params or params[k] is not True, f"{k} without a value in {value!r}"
    for k in ("server_no_context_takeover", "client_no_context_takeover"):
        assert params.get(k, True) is True, f"{k} with a value in {value!r}"
    return params


def compress_message(compressor, payload):
    """One message: compress + sync flush, 00 00 ff ff removed (RFC 7692 7.2.1)."""
    data = compressor.compress(payload) + compressor.flush(zlib.Z_SYNC_FLUSH)
    assert data.endswith(TAIL), data[-8:]
    return data[:-4]


class DeflateClient(WsClient):
    """A WsClient that negotiated (or at least offered) permessage-deflate."""

    level = 6

    @classmethod
    def connect(cls, host, port, offer="permessage-deflate; client_max_window_bits", path="/echo",
                extra_headers=None, timeout=5.0, level=6):
        headers = list(extra_headers or [])
        if offer is not None:
            offers = offer if isinstance(offer, (list, tuple)) else [offer]
            headers += [("Sec-WebSocket-Extensions", o) for o in offers]
        c = super().connect(host, port, path, headers=headers, timeout=timeout)
        c.check_server_frames = False  # RSV1 is legal now; _check_frame does the checking
        c.level = level
        c.params = parse_extensions(c.response.header("sec-websocket-extensions"))
        c._setup()
        return c

    @property
    def negotiated(self):
        return self.params is not None

    def _setup(self):
        p = self.params or {}
        # What the client may use (7.1.2.2); a zlib client cannot compress with 8 and uses 9.
        self.client_window = max(9, p.get("client_max_window_bits", 15))
        self.server_window = p.get("server_max_window_bits", 15)
        self.client_nct = "client_no_context_takeover" in p
        self.server_nct = "server_no_context_takeover" in p
        self._compressor = None
        self._decompressor = None
        self.server_messages_compressed = 0

    # -- sending -------------------------------------------------------------------------------
    def compress(self, payload, final_block=False):
        """The compressed payload of one message (context takeover unless agreed otherwise).
        final_block: end with a BFINAL block instead of a sync flush (7.2.3.4)."""
        if self._compressor is None or self.client_nct or final_block:
            self._compressor = zlib.compressobj(self.level, zlib.DEFLATED, -self.client_window)
        if final_block:
            data = self._compressor.compress(payload) + self._compressor.flush(zlib.Z_FINISH)
            self._compressor = None
            return data
        return compress_message(self._compressor, payload)

    def send_compressed(self, opcode, payload, frag_size=None, chunk=None, final_block=False):
        """Send one compressed message (RSV1 on its first frame only), split into frames of
        frag_size compressed bytes."""
        if isinstance(payload, str):
            payload = payload.encode()
        return self.send_compressed_raw(opcode, self.compress(payload, final_block), frag_size, chunk)

    def send_compressed_raw(self, opcode, data, frag_size=None, chunk=None, rsv_on_cont=False):
        """Send already-compressed bytes as one RSV1 message."""
        if not frag_size or len(data) <= frag_size:
            return self.send_raw(encode_frame(opcode, data, rsv=RSV1), chunk)
        frames = []
        for i in range(0, len(data), frag_size):
            first = i == 0
            frames.append(encode_frame(opcode if first else OP_CONT, data[i:i + frag_size],
                                       fin=i + frag_size >= len(data),
                                       rsv=RSV1 if (first or rsv_on_cont) else 0))
        return self.send_raw(b"".join(frames), chunk)

    # -- receiving -----------------------------------------------------------------------------
    def _check_frame(self, f, first_of_message):
        assert not f.masked, f"server sent a masked frame: {f}"
        assert f.rsv & ~RSV1 == 0, f"server sent RSV2/RSV3: {f}"
        assert f.opcode in OPCODE_NAMES, f"server sent a reserved opcode: {f}"
        if f.opcode >= 8:
            assert f.fin and len(f.payload) <= 125, f"server sent a bad control frame: {f}"
            assert f.rsv == 0, f"server sent RSV1 on a control frame: {f}"
        elif not first_of_message:
            assert f.rsv == 0, f"server sent RSV1 on a continuation frame: {f}"
        if f.rsv & RSV1:
            assert self.negotiated, f"server sent RSV1 without negotiating deflate: {f}"

    def inflate(self, data):
        """Inflate one server message (7.2.2). With server_no_context_takeover agreed, every
        message is inflated by a fresh decompressor, which proves the server reset its window."""
        if self._decompressor is None or self.server_nct:
            self._decompressor = zlib.decompressobj(-max(9, self.server_window))
        try:
            return self._decompressor.decompress(data + TAIL)
        except zlib.error as e:
            raise WsError(f"server sent corrupt deflate data ({e}): {len(data)} bytes") from None

    def recv_message(self, timeout=5.0):
        """The next data message: (opcode, payload, compressed). Pings are answered, a close frame
        raises WsError."""
        frames = []
        while True:
            f = self.recv_frame(timeout)
            self._check_frame(f, not frames)
            if f.opcode == OP_PING:
                self.send_pong(f.payload)
                continue
            if f.opcode == OP_PONG:
                continue
            if f.opcode == OP_CLOSE:
                raise WsError(f"expected a data message, got {f}")
            if frames:
                assert f.opcode == OP_CONT, f"expected a continuation, got {f}"
            else:
                assert f.opcode in (OP_TEXT, OP_BINARY), f"expected a data frame, got {f}"
            frames.append(f)
            if f.fin:
                break
        data = b"".join(f.payload for f in frames)
        compressed = bool(frames[0].rsv & RSV1)
        if compressed:
            data = self.inflate(data)
            self.server_messages_compressed += 1
        if frames[0].opcode == OP_TEXT:
            data.decode("utf-8")  # raises if the server sent invalid UTF-8
        return frames[0].opcode, data, compressed

    def expect_echo(self, opcode, payload, timeout=5.0):
        op, data, compressed = self.recv_message(timeout)
        if op != opcode or data != payload:
            raise WsError(f"expected echo of {OPCODE_NAMES[opcode]} {len(payload)} bytes, got "
                          f"{OPCODE_NAMES.get(op, op)} {len(data)} bytes"
                          + (" (different content)" if len(data) == len(payload) else ""))
        return compressed
