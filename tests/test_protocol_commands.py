"""Command-stream parser and client encoders (tcp-protocol.md §4-§6)."""

import json
import struct

import pytest

from nsqpy.protocol import (
    MAGIC_V2, SKIP, Auth, Cls, CommandParser, Dpub, Fin, Identify, Limits, Mpub, Nop,
    ProtocolError, Pub, Rdy, Req, Sub, Touch, encode_auth, encode_cls, encode_dpub,
    encode_fin, encode_identify, encode_mpub, encode_nop, encode_pub, encode_rdy,
    encode_req, encode_sub, encode_touch,
)

MID = b"0123456789abcdef"


def i32(n):
    return struct.pack(">i", n)


def u32(n):
    return struct.pack(">I", n)


def parse(data, limits=None, precheck=None, chunks=None, **kw):
    """All commands from ``data`` (fed whole, or at the given cut points)."""
    p = CommandParser(limits or Limits(), precheck, **kw)
    out = []
    pieces = [data] if chunks is None else chunks
    for piece in pieces:
        p.feed(piece)
        while (c := p.next_command()) is not None:
            out.append(c)
    return out


def error(data, limits=None, precheck=None, **kw) -> bytes:
    with pytest.raises(ProtocolError) as ei:
        parse(data, limits, precheck, **kw)
    assert ei.value.fatal
    return ei.value.frame_data()


# ---------------------------------------------------------------- line framing


def test_empty_line_is_invalid_command_with_trailing_space():
    assert error(b"\n") == b"E_INVALID invalid command "


def test_crlf_empty_line_is_invalid_command_with_trailing_space():
    assert error(b"\r\n") == b"E_INVALID invalid command "


def test_unknown_command_is_invalid_command_with_name():
    assert error(b"FOO bar\n") == b"E_INVALID invalid command FOO"


def test_command_names_are_case_sensitive():
    assert error(b"nop\n") == b"E_INVALID invalid command nop"


def test_unknown_command_name_non_utf8_bytes_echoed_raw():
    assert error(b"F\xffO\n") == b"E_INVALID invalid command F\xffO"


def test_trailing_cr_is_stripped():
    assert parse(b"FIN " + MID + b"\r\n") == [Fin(MID)]


def test_only_one_trailing_cr_is_stripped():
    assert error(b"FIN " + MID + b"\r\r\n") == b"E_INVALID invalid message ID"


def test_double_space_gives_empty_param():
    assert error(b"FIN  " + MID + b"\n") == b"E_INVALID invalid message ID"


def test_incomplete_line_waits_for_newline():
    p = CommandParser(Limits())
    p.feed(b"NO")
    assert p.next_command() is None
    p.feed(b"P")
    assert p.next_command() is None
    p.feed(b"\n")
    assert p.next_command() == Nop()
    assert p.next_command() is None


def test_several_commands_in_one_feed():
    data = b"NOP\n" + encode_pub("t", b"x") + b"RDY 3\n" + b"FIN " + MID + b"\n"
    assert parse(data) == [Nop(), Pub("t", b"x"), Rdy(3), Fin(MID)]


def test_line_without_newline_longer_than_guard_is_invalid():
    lim = Limits(max_body_size=1000)
    p = CommandParser(lim)
    p.feed(b"A" * 5096)
    assert p.next_command() is None
    p.feed(b"A")
    with pytest.raises(ProtocolError) as ei:
        p.next_command()
    assert ei.value.frame_data() == b"E_INVALID invalid command line too long (> 5096 bytes)"


def test_line_guard_counts_bytes_fed_in_many_chunks():
    lim = Limits(max_body_size=1000)
    p = CommandParser(lim)
    p.feed(b"PUB ")
    assert p.next_command() is None
    for _ in range(80):  # 4 + 4800 bytes <= 5096
        p.feed(b"x" * 60)
        assert p.next_command() is None
    with pytest.raises(ProtocolError) as ei:
        for _ in range(10):
            p.feed(b"x" * 60)
            p.next_command()
    assert ei.value.code == "E_INVALID"


def test_complete_line_longer_than_guard_is_invalid():
    lim = Limits(max_body_size=1000)
    assert error(b"PUB " + b"a" * 5100 + b"\n", lim).startswith(
        b"E_INVALID invalid command line too long")


def test_parser_is_dead_after_error():
    p = CommandParser(Limits())
    p.feed(b"BAD\nNOP\n")
    with pytest.raises(ProtocolError):
        p.next_command()
    with pytest.raises(ProtocolError):
        p.next_command()


