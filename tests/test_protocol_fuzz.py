"""Property tests for the sans-IO protocol code.

Rule: every input yields valid command objects or a ProtocolError, nothing else,
never hangs, and the outcome does not depend on how the bytes are chunked.

The number of examples comes from NSQPY_FUZZ_EXAMPLES (default 200 so the normal
test run stays fast). Tests marked ``slow`` repeat the properties with larger
inputs and run only when NSQPY_FUZZ_EXAMPLES is set explicitly (``make fuzz``
sets it to 1000000 and selects them with ``-m slow``).
"""

import os
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nsqpy.protocol import (
    COMMAND_CLASSES, Auth, Cls, CommandParser, Dpub, Fin, FrameDecoder, Identify, Limits, Mpub,
    Nop, ProtocolError, Pub, Rdy, Req, Sub, Touch, encode_auth, encode_cls, encode_dpub,
    encode_fin, encode_frame, encode_identify, encode_mpub, encode_nop, encode_pub, encode_rdy,
    encode_req, encode_sub, encode_touch, go_quote, parse_identify,
)

EXAMPLES = int(os.environ.get("NSQPY_FUZZ_EXAMPLES", "200"))
SLOW_ENABLED = "NSQPY_FUZZ_EXAMPLES" in os.environ

FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=False,
                suppress_health_check=list(HealthCheck))
slow = pytest.mark.slow
skip_unless_fuzz = pytest.mark.skipif(not SLOW_ENABLED,
                                      reason="set NSQPY_FUZZ_EXAMPLES (make fuzz) to run")

# Small limits so that size checks, count checks and the line-length guard are hit often.
SMALL = Limits(max_msg_size=64, max_body_size=400, max_rdy_count=50, max_req_timeout_ms=5000)
DEFAULT = Limits()


def run(chunks, limits):
    """Feed ``chunks`` one by one; return (commands, error frame data or None)."""
    p = CommandParser(limits)
    out = []
    total = 0
    try:
        for chunk in chunks:
            total += len(chunk)
            p.feed(chunk)
            while True:
                cmd = p.next_command()
                if cmd is None:
                    break
                assert type(cmd) in COMMAND_CLASSES
                out.append(cmd)
                # a command consumes at least 4 bytes ("NOP\n"): no infinite loop
                assert len(out) * 4 <= total + 4
        return out, None
    except ProtocolError as e:
        assert e.fatal and e.code.startswith("E_")
        return out, e.frame_data()


def split(data, cuts):
    cuts = sorted({c % (len(data) + 1) for c in cuts}) if data else []
    pieces, last = [], 0
    for c in cuts:
        pieces.append(data[last:c])
        last = c
    pieces.append(data[last:])
    return pieces


# ---------------------------------------------------------------- strategies

name_chars = string.ascii_letters + string.digits + "._-"
names = st.builds(lambda base, eph: base + ("#ephemeral" if eph else ""),
                  st.text(name_chars, min_size=1, max_size=54), st.booleans())
msg_ids = st.binary(min_size=16, max_size=16).filter(
    lambda b: b" " not in b and b"\n" not in b and not b.endswith(b"\r"))
bodies = st.binary(min_size=1, max_size=64)


def _cmd(kind, data):
    return kind, data


valid_commands = st.one_of(
    st.builds(lambda d: (encode_identify(d), None),
              st.dictionaries(st.sampled_from(["client_id", "hostname", "x"]),
                              st.text(max_size=10), max_size=3)),
    st.builds(lambda s: (encode_auth(s), Auth(s)), st.binary(min_size=1, max_size=40)),
    st.builds(lambda t, c: (encode_sub(t, c), Sub(t, c)), names, names),
    st.builds(lambda n: (encode_rdy(n), Rdy(n)), st.integers(0, 50)),
    st.just((b"RDY\n", Rdy(1))),
    st.builds(lambda m: (encode_fin(m), Fin(m)), msg_ids),
    st.builds(lambda m: (b"FIN " + m + b"\r\n", Fin(m)), msg_ids),
    st.builds(lambda m, t: (encode_req(m, t), Req(m, t)), msg_ids, st.integers(0, 10**9)),
    st.builds(lambda m: (encode_touch(m), Touch(m)), msg_ids),
    st.just((encode_cls(), Cls())),
    st.just((encode_nop(), Nop())),
    st.just((b"NOP extra params\n", Nop())),
    st.builds(lambda t, b: (encode_pub(t, b), Pub(t, b)), names, bodies),
    st.builds(lambda t, bs: (encode_mpub(t, bs), Mpub(t, bs)), names,
              st.lists(bodies, min_size=1, max_size=5)),
    st.builds(lambda t, d, b: (encode_dpub(t, d, b), Dpub(t, d, b)), names,
              st.integers(0, 5000), bodies),
)


