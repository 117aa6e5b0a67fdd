"""Shared helpers for test/interop (module name kept globally unique on purpose)."""
import os
import shutil
import socket
import sys

import pytest

INTEROP_DIR = os.path.dirname(os.path.abspath(__file__))
PYLIB_DIR = os.path.join(os.path.dirname(INTEROP_DIR), "pylib")
if PYLIB_DIR not in sys.path:
    sys.path.insert(0, PYLIB_DIR)

import roomcast_server  # noqa: E402


def require_roomcast_binary():
    """The binary is the thing under test: a missing build is a failure, not a skip."""
    if not os.access(roomcast_server.BIN, os.X_OK):
        pytest.fail(f"roomcast binary not built: {roomcast_server.BIN} (run make)")


def ipv6_loopback_available():
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def which(*names):
    for n in names:
        p = shutil.which(n)
        if p:
            return p
    return None


def server_log_tail(srv, n=40):
    return "".join(srv.stdout_lines[-n:]) + "".join(srv.stderr_lines[-n:])
