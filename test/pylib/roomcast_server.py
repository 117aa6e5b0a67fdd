"""Starts the real roomcast binary on a free loopback port for integration tests.

Usage:
    with RoomcastServer(["--threads", "2"]) as srv:
        srv.port, srv.host, srv.url("/echo"), srv.health(), srv.rss_kib(), srv.terminate()
The binary is $ROOMCAST_BIN or build/roomcast (build/release/roomcast if the symlink is missing).
The server prints
"roomcast: listening on HOST:PORT" on stdout once every reactor is accepting.
"""
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("ROOMCAST_BIN", os.path.join(ROOT, "build", "roomcast"))
if "ROOMCAST_BIN" not in os.environ and not os.path.exists(BIN):
    # `make build/release/roomcast` builds the binary without the build/roomcast symlink.
    BIN = os.path.join(ROOT, "build", "release", "roomcast")
# ROOMCAST_TEST_TLS_CERT / _KEY: every server speaks TLS on its --listen port (the conformance suite's TLS
# pass; clients wrap their sockets when ROOMCAST_TEST_TLS_CA is set, see wsclient.py).
TLS_CERT = os.environ.get("ROOMCAST_TEST_TLS_CERT", "")
TLS_KEY = os.environ.get("ROOMCAST_TEST_TLS_KEY", "")
_LISTEN_RE = re.compile(r"listening on (\[[0-9a-fA-F:]+\]|[0-9.]+):(\d+)")
# Lines a sanitizer build prints on stderr when it finds a bug (ASan, UBSan, LSan at exit, TSan).
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "runtime error:", "WARNING: ThreadSanitizer",
                     "ERROR: LeakSanitizer")
# Every server whose stderr holds a report is also appended here, so a whole run can be reviewed.
SANITIZER_LOG = os.environ.get("ROOMCAST_SANITIZER_LOG",
                               os.path.join(os.path.dirname(BIN), "sanitizer-reports.log"))


def sanitizer_report(lines):
    """The stderr text from the first sanitizer marker on, or "" if there is none."""
    for i, line in enumerate(lines):
        if any(m in line for m in SANITIZER_MARKERS):
            return "".join(lines[i:])
    return ""


class RoomcastServer:
    def __init__(self, args=None, host="127.0.0.1", start_timeout=10.0):
        self.args = list(args or [])
        self.host = host
        self.port = None
        self.proc = None
        self.start_timeout = start_timeout
        self.stderr_lines = []
        self.stdout_lines = []
        self._stderr_pump = None

    def start(self):
        listen = f"[{self.host}]:0" if ":" in self.host else f"{self.host}:0"
        cmd = [BIN, "--listen", listen] + self.args
        if TLS_CERT and "--tls-cert" not in self.args:
            cmd += ["--tls-cert", TLS_CERT, "--tls-key", TLS_KEY]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, bufsize=1)
        self._stderr_pump = threading.Thread(target=self._pump, args=(self.proc.stderr, self.stderr_lines),
                                             daemon=True)
        self._stderr_pump.start()
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            self.stdout_lines.append(line)
            m = _LISTEN_RE.search(line)
            if m:
                self.port = int(m.group(2))
                threading.Thread(target=self._pump, args=(self.proc.stdout, self.stdout_lines),
                                 daemon=True).start()
                return self
        self.stop()
        raise RuntimeError("roomcast did not start: " + "".join(self.stdout_lines) +
                           "".join(self.stderr_lines))

    @staticmethod
    def _pump(stream, sink):
        for line in stream:
            sink.append(line)

    def url(self, path, scheme="ws"):
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}{path}"

    def connect(self, timeout=5.0):
        s = socket.create_connection((self.host, self.port), timeout=timeout)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s

    def http_get(self, path, headers=None, timeout=5.0):
        """One plain HTTP/1.1 GET with Connection: close; returns (status, headers dict, body bytes)."""
        s = self.connect(timeout)
        try:
            req = f"GET {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nConnection: close\r\n"
            for k, v in (headers or {}).items():
                req += f"{k}: {v}\r\n"
            s.sendall((req + "\r\n").encode())
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
            return parse_http_response(data)
        finally:
            s.close()

    def health(self):
        status, _, body = self.http_get("/health")
        assert status == 200, status
        return json.loads(body)

    def rss_kib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def send_signal(self, sig):
        self.proc.send_signal(sig)

    def wait(self, timeout=10.0):
        return self.proc.wait(timeout=timeout)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, check_sanitizers=True):
        """SIGTERM (drain, then exit so LeakSanitizer runs), SIGKILL after 30 s. Fails the calling
        test if the server's stderr holds a sanitizer report (always logged to SANITIZER_LOG)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._stderr_pump is not None:
            self._stderr_pump.join(timeout=5)  # the rest of stderr, e.g. LeakSanitizer's exit report
        report = sanitizer_report(self.stderr_lines)
        if not report or getattr(self, "_reported", False):
            return
        self._reported = True
        try:
            with open(SANITIZER_LOG, "a") as f:
                f.write(f"==== {os.environ.get('PYTEST_CURRENT_TEST', '?')} | {' '.join(self.args)} "
                        f"| exit {self.proc.returncode}\n{report}\n")
        except OSError:
            pass
        if check_sanitizers:
            raise AssertionError(f"sanitizer report in roomcast's stderr (exit {self.proc.returncode}):\n"
                                 + report[:8000])

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def parse_http_response(data):
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1]) if lines and len(lines[0].split()) > 1 else 0
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return status, headers, body