def materialize(pairs):
    data = b"".join(p[0] for p in pairs)
    expected = []
    for raw, cmd in pairs:
        if cmd is None:  # IDENTIFY: body is whatever JSON was encoded
            cmd = Identify(raw[13:])
        expected.append(cmd)
    return data, expected


command_lists = st.lists(valid_commands, min_size=1, max_size=8)
cut_lists = st.lists(st.integers(min_value=0), max_size=12)
limits_choice = st.sampled_from([SMALL, DEFAULT])


def int32be(n):
    return (n & 0xFFFFFFFF).to_bytes(4, "big")


sizes = st.one_of(st.integers(-(2**31), 2**31 - 1), st.integers(-2, 70),
                  st.sampled_from([0, 1, 64, 65, 396, 399, 400, 401, 2**31 - 1, -(2**31)]))

mangled = st.one_of(
    st.builds(lambda t, n, rest: b"PUB " + t + b"\n" + int32be(n) + rest,
              st.binary(max_size=8), sizes, st.binary(max_size=80)),
    st.builds(lambda t, d, n, rest: b"DPUB " + t + b" " + d + b"\n" + int32be(n) + rest,
              st.binary(max_size=8), st.binary(max_size=8), sizes, st.binary(max_size=80)),
    st.builds(lambda n, rest: b"IDENTIFY\n" + int32be(n) + rest, sizes, st.binary(max_size=80)),
    st.builds(lambda p, n, rest: b"AUTH" + p + b"\n" + int32be(n) + rest,
              st.sampled_from([b"", b" ", b" x"]), sizes, st.binary(max_size=80)),
    st.builds(lambda bs, cnt, msgs, rest: b"MPUB t\n" + int32be(bs) + int32be(cnt)
              + b"".join(int32be(s) + b"x" * max(0, min(s, 70)) for s in msgs) + rest,
              sizes, sizes, st.lists(sizes, max_size=5), st.binary(max_size=20)),
    st.builds(lambda name, params: name + b" ".join([b""] + params) + b"\n",
              st.sampled_from([b"RDY", b"FIN", b"REQ", b"TOUCH", b"SUB", b"CLS", b"NOP", b"PUB",
                               b"MPUB", b"DPUB", b"AUTH", b"IDENTIFY", b"", b"X"]),
              st.lists(st.binary(max_size=20).filter(lambda b: b"\n" not in b), max_size=4)),
)


# ---------------------------------------------------------------- properties


def check_random_bytes(data, cuts, limits):
    whole = run([data], limits)
    assert run(split(data, cuts), limits) == whole
    assert run([data[i:i + 1] for i in range(len(data))], limits) == whole


def check_valid_commands(pairs, cuts, limits):
    data, expected = materialize(pairs)
    if limits is SMALL:
        limits = DEFAULT  # generated commands are valid under the default limits
    assert run([data], limits) == (expected, None)
    assert run(split(data, cuts), limits) == (expected, None)


def check_every_cut(pairs):
    data, expected = materialize(pairs)
    for cut in range(len(data) + 1):
        p = CommandParser(DEFAULT)
        p.feed(data[:cut])
        got = []
        while (c := p.next_command()) is not None:
            got.append(c)
        assert got == expected[:len(got)]
        p.feed(data[cut:])
        while (c := p.next_command()) is not None:
            got.append(c)
        assert got == expected


