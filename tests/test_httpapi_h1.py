"""The sans-IO HTTP/1.1 request parser (nsqpy.httpapi.h1) and the connection state machine
fed raw bytes: unit tests per behaviour plus hypothesis fuzzing ("a valid request or Go's
error answer, nothing else")."""
import asyncio
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nsqpy.httpapi.h1 import (MAX_HEADER_BYTES, ChunkedDecoder, Headers, ParseError,
                              body_framing, canonical, error_response, find_head_end,
                              parse_head, response_head)

GO_ERRORS = (400, 431, 501, 505)  # what Go's conn.serve answers an unreadable request with


def head_of(raw: bytes) -> bytes:
    end, _ = find_head_end(raw)
    return raw[:end]


def parse(raw: bytes):
    return parse_head(head_of(raw))


# -- request heads ----------------------------------------------------------------------------
def test_parse_simple_request():
    method, target, version, headers = parse(
        b"POST /pub?topic=t HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc")
    assert (method, target, version) == ("POST", "/pub?topic=t", (1, 1))
    assert headers.get("content-length") == "3"
    assert body_framing(version, headers) == (False, 3)


def test_find_head_end_gives_body_start():
    raw = b"GET / HTTP/1.1\r\nHost: x\r\n\r\nNEXT"
    end, body = find_head_end(raw)
    assert raw[body:] == b"NEXT"
    assert find_head_end(b"GET / HTTP/1.1\r\nHost: x\r\n") is None


def test_bare_lf_line_endings_accepted():
    raw = b"GET /ping HTTP/1.1\nHost: x\nX-A: 1\n\nrest"
    end, body = find_head_end(raw)
    assert raw[body:] == b"rest"
    method, target, version, headers = parse_head(raw[:end])
    assert (method, target, headers["x-a"]) == ("GET", "/ping", "1")


def test_headers_case_insensitive_first_value_wins():
    _, _, _, h = parse(b"GET / HTTP/1.1\r\nHost: x\r\nX-Thing: one\r\nx-thing: two\r\n\r\n")
    assert h.get("X-THING") == "one"
    assert h.getall("x-thing") == ["one", "two"]
    assert "x-Thing" in h
    assert h.items()[1] == ("X-Thing", "one")


def test_header_value_whitespace_trimmed():
    _, _, _, h = parse(b"GET / HTTP/1.1\r\nHost: x\r\nA: \t spaced \t\r\n\r\n")
    assert h["a"] == "spaced"


def test_http10_needs_no_host():
    assert parse(b"GET / HTTP/1.0\r\n\r\n")[2] == (1, 0)


@pytest.mark.parametrize("raw", [
    b"GARBAGE\r\n\r\n",
    b"GET /\r\n\r\n",
    b"GET / HTTP/1.1 extra\r\nHost: x\r\n\r\n",
    b"G(T / HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET / HTTP/x.y\r\nHost: x\r\n\r\n",
    b"GET / HTTP/1.10\r\nHost: x\r\n\r\n",
    b"GET noslash HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /a\x01b HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nBad Name: 1\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\n folded: 1\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nA: b\x00c\r\n\r\n",
])
def test_malformed_request_is_plain_400(raw):
    with pytest.raises(ParseError) as ei:
        parse(raw)
    assert ei.value.status == 400
    assert ei.value.response == (b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; "
                                 b"charset=utf-8\r\nConnection: close\r\n\r\n400 Bad Request")


def test_missing_host_http11_is_go_status_error():
    with pytest.raises(ParseError) as ei:
        parse(b"GET / HTTP/1.1\r\n\r\n")
    assert ei.value.response.endswith(b"\r\n\r\n400 Bad Request: missing required Host header")
    assert ei.value.response.startswith(b"HTTP/1.1 400 Bad Request: missing required Host")


