"""Sans-IO nsqlookupd protocol V1 (spec nsqlookupd.md §2, §5): parsing, errors, encoding."""
import struct

import pytest

from nsqpy.protocol.lookupd import (BAD_PROTOCOL_RESPONSE, MAGIC_V1, BadMagic, IdentifyCmd,
                                    LookupdError, LookupdPeerInfo, Magic, Ping, Register,
                                    ResponseDecoder, ResponseTooBig, ServerParser, Unregister,
                                    command_string, encode_identify, encode_ping,
                                    encode_register, encode_response, encode_unregister,
                                    format_peer_info, identify_response, parse_identify_body,
                                    parse_peer_info)

GOOD = b'{"broadcast_address":"b","tcp_port":4150,"http_port":4151,"version":"1.3.0"}'


def identify(body: bytes) -> bytes:
    return b"IDENTIFY\n" + struct.pack(">i", len(body)) + body


def parser(identified=False):
    p = ServerParser()
    assert p.parse(MAGIC_V1) == [Magic(MAGIC_V1)]
    p.identified = identified
    return p


def err(code, desc):
    return LookupdError(code, desc)


# -- magic and framing -------------------------------------------------------------------------
def test_magic_v1_is_accepted_once_complete():
    p = ServerParser()
    assert p.parse(b"  V") == []
    assert p.parse(b"1") == [Magic(b"  V1")]


def test_bad_magic_kills_the_parser():
    p = ServerParser()
    (ev,) = p.parse(b"  V2PING\n")
    assert isinstance(ev, BadMagic) and ev.magic == b"  V2"
    assert p.dead and p.parse(b"PING\n") == []
    assert BAD_PROTOCOL_RESPONSE == b"\x00\x00\x00\x0eE_BAD_PROTOCOL"


def test_ping_line_trimmed_of_cr_and_spaces():
    p = parser()
    assert p.parse(b"PING\r\n  PING  \n") == [Ping(), Ping()]


def test_commands_split_across_feeds():
    p = parser(identified=True)
    assert p.parse(b"REGIS") == []
    assert p.parse(b"TER t") == []
    assert p.parse(b" c\nPI") == [Register("t", "c")]
    assert p.parse(b"NG\n") == [Ping()]


def test_unknown_command_is_fatal_invalid():
    p = parser()
    assert p.parse(b"FOO bar\nPING\n") == [err("E_INVALID", "invalid command FOO")]
    assert p.dead and p.parse(b"PING\n") == []


def test_empty_line_is_invalid_command_with_empty_name():
    assert parser().parse(b"\n") == [err("E_INVALID", "invalid command ")]


def test_commands_are_case_sensitive():
    assert parser().parse(b"ping\n") == [err("E_INVALID", "invalid command ping")]


def test_error_wire_text_is_code_space_desc():
    e = err("E_INVALID", "invalid command X")
    assert str(e) == "E_INVALID invalid command X"
    assert encode_response(e.data()) == b"\x00\x00\x00\x1bE_INVALID invalid command X"


# -- IDENTIFY framing -------------------------------------------------------------------------
def test_identify_body_read_after_size():
    p = parser()
    data = identify(GOOD)
    assert p.parse(data[:12]) == []
    assert p.parse(data[12:]) == [IdentifyCmd(GOOD)]


def test_identify_zero_size_body_is_empty():
    assert parser().parse(identify(b"")) == [IdentifyCmd(b"")]


def test_identify_again_fails_before_reading_a_body():
    p = parser(identified=True)
    assert p.parse(b"IDENTIFY\n") == [err("E_INVALID", "cannot IDENTIFY again")]


def test_identify_negative_size_fails_body_read():
    p = parser()
    assert p.parse(b"IDENTIFY\n" + struct.pack(">i", -1)) == [
        err("E_BAD_BODY", "IDENTIFY failed to read body")]


def test_eof_inside_identify_size_and_body():
    p = parser()
    p.parse(b"IDENTIFY\n\x00\x00")
    assert p.feed_eof() == [err("E_BAD_BODY", "IDENTIFY failed to read body size")]
    p = parser()
    p.parse(b"IDENTIFY\n\x00\x00\x00\x10{}")
    assert p.feed_eof() == [err("E_BAD_BODY", "IDENTIFY failed to read body")]