def test_feed_accepts_bytearray_and_memoryview():
    p = CommandParser(Limits())
    ba = bytearray(b"NOP\nRD")
    p.feed(ba)
    ba[:] = b"XXXXXX"  # parser must have copied
    p.feed(memoryview(b"Y 2\n"))
    assert [p.next_command(), p.next_command()] == [Nop(), Rdy(2)]


def test_buffered_reports_unconsumed_bytes():
    p = CommandParser(Limits())
    p.feed(b"NOP\nRDY")
    assert p.buffered() == 7
    p.next_command()
    assert p.buffered() == 3


# ---------------------------------------------------------------- splitting


def all_commands_stream():
    cmds = [
        (encode_identify({"client_id": "c", "feature_negotiation": True}),
         Identify(b'{"client_id":"c","feature_negotiation":true}')),
        (encode_auth(b"secret"), Auth(b"secret")),
        (encode_sub("topic", "ch#ephemeral"), Sub("topic", "ch#ephemeral")),
        (encode_rdy(7), Rdy(7)),
        (encode_fin(MID), Fin(MID)),
        (encode_req(MID, 1500), Req(MID, 1500)),
        (encode_touch(MID), Touch(MID)),
        (encode_cls(), Cls()),
        (encode_nop(), Nop()),
        (encode_pub("t", b"hello\nworld"), Pub("t", b"hello\nworld")),
        (encode_mpub("t", [b"a", b"bc\n", b"d" * 300]), Mpub("t", [b"a", b"bc\n", b"d" * 300])),
        (encode_dpub("t", 250, b"later"), Dpub("t", 250, b"later")),
        (b"FIN " + MID + b"\r\n", Fin(MID)),
    ]
    return b"".join(c[0] for c in cmds), [c[1] for c in cmds]


def test_command_split_at_every_byte():
    data, expected = all_commands_stream()
    for cut in range(len(data) + 1):
        assert parse(data, chunks=[data[:cut], data[cut:]]) == expected, cut


def test_command_split_into_three_at_many_points():
    data, expected = all_commands_stream()
    for a in range(0, len(data), 7):
        for b in range(a, len(data), 13):
            assert parse(data, chunks=[data[:a], data[a:b], data[b:]]) == expected


def test_commands_fed_one_byte_at_a_time():
    data, expected = all_commands_stream()
    assert parse(data, chunks=[data[i:i + 1] for i in range(len(data))]) == expected


# ---------------------------------------------------------------- IDENTIFY


def test_identify_returns_raw_body():
    assert parse(b"IDENTIFY\n" + i32(2) + b"{}") == [Identify(b"{}")]


def test_identify_body_too_big_is_bad_body():
    assert error(b"IDENTIFY\n" + i32(5242881)) == b"E_BAD_BODY IDENTIFY body too big 5242881 > 5242880"


def test_identify_body_at_max_body_size_is_accepted():
    lim = Limits(max_body_size=10)
    assert parse(b"IDENTIFY\n" + i32(10) + b"x" * 10, lim) == [Identify(b"x" * 10)]


def test_identify_zero_body_size_is_invalid():
    assert error(b"IDENTIFY\n" + i32(0)) == b"E_BAD_BODY IDENTIFY invalid body size 0"


def test_identify_size_with_high_bit_is_negative_invalid_body_size():
    assert error(b"IDENTIFY\n" + u32(0x80000000)) == \
        b"E_BAD_BODY IDENTIFY invalid body size -2147483648"
    assert error(b"IDENTIFY\n" + u32(0xFFFFFFFF)) == b"E_BAD_BODY IDENTIFY invalid body size -1"


def test_identify_size_error_raised_before_body_arrives():
    p = CommandParser(Limits())
    p.feed(b"IDENTIFY\n\x00\x60")
    assert p.next_command() is None
    p.feed(b"\x00\x00")
    with pytest.raises(ProtocolError, match="body too big"):
        p.next_command()


def test_identify_waits_for_whole_body():
    p = CommandParser(Limits())
    p.feed(b"IDENTIFY\n" + i32(4) + b"{}")
    assert p.next_command() is None
    p.feed(b"  ")
    assert p.next_command() == Identify(b"{}  ")


def test_identify_ignores_extra_params():
    assert parse(b"IDENTIFY x y\n" + i32(2) + b"{}") == [Identify(b"{}")]


# ---------------------------------------------------------------- AUTH