def check_mangled(items, cuts, limits):
    data = b"".join(items)
    whole = run([data], limits)
    assert run(split(data, cuts), limits) == whole


def check_garbage_after_valid(pairs, garbage, cuts):
    data, expected = materialize(pairs)
    stream = data + garbage
    cmds, err = run(split(stream, cuts), DEFAULT)
    assert cmds[:len(expected)] == expected
    assert (cmds, err) == run([stream], DEFAULT)


@FUZZ
@given(st.binary(max_size=200), cut_lists, limits_choice)
def test_fuzz_random_bytes_give_commands_or_protocol_error(data, cuts, limits):
    check_random_bytes(data, cuts, limits)


@FUZZ
@given(st.lists(st.sampled_from([b"NOP", b"RDY", b"FIN", b"PUB", b"MPUB", b"IDENTIFY", b"AUTH",
                                 b"SUB", b" ", b"\n", b"\r", b"\x00", b"\xff", b"t", b"5",
                                 b"\x00\x00\x00\x01", b"\x00\x00\x00\x05", b"\x7f\xff\xff\xff"]),
                max_size=40), cut_lists, limits_choice)
def test_fuzz_token_soup_gives_commands_or_protocol_error(tokens, cuts, limits):
    check_random_bytes(b"".join(tokens), cuts, limits)


def run_with_fin_runs(chunks, limits):
    """Like run(), but taking FIN runs with take_fins() before each command (as nsqd's
    connection does once subscribed): the outcome must be the same."""
    p = CommandParser(limits)
    out = []
    try:
        for chunk in chunks:
            p.feed(chunk)
            while True:
                out.extend(Fin(mid) for mid in p.take_fins())
                cmd = p.next_command()
                if cmd is None:
                    break
                out.append(cmd)
        return out, None
    except ProtocolError as e:
        return out, e.frame_data()


_FIN_SOUP = st.lists(st.sampled_from([
    b"FIN 0123456789abcdef\n", b"FIN 0123456789abcdef\r\n", b"FIN 01234567 9abcdef\n",
    b"FIN 012345\n789abcdef\n", b"FIN 0123456789abcde\r\n", b"FIN 0123456789abcdef0\n",
    b"NOP\n", b"RDY 3\n", b"FIN", b" ", b"\n", b"0123456789abcdef", b"\xff",
    b"PUB t\n\x00\x00\x00\x01x"]), max_size=30)


@FUZZ
@given(_FIN_SOUP, cut_lists, limits_choice)
def test_fuzz_take_fins_changes_nothing_but_speed(tokens, cuts, limits):
    data = b"".join(tokens)
    assert run_with_fin_runs(split(data, cuts), limits) == run(split(data, cuts), limits)


@FUZZ
@given(st.binary(max_size=200), cut_lists, limits_choice)
def test_fuzz_take_fins_on_random_bytes_changes_nothing(data, cuts, limits):
    assert run_with_fin_runs(split(data, cuts), limits) == run(split(data, cuts), limits)


@FUZZ
@given(command_lists, cut_lists, limits_choice)
def test_fuzz_valid_commands_in_random_chunkings_parse_identically(pairs, cuts, limits):
    check_valid_commands(pairs, cuts, limits)


