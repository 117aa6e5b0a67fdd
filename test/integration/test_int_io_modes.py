"""The two I/O paths of a reactor give the same bytes: --io-uring on (a turn's reads and writes batched
into io_uring system calls, src/net/uring.hpp) and --io-uring off (one recv()/sendmsg() per socket).
Concurrent pipelined echo of mixed sizes (below and above the copy threshold, above the 64 KiB read
slice), clients that stop reading (short batched writes whose rest is queued), room fan-out, and the
counters that show the batching happened."""
import os
import random
import threading

import pytest

from rooms_helpers import (QUIET, metrics, raw_publisher, raw_subscriber, small_rcvbuf_socket, ws_over_socket)
from wsclient import OP_BINARY, OP_TEXT, WsClient

MODES = ["on", "off"]
SIZES = [0, 1, 16, 125, 126, 1000, 4095, 4096, 20000, 65535, 65536, 70000, 200000]


def _uring_available(srv):
    return not any("io_uring unavailable" in line for line in srv.stderr_lines + srv.stdout_lines)


def _reader(client, n, out, errors):
    try:
        for _ in range(n):
            out.append(client.recv_nonping(timeout=20))
    except Exception as e:  # reported by the main thread
        errors.append(repr(e))


def _payloads(seed, count):
    rnd = random.Random(seed)
    return [(OP_BINARY, rnd.randbytes(SIZES[(seed + i) % len(SIZES)])) if i % 3 else
            (OP_TEXT, ("é%d" % i).encode() * (SIZES[(seed + i) % len(SIZES)] // 4)) for i in range(count)]


@pytest.mark.parametrize("mode", MODES)
def test_concurrent_pipelined_echo_is_byte_exact(make_server, mode):
    srv = make_server(["--threads", "2", "--io-uring", mode, "--max-message-size", "1M"] + QUIET)
    clients, readers, results, errors = [], [], [], []
    per_client = 40
    for k in range(24):
        if k % 4 == 0:  # a small receive window: the server's writes come back short and are queued
            c = ws_over_socket(small_rcvbuf_socket(srv.host, srv.port), srv.host, srv.port, "/echo")
        else:
            c = WsClient.connect(srv.host, srv.port, "/echo")
        out = []
        t = threading.Thread(target=_reader, args=(c, per_client, out, errors), daemon=True)
        t.start()
        clients.append(c)
        readers.append(t)
        results.append(out)
    sent = [_payloads(k, per_client) for k in range(len(clients))]
    for i in range(per_client):  # interleaved across clients, pipelined per client
        for k, c in enumerate(clients):
            op, data = sent[k][i]
            c.send_frame(op, data)
    for t in readers:
        t.join(60)
    assert not errors, errors[:3]
    for k in range(len(clients)):
        got = [(f.opcode, f.payload) for f in results[k]]
        assert len(got) == per_client, (k, len(got))
        for i, ((op, data), (gop, gdata)) in enumerate(zip(sent[k], got)):
            assert gop == op and gdata == data, f"client {k} message {i}: {len(gdata)} bytes vs {len(data)}"
    m = metrics(srv)
    if mode == "off":
        assert m["roomcast_io_batches_total"] == 0
    elif _uring_available(srv):
        # Many operations per system call: the point of batching.
        assert m["roomcast_io_batched_ops_total"] > m["roomcast_io_batches_total"] > 0, m
    for c in clients:
        c.sock.close()


@pytest.mark.parametrize("mode", MODES)
def test_room_fanout_in_order_to_every_subscriber(make_server, mode):
    srv = make_server(["--threads", "2", "--io-uring", mode] + QUIET)
    subs = [raw_subscriber(srv.host, srv.port, "io.modes") for _ in range(30)]
    pub = raw_publisher(srv.host, srv.port, "io.modes")
    n = 300
    outs, errors, threads = [], [], []
    for s in subs:
        out = []
        t = threading.Thread(target=_reader, args=(s, n, out, errors), daemon=True)
        t.start()
        outs.append(out)
        threads.append(t)
    msgs = [b"%06d" % i + os.urandom(i % 700) for i in range(n)]
    for m in msgs:
        pub.send_frame(OP_BINARY, m)
    for t in threads:
        t.join(30)
    assert not errors, errors[:3]
    for out in outs:
        assert [f.payload for f in out] == msgs
    for s in subs + [pub]:
        s.sock.close()
