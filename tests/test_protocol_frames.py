"""Frames, message layout, message IDs, names and Go quoting (tcp-protocol.md §2, §3, §13)."""

import hashlib
import struct
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nsqpy.protocol import (
    CLOSE_WAIT_FRAME, FRAME_TYPE_ERROR, FRAME_TYPE_MESSAGE, FRAME_TYPE_RESPONSE,
    HEARTBEAT_FRAME, MSG_HEADER_SIZE, OK_FRAME, FrameDecoder, IDGenerationError,
    IDGenerator, ProtocolError, decode_message, default_node_id, encode_error,
    encode_frame, encode_message, encode_message_frame, encode_response, go_quote,
    is_ephemeral, is_valid_channel_name, is_valid_topic_name,
)
from nsqpy.protocol.ids import TWEPOCH, seq_hex

MID = b"0123456789abcdef"

# ---------------------------------------------------------------- frames


def test_frame_type_constants():
    assert (FRAME_TYPE_RESPONSE, FRAME_TYPE_ERROR, FRAME_TYPE_MESSAGE) == (0, 1, 2)


def test_ok_frame_bytes_match_spec():
    assert OK_FRAME == bytes.fromhex("00000006000000004f4b")


def test_heartbeat_frame_bytes_match_spec():
    assert HEARTBEAT_FRAME == bytes.fromhex("0000000f000000005f6865617274626561745f")


def test_close_wait_frame():
    assert CLOSE_WAIT_FRAME == b"\x00\x00\x00\x0e\x00\x00\x00\x00CLOSE_WAIT"


def test_encode_frame_size_is_four_plus_data():
    assert encode_frame(7, b"abc") == b"\x00\x00\x00\x07\x00\x00\x00\x07abc"


def test_encode_response_and_error_types():
    assert encode_response(b"x")[4:8] == b"\x00\x00\x00\x00"
    assert encode_error(b"E_INVALID x") == b"\x00\x00\x00\x0f\x00\x00\x00\x01E_INVALID x"


def test_bad_protocol_error_frame_matches_spec():
    assert encode_error(b"E_BAD_PROTOCOL")[:4] == b"\x00\x00\x00\x12"


def test_protocol_error_frame_data():
    e = ProtocolError("E_INVALID", "invalid command FOO")
    assert e.frame_data() == b"E_INVALID invalid command FOO"
    assert e.fatal is True and e.code == "E_INVALID" and e.desc == "invalid command FOO"


def test_protocol_error_non_fatal_flag():
    e = ProtocolError("E_FIN_FAILED", "FIN x failed ID not in flight", fatal=False)
    assert not e.fatal
    assert str(e) == "E_FIN_FAILED FIN x failed ID not in flight"


def test_encode_message_frame_layout():
    frame = encode_message_frame(1234567890123456789, 3, MID, b"body")
    size, ftype, ts, attempts = struct.unpack(">iiqH", frame[:18])
    assert size == 4 + 26 + 4 and ftype == FRAME_TYPE_MESSAGE
    assert ts == 1234567890123456789 and attempts == 3
    assert frame[18:34] == MID and frame[34:] == b"body"


def test_encode_message_frame_equals_frame_of_encoded_message():
    assert encode_message_frame(5, 1, MID, b"xy") == \
        encode_frame(FRAME_TYPE_MESSAGE, encode_message(5, 1, MID, b"xy"))


def test_encode_message_layout_and_header_size():
    data = encode_message(-1, 65535, MID, b"z")
    assert MSG_HEADER_SIZE == 26 and len(data) == 27
    assert data[:10] == b"\xff" * 10 and data[10:26] == MID


def test_message_round_trip():
    assert decode_message(encode_message(99, 2, MID, b"\x00body")) == (99, 2, MID, b"\x00body")


def test_message_attempts_truncated_to_uint16():
    assert decode_message(encode_message(0, 65536 + 4, MID, b"x"))[1] == 4


def test_decode_message_shorter_than_26_is_value_error():
    with pytest.raises(ValueError):
        decode_message(b"\x00" * 25)


def test_decode_message_empty_body_at_exactly_26():
    assert decode_message(encode_message(1, 1, MID, b"")) == (1, 1, MID, b"")


def test_frame_decoder_round_trip():
    d = FrameDecoder()
    d.feed(OK_FRAME + encode_error(b"E_X y") + encode_message_frame(1, 1, MID, b"m"))
    assert d.frames() == [(0, b"OK"), (1, b"E_X y"), (2, encode_message(1, 1, MID, b"m"))]
    assert d.frames() == []


def test_frame_decoder_split_at_every_byte():
    stream = OK_FRAME + HEARTBEAT_FRAME + encode_message_frame(7, 2, MID, b"hello")
    expected = [(0, b"OK"), (0, b"_heartbeat_"), (2, encode_message(7, 2, MID, b"hello"))]
    for cut in range(len(stream) + 1):
        d = FrameDecoder()
        d.feed(stream[:cut])
        got = d.frames()
        d.feed(stream[cut:])
        assert got + d.frames() == expected


