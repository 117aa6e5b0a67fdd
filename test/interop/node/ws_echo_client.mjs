// Interop client: the npm `ws` package against a roomcast /echo endpoint.
//
// usage: node ws_echo_client.mjs <ws://host:port/echo> <scenario|all> [scenario...]
// Prints one JSON object {"ok": bool, "ws_version": "...", "results": [{scenario, ok, ms, error?}]}
// on stdout; exit status 0 when every scenario passed, 1 on any failure, 2 on usage errors.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import WebSocket from 'ws';

const MiB = 1 << 20;
const STEP_TIMEOUT_MS = 15000;

const require = createRequire(import.meta.url);
let wsVersion = 'unknown';
try {
  wsVersion = JSON.parse(readFileSync(require.resolve('ws/package.json'), 'utf8')).version;
} catch { /* informational only */ }

class Fail extends Error {}

function check(cond, msg) {
  if (!cond) throw new Fail(msg);
}

function withTimeout(promise, ms, what) {
  let t;
  const timer = new Promise((_, reject) => {
    t = setTimeout(() => reject(new Fail(`timeout after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timer]).finally(() => clearTimeout(t));
}

// A connection wrapper that queues incoming messages/pongs and remembers the close.
class Conn {
  static open(url, options = {}) {
    return withTimeout(new Promise((resolve, reject) => {
      const ws = new WebSocket(url, { perMessageDeflate: false, maxPayload: 64 * MiB, ...options });
      const c = new Conn(ws);
      ws.once('open', () => resolve(c));
      ws.once('unexpected-response', (_req, res) =>
        reject(new Fail(`handshake rejected: HTTP ${res.statusCode}`)));
      ws.once('error', (err) => reject(err));
    }), STEP_TIMEOUT_MS, 'open');
  }

  constructor(ws) {
    this.ws = ws;
    this.messages = [];
    this.pongs = [];
    this.waiters = [];
    this.closed = null;
    this.error = null;
    ws.on('message', (data, isBinary) => { this.messages.push({ data, isBinary }); this.wake(); });
    ws.on('pong', (data) => { this.pongs.push(data); this.wake(); });
    ws.on('error', (err) => { this.error = err; this.wake(); });
    ws.on('close', (code, reason) => {
      this.closed = { code, reason: reason.toString('utf8') };
      this.wake();
    });
  }

  wake() {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  waitFor(pick, what) {
    return withTimeout(new Promise((resolve, reject) => {
      const attempt = () => {
        const v = pick();
        if (v !== undefined) return resolve(v);
        if (this.error) return reject(new Fail(`${what}: socket error ${this.error.message}`));
        if (this.closed) {
          return reject(new Fail(`${what}: connection closed by peer ` +
                                 `(code ${this.closed.code}, reason ${JSON.stringify(this.closed.reason)})`));
        }
        this.waiters.push(attempt);
      };
      attempt();
    }), STEP_TIMEOUT_MS, what);
  }

  nextMessage() {
    return this.waitFor(() => this.messages.shift(), 'message');
  }

  nextPong() {
    return this.waitFor(() => this.pongs.shift(), 'pong');
  }

  send(data, options) {
    return new Promise((resolve, reject) => {
      this.ws.send(data, options, (err) => (err ? reject(err) : resolve()));
    });
  }

  async closeAndWait(code, reason) {
    if (code === undefined) this.ws.close();
    else this.ws.close(code, reason);
    return withTimeout(new Promise((resolve) => {
      if (this.closed) return resolve(this.closed);
      this.ws.once('close', () => resolve(this.closed));
    }), STEP_TIMEOUT_MS, 'close');
  }
}

function describe(buf) {
  return `${buf.length} bytes`;
}

async function expectEcho(c, payload, { binary }) {
  const buf = Buffer.isBuffer(payload) ? payload : Buffer.from(payload, 'utf8');
  await c.send(payload, { binary });
  const m = await c.nextMessage();
  check(m.isBinary === binary,
        `opcode changed: sent ${binary ? 'binary' : 'text'}, got ${m.isBinary ? 'binary' : 'text'}`);
  check(m.data.length === buf.length, `length mismatch: sent ${describe(buf)}, got ${describe(m.data)}`);
  check(m.data.equals(buf), `payload mismatch (${describe(buf)})`);
}

async function cleanClose(c, code = 1000, reason = '') {
  const closed = await c.closeAndWait(code, reason);
  check(closed.code === code, `server replied to close ${code} with ${closed.code}`);
  return closed;
}

// Sends `parts` as one fragmented message: first frame carries the opcode, later ones are
// continuation frames, the last one has FIN.
async function sendFragmented(c, parts, binary) {
  for (let i = 0; i < parts.length; i++) {
    await c.send(parts[i], { binary, fin: i === parts.length - 1 });
  }
}

const scenarios = {
  async text(url) {
    const c = await Conn.open(url);
    for (const s of ['hello roomcast', '', 'x', 'a'.repeat(125), 'b'.repeat(126),
                     'c'.repeat(65535), 'd'.repeat(65536)]) {
      await expectEcho(c, s, { binary: false });
    }
    await cleanClose(c);
  },

  async utf8(url) {
    const c = await Conn.open(url);
    for (const s of ['héllo wörld', '日本語のテキスト — €', 'emoji 🎉🚀 𝄞', '\u0000nul \u007f',
                     '\ufeffBOM \uffff \u{10ffff}', 'Ω'.repeat(40000)]) {
      await expectEcho(c, s, { binary: false });
    }
    await cleanClose(c);
  },

  async binary(url) {
    const c = await Conn.open(url);
    const all = Buffer.alloc(256);
    for (let i = 0; i < 256; i++) all[i] = i;
    for (const b of [all, Buffer.alloc(0), Buffer.from([0xff, 0xfe, 0xc3, 0x28]), randomBytes(70000)]) {
      await expectEcho(c, b, { binary: true });
    }
    await cleanClose(c);
  },

  async fragmented(url) {
    const c = await Conn.open(url);
    // Text, with a 3-byte UTF-8 character (U+20AC) split across continuation frames.
    const euro = Buffer.from('€', 'utf8');
    const textParts = [Buffer.from('frag'), Buffer.from('mented '), euro.subarray(0, 1),
                       euro.subarray(1, 2), Buffer.alloc(0), Buffer.concat([euro.subarray(2), Buffer.from(' 🎉 end')])];
    await sendFragmented(c, textParts, false);
    let m = await c.nextMessage();
    check(!m.isBinary, 'fragmented text came back as binary');
    check(m.data.toString('utf8') === 'fragmented € 🎉 end', `text mismatch: ${JSON.stringify(m.data.toString())}`);

    // Binary, many fragments.
    const binParts = Array.from({ length: 100 }, (_, i) => randomBytes(500 + i));
    await sendFragmented(c, binParts, true);
    m = await c.nextMessage();
    check(m.isBinary, 'fragmented binary came back as text');
    check(m.data.equals(Buffer.concat(binParts)), 'fragmented binary payload mismatch');

    // A ping between fragments (control frames may be interleaved, RFC 6455 5.4).
    await c.send('one-', { binary: false, fin: false });
    c.ws.ping(Buffer.from('mid-fragment'));
    await c.send('two', { binary: false, fin: true });
    const pong = await c.nextPong();
    check(pong.toString() === 'mid-fragment', `pong payload ${JSON.stringify(pong.toString())}`);
    m = await c.nextMessage();
    check(!m.isBinary && m.data.toString() === 'one-two', `interleaved ping broke message: ${m.data}`);

    await expectEcho(c, 'after fragments', { binary: false });
    await cleanClose(c);
  },

  async large_1m(url) {
    const c = await Conn.open(url);
    await expectEcho(c, randomBytes(MiB), { binary: true });
    await expectEcho(c, 'é'.repeat(MiB / 2), { binary: false });
    await cleanClose(c);
  },

  async large_8m(url) {
    const c = await Conn.open(url);
    await expectEcho(c, randomBytes(8 * MiB), { binary: true });
    const parts = Array.from({ length: 8 }, () => randomBytes(MiB));
    await sendFragmented(c, parts, true);
    const m = await c.nextMessage();
    check(m.isBinary && m.data.equals(Buffer.concat(parts)), 'fragmented 8 MiB mismatch');
    await cleanClose(c);
  },

  async ping(url) {
    const c = await Conn.open(url);
    for (const p of [Buffer.alloc(0), Buffer.from('node-ping'), randomBytes(125)]) {
      c.ws.ping(p);
      const pong = await c.nextPong();
      check(pong.equals(p), `pong payload mismatch: sent ${describe(p)}, got ${describe(pong)}`);
    }
    await expectEcho(c, 'alive after pings', { binary: false });
    await cleanClose(c);
  },

  async close_1000(url) {
    const c = await Conn.open(url);
    await expectEcho(c, 'bye', { binary: false });
    const closed = await cleanClose(c, 1000);
    check(closed.code === 1000, `close code ${closed.code}`);
  },

  async close_4001(url) {
    const c = await Conn.open(url);
    await expectEcho(c, 'bye', { binary: false });
    await cleanClose(c, 4001, 'bye from node ✓');
  },

  // ws offers permessage-deflate when asked; the server accepts it (RFC 7692) and compressed echo works.
  async deflate_offer(url) {
    const c = await Conn.open(url, { perMessageDeflate: true });
    check(c.ws.extensions.startsWith('permessage-deflate'), `extension not negotiated: ${JSON.stringify(c.ws.extensions)}`);
    await expectEcho(c, 'compressible '.repeat(1000), { binary: false });
    await expectEcho(c, Buffer.alloc(5000), { binary: true });
    await expectEcho(c, randomBytes(MiB), { binary: true });
    await sendFragmented(c, ['a'.repeat(1000), 'b'.repeat(1000)], false);
    const m = await c.nextMessage();
    check(!m.isBinary && m.data.toString() === 'a'.repeat(1000) + 'b'.repeat(1000), 'fragmented mismatch');
    await cleanClose(c);
  },
};

async function main() {
  const [url, ...names] = process.argv.slice(2);
  if (!url || names.length === 0) {
    process.stderr.write(`usage: ws_echo_client.mjs URL (all|${Object.keys(scenarios).join('|')})...\n`);
    process.exit(2);
  }
  const selected = names.includes('all') ? Object.keys(scenarios) : names;
  for (const n of selected) {
    if (!scenarios[n]) {
      process.stderr.write(`unknown scenario ${n}\n`);
      process.exit(2);
    }
  }
  const results = [];
  for (const name of selected) {
    const t0 = Date.now();
    try {
      await scenarios[name](url);
      results.push({ scenario: name, ok: true, ms: Date.now() - t0 });
    } catch (err) {
      results.push({ scenario: name, ok: false, ms: Date.now() - t0,
                     error: err instanceof Fail ? err.message : String(err && err.stack || err) });
    }
  }
  const ok = results.every((r) => r.ok);
  process.stdout.write(JSON.stringify({ ok, ws_version: wsVersion, node: process.version, results }) + '\n');
  process.exit(ok ? 0 : 1);
}

main().catch((err) => {
  process.stdout.write(JSON.stringify({ ok: false, error: String(err && err.stack || err) }) + '\n');
  process.exit(1);
});