def test_auth_returns_secret():
    assert parse(b"AUTH\n" + i32(3) + b"abc") == [Auth(b"abc")]


def test_auth_with_param_is_invalid_number_of_parameters():
    assert error(b"AUTH x\n") == b"E_INVALID AUTH invalid number of parameters"


def test_auth_with_trailing_space_is_invalid_number_of_parameters():
    assert error(b"AUTH \n") == b"E_INVALID AUTH invalid number of parameters"


def test_auth_params_checked_before_body_size():
    assert error(b"AUTH x\n" + i32(0)) == b"E_INVALID AUTH invalid number of parameters"


def test_auth_body_too_big():
    assert error(b"AUTH\n" + i32(5242881)) == b"E_BAD_BODY AUTH body too big 5242881 > 5242880"


def test_auth_invalid_body_size():
    assert error(b"AUTH\n" + i32(0)) == b"E_BAD_BODY AUTH invalid body size 0"
    assert error(b"AUTH\n" + i32(-5)) == b"E_BAD_BODY AUTH invalid body size -5"


# ---------------------------------------------------------------- SUB


def test_sub_parses_topic_and_channel_as_str():
    assert parse(b"SUB t.o-p_1 ch#ephemeral\n") == [Sub("t.o-p_1", "ch#ephemeral")]


def test_sub_ignores_extra_params():
    assert parse(b"SUB t c extra\n") == [Sub("t", "c")]


def test_sub_without_params_is_insufficient():
    assert error(b"SUB\n") == b"E_INVALID SUB insufficient number of parameters"


def test_sub_with_one_param_is_insufficient():
    assert error(b"SUB t\n") == b"E_INVALID SUB insufficient number of parameters"


def test_sub_bad_topic_is_bad_topic_quoted():
    assert error(b"SUB t! c\n") == b'E_BAD_TOPIC SUB topic name "t!" is not valid'


def test_sub_empty_topic_is_bad_topic():
    assert error(b"SUB  c\n") == b'E_BAD_TOPIC SUB topic name "" is not valid'


def test_sub_bad_channel_is_bad_channel_quoted():
    assert error(b"SUB t c\x01\n") == b'E_BAD_CHANNEL SUB channel name "c\\x01" is not valid'


def test_sub_topic_checked_before_channel():
    assert error(b"SUB * *\n").startswith(b"E_BAD_TOPIC")


def test_sub_topic_of_64_bytes_valid_65_invalid():
    assert parse(b"SUB " + b"a" * 64 + b" c\n") == [Sub("a" * 64, "c")]
    assert error(b"SUB " + b"a" * 65 + b" c\n") == \
        b'E_BAD_TOPIC SUB topic name "' + b"a" * 65 + b'" is not valid'


# ---------------------------------------------------------------- RDY


def test_rdy_without_param_means_one():
    assert parse(b"RDY\n") == [Rdy(1)]


def test_rdy_empty_param_means_zero():
    assert parse(b"RDY \n") == [Rdy(0)]


def test_rdy_parses_count():
    assert parse(b"RDY 2500\n") == [Rdy(2500)]


def test_rdy_leading_zeros_accepted():
    assert parse(b"RDY 0007\n") == [Rdy(7)]


def test_rdy_negative_could_not_parse():
    assert error(b"RDY -1\n") == b"E_INVALID RDY could not parse count -1"


def test_rdy_plus_sign_could_not_parse():
    assert error(b"RDY +1\n") == b"E_INVALID RDY could not parse count +1"


def test_rdy_non_digit_could_not_parse():
    assert error(b"RDY 1x\n") == b"E_INVALID RDY could not parse count 1x"


def test_rdy_unicode_digit_could_not_parse():
    assert error("RDY ١\n".encode()) == "E_INVALID RDY could not parse count ١".encode()


def test_rdy_above_max_is_out_of_range():
    assert error(b"RDY 2501\n") == b"E_INVALID RDY count 2501 out of range 0-2500"


def test_rdy_max_follows_limits():
    assert parse(b"RDY 10\n", Limits(max_rdy_count=10)) == [Rdy(10)]
    assert error(b"RDY 11\n", Limits(max_rdy_count=10)) == \
        b"E_INVALID RDY count 11 out of range 0-10"


def test_rdy_count_wraps_like_go_uint64():
    # Go's ByteToBase10 has no overflow check: 2**64 wraps to 0,
    # 2**63 becomes int64 -2**63 (out of range).
    assert parse(b"RDY 18446744073709551616\n") == [Rdy(0)]
    assert error(b"RDY 9223372036854775808\n") == \
        b"E_INVALID RDY count -9223372036854775808 out of range 0-2500"