def test_frame_decoder_incomplete_returns_none():
    d = FrameDecoder()
    d.feed(OK_FRAME[:9])
    assert d.next_frame() is None
    d.feed(OK_FRAME[9:])
    assert d.next_frame() == (0, b"OK")
    assert d.next_frame() is None


def test_frame_decoder_empty_data_frame():
    d = FrameDecoder()
    d.feed(b"\x00\x00\x00\x04\x00\x00\x00\x00")
    assert d.next_frame() == (0, b"")


def test_frame_decoder_size_below_four_raises():
    d = FrameDecoder()
    d.feed(b"\x00\x00\x00\x03\x00\x00\x00\x00")
    with pytest.raises(ProtocolError):
        d.next_frame()


def test_frame_decoder_negative_size_raises():
    d = FrameDecoder()
    d.feed(b"\xff\xff\xff\xff")
    with pytest.raises(ProtocolError):
        d.next_frame()


def test_frame_decoder_http_response_detected():
    d = FrameDecoder(max_frame_size=1 << 20)
    d.feed(b"HTTP/1.1 400 Bad Request\r\n")
    with pytest.raises(ProtocolError, match="HTTP"):
        d.next_frame()


def test_frame_decoder_max_frame_size():
    d = FrameDecoder(max_frame_size=10)
    d.feed(encode_response(b"x" * 7))
    with pytest.raises(ProtocolError):
        d.next_frame()


def test_frame_decoder_many_frames_compacts_buffer():
    d = FrameDecoder()
    n = 0
    for _ in range(200):
        d.feed(HEARTBEAT_FRAME * 50)
        n += len(d.frames())
    assert n == 10000 and d.buffered() == 0


# ---------------------------------------------------------------- ids


class FakeClock:
    def __init__(self, ns):
        self.ns = ns

    def __call__(self):
        return self.ns


def test_ids_are_16_lowercase_hex_bytes():
    mid = IDGenerator(1).next_id()
    assert isinstance(mid, bytes) and len(mid) == 16
    assert all(c in b"0123456789abcdef" for c in mid)


def test_ids_are_strictly_increasing():
    g = IDGenerator(0)
    ids = []
    while len(ids) < 5000:
        try:
            ids.append(g.next_id())
        except IDGenerationError:
            pass
    assert ids == sorted(ids) and len(set(ids)) == len(ids)


def test_id_bit_layout():
    now = (TWEPOCH + 1000) << 20
    g = IDGenerator(1023, clock=FakeClock(now))
    v = int(g.next_id(), 16)
    assert v >> 22 == 1000
    assert (v >> 12) & 0x3FF == 1023
    assert v & 0xFFF == 0


def test_id_sequence_increments_within_time_unit_and_resets():
    clock = FakeClock((TWEPOCH + 5) << 20)
    g = IDGenerator(3, clock=clock)
    assert [int(g.next_id(), 16) & 0xFFF for _ in range(3)] == [0, 1, 2]
    clock.ns += 1 << 20
    assert int(g.next_id(), 16) & 0xFFF == 0


def test_id_clock_going_backwards_raises():
    clock = FakeClock((TWEPOCH + 5) << 20)
    g = IDGenerator(3, clock=clock)
    g.next_id()
    clock.ns -= 1 << 20
    with pytest.raises(IDGenerationError):
        g.next_id()


def test_id_sequence_exhaustion_raises_then_recovers_next_unit():
    clock = FakeClock((TWEPOCH + 5) << 20)
    g = IDGenerator(3, clock=clock)
    for _ in range(4096):
        g.next_id()
    with pytest.raises(IDGenerationError):
        g.next_id()
    with pytest.raises(IDGenerationError):  # still the same unit: id would go backwards
        g.next_id()
    clock.ns += 1 << 20
    assert int(g.next_id(), 16) & 0xFFF == 0


def _reserved_ids(g, n):
    prefix, first, count = g.reserve(n)
    return [prefix + seq_hex()[first + i] for i in range(count)]


def test_id_reserve_gives_the_ids_next_id_would():
    clock_a, clock_b = FakeClock((TWEPOCH + 7) << 20), FakeClock((TWEPOCH + 7) << 20)
    a, b = IDGenerator(517, clock=clock_a), IDGenerator(517, clock=clock_b)
    for step in (1, 5, 200, 3):
        assert _reserved_ids(a, step) == [b.next_id() for _ in range(step)]
    clock_a.ns += 1 << 20
    clock_b.ns += 1 << 20
    assert _reserved_ids(a, 10) == [b.next_id() for _ in range(10)]


def test_id_reserve_stops_at_the_end_of_the_time_unit():
    clock = FakeClock((TWEPOCH + 9) << 20)
    g = IDGenerator(3, clock=clock)
    ids = _reserved_ids(g, 4000) + _reserved_ids(g, 4000)
    assert len(ids) == 4096 and [int(i, 16) & 0xFFF for i in ids] == list(range(4096))
    with pytest.raises(IDGenerationError):
        g.reserve(1)
    with pytest.raises(IDGenerationError):  # same unit: would go backwards, like next_id
        g.reserve(1)
    clock.ns += 1 << 20
    assert [int(i, 16) & 0xFFF for i in _reserved_ids(g, 2)] == [0, 1]


