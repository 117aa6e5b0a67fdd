"""Interop: headless Chromium's WebSocket (which offers permessage-deflate) against roomcast /echo.

A loopback HTTP server serves a page whose script echoes text and binary messages through
roomcast, then reports the outcome three ways: document.title / a <pre> (read from
--dump-dom) and a POST back to the page server (read directly, in case the DOM dump races).
The page server holds an <img> until the result is in, so the load event (and --dump-dom)
waits for the WebSocket exchange.
"""
import http.server
import json
import os
import signal
import subprocess
import tempfile
import threading
import time

import pytest

from interop_helpers import server_log_tail, which

CHROMIUM_TIMEOUT_S = 60
PAGE_RESULT_WAIT_S = 30

PAGE = r"""<!doctype html>
<html><head><meta charset="utf-8"><title>RUNNING</title></head>
<body><pre id="out">pending</pre>
<script>
(function () {
  const WS_URL = __WS_URL__;
  const steps = [];
  let done = false;
  function finish(ok, detail) {
    if (done) return;
    done = true;
    const result = { ok: ok, detail: detail, steps: steps, ua: navigator.userAgent };
    document.title = (ok ? "PASS" : "FAIL") + ": " + detail;
    document.getElementById("out").textContent = "RESULT " + JSON.stringify(result);
    fetch("/result", { method: "POST", body: JSON.stringify(result) }).catch(function () {});
  }
  setTimeout(function () { finish(false, "timeout in page after 20 s; steps: " + steps.join(",")); }, 20000);

  function bytesEqual(a, b) {
    if (a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
    return true;
  }

  const text = "héllo chromium — 日本語 🎉";
  const small = new Uint8Array(256);
  for (let i = 0; i < 256; i++) small[i] = i;
  const big = new Uint8Array(200000);
  for (let i = 0; i < big.length; i++) big[i] = (i * 7919 + 13) & 0xff;
  const bigText = "compressible chromium text ".repeat(4000);

  // Each expectation: what to send and how to check the echo.
  const plan = [
    { send: text, check: function (d) { return typeof d === "string" && d === text; }, name: "text" },
    { send: small, check: function (d) { return d instanceof ArrayBuffer && bytesEqual(new Uint8Array(d), small); }, name: "binary" },
    { send: "", check: function (d) { return d === ""; }, name: "empty-text" },
    { send: big, check: function (d) { return d instanceof ArrayBuffer && bytesEqual(new Uint8Array(d), big); }, name: "binary-200k" },
    { send: bigText, check: function (d) { return d === bigText; }, name: "text-108k" },
  ];
  let idx = 0;

  let ws;
  try {
    ws = new WebSocket(WS_URL);
  } catch (e) {
    finish(false, "constructor threw " + e);
    return;
  }
  ws.binaryType = "arraybuffer";
  ws.onopen = function () {
    steps.push("open(ext=" + JSON.stringify(ws.extensions) + ",proto=" + JSON.stringify(ws.protocol) + ")");
    if (!ws.extensions.startsWith("permessage-deflate")) { finish(false, "permessage-deflate not negotiated: " + ws.extensions); return; }
    ws.send(plan[0].send);
  };
  ws.onmessage = function (ev) {
    const p = plan[idx];
    if (!p) { finish(false, "unexpected extra message"); return; }
    if (!p.check(ev.data)) {
      const got = typeof ev.data === "string" ? "text(" + ev.data.length + ")" : "binary(" + ev.data.byteLength + ")";
      finish(false, "echo mismatch for " + p.name + ": got " + got);
      return;
    }
    steps.push(p.name);
    idx++;
    if (idx < plan.length) ws.send(plan[idx].send);
    else ws.close(1000, "done");
  };
  ws.onerror = function () { steps.push("error"); };
  ws.onclose = function (ev) {
    steps.push("close(" + ev.code + "," + ev.wasClean + ")");
    if (idx !== plan.length) { finish(false, "closed early code=" + ev.code + " reason=" + ev.reason); return; }
    if (ev.code !== 1000 || !ev.wasClean) { finish(false, "unclean close code=" + ev.code + " wasClean=" + ev.wasClean); return; }
    finish(true, "all " + plan.length + " echoes ok, close 1000 clean");
  };
})();
</script>
<img src="/hold" alt="">
</body></html>
"""


