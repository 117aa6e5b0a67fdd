"""Autobahn section 4: reserved opcodes 3-7 (data) and 0xB-0xF (control) MUST fail with 1002."""
import pytest

from wsclient import OP_PING, OP_TEXT, encode_frame

DATA_RESERVED = [3, 4, 5, 6, 7]
CONTROL_RESERVED = [0xB, 0xC, 0xD, 0xE, 0xF]


def test_case_4_1_1_opcode_3(ws):
    ws.send_frame(3, b"")
    ws.expect_close(1002)


def test_case_4_1_2_opcode_4_with_payload(ws):
    ws.send_frame(4, b"reserved opcode payload")
    ws.expect_close(1002)


@pytest.mark.parametrize("case,opcode,payload", [("4_1_3", 5, b""),
                                                 ("4_1_4", 6, b"reserved opcode payload"),
                                                 ("4_1_5", 7, b"reserved opcode payload"),
                                                 ("4_2_3", 0xD, b""),
                                                 ("4_2_4", 0xE, b"reserved opcode payload"),
                                                 ("4_2_5", 0xF, b"reserved opcode payload")],
                         ids=lambda v: v if isinstance(v, str) else None)
def test_case_4_x_text_then_reserved_then_ping(ws, case, opcode, payload):
    ws.send_raw(encode_frame(OP_TEXT, b"Hello, world!") + encode_frame(opcode, payload)
                + encode_frame(OP_PING, b""))
    ws.expect_message(OP_TEXT, b"Hello, world!")
    ws.expect_close(1002)  # and no pong


def test_case_4_2_1_opcode_11(ws):
    ws.send_frame(0xB, b"")
    ws.expect_close(1002)


def test_case_4_2_2_opcode_12_with_payload(ws):
    ws.send_frame(0xC, b"reserved opcode payload")
    ws.expect_close(1002)


@pytest.mark.parametrize("opcode", DATA_RESERVED + CONTROL_RESERVED)
@pytest.mark.parametrize("fin", [True, False], ids=["fin", "nofin"])
def test_reserved_opcode_every_value(ws, opcode, fin):
    ws.send_frame(opcode, b"x" * 10, fin=fin)
    ws.expect_close(1002)


@pytest.mark.parametrize("opcode", DATA_RESERVED + CONTROL_RESERVED)
def test_reserved_opcode_inside_fragmented_message(ws, opcode):
    ws.send_frame(OP_TEXT, b"start", fin=False)
    ws.send_frame(opcode, b"x")
    ws.expect_close(1002)


@pytest.mark.parametrize("opcode", [3, 0xB])
def test_reserved_opcode_split_bytewise(ws, opcode):
    ws.send_frame(opcode, b"abc", chunk=1)
    ws.expect_close(1002)
