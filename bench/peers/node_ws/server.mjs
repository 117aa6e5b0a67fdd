// Comparison peer: Node's `ws` with the same endpoints roomcast serves for benchmarks (one thread: Node's
// event loop).
//   GET /echo            WebSocket echo (opcode preserved)
//   GET /ws/{room}       raw subscriber: every message published to the room, as published
//   GET /publish/{room}  raw publisher: each message goes to every subscriber of the room
//   GET /health          200 {"status":"ok"}
// A subscriber with more than MAX_BUFFERED_BYTES queued is closed with 1008 (slow consumer), like
// roomcast's default policy. permessage-deflate is off, as in roomcast's default.
//   node server.mjs [--listen ADDR:PORT]   (default 127.0.0.1:0; prints "listening on ADDR:PORT")
import http from 'node:http';
import { WebSocketServer } from 'ws';

const MAX_MESSAGE_BYTES = 16 * 1024 * 1024;
const MAX_BUFFERED_BYTES = 64 * 1024 * 1024;

let listen = '127.0.0.1:0';
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i];
  if (a === '--listen' && i + 1 < process.argv.length) listen = process.argv[++i];
  else if (a === '--help') {
    console.log('usage: node server.mjs [--listen ADDR:PORT]  (default 127.0.0.1:0)');
    process.exit(0);
  } else {
    console.error(`node_ws: unknown option '${a}'`);
    process.exit(2);
  }
}
const colon = listen.lastIndexOf(':');
const host = listen.slice(0, colon);
const port = Number(listen.slice(colon + 1));
if (colon < 0 || !Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`node_ws: --listen: expected ADDR:PORT, got '${listen}'`);
  process.exit(2);
}

const rooms = new Map(); // room name -> Set of subscriber sockets
const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: MAX_MESSAGE_BYTES });

function route(ws, path) {
  if (path === '/echo') {
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
    return;
  }
  if (path.startsWith('/ws/')) {
    const name = path.slice(4);
    let set = rooms.get(name);
    if (!set) rooms.set(name, (set = new Set()));
    set.add(ws);
    ws.on('close', () => {
      set.delete(ws);
      if (set.size === 0 && rooms.get(name) === set) rooms.delete(name);
    });
    return;
  }
  const name = path.slice('/publish/'.length);
  ws.on('message', (data, isBinary) => {
    const set = rooms.get(name);
    if (!set) return;
    for (const sub of set) {
      if (sub.bufferedAmount > MAX_BUFFERED_BYTES) {
        sub.close(1008, 'slow consumer');
        continue;
      }
      sub.send(data, { binary: isBinary });
    }
  });
}

const server = http.createServer((req, res) => {
  const path = req.url.split('?')[0];
  if (req.method === 'GET' && path === '/health') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"status":"ok"}');
    return;
  }
  res.writeHead(404, { 'content-type': 'application/json' });
  res.end('{"error":"not found"}');
});

server.on('upgrade', (req, socket, head) => {
  const path = req.url.split('?')[0];
  const ok = path === '/echo' || (path.startsWith('/ws/') && path.length > 4) ||
    (path.startsWith('/publish/') && path.length > 9);
  if (!ok) {
    socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
    return;
  }
  socket.setNoDelay(true);
  wss.handleUpgrade(req, socket, head, (ws) => route(ws, path));
});

server.listen(port, host, () => {
  const a = server.address();
  console.log(`listening on ${a.address}:${a.port}`);
});