def test_rdy_huge_digit_string_does_not_crash():
    assert error(b"RDY " + b"9" * 10000 + b"\n").startswith(b"E_INVALID RDY count")


# ---------------------------------------------------------------- FIN / TOUCH / REQ


def test_fin_parses_message_id():
    assert parse(b"FIN " + MID + b"\n") == [Fin(MID)]


def test_fin_without_id_is_insufficient_params():
    assert error(b"FIN\n") == b"E_INVALID FIN insufficient number of params"


def test_fin_short_id_is_invalid_message_id():
    assert error(b"FIN " + MID[:15] + b"\n") == b"E_INVALID invalid message ID"


def test_fin_long_id_is_invalid_message_id():
    assert error(b"FIN " + MID + b"0\n") == b"E_INVALID invalid message ID"


def test_fin_id_is_not_checked_for_hex():
    assert parse(b"FIN " + b"\xff" * 16 + b"\n") == [Fin(b"\xff" * 16)]


def test_fin_id_with_a_space_is_invalid_message_id():
    assert error(b"FIN 01234567 89abcde\n") == b"E_INVALID invalid message ID"


def test_fin_15_byte_id_before_crlf_is_invalid_message_id():
    assert error(b"FIN " + MID[:15] + b"\r\n") == b"E_INVALID invalid message ID"


def test_fin_runs_precheck():
    seen = []
    assert parse(b"FIN " + MID + b"\n", precheck=lambda name, params: seen.append(name)) \
        == [Fin(MID)]
    assert seen == [b"FIN"]


def test_fin_with_crlf_parses_message_id():
    assert parse(b"FIN " + MID + b"\r\n") == [Fin(MID)]


def test_touch_parses_message_id():
    assert parse(b"TOUCH " + MID + b"\n") == [Touch(MID)]


def test_touch_without_id_is_insufficient_params():
    assert error(b"TOUCH\n") == b"E_INVALID TOUCH insufficient number of params"


def test_touch_bad_id_is_invalid_message_id():
    assert error(b"TOUCH abc\n") == b"E_INVALID invalid message ID"


def test_req_parses_id_and_timeout():
    assert parse(b"REQ " + MID + b" 0\n") == [Req(MID, 0)]


def test_req_without_timeout_is_insufficient_params():
    assert error(b"REQ " + MID + b"\n") == b"E_INVALID REQ insufficient number of params"


def test_req_without_params_is_insufficient_params():
    assert error(b"REQ\n") == b"E_INVALID REQ insufficient number of params"


def test_req_bad_id_checked_before_timeout():
    assert error(b"REQ abc x\n") == b"E_INVALID invalid message ID"


def test_req_bad_timeout_could_not_parse():
    assert error(b"REQ " + MID + b" -1\n") == b"E_INVALID REQ could not parse timeout -1"


def test_req_empty_timeout_is_zero():
    assert parse(b"REQ " + MID + b" \n") == [Req(MID, 0)]


def test_req_timeout_is_not_clamped_by_parser():
    assert parse(b"REQ " + MID + b" 999999999\n") == [Req(MID, 999999999)]


def test_req_timeout_that_overflows_go_duration_becomes_zero_or_wrapped():
    # int64(ms) * 1e6 wraps in Go; negative durations are clamped to 0 upstream
    assert parse(b"REQ " + MID + b" 9223372036854775807\n") == [Req(MID, 0)]


# ---------------------------------------------------------------- CLS / NOP


def test_cls_parses():
    assert parse(b"CLS\n") == [Cls()]


def test_cls_ignores_params():
    assert parse(b"CLS a b\n") == [Cls()]


def test_nop_ignores_params():
    assert parse(b"NOP x\n") == [Nop()]


# ---------------------------------------------------------------- PUB


def test_pub_parses_topic_and_body():
    assert parse(b"PUB t\n" + i32(3) + b"a\nb") == [Pub("t", b"a\nb")]


def test_pub_body_is_bytes():
    [cmd] = parse(encode_pub("t", b"xyz"))
    assert type(cmd.body) is bytes and type(cmd.topic) is str


def test_pub_without_topic_is_insufficient_parameters():
    assert error(b"PUB\n") == b"E_INVALID PUB insufficient number of parameters"


def test_pub_bad_topic_is_bad_topic():
    assert error(b"PUB a/b\n") == b'E_BAD_TOPIC PUB topic name "a/b" is not valid'


