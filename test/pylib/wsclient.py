"""A small raw-socket WebSocket (RFC 6455) client for conformance and integration tests.

It can send anything, including frames a real client never would: any opcode, any RSV bits,
FIN or not, masked or not, non-minimal or lying length encodings, split into chunks of any size
with optional delays. It receives frames with a timeout and checks what the server sends
(server frames are never masked, never have RSV bits, control frames are <= 125 bytes).

    c = WsClient.connect(host, port, "/echo")
    c.send_frame(OP_TEXT, b"hi", fin=False)
    c.send_frame(OP_CONT, b"!", chunk=1, delay=0.001)
    c.expect_message(OP_TEXT, b"hi!")
    c.send_close(1000)
    c.expect_close(1000)          # the close frame, then TCP EOF with nothing in between
"""
import base64
import errno
import hashlib
import os
import socket
import ssl
import struct
import time

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

# ROOMCAST_TEST_TLS_CA: run over TLS, trusting this CA (the launcher then starts servers with TLS).
TLS_CA = os.environ.get("ROOMCAST_TEST_TLS_CA", "")

OP_CONT, OP_TEXT, OP_BINARY = 0x0, 0x1, 0x2
OP_CLOSE, OP_PING, OP_PONG = 0x8, 0x9, 0xA
OPCODE_NAMES = {0: "cont", 1: "text", 2: "binary", 8: "close", 9: "ping", 10: "pong"}

# Autobahn's RSV numbering: rsv=4 is RSV1 (0x40), rsv=2 is RSV2 (0x20), rsv=1 is RSV3 (0x10).
RSV1, RSV2, RSV3 = 4, 2, 1

EMPTY = None  # in expect_close(): "a close frame with an empty payload"


class WsError(AssertionError):
    pass


class WsTimeout(WsError):
    pass


class WsEOF(WsError):
    pass


def accept_for(key):
    """Sec-WebSocket-Accept for a Sec-WebSocket-Key (RFC 6455 section 4.2.2)."""
    if isinstance(key, str):
        key = key.encode()
    return base64.b64encode(hashlib.sha1(key + GUID).digest()).decode()


def new_key():
    return base64.b64encode(os.urandom(16)).decode()


def mask_bytes(payload, key):
    """XOR payload with the 4-byte key; linear time even for megabytes (big-int XOR)."""
    n = len(payload)
    if n == 0:
        return b""
    k = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(k, "little")).to_bytes(n, "little")


def encode_frame(opcode, payload=b"", fin=True, rsv=0, mask=True, mask_key=None,
                 length_form=None, declared_length=None):
    """Bytes of one frame.

    length_form: None = minimal encoding, 7 / 16 / 64 = force that length field width.
    declared_length: put this number in the length field instead of len(payload).
    """
    if isinstance(payload, str):
        payload = payload.encode()
    payload = bytes(payload)
    n = len(payload) if declared_length is None else declared_length
    b0 = (0x80 if fin else 0) | ((rsv & 7) << 4) | (opcode & 0xF)
    mbit = 0x80 if mask else 0
    if length_form is None:
        length_form = 7 if n < 126 else (16 if n < 65536 else 64)
    if length_form == 7:
        assert n < 126
        head = struct.pack("!BB", b0, mbit | n)
    elif length_form == 16:
        assert n < 65536
        head = struct.pack("!BBH", b0, mbit | 126, n)
    elif length_form == 64:
        head = struct.pack("!BBQ", b0, mbit | 127, n)
    else:
        raise ValueError(length_form)
    if mask:
        if mask_key is None:
            mask_key = os.urandom(4)
        return head + mask_key + mask_bytes(payload, mask_key)
    return head + payload


def close_payload(code=None, reason=b""):
    if isinstance(reason, str):
        reason = reason.encode()
    if code is None:
        return b"" + reason
    return struct.pack("!H", code) + reason


def is_valid_close_code(code):
    return 1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999


