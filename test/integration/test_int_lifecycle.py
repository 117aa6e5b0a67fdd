"""Process lifecycle: --help, bad flag values (one-line error, exit 2), accepted flag forms,
SIGTERM drain (close 1001 to every WebSocket, exit 0 once all answered or after
--drain-timeout), and SIGPIPE/SIGHUP-free behaviour under abrupt peers."""
import signal
import subprocess
import time

import pytest

from roomcast_server import BIN
from roomcast_testing import require_binary
from wsclient import OP_CLOSE, OP_TEXT, Conn, WsClient, assert_echo_works

CONTRACT_FLAGS = ["--listen", "--threads", "--max-connections", "--max-message-size",
                  "--max-header-bytes", "--handshake-timeout", "--idle-timeout", "--ping-interval",
                  "--drain-timeout", "--subprotocols", "--log-level", "--simd", "--help"]


def _run(args, timeout=5.0):
    require_binary()
    try:
        return subprocess.run([BIN] + args, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"roomcast {' '.join(args)} did not exit within {timeout}s "
                             f"(stdout {e.stdout!r})") from None


def test_help_lists_every_flag_and_exits_0():
    r = _run(["--help"])
    assert r.returncode == 0, r
    for flag in CONTRACT_FLAGS:
        assert flag in r.stdout, f"--help does not mention {flag}:\n{r.stdout}"


@pytest.mark.parametrize("args", [
    ["--threads", "abc"], ["--threads", "-1"], ["--threads", "2x"], ["--threads"],
    ["--max-connections", "many"], ["--max-connections", "-5"],
    ["--max-message-size", "12Q"], ["--max-message-size", "-1"], ["--max-message-size", "K"],
    ["--max-message-size", ""], ["--max-header-bytes", "big"],
    ["--handshake-timeout", "fast"], ["--idle-timeout", "5parsecs"], ["--ping-interval", "-1s"],
    ["--drain-timeout", "ms"], ["--simd", "mmx"], ["--log-level", "chatty"],
    ["--listen", "not-an-address"], ["--listen", "127.0.0.1:99999"], ["--no-such-flag"],
    ["positional"],
], ids=lambda a: "_".join(x.strip("-") or "empty" for x in a))
def test_bad_flag_value_one_line_error_exit_2(args):
    r = _run(["--listen", "127.0.0.1:0"] + args)
    assert r.returncode == 2, f"exit {r.returncode}, stderr {r.stderr!r}, stdout {r.stdout!r}"
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].strip(), f"expected a one-line error, got {r.stderr!r}"
    assert "listening" not in r.stdout


@pytest.mark.parametrize("args", [
    ["--max-message-size", "64K"], ["--max-message-size", "1M"], ["--max-message-size", "1G"],
    ["--max-message-size", "1000"], ["--max-header-bytes", "16K"],
    ["--idle-timeout", "500ms"], ["--idle-timeout", "2s"], ["--idle-timeout", "1500"],
    ["--idle-timeout", "0"], ["--ping-interval", "0"], ["--handshake-timeout", "250ms"],
    ["--drain-timeout", "1s"], ["--subprotocols", "a,b"], ["--simd", "scalar"], ["--simd", "auto"],
    ["--threads", "1"], ["--max-connections", "10"],
], ids=lambda a: "_".join(a).strip("-"))
def test_good_flag_values_start(make_server, args):
    srv = make_server(args)
    assert_echo_works(srv.host, srv.port)


# ---- SIGTERM drain ---------------------------------------------------------------------------

def test_sigterm_idle_server_exits_0(make_server):
    srv = make_server(["--threads", "2"])
    srv.send_signal(signal.SIGTERM)
    assert srv.wait(timeout=5) == 0