def test_pub_bad_topic_non_utf8_go_quoted():
    assert error(b"PUB \xff\"\n") == b'E_BAD_TOPIC PUB topic name "\\xff\\"" is not valid'


def test_pub_zero_size_is_fatal_bad_message():
    assert error(b"PUB t\n" + i32(0)) == b"E_BAD_MESSAGE PUB invalid message body size 0"


def test_pub_negative_size_is_fatal_bad_message():
    assert error(b"PUB t\n" + u32(0xFFFFFFFE)) == b"E_BAD_MESSAGE PUB invalid message body size -2"


def test_pub_message_too_big_is_fatal_bad_message():
    assert error(b"PUB t\n" + i32(1048577)) == b"E_BAD_MESSAGE PUB message too big 1048577 > 1048576"


def test_pub_message_at_max_size_is_accepted():
    lim = Limits(max_msg_size=8)
    assert parse(b"PUB t\n" + i32(8) + b"12345678", lim) == [Pub("t", b"12345678")]
    assert error(b"PUB t\n" + i32(9), lim) == b"E_BAD_MESSAGE PUB message too big 9 > 8"


def test_pub_size_error_raised_before_body_arrives():
    p = CommandParser(Limits())
    p.feed(b"PUB t\n\x00\x20")
    assert p.next_command() is None
    p.feed(b"\x00\x01")
    with pytest.raises(ProtocolError, match="PUB message too big 2097153 > 1048576"):
        p.next_command()


def test_pub_waits_for_body():
    p = CommandParser(Limits())
    p.feed(b"PUB t\n" + i32(5) + b"ab")
    assert p.next_command() is None
    p.feed(b"cde" + b"NOP\n")
    assert p.next_command() == Pub("t", b"abcde")
    assert p.next_command() == Nop()


def test_pub_large_body_in_many_chunks():
    body = bytes(range(256)) * 4000
    data = encode_pub("t", body)
    chunks = [data[i:i + 1000] for i in range(0, len(data), 1000)]
    assert parse(data, chunks=chunks) == [Pub("t", body)]


# ---------------------------------------------------------------- DPUB


def test_dpub_parses_topic_defer_and_body():
    assert parse(b"DPUB t 1000\n" + i32(1) + b"x") == [Dpub("t", 1000, b"x")]


def test_dpub_without_defer_is_insufficient_parameters():
    assert error(b"DPUB t\n") == b"E_INVALID DPUB insufficient number of parameters"


def test_dpub_bad_topic_is_bad_topic():
    assert error(b"DPUB t% 10\n") == b'E_BAD_TOPIC DPUB topic name "t%" is not valid'


def test_dpub_bad_topic_checked_before_timeout():
    assert error(b"DPUB t% x\n").startswith(b"E_BAD_TOPIC")


def test_dpub_bad_timeout_could_not_parse():
    assert error(b"DPUB t 1.5\n") == b"E_INVALID DPUB could not parse timeout 1.5"


def test_dpub_timeout_above_max_req_timeout_is_out_of_range():
    assert error(b"DPUB t 3600001\n") == b"E_INVALID DPUB timeout 3600001 out of range 0-3600000"


def test_dpub_timeout_at_max_req_timeout_is_accepted():
    assert parse(b"DPUB t 3600000\n" + i32(1) + b"x") == [Dpub("t", 3600000, b"x")]


def test_dpub_zero_defer_is_accepted():
    assert parse(b"DPUB t 0\n" + i32(1) + b"x") == [Dpub("t", 0, b"x")]


def test_dpub_huge_timeout_out_of_range_prints_uint64():
    assert error(b"DPUB t 9223372036854775807\n") == \
        b"E_INVALID DPUB timeout 9223372036854775807 out of range 0-3600000"


def test_dpub_timeout_checked_before_body_size():
    assert error(b"DPUB t 3600001\n" + i32(0)).startswith(b"E_INVALID DPUB timeout")


def test_dpub_zero_size_is_bad_message():
    assert error(b"DPUB t 1\n" + i32(0)) == b"E_BAD_MESSAGE DPUB invalid message body size 0"


def test_dpub_message_too_big_is_bad_message():
    assert error(b"DPUB t 1\n" + i32(1048577)) == \
        b"E_BAD_MESSAGE DPUB message too big 1048577 > 1048576"


# ---------------------------------------------------------------- MPUB


