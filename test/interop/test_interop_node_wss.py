"""Interop over wss://: the npm `ws` package (Node.js) trusting a test CA (NODE_EXTRA_CA_CERTS) against
roomcast with --tls-cert/--tls-key: text, binary, fragmented, large messages, pings, clean closes and
permessage-deflate, all over TLS."""
import json
import os
import shutil
import subprocess
import tempfile

import pytest

from interop_helpers import INTEROP_DIR, which
from roomcast_server import ROOT, RoomcastServer

NODE_DIR = os.path.join(INTEROP_DIR, "node")
SCRIPT = os.path.join(NODE_DIR, "ws_echo_client.mjs")
SCENARIOS = ["text", "binary", "fragmented", "large_1m", "ping", "close_1000", "deflate_offer"]


@pytest.fixture(scope="module")
def wss_server():
    node = which("node", "nodejs")
    if not node or not os.path.isdir(os.path.join(NODE_DIR, "node_modules", "ws")):
        pytest.skip("node and the ws package are needed (scripts/setup.sh installs them)")
    d = tempfile.mkdtemp(prefix="roomcast-wss-")
    subprocess.run(["bash", os.path.join(ROOT, "scripts", "gen-cert.sh"), d], check=True, capture_output=True)
    srv = RoomcastServer(["--threads", "2", "--tls-cert", os.path.join(d, "server.pem"),
                          "--tls-key", os.path.join(d, "server-key.pem")]).start()
    yield node, srv, os.path.join(d, "ca.pem")
    srv.stop()
    shutil.rmtree(d, ignore_errors=True)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_node_ws_over_tls(wss_server, scenario):
    node, srv, ca = wss_server
    env = dict(os.environ, NODE_EXTRA_CA_CERTS=ca)
    r = subprocess.run([node, SCRIPT, f"wss://127.0.0.1:{srv.port}/echo", scenario], cwd=NODE_DIR,
                       capture_output=True, text=True, timeout=60, env=env)
    lines = [ln for ln in r.stdout.splitlines() if ln.strip().startswith("{")]
    assert lines, f"no JSON from node client (rc {r.returncode})\nstdout: {r.stdout}\nstderr: {r.stderr}"
    report = json.loads(lines[-1])
    assert r.returncode == 0 and report["ok"], (report, r.stderr, "".join(srv.stderr_lines[-20:]))
