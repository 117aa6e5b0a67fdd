"""Interop: the npm `ws` package (Node.js) against roomcast /echo.

Runs test/interop/node/ws_echo_client.mjs once per scenario; `npm install` is done once if
node_modules is missing.
"""
import json
import os
import subprocess

import pytest

from interop_helpers import INTEROP_DIR, server_log_tail, which

NODE_DIR = os.path.join(INTEROP_DIR, "node")
SCRIPT = os.path.join(NODE_DIR, "ws_echo_client.mjs")
SCENARIOS = ["text", "utf8", "binary", "fragmented", "large_1m", "large_8m", "ping",
             "close_1000", "close_4001", "deflate_offer"]


@pytest.fixture(scope="module")
def node_ws():
    node = which("node", "nodejs")
    npm = which("npm")
    if not node or not npm:
        pytest.skip("node/npm not installed (apt-get install -y nodejs npm)")
    if not os.path.isdir(os.path.join(NODE_DIR, "node_modules", "ws")):
        try:
            r = subprocess.run([npm, "install", "--no-audit", "--no-fund", "--silent"], cwd=NODE_DIR,
                               capture_output=True, text=True, timeout=120)
        except subprocess.TimeoutExpired:
            pytest.fail("npm install timed out after 120 s in " + NODE_DIR)
        if r.returncode != 0 or not os.path.isdir(os.path.join(NODE_DIR, "node_modules", "ws")):
            pytest.fail(f"npm install failed in {NODE_DIR} (rc {r.returncode}):\n{r.stdout}\n{r.stderr}")
    return node


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_node_ws(node_ws, interop_server, scenario):
    url = interop_server.url("/echo")
    try:
        r = subprocess.run([node_ws, SCRIPT, url, scenario], cwd=NODE_DIR,
                           capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"node ws client hung on {scenario!r} (30 s)\nstdout: {e.stdout}\nstderr: {e.stderr}\n"
                    + server_log_tail(interop_server))
    lines = [ln for ln in r.stdout.splitlines() if ln.strip().startswith("{")]
    assert lines, f"no JSON from node client (rc {r.returncode})\nstdout: {r.stdout}\nstderr: {r.stderr}"
    report = json.loads(lines[-1])
    failures = [f"{x['scenario']}: {x.get('error')}" for x in report.get("results", []) if not x["ok"]]
    assert r.returncode == 0 and report["ok"], (
        f"ws {report.get('ws_version')} scenario {scenario!r} failed: "
        f"{failures or report.get('error')}\nstderr: {r.stderr}\nserver log:\n{server_log_tail(interop_server)}")
    assert [x["scenario"] for x in report["results"]] == [scenario]