def test_mpub_parses_all_bodies():
    assert parse(encode_mpub("t", [b"a", b"bb", b"ccc"])) == [Mpub("t", [b"a", b"bb", b"ccc"])]


def test_mpub_without_topic_is_insufficient_parameters():
    assert error(b"MPUB\n") == b"E_INVALID MPUB insufficient number of parameters"


def test_mpub_bad_topic_repeats_code_in_text():
    assert error(b"MPUB t:\n") == b'E_BAD_TOPIC E_BAD_TOPIC MPUB topic name "t:" is not valid'


def test_mpub_zero_body_size_is_invalid_body_size():
    assert error(b"MPUB t\n" + i32(0)) == b"E_BAD_BODY MPUB invalid body size 0"


def test_mpub_negative_body_size_is_invalid_body_size():
    assert error(b"MPUB t\n" + i32(-1)) == b"E_BAD_BODY MPUB invalid body size -1"


def test_mpub_body_too_big():
    assert error(b"MPUB t\n" + i32(5242881)) == b"E_BAD_BODY MPUB body too big 5242881 > 5242880"


def test_mpub_zero_message_count_is_invalid():
    assert error(b"MPUB t\n" + i32(10) + i32(0)) == b"E_BAD_BODY MPUB invalid message count 0"


def test_mpub_negative_message_count_is_invalid():
    assert error(b"MPUB t\n" + i32(10) + i32(-3)) == b"E_BAD_BODY MPUB invalid message count -3"


def test_mpub_message_count_bound_is_max_body_minus_4_div_5():
    lim = Limits(max_body_size=104)  # (104-4)//5 == 20
    assert error(b"MPUB t\n" + i32(10) + i32(21), lim) == b"E_BAD_BODY MPUB invalid message count 21"
    p = CommandParser(lim)
    p.feed(b"MPUB t\n" + i32(10) + i32(20))
    assert p.next_command() is None  # 20 accepted, waiting for messages


def test_mpub_message_zero_size_reports_index():
    data = b"MPUB t\n" + i32(100) + i32(3) + i32(1) + b"a" + i32(0)
    assert error(data) == b"E_BAD_MESSAGE MPUB invalid message(1) body size 0"


def test_mpub_message_negative_size_reports_index():
    data = b"MPUB t\n" + i32(100) + i32(3) + u32(0x80000000)
    assert error(data) == b"E_BAD_MESSAGE MPUB invalid message(0) body size -2147483648"


def test_mpub_message_too_big():
    data = b"MPUB t\n" + i32(100) + i32(2) + i32(1) + b"a" + i32(1048577)
    assert error(data) == b"E_BAD_MESSAGE MPUB message too big 1048577 > 1048576"


def test_mpub_message_size_error_raised_before_rest_arrives():
    p = CommandParser(Limits())
    p.feed(b"MPUB t\n" + i32(100) + i32(5) + i32(1) + b"a" + b"\x00\x00")
    assert p.next_command() is None
    p.feed(b"\x00\x00")
    with pytest.raises(ProtocolError, match=r"MPUB invalid message\(1\) body size 0"):
        p.next_command()


def test_mpub_does_not_require_consumed_bytes_to_match_body_size():
    data = b"MPUB t\n" + i32(1) + i32(2) + i32(3) + b"abc" + i32(1) + b"d" + b"NOP\n"
    assert parse(data) == [Mpub("t", [b"abc", b"d"]), Nop()]


def test_mpub_is_atomic_nothing_returned_until_all_messages_read():
    data = encode_mpub("t", [b"one", b"two", b"three"])
    p = CommandParser(Limits())
    p.feed(data[:-1])
    assert p.next_command() is None
    p.feed(data[-1:])
    assert p.next_command() == Mpub("t", [b"one", b"two", b"three"])


def test_mpub_error_in_later_message_yields_no_command():
    data = b"MPUB t\n" + i32(100) + i32(2) + i32(1) + b"a" + i32(-1)
    p = CommandParser(Limits())
    p.feed(data)
    with pytest.raises(ProtocolError):
        p.next_command()


def test_mpub_precheck_hook_runs_after_topic_validation_before_body():
    seen = []

    def hook(topic):
        seen.append(topic)
        raise ProtocolError("E_AUTH_FIRST", "AUTH required before MPUB")

    assert error(b"MPUB t!\n", mpub_precheck=hook).startswith(b"E_BAD_TOPIC")
    assert seen == []
    assert error(b"MPUB t\n", mpub_precheck=hook) == b"E_AUTH_FIRST AUTH required before MPUB"
    assert seen == ["t"]