def test_duplicate_host_rejected():
    with pytest.raises(ParseError) as ei:
        parse(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
    assert ei.value.text == "too many Host headers"


def test_http2_request_line_is_505():
    with pytest.raises(ParseError) as ei:
        parse(b"GET / HTTP/2.0\r\nHost: x\r\n\r\n")
    assert ei.value.status == 505
    assert ei.value.response.startswith(
        b"HTTP/1.1 505 HTTP Version Not Supported: unsupported protocol version\r\n")


def test_absolute_form_target_accepted():
    assert parse(b"GET http://h/ping?x=1 HTTP/1.1\r\nHost: h\r\n\r\n")[1] == "http://h/ping?x=1"


# -- body framing -------------------------------------------------------------------------------
def framing(raw: bytes):
    _, _, version, headers = parse(raw)
    return body_framing(version, headers)


def test_no_body_headers_means_empty_body():
    assert framing(b"POST / HTTP/1.1\r\nHost: x\r\n\r\n") == (False, 0)


def test_chunked_wins_over_content_length():
    assert framing(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                   b"Transfer-Encoding: chunked\r\n\r\n") == (True, None)


def test_transfer_encoding_ignored_for_http10():
    assert framing(b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n"
                   b"Content-Length: 2\r\n\r\n") == (False, 2)


def test_unsupported_transfer_encoding_is_501():
    with pytest.raises(ParseError) as ei:
        framing(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n")
    assert ei.value.status == 501
    assert ei.value.response.endswith(b"\r\n\r\nUnsupported transfer encoding")


@pytest.mark.parametrize("value", [b"-1", b"abc", b"1 2", b"+5", b"99999999999999999999"])
def test_bad_content_length_is_400(value):
    with pytest.raises(ParseError) as ei:
        framing(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: " + value + b"\r\n\r\n")
    assert ei.value.status == 400


def test_conflicting_content_lengths_rejected_identical_accepted():
    with pytest.raises(ParseError):
        framing(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n")
    assert framing(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
                   b"Content-Length: 2\r\n\r\n") == (False, 2)


# -- chunked bodies ------------------------------------------------------------------------------
CHUNKED = b"3\r\nabc\r\n5;ext=1\r\nde\r\nf\r\n0\r\nTrailer: x\r\n\r\nNEXT"


def test_chunked_decoder_whole():
    d = ChunkedDecoder()
    data, pos = d.feed(CHUNKED, 0)
    assert data == b"abcde\r\nf"
    assert d.done and CHUNKED[pos:] == b"NEXT"


def test_chunked_decoder_byte_by_byte():
    d = ChunkedDecoder()
    out = b""
    buf = bytearray()
    for i in range(len(CHUNKED)):
        buf += CHUNKED[i:i + 1]
        data, pos = d.feed(buf, 0)
        out += data
        del buf[:pos]
        if d.done:
            break
    assert out == b"abcde\r\nf" and d.done


@pytest.mark.parametrize("bad", [b"zz\r\n", b"3\r\nabcX\r\n", b"\r\n", b"-1\r\n"])
def test_chunked_decoder_malformed(bad):
    with pytest.raises(ParseError):
        ChunkedDecoder().feed(bad + b"\r\n" * 3, 0)


def test_chunked_decoder_size_line_limit():
    with pytest.raises(ParseError):
        ChunkedDecoder().feed(b"1" + b" " * 5000, 0)


# -- responses ---------------------------------------------------------------------------------------
def test_response_head_like_go():
    head = response_head((1, 1), 200, None, b"Content-Type: text/plain\r\n", 2)
    assert re.fullmatch(rb"HTTP/1\.1 200 OK\r\nContent-Type: text/plain\r\nDate: \w{3}, \d\d "
                        rb"\w{3} \d{4} \d\d:\d\d:\d\d GMT\r\nContent-Length: 2\r\n\r\n", head)
    assert response_head((1, 0), 404, None, b"", 0).startswith(b"HTTP/1.0 404 Not Found\r\n")
    assert b"Content-Length" not in response_head((1, 1), 204, None, b"", None)


def test_431_and_canonical_names():
    assert error_response(431) == (b"HTTP/1.1 431 Request Header Fields Too Large\r\nContent-"
                                   b"Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"
                                   b"431 Request Header Fields Too Large")
    assert canonical("x-nsq-content-type") == "X-Nsq-Content-Type"
    h = Headers({"a": "1"})
    h["A"] = "2"
    h.add("b", "3")
    assert h.items() == [("A", "2"), ("b", "3")]
    assert MAX_HEADER_BYTES == (1 << 20) + 4096


# -- fuzzing: the parser ----------------------------------------------------------------------------
FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))

token = st.text("abcXYZ-_!#019", min_size=0, max_size=8)
value = st.binary(max_size=12)
valid_lines = [b"GET /ping HTTP/1.1", b"POST /pub?topic=t HTTP/1.1", b"GET / HTTP/1.0"]


@st.composite
def mutated_requests(draw):
    line = draw(st.sampled_from(valid_lines) | st.binary(max_size=40))
    fields = draw(st.lists(st.tuples(token, value), max_size=5))
    raw = line + b"\r\n" + b"".join(k.encode() + b": " + v + b"\r\n" for k, v in fields)
    if draw(st.booleans()):
        raw = b"Host: x\r\n".join([raw, b""]) if b"\r\n" in raw else raw
    raw += draw(st.sampled_from([b"Host: h\r\n", b""]))
    raw += draw(st.sampled_from([b"", b"Content-Length: 3\r\n", b"Transfer-Encoding: chunked\r\n",
                                 b"Content-Length: x\r\n", b"Transfer-Encoding: zip\r\n"]))
    raw += b"\r\n"
    # flip a few bytes
    for _ in range(draw(st.integers(0, 3))):
        if raw:
            i = draw(st.integers(0, len(raw) - 1))
            raw = raw[:i] + bytes([draw(st.integers(0, 255))]) + raw[i + 1:]
    return raw


def check_parse(raw: bytes):
    he = find_head_end(raw)
    if he is None:
        return
    try:
        method, target, version, headers = parse_head(raw[:he[0]])
        chunked, length = body_framing(version, headers)
    except ParseError as e:
        assert e.status in GO_ERRORS
        assert e.response.startswith(b"HTTP/1.1 %d " % e.status)
        return
    assert method and target and version[0] == 1
    assert chunked or (isinstance(length, int) and length >= 0)


@FUZZ
@given(mutated_requests())
def test_fuzz_parser_valid_or_go_error(raw):
    check_parse(raw)


@FUZZ
@given(st.binary(max_size=300))
def test_fuzz_parser_random_bytes(raw):
    check_parse(raw + b"\r\n\r\n")


@FUZZ
@given(st.binary(max_size=200), st.integers(1, 7))
def test_fuzz_chunked_decoder(raw, step):
    d = ChunkedDecoder()
    buf = bytearray()
    try:
        for i in range(0, len(raw), step):
            buf += raw[i:i + step]
            data, pos = d.feed(buf, 0)
            assert isinstance(data, bytes)
            del buf[:pos]
            if d.done:
                break
    except ParseError as e:
        assert e.status == 400


# -- fuzzing: the connection state machine, bytes in, responses out -----------------------------------
class FakeTransport:
    def __init__(self):
        self.out = bytearray()
        self.closed = False

    def write(self, data):
        assert not self.closed
        self.out += data

    def get_extra_info(self, key, default=None):
        return ("127.0.0.1", 1) if key == "peername" else default

    def is_closing(self):
        return self.closed

    def close(self):
        self.closed = True

    abort = close

    def can_write_eof(self):
        return False

    def pause_reading(self):
        pass

    def resume_reading(self):
        pass


def _protocol():
    from nsqpy.httpapi import PLAIN, Router
    from nsqpy.httpapi.server import HTTPServerHandle, HTTPProtocol

    class Log:
        def info(self, msg):
            pass

        error = warning = info

    router = Router(Log())

    def echo(request, query):
        c = request.content
        return c.read_nowait(1 << 20) if c.complete else NotImplemented

    async def echo_async(request, query):
        return b"?"

    router.add("GET", "/ping", lambda r, q: None, PLAIN, sync=lambda r, q: "OK")
    router.add("POST", "/echo", echo_async, sync=echo)
    loop = asyncio.new_event_loop()
    handle = HTTPServerHandle(router.handle, loop, None, True, router.handle_sync)
    p = HTTPProtocol(handle)
    t = FakeTransport()
    p.connection_made(t)
    return p, t, loop


STATUS_RE = re.compile(rb"HTTP/1\.[01] (\d{3}) ")


@FUZZ
@given(st.lists(st.sampled_from([
    b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n",
    b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc",
    b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
    b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n",
]) | st.binary(max_size=30), max_size=6), st.integers(1, 50))
def test_fuzz_connection_answers_or_closes(pieces, step):
    p, t, loop = _protocol()
    try:
        raw = b"".join(pieces)
        for i in range(0, len(raw), step):
            p.data_received(raw[i:i + step])
        statuses = [int(m) for m in STATUS_RE.findall(bytes(t.out))]
        assert all(s in (200, 404, 405, 301, 307) or s in GO_ERRORS for s in statuses)
        if any(s in GO_ERRORS for s in statuses):
            assert p._closing
    finally:
        p.connection_lost(None)
        loop.close()


def test_state_machine_pipelined_in_one_read_one_write():
    p, t, loop = _protocol()
    writes = []
    t.write = writes.append
    p.data_received(b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n" * 3 +
                    b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi")
    assert len(writes) == 1
    assert writes[0].count(b"HTTP/1.1 200 OK") == 4 and writes[0].endswith(b"hi")
    loop.close()