@settings(FUZZ, max_examples=max(10, EXAMPLES // 10))
@given(st.lists(valid_commands, min_size=1, max_size=4))
def test_fuzz_valid_commands_cut_at_every_byte(pairs):
    check_every_cut(pairs)


@FUZZ
@given(st.lists(mangled, min_size=1, max_size=4), cut_lists, limits_choice)
def test_fuzz_truncated_and_oversize_sizes(items, cuts, limits):
    check_mangled(items, cuts, limits)


@FUZZ
@given(command_lists, st.binary(max_size=100), cut_lists)
def test_fuzz_garbage_after_valid_commands(pairs, garbage, cuts):
    check_garbage_after_valid(pairs, garbage, cuts)


@settings(FUZZ, max_examples=max(10, EXAMPLES // 10))
@given(st.integers(4400, 4600), st.binary(max_size=30), st.lists(st.integers(0), max_size=40))
def test_fuzz_long_lines_hit_the_guard_regardless_of_chunking(n, tail, cuts):
    # SMALL: the line guard is max_body_size + 4096 = 4496 bytes
    data = b"NOP\n" + b"x" * n + tail
    whole = run([data], SMALL)
    assert run(split(data, cuts), SMALL) == whole
    assert whole[0] == [Nop()]


@FUZZ
@given(st.binary(max_size=120), cut_lists)
def test_fuzz_frame_decoder_random_bytes(data, cuts):
    def frames(pieces):
        d = FrameDecoder()
        out = []
        try:
            for piece in pieces:
                d.feed(piece)
                out.extend(d.frames())
        except ProtocolError as e:
            return out, e.frame_data()
        return out, None
    assert frames(split(data, cuts)) == frames([data])


@FUZZ
@given(st.lists(st.tuples(st.integers(0, 2), st.binary(max_size=50)), max_size=6), cut_lists)
def test_fuzz_frame_decoder_round_trip(frames, cuts):
    data = b"".join(encode_frame(t, b) for t, b in frames)
    d = FrameDecoder()
    out = []
    for piece in split(data, cuts):
        d.feed(piece)
        out.extend(d.frames())
    assert out == frames


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**64), 2**64) | st.floats(allow_nan=False)
    | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children,
                                                                       max_size=3),
    max_leaves=8)
identify_keys = st.sampled_from(["client_id", "hostname", "user_agent", "feature_negotiation",
                                 "heartbeat_interval", "output_buffer_size",
                                 "output_buffer_timeout", "tls_v1", "snappy", "deflate",
                                 "deflate_level", "sample_rate", "msg_timeout", "other"])


@FUZZ
@given(st.dictionaries(identify_keys, json_values, max_size=6))
def test_fuzz_identify_json_gives_data_or_bad_body(doc):
    import json
    try:
        parse_identify(json.dumps(doc).encode())
    except ProtocolError as e:
        assert e.code == "E_BAD_BODY" and e.frame_data().startswith(b"E_BAD_BODY IDENTIFY ")


@FUZZ
@given(st.binary(max_size=100))
def test_fuzz_identify_random_bytes_gives_data_or_bad_body(body):
    try:
        parse_identify(body)
    except ProtocolError as e:
        assert e.code == "E_BAD_BODY"


@FUZZ
@given(st.binary(max_size=60))
def test_fuzz_go_quote_is_ascii_safe_quoted(raw):
    q = go_quote(raw)
    assert q.startswith('"') and q.endswith('"') and len(q) >= 2
    assert "\n" not in q and "\x00" not in q
    q.encode("utf-8")  # never contains lone surrogates


# ---------------------------------------------------------------- slow (make fuzz)

BIG = settings(FUZZ, max_examples=EXAMPLES)


@slow
@skip_unless_fuzz
@BIG
@given(st.binary(max_size=2000), cut_lists, limits_choice)
def test_slow_fuzz_random_bytes(data, cuts, limits):
    check_random_bytes(data, cuts, limits)


@slow
@skip_unless_fuzz
@BIG
@given(st.lists(valid_commands, min_size=1, max_size=30), cut_lists, limits_choice)
def test_slow_fuzz_valid_commands_random_chunkings(pairs, cuts, limits):
    check_valid_commands(pairs, cuts, limits)


@slow
@skip_unless_fuzz
@BIG
@given(st.lists(valid_commands, min_size=1, max_size=8))
def test_slow_fuzz_valid_commands_cut_at_every_byte(pairs):
    check_every_cut(pairs)


@slow
@skip_unless_fuzz
@BIG
@given(st.lists(mangled, min_size=1, max_size=10), cut_lists, limits_choice)
def test_slow_fuzz_truncated_and_oversize_sizes(items, cuts, limits):
    check_mangled(items, cuts, limits)


@slow
@skip_unless_fuzz
@BIG
@given(command_lists, st.binary(max_size=1000), cut_lists)
def test_slow_fuzz_garbage_after_valid_commands(pairs, garbage, cuts):
    check_garbage_after_valid(pairs, garbage, cuts)
