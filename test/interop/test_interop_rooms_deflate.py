"""Room deliveries to real clients that negotiated permessage-deflate (Python websockets, compression on by
default), mixed with clients that did not: everyone gets every message intact, and each room message is
compressed once per reactor, not once per subscriber (checked with the server's counter)."""
import asyncio
import json
import re

import websockets

from roomcast_server import RoomcastServer
from rooms_helpers import reactor_counts


def _metric(srv, name):
    status, _, body = srv.http_get("/metrics")
    assert status == 200
    m = re.search(rb"^" + name.encode() + rb" (\d+)$", body, re.M)
    return int(m.group(1))


def test_deflate_subscribers_share_one_compressed_frame_per_message():
    with RoomcastServer(["--threads", "1"]) as srv:
        n_msgs, n_deflate, n_plain = 25, 6, 3
        async def run():
            url = f"ws://127.0.0.1:{srv.port}"
            zsubs = [await websockets.connect(url + "/ws") for _ in range(n_deflate)]
            psubs = [await websockets.connect(url + "/ws", compression=None) for _ in range(n_plain)]
            raw = await websockets.connect(url + "/ws/zroom")
            for ws in zsubs:
                assert ws.extensions, "websockets offers permessage-deflate by default"
            for ws in zsubs + psubs:
                await ws.send(json.dumps({"op": "sub", "room": "zroom"}))
                assert json.loads(await ws.recv())["op"] == "subscribed"
            before = _metric(srv, "roomcast_deflate_shared_frames_total")
            pub = await websockets.connect(url + "/publish/zroom")
            docs = [{"i": i, "text": "compressible " * 40} for i in range(n_msgs)]
            for d in docs:
                await pub.send(json.dumps(d))
            for ws in zsubs + psubs:
                got = [json.loads(await asyncio.wait_for(ws.recv(), 10)) for _ in range(n_msgs)]
                assert [g["data"] for g in got] == docs
                assert [g["seq"] for g in got] == list(range(1, n_msgs + 1))
            assert [json.loads(await asyncio.wait_for(raw.recv(), 10)) for _ in range(n_msgs)] == docs
            # One reactor: one shared compressed frame per message per wire format in use (enveloped for
            # /ws, raw for the raw subscriber that also negotiated deflate) -- not one per subscriber.
            built = _metric(srv, "roomcast_deflate_shared_frames_total") - before
            assert built == 2 * n_msgs, built
            for ws in zsubs + psubs + [raw, pub]:
                await ws.close()
        asyncio.run(run())


def test_deflate_room_message_is_compressed_once_per_process_across_reactors():
    """Two reactors, compressing subscribers on both (placement read from /health's per-reactor counts as
    each connects): the room's owner compresses each message once and both reactors send that frame."""
    with RoomcastServer(["--threads", "2"]) as srv:
        n_msgs = 20
        async def run():
            url = f"ws://127.0.0.1:{srv.port}"
            zsubs, placed = [], [0, 0]
            for _ in range(64):  # SO_REUSEPORT hashes addresses: keep connecting until both reactors have 2
                before = reactor_counts(srv)
                ws = await websockets.connect(url + "/ws")
                assert ws.extensions
                after = reactor_counts(srv)
                placed[[r for r in after if after[r] == before.get(r, 0) + 1][0]] += 1
                zsubs.append(ws)
                if min(placed) >= 2:
                    break
            assert min(placed) >= 2, placed
            plain = await websockets.connect(url + "/ws", compression=None)
            for ws in zsubs + [plain]:
                await ws.send(json.dumps({"op": "sub", "room": "zall"}))
                assert json.loads(await ws.recv())["op"] == "subscribed"
            before = _metric(srv, "roomcast_deflate_shared_frames_total")
            pub = await websockets.connect(url + "/publish/zall")
            docs = [{"i": i, "text": "compressible " * 30} for i in range(n_msgs)]
            for d in docs:
                await pub.send(json.dumps(d))
            for ws in zsubs + [plain]:
                got = [json.loads(await asyncio.wait_for(ws.recv(), 10)) for _ in range(n_msgs)]
                assert [g["data"] for g in got] == docs
            built = _metric(srv, "roomcast_deflate_shared_frames_total") - before
            assert built == n_msgs, f"{built} compressions for {n_msgs} messages on {placed} subscribers per reactor"
            for ws in zsubs + [plain, pub]:
                await ws.close()
        asyncio.run(run())
