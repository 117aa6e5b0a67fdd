"""A raw subscriber's 101 is sent once the room's owner has registered it: it carries the room's state
(X-Roomcast-Seq / -Replayed / -Gap), and every message published after the client saw the 101 reaches it."""
import json

from roomcast_testing import start_server
from wsclient import OP_TEXT, Conn, WsClient, build_request


def _post(srv, room, body):
    c = Conn.open(srv.host, srv.port)
    try:
        c.send_raw((f"POST /publish/{room} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n"
                    f"Connection: close\r\n\r\n").encode() + body)
        r = c.read_http_response()
        assert r.status == 200, r
        return json.loads(r.body)["seq"]
    finally:
        c.close_socket()


def test_raw_subscriber_101_carries_the_room_state_and_misses_nothing():
    srv = start_server(["--threads", "4", "--history", "4"])
    try:
        for i in range(6):
            _post(srv, "raw101", b'"m%d"' % i)
        ws = WsClient.connect(srv.host, srv.port, path="/ws/raw101?since=0")
        assert ws.response.header("x-roomcast-seq") == "6"
        assert ws.response.header("x-roomcast-replayed") == "4"
        assert ws.response.header("x-roomcast-gap") == "true"
        for i in range(2, 6):
            ws.expect_message(OP_TEXT, b'"m%d"' % i)
        # Without since: nothing replayed, and a publish right after the 101 is delivered.
        for k in range(20):
            sub = WsClient.connect(srv.host, srv.port, path="/ws/raw101")
            assert sub.response.header("x-roomcast-replayed") == "0"
            seq = int(sub.response.header("x-roomcast-seq"))
            assert _post(srv, "raw101", b'"live%d"' % k) == seq + 1
            sub.expect_message(OP_TEXT, b'"live%d"' % k)
            sub.close_socket()
    finally:
        srv.stop()