def test_eof_inside_a_command_line_is_silent():
    p = parser()
    p.parse(b"PIN")
    assert p.feed_eof() == []


def test_events_are_lazy_so_identify_applies_to_following_lines():
    p = parser()
    p.feed(identify(GOOD) + b"REGISTER t\n")
    it = p.events()
    assert next(it) == IdentifyCmd(GOOD)
    p.identified = True
    assert next(it) == Register("t", "")


# -- REGISTER / UNREGISTER ---------------------------------------------------------------------
@pytest.mark.parametrize("cmd", ["REGISTER", "UNREGISTER"])
def test_register_requires_identify(cmd):
    assert parser().parse(f"{cmd} t\n".encode()) == [err("E_INVALID", "client must IDENTIFY")]


@pytest.mark.parametrize("cmd", ["REGISTER", "UNREGISTER"])
def test_register_without_topic_is_insufficient_params(cmd):
    assert parser(True).parse(f"{cmd}\n".encode()) == [
        err("E_INVALID", f"{cmd} insufficient number of params")]
    assert parser(True).parse(f"{cmd}   \n".encode()) == [
        err("E_INVALID", f"{cmd} insufficient number of params")]


@pytest.mark.parametrize("cmd", ["REGISTER", "UNREGISTER"])
def test_register_bad_topic_single_quoted(cmd):
    assert parser(True).parse(f"{cmd} bad!topic\n".encode()) == [
        err("E_BAD_TOPIC", f"{cmd} topic name 'bad!topic' is not valid")]


@pytest.mark.parametrize("cmd", ["REGISTER", "UNREGISTER"])
def test_register_bad_channel_single_quoted(cmd):
    assert parser(True).parse(f"{cmd} t bad/chan\n".encode()) == [
        err("E_BAD_CHANNEL", f"{cmd} channel name 'bad/chan' is not valid")]


def test_double_space_makes_an_empty_topic():
    assert parser(True).parse(b"REGISTER  t\n") == [
        err("E_BAD_TOPIC", "REGISTER topic name '' is not valid")]


def test_register_extra_params_ignored_and_ephemeral_names_valid():
    p = parser(True)
    assert p.parse(b"REGISTER t#ephemeral c#ephemeral extra\nUNREGISTER t\n") == [
        Register("t#ephemeral", "c#ephemeral"), Unregister("t", "")]


def test_too_long_topic_is_bad_topic():
    name = "a" * 65
    assert parser(True).parse(f"REGISTER {name}\n".encode()) == [
        err("E_BAD_TOPIC", f"REGISTER topic name '{name}' is not valid")]


# -- IDENTIFY body (Go json.Unmarshal into PeerInfo) ----------------------------------------------
def test_identify_body_fields_and_defaults():
    assert parse_identify_body(GOOD) == {
        "remote_address": "", "hostname": "", "broadcast_address": "b", "tcp_port": 4150,
        "http_port": 4151, "version": "1.3.0"}


def test_identify_body_keys_case_insensitive_unknown_ignored_last_duplicate_wins():
    body = (b'{"BROADCAST_ADDRESS":"x","broadcast_address":"y","Tcp_Port":1,'
            b'"http_port":2,"http_port":3,"version":"v","hostname":"h","extra":[1,{}]}')
    got = parse_identify_body(body)
    assert (got["broadcast_address"], got["tcp_port"], got["http_port"], got["hostname"]) == (
        "y", 1, 3, "h")


@pytest.mark.parametrize("missing", ["broadcast_address", "tcp_port", "http_port", "version"])
def test_identify_body_missing_required_field(missing):
    full = {"broadcast_address": '"b"', "tcp_port": "1", "http_port": "2", "version": '"v"'}
    body = "{" + ",".join(f'"{k}":{v}' for k, v in full.items() if k != missing) + "}"
    with pytest.raises(LookupdError) as e:
        parse_identify_body(body.encode())
    assert str(e.value) == "E_BAD_BODY IDENTIFY missing fields"


