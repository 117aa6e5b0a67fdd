"""Room deliveries to Node `ws` subscribers (control protocol on /ws), plain and with permessage-deflate,
over ws:// and over wss:// (test CA via NODE_EXTRA_CA_CERTS)."""
import json
import os
import shutil
import subprocess
import tempfile

import pytest

from interop_helpers import INTEROP_DIR, which
from roomcast_server import ROOT, RoomcastServer

NODE_DIR = os.path.join(INTEROP_DIR, "node")
SCRIPT = os.path.join(NODE_DIR, "ws_rooms_client.mjs")


@pytest.fixture(scope="module")
def env():
    node = which("node", "nodejs")
    if not node or not os.path.isdir(os.path.join(NODE_DIR, "node_modules", "ws")):
        pytest.skip("node and the ws package are needed (scripts/setup.sh installs them)")
    d = tempfile.mkdtemp(prefix="roomcast-noderooms-")
    subprocess.run(["bash", os.path.join(ROOT, "scripts", "gen-cert.sh"), d], check=True, capture_output=True)
    yield node, d
    shutil.rmtree(d, ignore_errors=True)


@pytest.mark.parametrize("tls", [False, True], ids=["ws", "wss"])
@pytest.mark.parametrize("deflate", [False, True], ids=["plain", "deflate"])
def test_node_subscribers_get_every_message(env, tls, deflate):
    node, d = env
    args = ["--threads", "2"]
    if tls:
        args += ["--tls-cert", os.path.join(d, "server.pem"), "--tls-key", os.path.join(d, "server-key.pem")]
    with RoomcastServer(args) as srv:
        e = dict(os.environ, NODE_EXTRA_CA_CERTS=os.path.join(d, "ca.pem"))
        base = f"{'wss' if tls else 'ws'}://127.0.0.1:{srv.port}"
        r = subprocess.run([node, SCRIPT, base, "node-room", "8", "50", "1" if deflate else "0"], cwd=NODE_DIR,
                           capture_output=True, text=True, timeout=60, env=e)
        lines = [ln for ln in r.stdout.splitlines() if ln.startswith("{")]
        assert r.returncode == 0 and lines, (r.stdout, r.stderr)
        report = json.loads(lines[-1])
        assert report["ok"], report
        for ext in report["extensions"]:
            assert ext.startswith("permessage-deflate") == deflate, ext