@given(st.lists(st.sampled_from(["id", "id", "id", "id", "tick", "back", "burst"]),
                max_size=80))
@settings(max_examples=200, deadline=None)
def test_id_one_behaves_as_next_id(steps):
    """one() (the single-publish path) gives next_id's ids and raises where it raises,
    across time units, a clock going backwards and an exhausted sequence."""
    clock_a, clock_b = FakeClock((TWEPOCH + 11) << 20), FakeClock((TWEPOCH + 11) << 20)
    a, b = IDGenerator(42, clock=clock_a), IDGenerator(42, clock=clock_b)

    def both(fa, fb):
        try:
            ra = fa()
        except IDGenerationError as e:
            ra = type(e)
        try:
            rb = fb()
        except IDGenerationError as e:
            rb = type(e)
        assert ra == rb

    for step in steps:
        if step == "tick":
            clock_a.ns += 1 << 20
            clock_b.ns += 1 << 20
        elif step == "back":
            clock_a.ns -= 1 << 20
            clock_b.ns -= 1 << 20
        elif step == "burst":
            for _ in range(1500):
                both(a.one, b.next_id)
        else:
            both(a.one, b.next_id)


def test_id_reserve_refuses_a_clock_going_backwards():
    clock = FakeClock((TWEPOCH + 9) << 20)
    g = IDGenerator(3, clock=clock)
    g.reserve(3)
    clock.ns -= 1 << 20
    with pytest.raises(IDGenerationError):
        g.reserve(1)


def test_id_generator_rejects_node_id_out_of_range():
    with pytest.raises(ValueError):
        IDGenerator(1024)


def test_default_node_id_is_crc32_of_md5_mod_1024():
    for host in ["localhost", "nsq-1.example.com", ""]:
        expected = zlib.crc32(hashlib.md5(host.encode()).digest()) % 1024
        assert default_node_id(host) == expected
        assert 0 <= default_node_id(host) < 1024


# ---------------------------------------------------------------- names


@pytest.mark.parametrize("name", ["a", "A.b-c_9", "x" * 64, "t#ephemeral", "a" * 54 + "#ephemeral",
                                  ".", "-", "_"])
def test_valid_names(name):
    assert is_valid_topic_name(name) and is_valid_channel_name(name)
    assert is_valid_topic_name(name.encode()) and is_valid_channel_name(name.encode())


@pytest.mark.parametrize("name", ["", "x" * 65, "a" * 55 + "#ephemeral", "#ephemeral", "a b",
                                  "a#eph", "a#ephemeral#ephemeral", "a\n", "a/b", "é", "a:b",
                                  "a#EPHEMERAL"])
def test_invalid_names(name):
    assert not is_valid_topic_name(name) and not is_valid_channel_name(name)
    assert not is_valid_topic_name(name.encode("utf-8"))


def test_name_length_counts_bytes():
    assert not is_valid_topic_name(b"\xc3\xa9")


def test_is_ephemeral():
    assert is_ephemeral("t#ephemeral") and not is_ephemeral("t") and not is_ephemeral("t#eph")


def test_names_accept_bytearray():
    assert is_valid_topic_name(bytearray(b"abc"))


# ---------------------------------------------------------------- go_quote


@pytest.mark.parametrize("raw,quoted", [
    (b"abc", '"abc"'),
    (b"", '""'),
    (b'a"b', '"a\\"b"'),
    (b"a\\b", '"a\\\\b"'),
    (b"\a\b\f\n\r\t\v", '"\\a\\b\\f\\n\\r\\t\\v"'),
    (b"\x00\x1f\x7f", '"\\x00\\x1f\\x7f"'),
    (b"\xff", '"\\xff"'),
    (b"\xe2\x82", '"\\xe2\\x82"'),
    (b"\xe2\x82A", '"\\xe2\\x82A"'),
    ("é😀".encode(), '"é😀"'),
    (b"\xc2\xa0", '"\\u00a0"'),
    (b"\xe2\x80\xa8", '"\\u2028"'),
    (b"\xef\xbb\xbf", '"\\ufeff"'),
    (b"\xf3\xa0\x80\x81", '"\\U000e0001"'),
    (b"\xed\xa0\x80", '"\\xed\\xa0\\x80"'),
    (b"\xf4\x90\x80\x80", '"\\xf4\\x90\\x80\\x80"'),
    (b"\xc0\xaf", '"\\xc0\\xaf"'),
    (b"\xef\xbf\xbd", '"\ufffd"'),
    (b" ", '" "'),
])
def test_go_quote(raw, quoted):
    assert go_quote(raw) == quoted


def test_go_quote_accepts_str():
    assert go_quote("a\nb") == '"a\\nb"'
