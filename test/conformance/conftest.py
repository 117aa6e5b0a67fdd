"""Fixtures for the Autobahn-style conformance suite (test/conformance/test_conf_*.py).

`server`: one roomcast per test module (2 reactors, 16 MiB message limit).
`ws`: a client connected to /echo on it, closed after the test.
After every test that used `server`, a normal client must still be served.
"""
import os
import sys

import pytest

_PYLIB = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "pylib")
if _PYLIB not in sys.path:
    sys.path.insert(0, _PYLIB)

from roomcast_testing import CONFORMANCE_ARGS, RestartingServer  # noqa: E402
from wsclient import WsClient, assert_echo_works  # noqa: E402


@pytest.fixture(scope="module")
def server_args():
    """Override in a module to start its server with other flags."""
    return CONFORMANCE_ARGS


@pytest.fixture(scope="module")
def _server_holder(server_args):
    holder = RestartingServer(server_args)
    yield holder
    holder.stop()


@pytest.fixture
def server(_server_holder):
    """The module's server (restarted first if an earlier test crashed it)."""
    return _server_holder.get()


@pytest.fixture
def ws(server):
    c = WsClient.connect(server.host, server.port, "/echo")
    yield c
    c.close_socket()


@pytest.fixture(autouse=True)
def _still_serving(request):
    """After every hostile case, a normal client must still be served (and the server alive)."""
    yield
    if "server" in request.fixturenames:
        srv = request.getfixturevalue("_server_holder").srv
        assert srv.alive(), (f"roomcast exited with {srv.proc.returncode} (negative = signal): "
                             + "".join(srv.stderr_lines[-20:]))
        assert_echo_works(srv.host, srv.port)
