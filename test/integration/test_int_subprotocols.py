"""Sec-WebSocket-Protocol selection with --subprotocols chat,superchat (RFC 6455 4.2.2): the
first protocol in the client's list that the server supports is selected; none -> no header."""
import pytest

from roomcast_testing import start_server
from wsclient import OP_TEXT, WsClient, assert_echo_works


@pytest.fixture(scope="module")
def server():
    srv = start_server(["--threads", "1", "--subprotocols", "chat,superchat"])
    yield srv
    srv.stop()


@pytest.mark.parametrize("offer,selected", [
    ("superchat, chat", "superchat"),
    ("chat, superchat", "chat"),
    ("chat", "chat"),
    ("superchat", "superchat"),
    ("foo, chat", "chat"),
    ("foo,superchat,chat", "superchat"),
    ("foo", None),
    ("foo, bar", None),
    ("superchatx, cha", None),
], ids=lambda v: str(v).replace(", ", "+").replace(",", "+"))
def test_subprotocol_selection(server, offer, selected):
    c = WsClient.connect(server.host, server.port, protocols=offer)
    try:
        assert c.response.header("sec-websocket-protocol") == selected, c.response
        c.send_text(b"hi")
        c.expect_message(OP_TEXT, b"hi")
        c.close_handshake()
    finally:
        c.close_socket()


def test_no_offer_no_header(server):
    c = WsClient.connect(server.host, server.port)
    assert c.response.header("sec-websocket-protocol") is None, c.response
    c.close_handshake()


def test_offer_split_over_two_header_lines(server):
    # RFC 6455 11.3.4: repeated header lines are one logical list.
    c = WsClient.connect(server.host, server.port, headers=[("Sec-WebSocket-Protocol", "foo"),
                                                             ("Sec-WebSocket-Protocol", "superchat")])
    assert c.response.header("sec-websocket-protocol") == "superchat", c.response
    c.close_handshake()


def test_only_one_protocol_header_in_response(server):
    c = WsClient.connect(server.host, server.port, protocols="superchat, chat")
    names = [k.lower() for k, _ in c.response.raw_headers]
    assert names.count("sec-websocket-protocol") == 1, c.response
    c.close_handshake()


def test_server_without_subprotocols_never_selects(make_server):
    srv = make_server(["--threads", "1"])
    c = WsClient.connect(srv.host, srv.port, protocols="chat, superchat")
    assert c.response.header("sec-websocket-protocol") is None, c.response
    c.close_handshake()
    assert_echo_works(srv.host, srv.port)