def short(data, limit=48):
    data = bytes(data)
    if len(data) <= limit:
        return repr(data)
    return f"{data[:limit]!r}... ({len(data)} bytes)"


class Frame:
    __slots__ = ("fin", "rsv", "opcode", "masked", "payload")

    def __init__(self, fin, rsv, opcode, masked, payload):
        self.fin, self.rsv, self.opcode, self.masked, self.payload = fin, rsv, opcode, masked, payload

    @property
    def close_code(self):
        return struct.unpack("!H", self.payload[:2])[0] if len(self.payload) >= 2 else None

    @property
    def close_reason(self):
        return self.payload[2:]

    def __repr__(self):
        name = OPCODE_NAMES.get(self.opcode, hex(self.opcode))
        extra = f" code={self.close_code}" if self.opcode == OP_CLOSE else ""
        return (f"Frame({name}{extra} fin={int(self.fin)} rsv={self.rsv} masked={int(self.masked)} "
                f"payload={short(self.payload)})")


def build_request(path="/echo", host="127.0.0.1", headers=None, method="GET", version="HTTP/1.1",
                  key=None, upgrade=True, body=b""):
    """An HTTP request head (+ body). headers: list of (name, value) pairs or dict; a value of
    None removes a default header. With upgrade=True the default WebSocket headers are added."""
    defaults = [("Host", host)]
    if upgrade:
        defaults += [("Upgrade", "websocket"), ("Connection", "Upgrade"),
                     ("Sec-WebSocket-Key", key or new_key()), ("Sec-WebSocket-Version", "13")]
    items = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
    override = {k.lower() for k, _ in items}
    out = [(k, v) for k, v in defaults if k.lower() not in override]
    out += [(k, v) for k, v in items if v is not None]
    head = f"{method} {path} {version}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in out) + "\r\n"
    return head.encode("latin-1") + body


class HttpResponse:
    def __init__(self, status, reason, headers, raw_headers, body):
        self.status, self.reason, self.headers, self.raw_headers, self.body = \
            status, reason, headers, raw_headers, body

    def header(self, name):
        return self.headers.get(name.lower())

    def __repr__(self):
        return f"HttpResponse({self.status} {self.reason} {self.raw_headers} body={short(self.body)})"


