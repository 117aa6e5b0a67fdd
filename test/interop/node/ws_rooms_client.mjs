// Room deliveries to Node `ws` clients: subscribes S clients to a room over /ws (control protocol),
// publishes N JSON messages through /publish/{room}, and checks every subscriber gets every message
// once, in seq order, with the data intact. Usage: node ws_rooms_client.mjs BASE_URL ROOM S N DEFLATE(0|1)
// BASE_URL is ws://host:port or wss://host:port (trust a test CA with NODE_EXTRA_CA_CERTS).
import WebSocket from 'ws';

const [base, room, subsArg, nArg, deflateArg] = process.argv.slice(2);
const S = Number(subsArg), N = Number(nArg), deflate = deflateArg === '1';

function open(path) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(base + path, { perMessageDeflate: deflate });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

function fail(msg) {
  console.log(JSON.stringify({ ok: false, error: msg }));
  process.exit(1);
}

const timer = setTimeout(() => fail('timed out'), 30000);
const subs = [];
for (let i = 0; i < S; i++) {
  const ws = await open('/ws');
  const got = [];
  const subscribed = new Promise((resolve) => {
    ws.on('message', (data) => {
      const m = JSON.parse(data.toString());
      if (m.op === 'subscribed') resolve();
      else if (m.op === 'error') fail('error reply: ' + data);
      else got.push(m);
    });
  });
  ws.send(JSON.stringify({ op: 'sub', room, id: i }));
  await subscribed;
  subs.push({ ws, got });
}
const extensions = subs.map((s) => s.ws.extensions);
const pub = await open('/publish/' + room);
const docs = [];
for (let i = 0; i < N; i++) {
  const d = { i, text: 'compressible '.repeat(40) };
  docs.push(d);
  pub.send(JSON.stringify(d));
}
const deadline = Date.now() + 20000;
while (subs.some((s) => s.got.length < N) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
for (const [k, s] of subs.entries()) {
  if (s.got.length !== N) fail(`subscriber ${k} got ${s.got.length} of ${N}`);
  for (let i = 0; i < N; i++) {
    if (s.got[i].seq !== i + 1) fail(`subscriber ${k}: seq ${s.got[i].seq} at ${i}`);
    if (JSON.stringify(s.got[i].data) !== JSON.stringify(docs[i])) fail(`subscriber ${k}: data mismatch at ${i}`);
  }
}
clearTimeout(timer);
for (const s of subs) s.ws.close(1000);
pub.close(1000);
console.log(JSON.stringify({ ok: true, extensions }));
process.exit(0);