class _PageServer:
    """Loopback HTTP server: GET / -> page, POST /result -> captured, GET /hold -> waits for result."""

    def __init__(self, page):
        self.page = page.encode()
        self.result = None
        self.got_result = threading.Event()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def _send(self, code, body, ctype):
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                if self.path == "/":
                    self._send(200, outer.page, "text/html; charset=utf-8")
                elif self.path == "/hold":
                    outer.got_result.wait(PAGE_RESULT_WAIT_S)
                    self._send(200, b"GIF89a", "image/gif")
                else:
                    self._send(404, b"", "text/plain")

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n)
                if self.path == "/result":
                    try:
                        outer.result = json.loads(body)
                    except ValueError:
                        outer.result = {"ok": False, "detail": "bad result body " + body[:200].decode("latin-1")}
                    outer.got_result.set()
                self._send(204 if self.path == "/result" else 404, b"", "text/plain")

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.got_result.set()  # release any held /hold request
        self.httpd.shutdown()
        self.httpd.server_close()


def _chromium_binary():
    return which("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def _kill_group(proc):
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()


def _run_chromium(chromium, url, user_data_dir):
    cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--disable-dev-shm-usage", "--disable-extensions", "--mute-audio",
           f"--user-data-dir={user_data_dir}", "--virtual-time-budget=25000", "--dump-dom", url]
    # Own process group so the whole browser (zygote, renderer, utility processes) is killed on timeout.
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=CHROMIUM_TIMEOUT_S)
        return proc.returncode, out, err, False
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        out, err = proc.communicate()
        return proc.returncode, out or "", err or "", True
    finally:
        _kill_group(proc)


def _result_from_dom(dom):
    marker = "RESULT "
    i = dom.find(marker)
    if i < 0:
        return None
    j = dom.find("</pre>", i)
    raw = dom[i + len(marker): j if j >= 0 else None]
    raw = raw.replace("&quot;", '"').replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    try:
        return json.loads(raw)
    except ValueError:
        return None


def test_chromium_echo_text_and_binary(interop_server):
    chromium = _chromium_binary()
    if not chromium:
        pytest.skip("chromium not installed (apt-get install -y chromium)")
    ws_url = interop_server.url("/echo")
    page = PAGE.replace("__WS_URL__", json.dumps(ws_url))
    t0 = time.monotonic()
    with _PageServer(page) as ps, tempfile.TemporaryDirectory(prefix="roomcast-chromium-") as profile:
        rc, dom, err, timed_out = _run_chromium(chromium, f"http://127.0.0.1:{ps.port}/", profile)
        posted = ps.result
    elapsed = time.monotonic() - t0
    from_dom = _result_from_dom(dom)
    result = posted or from_dom
    diag = (f"chromium rc={rc} timed_out={timed_out} elapsed={elapsed:.1f}s\n"
            f"dom: {dom[-800:]}\nstderr: {err[-1500:]}\nserver log:\n{server_log_tail(interop_server)}")
    if result is None and timed_out:
        pytest.fail("chromium did not finish within %d s and reported nothing\n%s" % (CHROMIUM_TIMEOUT_S, diag))
    assert result is not None, "page never reported a result\n" + diag
    assert result["ok"], f"chromium WebSocket echo failed: {result['detail']} steps={result.get('steps')}\n{diag}"
    assert "close(1000,true)" in result["steps"]
    assert result["steps"][0].startswith('open(ext="permessage-deflate'), result["steps"]
    if from_dom is not None:
        assert from_dom["ok"], from_dom