def test_sigterm_drain_clients_answer_exit_0_quickly(make_server):
    srv = make_server(["--threads", "2", "--drain-timeout", "10s", "--idle-timeout", "0",
                       "--ping-interval", "0"])
    clients = [WsClient.connect(srv.host, srv.port) for _ in range(12)]
    for i, c in enumerate(clients):
        c.send_text(b"before %d" % i)
        c.expect_message(OP_TEXT, b"before %d" % i)
    t0 = time.monotonic()
    srv.send_signal(signal.SIGTERM)
    for c in clients:
        f = c.recv_frame(timeout=5)
        assert f.opcode == OP_CLOSE and f.close_code == 1001, f
        c.send_close(1001)
    for c in clients:
        c.expect_eof(timeout=5, what="after answering the server's close 1001")
        c.close_socket()
    rc = srv.wait(timeout=8)
    elapsed = time.monotonic() - t0
    assert rc == 0, f"exit code {rc}"
    assert elapsed < 5.0, f"took {elapsed:.1f}s to exit although every client answered (drain 10s)"


def test_sigterm_drain_silent_client_exit_0_after_drain_timeout(make_server):
    srv = make_server(["--threads", "2", "--drain-timeout", "600ms", "--idle-timeout", "0",
                       "--ping-interval", "0"])
    silent = WsClient.connect(srv.host, srv.port)
    polite = WsClient.connect(srv.host, srv.port)
    t0 = time.monotonic()
    srv.send_signal(signal.SIGTERM)
    f = silent.recv_frame(timeout=5)
    assert f.opcode == OP_CLOSE and f.close_code == 1001, f
    f = polite.recv_frame(timeout=5)
    assert f.opcode == OP_CLOSE and f.close_code == 1001, f
    polite.send_close(1001)
    polite.expect_eof(what="after answering close 1001")
    rc = srv.wait(timeout=8)
    elapsed = time.monotonic() - t0
    assert rc == 0, f"exit code {rc}"
    assert elapsed >= 0.4, f"exited after {elapsed:.2f}s without waiting for the silent client"
    assert elapsed < 6.0, elapsed
    silent.expect_eof(timeout=2, what="after the server exited")
    silent.close_socket()
    polite.close_socket()


def test_sigterm_during_fragmented_message_and_handshake(make_server):
    srv = make_server(["--threads", "2", "--drain-timeout", "1s"])
    mid = WsClient.connect(srv.host, srv.port)
    mid.send_frame(0x1, b"partial", fin=False)
    half_http = Conn.open(srv.host, srv.port)
    half_http.send_raw(b"GET /echo HTTP/1.1\r\nHost: h\r\n")
    time.sleep(0.05)
    srv.send_signal(signal.SIGTERM)
    f = mid.recv_frame(timeout=5)
    assert f.opcode == OP_CLOSE and f.close_code == 1001, f
    mid.send_close(1001)
    mid.expect_eof()
    mid.close_socket()
    assert srv.wait(timeout=8) == 0
    half_http.close_socket()


def test_sigint_behaves_like_sigterm(make_server):
    srv = make_server(["--threads", "1", "--drain-timeout", "5s"])
    c = WsClient.connect(srv.host, srv.port)
    srv.send_signal(signal.SIGINT)
    f = c.recv_frame(timeout=5)
    assert f.opcode == OP_CLOSE and f.close_code == 1001, f
    c.send_close(1001)
    c.expect_eof()
    c.close_socket()
    assert srv.wait(timeout=4) == 0


# ---- abrupt peers ----------------------------------------------------------------------------

def test_sigpipe_many_resets_while_server_writes(make_server):
    srv = make_server(["--threads", "2"])
    payload = b"\xab" * (2 * 1024 * 1024)
    for i in range(8):
        c = WsClient.connect(srv.host, srv.port)
        c.send_binary(payload)
        c.send_ping(b"x")
        if i % 2 == 0:
            time.sleep(0.02)
        c.abort()
    time.sleep(0.3)
    assert srv.alive(), "roomcast died: " + "".join(srv.stderr_lines[-20:])
    assert_echo_works(srv.host, srv.port)
    srv.send_signal(signal.SIGTERM)
    assert srv.wait(timeout=8) == 0