@pytest.mark.parametrize("body", [b'{"broadcast_address":"","tcp_port":1,"http_port":2,'
                                  b'"version":"v"}',
                                  b'{"broadcast_address":"b","tcp_port":0,"http_port":2,'
                                  b'"version":"v"}',
                                  b"null", b"{}"])
def test_identify_body_zero_values_are_missing_fields(body):
    with pytest.raises(LookupdError) as e:
        parse_identify_body(body)
    assert str(e.value) == "E_BAD_BODY IDENTIFY missing fields"


@pytest.mark.parametrize("body", [b"", b"{", b"[]", b'"x"', b"1", b"NaN",
                                  b'{"tcp_port":"4150"}', b'{"tcp_port":4150.0}',
                                  b'{"tcp_port":1e3}', b'{"tcp_port":true}',
                                  b'{"tcp_port":99999999999999999999}',
                                  b'{"version":1}', b'{"remote_address":5}',
                                  b'{"hostname":{}}', GOOD + b"x"])
def test_identify_body_bad_json_or_types(body):
    with pytest.raises(LookupdError) as e:
        parse_identify_body(body)
    assert str(e.value) == "E_BAD_BODY IDENTIFY failed to decode JSON body"
    assert e.value.parent


def test_identify_body_null_values_leave_zero_and_negative_ports_allowed():
    got = parse_identify_body(b'{"broadcast_address":"b","tcp_port":-1,"http_port":2,'
                              b'"version":"v","hostname":null}')
    assert got["tcp_port"] == -1 and got["hostname"] == ""


def test_identify_body_invalid_utf8_replaced():
    got = parse_identify_body(b'{"broadcast_address":"b\xff","tcp_port":1,"http_port":2,'
                              b'"version":"v"}')
    assert got["broadcast_address"] == "b\ufffd"


def test_identify_response_keys_sorted_like_a_go_map():
    assert identify_response("lk<1>", "host", 4161, 4160, "1.3.0") == (
        b'{"broadcast_address":"lk\\u003c1\\u003e","hostname":"host","http_port":4161,'
        b'"tcp_port":4160,"version":"1.3.0"}')


# -- client side ---------------------------------------------------------------------------------
def test_encode_commands():
    assert encode_ping() == b"PING\n"
    assert encode_register("t") == b"REGISTER t\n"
    assert encode_register("t", "c") == b"REGISTER t c\n"
    assert encode_register("t", "") == b"REGISTER t\n"
    assert encode_unregister("t") == b"UNREGISTER t\n"
    assert encode_unregister("t", "c") == b"UNREGISTER t c\n"
    body = b'{"a":1}'
    assert encode_identify(body) == b"IDENTIFY\n\x00\x00\x00\x07" + body
    assert encode_identify({"version": "v", "broadcast_address": "b"}) == (
        b'IDENTIFY\n\x00\x00\x00\x27{"broadcast_address":"b","version":"v"}')


def test_command_string_like_go_nsq():
    assert command_string("PING") == "PING"
    assert command_string("REGISTER", "t") == "REGISTER t"
    assert command_string("UNREGISTER", "t", "c") == "UNREGISTER t c"


def test_response_decoder_split_and_multiple():
    d = ResponseDecoder()
    d.feed(b"\x00\x00\x00\x02O")
    assert d.responses() == []
    d.feed(b"K\x00\x00\x00\x00\x00\x00\x00\x01x")
    assert d.responses() == [b"OK", b"", b"x"]


def test_response_decoder_rejects_oversized():
    d = ResponseDecoder(max_size=10)
    d.feed(struct.pack(">i", 11))
    with pytest.raises(ResponseTooBig) as e:
        d.responses()
    assert str(e.value) == "response body size (11) is greater than limit (10)"


def test_parse_and_format_peer_info():
    info = parse_peer_info(identify_response("lk", "h", 4161, 4160, "1.3.0"))
    assert info == LookupdPeerInfo(4160, 4161, "1.3.0", "lk")
    assert format_peer_info(info) == (
        "{TCPPort:4160 HTTPPort:4161 Version:1.3.0 BroadcastAddress:lk}")
    with pytest.raises(ValueError):
        parse_peer_info(b"E_INVALID")
    with pytest.raises(ValueError):
        parse_peer_info(b'{"tcp_port":"x"}')
