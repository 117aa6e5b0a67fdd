"""Fixtures for the Python integration suite (test/integration/test_int_*.py).

`make_server(args)`: starts a roomcast with those flags for one test, stopped afterwards.
Modules that share one server define their own module-scoped fixture with start_server().
"""
import os
import sys

import pytest

_PYLIB = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "pylib")
if _PYLIB not in sys.path:
    sys.path.insert(0, _PYLIB)

from roomcast_testing import start_server  # noqa: E402


@pytest.fixture
def make_server():
    started = []

    def make(args, **kw):
        srv = start_server(args, **kw)
        started.append(srv)
        return srv

    yield make
    errors = []
    for srv in started:
        try:
            srv.stop()  # raises on a sanitizer report; stop the others first
        except AssertionError as e:
            errors.append(e)
    if errors:
        raise errors[0]