def test_mpub_200_messages_split_everywhere_parse_identically():
    bodies = [bytes([i]) * (i % 7 + 1) for i in range(200)]
    data = encode_mpub("t", bodies)
    for cut in range(0, len(data), 3):
        assert parse(data, chunks=[data[:cut], data[cut:]]) == [Mpub("t", bodies)]


# ---------------------------------------------------------------- precheck / SKIP


def test_precheck_receives_name_and_params_after_name():
    seen = []
    parse(b"SUB t c\nNOP\n", precheck=lambda n, a: seen.append((n, a)))
    assert seen == [(b"SUB", [b"t", b"c"]), (b"NOP", [])]


def test_precheck_runs_before_param_validation():
    def pre(name, args):
        raise ProtocolError("E_INVALID", "cannot FIN in current state")
    assert error(b"FIN\n", precheck=pre) == b"E_INVALID cannot FIN in current state"


def test_precheck_runs_before_body_is_read():
    calls = []
    p = CommandParser(Limits(), lambda n, a: calls.append(n))
    p.feed(b"PUB t\n")
    assert p.next_command() is None
    assert calls == [b"PUB"]
    p.feed(i32(1) + b"x")
    assert p.next_command() == Pub("t", b"x")
    assert calls == [b"PUB"]  # once per command


def test_precheck_error_wins_over_body_size_error():
    def pre(name, args):
        raise ProtocolError("E_INVALID", "cannot IDENTIFY in current state")
    assert error(b"IDENTIFY\n" + i32(-1), precheck=pre) == b"E_INVALID cannot IDENTIFY in current state"


def test_precheck_runs_for_unknown_commands_and_empty_lines():
    def pre(name, args):
        raise ProtocolError("E_INVALID", "cannot %s in current state (TLS required)" % name.decode())
    assert error(b"BOGUS\n", precheck=pre) == b"E_INVALID cannot BOGUS in current state (TLS required)"
    assert error(b"\n", precheck=pre) == b"E_INVALID cannot  in current state (TLS required)"


def test_precheck_skip_drops_rdy_silently():
    pre = lambda n, a: SKIP if n == b"RDY" else None  # noqa: E731
    assert parse(b"RDY 5\nNOP\n", precheck=pre) == [Nop()]


def test_precheck_skip_drops_rdy_without_validating_params():
    pre = lambda n, a: SKIP if n == b"RDY" else None  # noqa: E731
    assert parse(b"RDY -1\nRDY 999999\nNOP\n", precheck=pre) == [Nop()]


def test_precheck_skip_on_body_command_still_consumes_body():
    pre = lambda n, a: SKIP if n == b"PUB" else None  # noqa: E731
    data = encode_pub("t", b"NOP\n") + b"RDY 2\n"
    assert parse(data, precheck=pre) == [Rdy(2)]
    assert parse(data, precheck=pre, chunks=[data[:8], data[8:12], data[12:]]) == [Rdy(2)]


def test_precheck_none_return_keeps_command():
    assert parse(b"NOP\n", precheck=lambda n, a: None) == [Nop()]


# ---------------------------------------------------------------- limits / encoders


def test_limits_defaults_match_nsqd_flags():
    lim = Limits()
    assert (lim.max_msg_size, lim.max_body_size, lim.max_rdy_count, lim.max_req_timeout_ms) == \
        (1048576, 5242880, 2500, 3600000)


def test_magic_v2_bytes():
    assert MAGIC_V2 == b"\x20\x20\x56\x32"


def test_encode_identify_is_compact_json_with_size():
    data = encode_identify({"a": 1, "b": "x"})
    assert data == b'IDENTIFY\n\x00\x00\x00\x0f{"a":1,"b":"x"}'
    assert json.loads(data[13:]) == {"a": 1, "b": "x"}


def test_encode_auth_accepts_str_and_bytes():
    assert encode_auth("pw") == encode_auth(b"pw") == b"AUTH\n\x00\x00\x00\x02pw"


def test_encode_simple_commands():
    assert encode_sub("t", "c") == b"SUB t c\n"
    assert encode_rdy(100) == b"RDY 100\n"
    assert encode_fin(MID) == b"FIN " + MID + b"\n"
    assert encode_req(MID, 50) == b"REQ " + MID + b" 50\n"
    assert encode_touch(MID) == b"TOUCH " + MID + b"\n"
    assert encode_cls() == b"CLS\n"
    assert encode_nop() == b"NOP\n"


