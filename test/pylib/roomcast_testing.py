"""Shared helpers for the Python conformance and integration suites (kept out of conftest.py so
test modules can import them without depending on which conftest pytest loaded last)."""
import os

import pytest

from roomcast_server import BIN, RoomcastServer

# Conformance servers: 2 reactors, room for the 8 MiB cases, no idle/ping timers in the way.
CONFORMANCE_ARGS = ["--threads", "2", "--max-message-size", "16M", "--idle-timeout", "0",
                    "--ping-interval", "0"]


def require_binary():
    if not os.access(BIN, os.X_OK):
        pytest.fail(f"roomcast binary not found at {BIN} (run `make`)", pytrace=False)


def start_server(args, **kw):
    require_binary()
    return RoomcastServer(args, **kw).start()


def with_flag(args, flag, value):
    """A copy of args with flag set to value (replaced if present, appended otherwise)."""
    out = list(args)
    if flag in out:
        out[out.index(flag) + 1] = value
    else:
        out += [flag, value]
    return out


class RestartingServer:
    """A server shared by a module that is restarted if an earlier test crashed it, so one crash
    fails the test that caused it (its after-test check) instead of every later test."""

    def __init__(self, args):
        self.args = list(args)
        self.srv = None
        self.restarts = 0

    def get(self):
        if self.srv is None or not self.srv.alive():
            if self.srv is not None:
                # The crash already failed the test that caused it (its after-test check); the
                # sanitizer report, if any, is logged by stop() without failing this test too.
                self.srv.stop(check_sanitizers=False)
                self.restarts += 1
            self.srv = start_server(self.args)
        return self.srv

    def stop(self):
        if self.srv is not None:
            self.srv.stop()