class Conn:
    """A TCP connection with a receive buffer; base of WsClient, also used for plain HTTP."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()
        self.eof = False
        self.reset = False

    @classmethod
    def open(cls, host, port, timeout=5.0):
        s = socket.create_connection((host, port), timeout=timeout)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if TLS_CA:  # the whole suite over wss:// (see roomcast_server.TLS_ARGS)
            s = ssl.create_default_context(cafile=TLS_CA).wrap_socket(s, server_hostname="127.0.0.1")
        return cls(s)

    # -- sending --------------------------------------------------------------------------
    def send_raw(self, data, chunk=None, delay=0.0):
        """Send bytes, optionally in chunks of `chunk` bytes with `delay` seconds between them.
        Returns False if the peer had already closed (EPIPE/ECONNRESET), True otherwise."""
        data = bytes(data)
        try:
            if not chunk:
                self.sock.sendall(data)
                return True
            for i in range(0, len(data), chunk):
                self.sock.sendall(data[i:i + chunk])
                if delay:
                    time.sleep(delay)
            return True
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            return False

    # -- receiving ------------------------------------------------------------------------
    def _fill(self, deadline):
        """Read more bytes into buf. Returns False on EOF; raises WsTimeout at the deadline."""
        if self.eof:
            return False
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise WsTimeout("timed out waiting for data from the server")
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(1 << 20)
        except socket.timeout:
            raise WsTimeout("timed out waiting for data from the server") from None
        except (ConnectionResetError, ssl.SSLError):
            self.eof = self.reset = True
            return False
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def _need(self, n, deadline):
        while len(self.buf) < n:
            if not self._fill(deadline):
                raise WsEOF(f"connection closed with {len(self.buf)} of {n} needed bytes buffered: "
                            f"{short(self.buf)}")

    def read_http_response(self, timeout=5.0, body=True):
        """Read one HTTP response: head, then Content-Length bytes of body (or until EOF when
        there is no Content-Length and body=True). Leaves any later bytes in buf."""
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in self.buf:
            if not self._fill(deadline):
                raise WsEOF(f"connection closed before a full HTTP response head: {short(self.buf)}")
        end = self.buf.index(b"\r\n\r\n") + 4
        head = bytes(self.buf[:end]).decode("latin-1")
        del self.buf[:end]
        lines = head[:-4].split("\r\n")
        parts = lines[0].split(" ", 2)
        assert parts[0].startswith("HTTP/1."), f"bad status line {lines[0]!r}"
        status = int(parts[1])
        reason = parts[2] if len(parts) > 2 else ""
        headers, raw = {}, []
        for line in lines[1:]:
            k, _, v = line.partition(":")
            raw.append((k.strip(), v.strip()))
            headers.setdefault(k.strip().lower(), v.strip())
        data = b""
        if body and status != 101 and status != 204 and status != 304:
            if "content-length" in headers:
                n = int(headers["content-length"])
                self._need(n, deadline)
                data = bytes(self.buf[:n])
                del self.buf[:n]
            elif "transfer-encoding" not in headers:
                while self._fill(deadline):
                    pass
                data = bytes(self.buf)
                self.buf.clear()
        return HttpResponse(status, reason, headers, raw, data)

    def expect_eof(self, timeout=3.0, what="after close"):
        """Assert the server closes TCP without sending any more bytes."""
        deadline = time.monotonic() + timeout
        try:
            while self._fill(deadline):
                pass
        except WsTimeout:
            raise WsError(f"server did not close the TCP connection within {timeout}s {what}"
                          + (f" (and sent {short(self.buf)})" if self.buf else "")) from None
        if self.buf:
            raise WsError(f"server sent bytes {what}: {short(self.buf)}")

    def read_until_eof(self, timeout=5.0):
        deadline = time.monotonic() + timeout
        while self._fill(deadline):
            pass
        data = bytes(self.buf)
        self.buf.clear()
        return data

    def expect_silence(self, duration):
        """Assert the server sends nothing (and does not close) for `duration` seconds."""
        deadline = time.monotonic() + duration
        try:
            got = self._fill(deadline)
        except WsTimeout:
            return
        if got:
            raise WsError(f"expected no data, got {short(self.buf)}")
        raise WsError("expected no data, but the server closed the connection")

    def close_socket(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def abort(self):
        """Close with SO_LINGER 0: the kernel sends RST instead of FIN."""
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.close_socket()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close_socket()


class WsClient(Conn):
    def __init__(self, sock, response=None):
        super().__init__(sock)
        self.response = response
        self.check_server_frames = True

    @classmethod
    def connect(cls, host, port, path="/echo", headers=None, timeout=5.0, protocols=None,
                key=None):
        """Open TCP, do the upgrade handshake and check the 101 response."""
        c = cls.open(host, port, timeout)
        key = key or new_key()
        hdrs = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
        if protocols:
            hdrs.append(("Sec-WebSocket-Protocol", protocols))
        c.send_raw(build_request(path, f"{host}:{port}", hdrs, key=key))
        try:
            r = c.read_http_response(timeout, body=False)
        except Exception:
            c.close_socket()
            raise
        c.response = r
        if r.status != 101:
            c.close_socket()
            raise WsError(f"handshake failed: {r}")
        assert (r.header("upgrade") or "").lower() == "websocket", r
        assert "upgrade" in (r.header("connection") or "").lower(), r
        assert r.header("sec-websocket-accept") == accept_for(key), r
        return c

    # -- sending --------------------------------------------------------------------------
    def send_frame(self, opcode, payload=b"", fin=True, rsv=0, mask=True, mask_key=None,
                   length_form=None, declared_length=None, chunk=None, delay=0.0):
        return self.send_raw(encode_frame(opcode, payload, fin, rsv, mask, mask_key, length_form,
                                          declared_length), chunk, delay)

    def send_text(self, payload, **kw):
        return self.send_frame(OP_TEXT, payload, **kw)

    def send_binary(self, payload, **kw):
        return self.send_frame(OP_BINARY, payload, **kw)

    def send_ping(self, payload=b"", **kw):
        return self.send_frame(OP_PING, payload, **kw)

    def send_pong(self, payload=b"", **kw):
        return self.send_frame(OP_PONG, payload, **kw)

    def send_close(self, code=None, reason=b"", **kw):
        return self.send_frame(OP_CLOSE, close_payload(code, reason), **kw)

    def send_message(self, opcode, payload, frag_size=None, chunk=None, delay=0.0):
        """Send one message, fragmented into frames of frag_size payload bytes (None: one frame),
        the whole byte stream written in chunks of `chunk` bytes."""
        return self.send_raw(encode_message(opcode, payload, frag_size), chunk, delay)

    # -- receiving ------------------------------------------------------------------------
    def recv_frame(self, timeout=5.0):
        """Next frame from the server. Raises WsTimeout, or WsEOF if TCP closes first."""
        deadline = time.monotonic() + timeout
        self._need(2, deadline)
        b0, b1 = self.buf[0], self.buf[1]
        n = b1 & 0x7F
        pos = 2
        if n == 126:
            self._need(4, deadline)
            n = struct.unpack_from("!H", self.buf, 2)[0]
            pos = 4
        elif n == 127:
            self._need(10, deadline)
            n = struct.unpack_from("!Q", self.buf, 2)[0]
            pos = 10
        masked = bool(b1 & 0x80)
        key = None
        if masked:
            self._need(pos + 4, deadline)
            key = bytes(self.buf[pos:pos + 4])
            pos += 4
        self._need(pos + n, deadline)
        payload = bytes(self.buf[pos:pos + n])
        del self.buf[:pos + n]
        if masked:
            payload = mask_bytes(payload, key)
        f = Frame(bool(b0 & 0x80), (b0 >> 4) & 7, b0 & 0xF, masked, payload)
        if self.check_server_frames:
            assert not f.masked, f"server sent a masked frame: {f}"
            assert f.rsv == 0, f"server sent RSV bits: {f}"
            assert f.opcode in OPCODE_NAMES, f"server sent a reserved opcode: {f}"
            if f.opcode >= 8:
                assert f.fin and len(f.payload) <= 125, f"server sent a bad control frame: {f}"
        return f

    def recv_nonping(self, timeout=5.0, answer_pings=True):
        """Next frame that is not a server ping (answering pings with pongs)."""
        deadline = time.monotonic() + timeout
        while True:
            f = self.recv_frame(max(0.001, deadline - time.monotonic()))
            if f.opcode == OP_PING:
                if answer_pings:
                    self.send_pong(f.payload)
                continue
            return f

    def expect_frame(self, opcode, payload=None, fin=True, timeout=5.0):
        try:
            f = self.recv_frame(timeout)
        except WsTimeout:
            raise WsTimeout(f"expected a {OPCODE_NAMES.get(opcode, opcode)} frame, got nothing "
                            f"within {timeout}s") from None
        except WsEOF as e:
            raise WsEOF(f"expected a {OPCODE_NAMES.get(opcode, opcode)} frame, connection "
                        f"closed: {e}") from None
        if f.opcode != opcode or f.fin != fin or (payload is not None and f.payload != payload):
            want = Frame(fin, 0, opcode, False, payload if payload is not None else b"?")
            raise WsError(f"expected {want}, got {f}")
        return f

    def expect_message(self, opcode, payload, timeout=5.0):
        """The next frame must be one unfragmented message equal to (opcode, payload)."""
        if isinstance(payload, str):
            payload = payload.encode()
        return self.expect_frame(opcode, payload, True, timeout)

    def expect_pong(self, payload=b"", timeout=5.0):
        return self.expect_frame(OP_PONG, payload, True, timeout)

    def expect_close(self, code, timeout=5.0, eof_timeout=3.0, reason=None, skip_pings=False):
        """The next frame must be a close frame with `code` (an int, EMPTY for an empty payload,
        or a tuple/set of those; ANY_CODE for any), after which TCP must close with no more bytes.
        skip_pings: server pings (from --ping-interval) before the close are allowed.
        Returns the close frame."""
        try:
            if skip_pings:
                f = self.recv_nonping(timeout, answer_pings=False)
            else:
                f = self.recv_frame(timeout)
        except WsTimeout:
            raise WsTimeout(f"expected close {code}, got nothing within {timeout}s") from None
        except WsEOF as e:
            raise WsEOF(f"expected close {code}, TCP closed without a close frame: {e}") from None
        if f.opcode != OP_CLOSE:
            raise WsError(f"expected close {code}, got {f}")
        assert len(f.payload) != 1, f"server sent a close with a 1-byte payload: {f}"
        got = f.close_code
        allowed = code if isinstance(code, (tuple, set, frozenset, list)) else (code,)
        if code is not ANY_CODE:
            assert got in allowed, f"expected close code {code}, got {got} ({f})"
        if got is not None:
            assert is_valid_close_code(got), f"server sent an invalid close code {got}"
            try:
                f.close_reason.decode("utf-8")
            except UnicodeDecodeError:
                raise WsError(f"server close reason is not UTF-8: {f}") from None
        if reason is not None:
            assert f.close_reason == reason, f
        self.expect_eof(eof_timeout, what=f"after its close frame ({f})")
        return f

    def close_handshake(self, code=1000, timeout=5.0):
        """Polite close: send close(code), expect the same code back and TCP EOF."""
        self.send_close(code)
        self.expect_close(code, timeout, skip_pings=True)
        self.close_socket()


class _AnyCode:
    def __repr__(self):
        return "ANY_CODE"


ANY_CODE = _AnyCode()


def encode_message(opcode, payload, frag_size=None):
    if isinstance(payload, str):
        payload = payload.encode()
    if not frag_size or len(payload) <= frag_size:
        return encode_frame(opcode, payload)
    parts = []
    n = len(payload)
    for i in range(0, n, frag_size):
        op = opcode if i == 0 else OP_CONT
        parts.append(encode_frame(op, payload[i:i + frag_size], fin=(i + frag_size >= n)))
    return b"".join(parts)


def http_request(host, port, raw, timeout=5.0):
    """Send raw request bytes on a new connection; return (HttpResponse, Conn). The caller
    closes the Conn (or checks what happens next on it)."""
    c = Conn.open(host, port, timeout)
    c.send_raw(raw)
    return c.read_http_response(timeout), c


def assert_echo_works(host, port, payload=b"still serving", timeout=5.0):
    """A normal client is served: handshake, one text echo, one binary echo, clean close."""
    c = WsClient.connect(host, port, "/echo", timeout=timeout)
    try:
        c.send_text(payload)
        c.expect_message(OP_TEXT, payload, timeout)
        c.send_binary(b"\x00\xff" + payload)
        c.expect_message(OP_BINARY, b"\x00\xff" + payload, timeout)
        c.close_handshake(1000, timeout)
    finally:
        c.close_socket()


def retry_errno(fn, tries=50, delay=0.05, errnos=(errno.ECONNREFUSED,)):
    for i in range(tries):
        try:
            return fn()
        except OSError as e:
            if e.errno not in errnos or i == tries - 1:
                raise
            time.sleep(delay)