def test_encode_pub_layout():
    assert encode_pub("t", b"abc") == b"PUB t\n\x00\x00\x00\x03abc"


def test_encode_dpub_layout():
    assert encode_dpub("t", 20, b"ab") == b"DPUB t 20\n\x00\x00\x00\x02ab"


def test_encode_mpub_body_size_is_4_plus_sum_of_4_plus_len():
    data = encode_mpub("t", [b"a", b"bcd"])
    assert data == (b"MPUB t\n" + i32(4 + 5 + 7) + i32(2) + i32(1) + b"a" + i32(3) + b"bcd")


def test_command_classes_have_names():
    for cls, name in [(Identify, b"IDENTIFY"), (Auth, b"AUTH"), (Sub, b"SUB"), (Rdy, b"RDY"),
                      (Fin, b"FIN"), (Req, b"REQ"), (Touch, b"TOUCH"), (Cls, b"CLS"),
                      (Nop, b"NOP"), (Pub, b"PUB"), (Mpub, b"MPUB"), (Dpub, b"DPUB")]:
        assert cls.NAME == name


def test_command_objects_use_slots():
    assert not hasattr(Fin(MID), "__dict__")
    assert not hasattr(Pub("t", b"x"), "__dict__")


@pytest.mark.parametrize("data, error", [
    (b"PUB t\n\x00\x00", b"E_BAD_MESSAGE PUB failed to read message body size"),
    (b"PUB t\n\x00\x00\x00\x05ab", b"E_BAD_MESSAGE PUB failed to read message body"),
    (b"DPUB t 5\n\x00\x00\x00\x05ab", b"E_BAD_MESSAGE DPUB failed to read message body"),
    (b"IDENTIFY\n\x00", b"E_BAD_BODY IDENTIFY failed to read body size"),
    (b"AUTH\n\x00\x00\x00\x09x", b"E_BAD_BODY AUTH failed to read body"),
    (b"MPUB t\n\x00", b"E_BAD_BODY MPUB failed to read body size"),
    (b"MPUB t\n\x00\x00\x00\x10\x00\x00", b"E_BAD_BODY MPUB failed to read message count"),
    (b"MPUB t\n\x00\x00\x00\x10\x00\x00\x00\x02\x00\x00\x00\x01a\x00",
     b"E_BAD_MESSAGE MPUB failed to read message(1) body size"),
    (b"MPUB t\n\x00\x00\x00\x10\x00\x00\x00\x02\x00\x00\x00\x03a",
     b"E_BAD_MESSAGE MPUB failed to read message body"),
])
def test_eof_inside_a_command_gives_upstreams_read_error(data, error):
    p = CommandParser(Limits())
    p.feed(data)
    assert p.next_command() is None
    assert p.eof_error().frame_data() == error


def test_eof_between_commands_or_inside_a_line_is_silent():
    p = CommandParser(Limits())
    p.feed(b"NOP\nPUB t")
    assert p.next_command() is not None
    assert p.next_command() is None
    assert p.eof_error() is None


# ---------------------------------------------------------------- take_fins (FIN runs)

def _fin_parser(data):
    p = CommandParser(Limits())
    p.feed(data)
    return p


def test_take_fins_returns_a_run_of_fin_ids_in_order():
    ids = [b"%016x" % i for i in range(5)]
    p = _fin_parser(b"".join(b"FIN " + i + b"\n" for i in ids) + b"NOP\n")
    assert p.take_fins() == ids
    assert p.next_command() == Nop()


def test_take_fins_stops_at_the_first_line_that_is_not_a_plain_fin():
    p = _fin_parser(b"FIN " + MID + b"\nRDY 5\nFIN " + MID + b"\n")
    assert p.take_fins() == [MID]
    assert p.take_fins() == []
    assert p.next_command() == Rdy(5)
    assert p.take_fins() == [MID]


def test_take_fins_leaves_odd_ids_to_the_generic_parser():
    for line in (b"FIN 01234567 89abcdef\n", b"FIN 0123\n56789abcdef\n",
                 b"FIN " + MID[:15] + b"\r\n"):
        p = _fin_parser(line)
        assert p.take_fins() == []
        with pytest.raises(ProtocolError):
            p.next_command()


def test_take_fins_leaves_an_incomplete_line():
    p = _fin_parser(b"FIN " + MID + b"\nFIN " + MID[:7])
    assert p.take_fins() == [MID]
    p.feed(MID[7:] + b"\n")
    assert p.next_command() == Fin(MID)
