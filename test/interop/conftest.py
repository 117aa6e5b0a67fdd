"""Interop tests: real third-party WebSocket clients against build/roomcast.

Puts test/pylib (roomcast_server) and this directory (interop_helpers) on sys.path.
"""
import os
import sys

import pytest

_HERE = os.path.dirname(os.path.abspath(__file__))
for _p in (os.path.join(os.path.dirname(_HERE), "pylib"), _HERE):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from interop_helpers import require_roomcast_binary, server_log_tail  # noqa: E402
from roomcast_server import RoomcastServer  # noqa: E402


@pytest.fixture(scope="module")
def interop_server():
    """One roomcast per test module: 2 reactor threads, default limits."""
    require_roomcast_binary()
    with RoomcastServer(["--threads", "2"]) as srv:
        yield srv
        assert srv.alive(), (f"roomcast died during the module (exit status {srv.proc.poll()}):\n"
                             + server_log_tail(srv))
