"""nsqd HTTP API (spec nsqd-http.md §1-3) against a real nsqd subprocess over real sockets."""
import json
import re
import socket
import struct
import subprocess
import time

import pytest

from daemons import start_nsqd

V1_HEADER = "X-Nsq-Content-Type"
JSON_CT = "application/json; charset=utf-8"


# -- a raw HTTP/1.1 client (exact bytes, keep-alive, no client-side magic) -------------------------
class Raw:
    def __init__(self, port: int, timeout: float = 10.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def close(self):
        self.sock.close()

    def send(self, data: bytes):
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        self.buf += chunk

    def read_head(self):
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        return lines[0], status, headers

    def read_response(self, method="GET"):
        line, status, headers = self.read_head()
        n = int(headers.get("content-length", "0"))
        if method == "HEAD":
            n = 0
        while len(self.buf) < n:
            self._fill()
        body, self.buf = self.buf[:n], self.buf[n:]
        return status, headers, body

    def request(self, method, target, body=None, headers=None):
        hdrs = {"Host": "127.0.0.1"}
        if body is not None:
            hdrs["Content-Length"] = str(len(body))
        hdrs.update(headers or {})
        head = f"{method} {target} HTTP/1.1\r\n" + "".join(
            f"{k}: {v}\r\n" for k, v in hdrs.items()) + "\r\n"
        self.send(head.encode("latin-1") + (body or b""))
        return self.read_response(method)

    def is_closed(self, timeout=3.0) -> bool:
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False


def req(d, method, target, body=None, headers=None):
    c = Raw(d.http_port)
    try:
        return c.request(method, target, body, headers)
    finally:
        c.close()


def assert_v1_error(resp, code, message):
    status, headers, body = resp
    assert status == code, (status, body)
    assert body == json.dumps({"message": message}, separators=(",", ":")).encode()
    assert headers["content-type"] == JSON_CT
    assert headers[V1_HEADER.lower()] == "nsq; version=1.0"


def assert_v1_empty(resp):
    status, headers, body = resp
    assert status == 200, (status, body)
    assert body == b""
    assert headers["content-length"] == "0"
    assert "content-type" not in headers
    assert headers[V1_HEADER.lower()] == "nsq; version=1.0"


def assert_v1_ok_text(resp, text=b"OK"):
    status, headers, body = resp
    assert status == 200, (status, body)
    assert body == text
    assert headers[V1_HEADER.lower()] == "nsq; version=1.0"
    assert headers["content-type"] == "text/plain; charset=utf-8"


def topic_stats(d, topic):
    ts = d.stats(topic=topic)["topics"]
    return ts[0] if ts else None


# -- /ping /info ------------------------------------------------------------------------------------
def test_ping_ok_plain_text(nsqd):
    status, headers, body = req(nsqd, "GET", "/ping")
    assert (status, body) == (200, b"OK")
    assert V1_HEADER.lower() not in headers
    assert headers["content-type"] == "text/plain; charset=utf-8"
    assert "server" not in headers


def test_info_keys_and_values(nsqd):
    status, headers, body = req(nsqd, "GET", "/info")
    assert status == 200
    assert headers["content-type"] == JSON_CT
    assert headers[V1_HEADER.lower()] == "nsq; version=1.0"
    info = json.loads(body)
    assert list(info) == ["version", "broadcast_address", "hostname", "http_port", "tcp_port",
                          "start_time", "max_heartbeat_interval", "max_output_buffer_size",
                          "max_output_buffer_timeout", "max_deflate_level"]
    assert info["version"] == "1.3.0"
    assert info["broadcast_address"] == "127.0.0.1"
    assert info["http_port"] == nsqd.http_port
    assert info["tcp_port"] == nsqd.tcp_port
    assert abs(info["start_time"] - time.time()) < 120
    assert info["max_heartbeat_interval"] == 60000000000
    assert info["max_output_buffer_size"] == 65536
    assert info["max_output_buffer_timeout"] == 30000000000
    assert info["max_deflate_level"] == 6
    assert b" " not in body  # compact JSON


# -- /pub --------------------------------------------------------------------------------------------
def test_pub_ok(nsqd):
    assert_v1_ok_text(req(nsqd, "POST", "/pub?topic=p1", b"hello"))
    t = topic_stats(nsqd, "p1")
    assert (t["message_count"], t["message_bytes"], t["depth"]) == (1, 5, 1)


def test_pub_missing_topic(nsqd):
    assert_v1_error(req(nsqd, "POST", "/pub", b"x"), 400, "MISSING_ARG_TOPIC")


def test_pub_invalid_topic(nsqd):
    assert_v1_error(req(nsqd, "POST", "/pub?topic=bad!name", b"x"), 400, "INVALID_TOPIC")
    assert_v1_error(req(nsqd, "POST", "/pub?topic=", b"x"), 400, "INVALID_TOPIC")


def test_pub_empty_body(nsqd):
    assert_v1_error(req(nsqd, "POST", "/pub?topic=p1", b""), 400, "MSG_EMPTY")
    # MSG_EMPTY is checked before the topic arguments
    assert_v1_error(req(nsqd, "POST", "/pub", b""), 400, "MSG_EMPTY")


def test_pub_invalid_request_query(nsqd):
    assert_v1_error(req(nsqd, "POST", "/pub?topic=p1%zz", b"x"), 400, "INVALID_REQUEST")
    assert_v1_error(req(nsqd, "POST", "/pub?topic=p1;a=b", b"x"), 400, "INVALID_REQUEST")


def test_pub_query_first_value_and_escapes(nsqd):
    assert_v1_ok_text(req(nsqd, "POST", "/pub?topic=%70q&topic=other", b"x"))
    assert topic_stats(nsqd, "pq")["message_count"] == 1
    assert topic_stats(nsqd, "other") is None


def test_pub_msg_too_big_content_length(nsqd_factory):
    d = nsqd_factory("--max-msg-size=10")
    assert_v1_ok_text(req(d, "POST", "/pub?topic=big", b"x" * 10))  # exactly max is fine
    assert_v1_error(req(d, "POST", "/pub?topic=big", b"x" * 11), 413, "MSG_TOO_BIG")
    # size is checked before anything else
    assert_v1_error(req(d, "POST", "/pub", b"x" * 11), 413, "MSG_TOO_BIG")


def test_pub_msg_too_big_chunked(nsqd_factory):
    d = nsqd_factory("--max-msg-size=10")
    c = Raw(d.http_port)
    c.send(b"POST /pub?topic=chunky HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"6\r\nabcdef\r\n6\r\nghijkl\r\n0\r\n\r\n")
    assert_v1_error(c.read_response(), 413, "MSG_TOO_BIG")
    c.close()
    c = Raw(d.http_port)
    c.send(b"POST /pub?topic=chunky HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
    assert_v1_ok_text(c.read_response())
    c.close()
    assert topic_stats(d, "chunky")["message_bytes"] == 5


def test_pub_defer(nsqd):
    req(nsqd, "POST", "/topic/create?topic=dt")
    assert_v1_empty(req(nsqd, "POST", "/channel/create?topic=dt&channel=c"))
    assert_v1_ok_text(req(nsqd, "POST", "/pub?topic=dt&defer=60000", b"later"))
    ch = nsqd.channel_stats("dt", "c")
    assert (ch["deferred_count"], ch["depth"], ch["message_count"]) == (1, 0, 1)


def test_pub_invalid_defer(nsqd):
    for value in ("abc", "-1", "3600001", "1.5", " 5", "99999999999999999999"):
        assert_v1_error(req(nsqd, "POST", f"/pub?topic=dd&defer={value.replace(' ', '%20')}",
                            b"x"), 400, "INVALID_DEFER")
    # the topic was created before the defer check
    assert topic_stats(nsqd, "dd") is not None
    assert_v1_ok_text(req(nsqd, "POST", "/pub?topic=dd&defer=3600000", b"x"))
    assert_v1_ok_text(req(nsqd, "POST", "/pub?topic=dd&defer=0", b"x"))


def test_pub_keep_alive_many_requests(nsqd):
    c = Raw(nsqd.http_port)
    for i in range(50):
        assert_v1_ok_text(c.request("POST", "/pub?topic=ka", b"m%d" % i))
    c.close()
    assert topic_stats(nsqd, "ka")["message_count"] == 50


def test_pub_expect_100_continue(nsqd):
    c = Raw(nsqd.http_port)
    c.send(b"POST /pub?topic=exp HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
           b"Expect: 100-continue\r\n\r\n")
    line, status, _ = c.read_head()
    assert status == 100, line
    c.send(b"hello")
    assert_v1_ok_text(c.read_response())
    c.close()


def test_pub_expect_100_continue_too_big_answered_early(nsqd_factory):
    d = nsqd_factory("--max-msg-size=10")
    c = Raw(d.http_port)
    c.send(b"POST /pub?topic=exp HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n"
           b"Expect: 100-continue\r\n\r\n")
    status, headers, body = c.read_response()
    assert_v1_error((status, headers, body), 413, "MSG_TOO_BIG")
    assert headers.get("connection", "").lower() == "close"
    assert c.is_closed()


def test_pub_not_logged(nsqd):
    req(nsqd, "POST", "/pub?topic=quiet", b"x")
    req(nsqd, "GET", "/ping")
    nsqd.wait_for_log(r"INFO: 200 GET /ping \(127\.0\.0\.1:\d+\) ")
    assert "POST /pub" not in nsqd.log_text()


# -- /mpub -------------------------------------------------------------------------------------------
def test_mpub_text(nsqd):
    assert_v1_ok_text(req(nsqd, "POST", "/mpub?topic=mt", b"one\ntwo\r\n\n\nthree"))
    t = topic_stats(nsqd, "mt")
    assert t["message_count"] == 3
    assert t["message_bytes"] == len(b"one") + len(b"two\r") + len(b"three")


def test_mpub_text_trailing_newline_and_empty_body(nsqd):
    assert_v1_ok_text(req(nsqd, "POST", "/mpub?topic=mt2", b"a\nb\n"))
    assert topic_stats(nsqd, "mt2")["message_count"] == 2
    assert_v1_ok_text(req(nsqd, "POST", "/mpub?topic=mt3", b""))
    t = topic_stats(nsqd, "mt3")
    assert t is not None and t["message_count"] == 0


def test_mpub_body_too_big(nsqd_factory):
    d = nsqd_factory("--max-body-size=20", "--max-msg-size=10")
    assert_v1_error(req(d, "POST", "/mpub?topic=mb", b"a\n" * 11), 413, "BODY_TOO_BIG")
    # Content-Length is checked first, before the topic arguments
    assert_v1_error(req(d, "POST", "/mpub", b"a\n" * 11), 413, "BODY_TOO_BIG")
    assert_v1_ok_text(req(d, "POST", "/mpub?topic=mb", b"a\n" * 10))
    assert topic_stats(d, "mb")["message_count"] == 10


def test_mpub_text_chunked_body_too_big(nsqd_factory):
    d = nsqd_factory("--max-body-size=20", "--max-msg-size=10")
    c = Raw(d.http_port)
    c.send(b"POST /mpub?topic=mc HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"10\r\n" + b"a\n" * 8 + b"\r\n10\r\n" + b"a\n" * 8 + b"\r\n0\r\n\r\n")
    assert_v1_error(c.read_response(), 413, "BODY_TOO_BIG")
    c.close()
    assert topic_stats(d, "mc")["message_count"] == 0


def test_mpub_text_msg_too_big(nsqd_factory):
    d = nsqd_factory("--max-msg-size=4")
    assert_v1_error(req(d, "POST", "/mpub?topic=mm", b"ok\ntoolong\nok"), 413, "MSG_TOO_BIG")
    assert topic_stats(d, "mm")["message_count"] == 0  # all or nothing


def test_mpub_topic_errors(nsqd):
    assert_v1_error(req(nsqd, "POST", "/mpub", b"a"), 400, "MISSING_ARG_TOPIC")
    assert_v1_error(req(nsqd, "POST", "/mpub?topic=a*b", b"a"), 400, "INVALID_TOPIC")
    assert_v1_error(req(nsqd, "POST", "/mpub?topic=%g", b"a"), 400, "INVALID_REQUEST")


def mpub_binary(*bodies, count=None):
    out = struct.pack(">i", len(bodies) if count is None else count)
    for b in bodies:
        out += struct.pack(">i", len(b)) + b
    return out


def test_mpub_binary(nsqd):
    for flag in ("true", "1", "yes"):
        topic = f"mbin{flag}"
        assert_v1_ok_text(req(nsqd, "POST", f"/mpub?topic={topic}&binary={flag}",
                              mpub_binary(b"a\nb", b"ccc")))
        t = topic_stats(nsqd, topic)
        assert (t["message_count"], t["message_bytes"]) == (2, 6)
    nsqd.wait_for_log(r"WARNING: deprecated value 'yes' used for /mpub binary param")


def test_mpub_binary_false_means_text(nsqd):
    assert_v1_ok_text(req(nsqd, "POST", "/mpub?topic=mbf&binary=false", b"x\ny"))
    assert topic_stats(nsqd, "mbf")["message_count"] == 2
    assert_v1_ok_text(req(nsqd, "POST", "/mpub?topic=mbf&binary=0", b"z"))
    assert topic_stats(nsqd, "mbf")["message_count"] == 3


def test_mpub_binary_errors(nsqd_factory):
    d = nsqd_factory("--max-msg-size=10", "--max-body-size=100")
    cases = [
        (b"\x00\x00", "BAD_BODY"),                             # count unreadable
        (mpub_binary(count=0), "BAD_BODY"),                    # count <= 0
        (mpub_binary(b"a", count=-1), "BAD_BODY"),
        (mpub_binary(b"a", count=20), "BAD_BODY"),             # > (100-4)/5 = 19
        (mpub_binary(b"a", count=2), "BAD_MESSAGE"),           # second size unreadable
        (struct.pack(">ii", 1, 0), "BAD_MESSAGE"),             # size 0
        (struct.pack(">ii", 1, -5), "BAD_MESSAGE"),
        (mpub_binary(b"x" * 11), "BAD_MESSAGE"),               # > max-msg-size
        (struct.pack(">ii", 1, 5) + b"abc", "BAD_MESSAGE"),    # short body
    ]
    for body, code in cases:
        assert_v1_error(req(d, "POST", "/mpub?topic=mbe&binary=true", body), 413, code)
    assert topic_stats(d, "mbe")["message_count"] == 0


def test_mpub_binary_chunked(nsqd):
    body = mpub_binary(b"hello", b"world!")
    c = Raw(nsqd.http_port)
    c.send(b"POST /mpub?topic=mbc&binary=true HTTP/1.1\r\nHost: x\r\n"
           b"Transfer-Encoding: chunked\r\n\r\n" +
           b"%x\r\n" % 7 + body[:7] + b"\r\n" +
           b"%x\r\n" % (len(body) - 7) + body[7:] + b"\r\n0\r\n\r\n")
    assert_v1_ok_text(c.read_response())
    c.close()
    assert topic_stats(nsqd, "mbc")["message_bytes"] == 11


# -- topics ----------------------------------------------------------------------------------------
def test_topic_create(nsqd):
    assert_v1_empty(req(nsqd, "POST", "/topic/create?topic=tc"))
    assert topic_stats(nsqd, "tc")["channels"] == []
    nsqd.wait_for_log(r"INFO: TOPIC\(tc\): created")


def test_topic_create_errors(nsqd):
    assert_v1_error(req(nsqd, "POST", "/topic/create"), 400, "MISSING_ARG_TOPIC")
    assert_v1_error(req(nsqd, "POST", "/topic/create?topic=a%20b"), 400, "INVALID_TOPIC")
    assert_v1_error(req(nsqd, "POST", "/topic/create?topic=" + "a" * 65), 400, "INVALID_TOPIC")


def test_topic_delete(nsqd):
    req(nsqd, "POST", "/topic/create?topic=td")
    req(nsqd, "POST", "/channel/create?topic=td&channel=c")
    assert_v1_empty(req(nsqd, "POST", "/topic/delete?topic=td"))
    assert topic_stats(nsqd, "td") is None
    assert_v1_error(req(nsqd, "POST", "/topic/delete?topic=td"), 404, "TOPIC_NOT_FOUND")


def test_topic_delete_errors(nsqd):
    assert_v1_error(req(nsqd, "POST", "/topic/delete"), 400, "MISSING_ARG_TOPIC")
    # no name validation: an invalid name is simply not found
    assert_v1_error(req(nsqd, "POST", "/topic/delete?topic=bad!"), 404, "TOPIC_NOT_FOUND")
    assert_v1_error(req(nsqd, "POST", "/topic/delete?topic=%zz"), 400, "INVALID_REQUEST")


def test_topic_empty(nsqd):
    req(nsqd, "POST", "/mpub?topic=te", b"a\nb\nc")
    assert topic_stats(nsqd, "te")["depth"] == 3
    assert_v1_empty(req(nsqd, "POST", "/topic/empty?topic=te"))
    assert topic_stats(nsqd, "te")["depth"] == 0


def test_topic_empty_errors(nsqd):
    assert_v1_error(req(nsqd, "POST", "/topic/empty"), 400, "MISSING_ARG_TOPIC")
    assert_v1_error(req(nsqd, "POST", "/topic/empty?topic=x!"), 400, "INVALID_TOPIC")
    assert_v1_error(req(nsqd, "POST", "/topic/empty?topic=nope"), 404, "TOPIC_NOT_FOUND")


def test_topic_pause_unpause(nsqd):
    req(nsqd, "POST", "/topic/create?topic=tp")
    req(nsqd, "POST", "/channel/create?topic=tp&channel=c")
    assert_v1_empty(req(nsqd, "POST", "/topic/pause?topic=tp"))
    assert topic_stats(nsqd, "tp")["paused"] is True
    req(nsqd, "POST", "/pub?topic=tp", b"held")
    t = topic_stats(nsqd, "tp")
    assert t["depth"] == 1 and t["channels"][0]["depth"] == 0
    meta = json.load(open(f"{nsqd.data_path}/nsqd.dat"))
    assert meta["topics"][0]["paused"] is True
    assert_v1_empty(req(nsqd, "POST", "/topic/unpause?topic=tp"))
    deadline = time.time() + 5
    while time.time() < deadline:
        t = topic_stats(nsqd, "tp")
        if t["channels"][0]["depth"] == 1:
            break
        time.sleep(0.05)
    assert t["paused"] is False and t["depth"] == 0 and t["channels"][0]["depth"] == 1


def test_topic_pause_errors(nsqd):
    for ep in ("pause", "unpause"):
        assert_v1_error(req(nsqd, "POST", f"/topic/{ep}"), 400, "MISSING_ARG_TOPIC")
        assert_v1_error(req(nsqd, "POST", f"/topic/{ep}?topic=bad!"), 404, "TOPIC_NOT_FOUND")


# -- channels ----------------------------------------------------------------------------------------
def test_channel_create(nsqd):
    req(nsqd, "POST", "/topic/create?topic=cc")
    assert_v1_empty(req(nsqd, "POST", "/channel/create?topic=cc&channel=ch"))
    assert [c["channel_name"] for c in topic_stats(nsqd, "cc")["channels"]] == ["ch"]


@pytest.mark.parametrize("ep", ["create", "delete", "empty", "pause", "unpause"])
def test_channel_argument_errors(nsqd, ep):
    p = f"/channel/{ep}"
    assert_v1_error(req(nsqd, "POST", p + "?topic=%"), 400, "INVALID_REQUEST")
    assert_v1_error(req(nsqd, "POST", p), 400, "MISSING_ARG_TOPIC")
    assert_v1_error(req(nsqd, "POST", p + "?topic=a!&channel=c"), 400, "INVALID_ARG_TOPIC")
    assert_v1_error(req(nsqd, "POST", p + "?topic=ok"), 400, "MISSING_ARG_CHANNEL")
    assert_v1_error(req(nsqd, "POST", p + "?topic=ok&channel=c!"), 400, "INVALID_ARG_CHANNEL")
    assert_v1_error(req(nsqd, "POST", p + "?topic=nosuch&channel=c"), 404, "TOPIC_NOT_FOUND")
    if ep != "create":
        req(nsqd, "POST", "/topic/create?topic=exists")
        assert_v1_error(req(nsqd, "POST", p + "?topic=exists&channel=none"), 404,
                        "CHANNEL_NOT_FOUND")


def test_channel_delete(nsqd):
    req(nsqd, "POST", "/topic/create?topic=cd")
    req(nsqd, "POST", "/channel/create?topic=cd&channel=a")
    req(nsqd, "POST", "/channel/create?topic=cd&channel=b")
    assert_v1_empty(req(nsqd, "POST", "/channel/delete?topic=cd&channel=a"))
    assert [c["channel_name"] for c in topic_stats(nsqd, "cd")["channels"]] == ["b"]


def test_channel_empty(nsqd, conn_factory):
    req(nsqd, "POST", "/topic/create?topic=ce")
    req(nsqd, "POST", "/channel/create?topic=ce&channel=c")
    req(nsqd, "POST", "/mpub?topic=ce", b"1\n2\n3")
    req(nsqd, "POST", "/pub?topic=ce&defer=100000", b"later")
    c = conn_factory(nsqd)
    c.subscribe("ce", "c", rdy=1)
    c.read_message()
    ch = nsqd.channel_stats("ce", "c")
    assert (ch["depth"], ch["in_flight_count"], ch["deferred_count"]) == (2, 1, 1)
    assert_v1_empty(req(nsqd, "POST", "/channel/empty?topic=ce&channel=c"))
    ch = nsqd.channel_stats("ce", "c")
    assert (ch["depth"], ch["in_flight_count"], ch["deferred_count"]) == (0, 0, 0)
    assert ch["clients"][0]["in_flight_count"] == 0


def test_channel_pause_unpause(nsqd):
    req(nsqd, "POST", "/topic/create?topic=cp")
    req(nsqd, "POST", "/channel/create?topic=cp&channel=c")
    assert_v1_empty(req(nsqd, "POST", "/channel/pause?topic=cp&channel=c"))
    assert nsqd.channel_stats("cp", "c")["paused"] is True
    assert_v1_empty(req(nsqd, "POST", "/channel/unpause?topic=cp&channel=c"))
    assert nsqd.channel_stats("cp", "c")["paused"] is False


# -- /config --------------------------------------------------------------------------------------------
def test_config_get_values(nsqd):
    status, headers, body = req(nsqd, "GET", "/config/max_msg_size")
    assert (status, body) == (200, b"1048576")
    assert headers["content-type"] == JSON_CT
    assert req(nsqd, "GET", "/config/msg_timeout")[2] == b"60000000000"
    assert req(nsqd, "GET", "/config/log_level")[2] == b"2"
    assert req(nsqd, "GET", "/config/nsqlookupd_tcp_addresses")[2] == b"[]"
    assert req(nsqd, "GET", "/config/snappy")[2] == b"true"
    assert req(nsqd, "GET", "/config/broadcast_http_port")[2] == str(nsqd.http_port).encode()


def test_config_get_string_is_raw_text(nsqd):
    status, headers, body = req(nsqd, "GET", "/config/statsd_prefix")
    assert status == 200
    assert body == f"nsq.127_0_0_1_{nsqd.http_port}.".encode()
    assert headers["content-type"] == "text/plain; charset=utf-8"
    assert req(nsqd, "GET", "/config/broadcast_address")[2] == b"127.0.0.1"


def test_config_unknown_option(nsqd):
    assert_v1_error(req(nsqd, "GET", "/config/nope"), 400, "INVALID_OPTION")
    assert_v1_error(req(nsqd, "GET", "/config/node_id"), 400, "INVALID_OPTION")


def test_config_put_log_level(nsqd):
    status, headers, body = req(nsqd, "PUT", "/config/log_level", b"DEBUG")
    assert (status, body) == (200, b"1")
    assert req(nsqd, "GET", "/config/log_level")[2] == b"1"
    assert req(nsqd, "PUT", "/config/log_level", b"warn")[2] == b"3"
    # at warn the request log line (INFO) is no longer written
    req(nsqd, "GET", "/config/log_level")
    assert_v1_error(req(nsqd, "PUT", "/config/log_level", b"verbose"), 400, "INVALID_VALUE")
    assert_v1_error(req(nsqd, "PUT", "/config/log_level", b"info\n"), 400, "INVALID_VALUE")
    assert req(nsqd, "PUT", "/config/log_level", b"info")[2] == b"2"


def test_config_put_lookupd_addresses(nsqd):
    status, _, body = req(nsqd, "PUT", "/config/nsqlookupd_tcp_addresses",
                          b'["127.0.0.1:1"]')
    assert (status, body) == (200, b'["127.0.0.1:1"]')
    assert req(nsqd, "GET", "/config/nsqlookupd_tcp_addresses")[2] == b'["127.0.0.1:1"]'
    for bad in (b"not json", b'"x"', b"[1]", b'{"a":1}'):
        assert_v1_error(req(nsqd, "PUT", "/config/nsqlookupd_tcp_addresses", bad), 400,
                        "INVALID_VALUE")
    assert req(nsqd, "PUT", "/config/nsqlookupd_tcp_addresses", b"[]")[2] == b"[]"


def test_config_put_errors(nsqd_factory):
    d = nsqd_factory("--max-msg-size=8")
    assert_v1_error(req(d, "PUT", "/config/log_level", b""), 413, "INVALID_VALUE")
    assert_v1_error(req(d, "PUT", "/config/log_level", b"x" * 9), 413, "INVALID_VALUE")
    # the size check comes first, for any option
    assert_v1_error(req(d, "PUT", "/config/nope", b""), 413, "INVALID_VALUE")
    assert_v1_error(req(d, "PUT", "/config/max_msg_size", b"10"), 400, "INVALID_OPTION")


# -- router behaviour ----------------------------------------------------------------------------------
def test_not_found(nsqd):
    assert_v1_error(req(nsqd, "GET", "/nope"), 404, "NOT_FOUND")
    assert_v1_error(req(nsqd, "GET", "/"), 404, "NOT_FOUND")


@pytest.mark.parametrize("path", ["/put", "/mput", "/create_topic", "/delete_topic",
                                  "/empty_topic", "/pause_topic", "/unpause_topic",
                                  "/create_channel", "/delete_channel", "/empty_channel",
                                  "/pause_channel", "/unpause_channel"])
def test_removed_endpoints_not_found(nsqd, path):
    for method in ("GET", "POST"):
        assert_v1_error(req(nsqd, method, path + "?topic=t&channel=c", b"x"), 404,
                        "NOT_FOUND")


def test_method_not_allowed(nsqd):
    resp = req(nsqd, "GET", "/pub?topic=x")
    assert_v1_error(resp, 405, "METHOD_NOT_ALLOWED")
    assert resp[1]["allow"] == "OPTIONS, POST"
    resp = req(nsqd, "POST", "/ping")
    assert_v1_error(resp, 405, "METHOD_NOT_ALLOWED")
    assert resp[1]["allow"] == "GET, OPTIONS"
    resp = req(nsqd, "DELETE", "/config/max_msg_size")
    assert resp[0] == 405 and resp[1]["allow"] == "GET, OPTIONS, PUT"
    resp = req(nsqd, "PUT", "/debug/pprof/symbol")
    assert resp[0] == 405 and resp[1]["allow"] == "GET, OPTIONS, POST"
    nsqd.wait_for_log(r"INFO: 405 GET /pub\?topic=x \(127\.0\.0\.1:\d+\) ")


def test_head_is_method_not_allowed(nsqd):
    status, headers, body = req(nsqd, "HEAD", "/ping")
    assert status == 405 and headers["allow"] == "GET, OPTIONS"


def test_options(nsqd):
    for path, allow in (("/pub", "OPTIONS, POST"), ("/ping", "GET, OPTIONS"),
                        ("/config/x", "GET, OPTIONS, PUT"), ("/debug/setblockrate",
                                                             "OPTIONS, PUT")):
        status, headers, body = req(nsqd, "OPTIONS", path)
        assert (status, body) == (200, b"")
        assert headers["allow"] == allow
        assert V1_HEADER.lower() not in headers
    assert_v1_error(req(nsqd, "OPTIONS", "/nope"), 404, "NOT_FOUND")


def test_trailing_slash_redirects(nsqd):
    status, headers, body = req(nsqd, "GET", "/ping/")
    assert status == 301 and headers["location"] == "/ping"
    assert body == b'<a href="/ping">Moved Permanently</a>.\n\n'
    status, headers, body = req(nsqd, "POST", "/pub/?topic=x", b"m")
    assert status == 307 and headers["location"] == "/pub?topic=x" and body == b""
    status, headers, _ = req(nsqd, "GET", "/debug/pprof")
    assert status == 301 and headers["location"] == "/debug/pprof/"
    status, headers, _ = req(nsqd, "GET", "/config/max_msg_size/")
    assert status == 301 and headers["location"] == "/config/max_msg_size"


def test_case_and_clean_path_redirects(nsqd):
    status, headers, _ = req(nsqd, "GET", "/PING")
    assert status == 301 and headers["location"] == "/ping"
    status, headers, _ = req(nsqd, "POST", "/Topic/Create?topic=x")
    assert status == 307 and headers["location"] == "/topic/create?topic=x"
    status, headers, _ = req(nsqd, "GET", "//stats")
    assert status == 301 and headers["location"] == "/stats"
    status, headers, _ = req(nsqd, "GET", "/a/../info")
    assert status == 301 and headers["location"] == "/info"
    # wrong method on a tree that doesn't have the path: no redirect
    assert_v1_error(req(nsqd, "GET", "/PUB"), 404, "NOT_FOUND")


def test_request_log_line(nsqd):
    req(nsqd, "POST", "/topic/create?topic=logged")
    line = nsqd.wait_for_log(r"INFO: 200 POST /topic/create\?topic=logged ")
    assert re.search(r"INFO: 200 POST /topic/create\?topic=logged \(127\.0\.0\.1:\d+\) "
                     r"[0-9.]+(ns|µs|ms|s)\n$", line), line
    req(nsqd, "POST", "/topic/delete?topic=nothere")
    nsqd.wait_for_log(r"INFO: 404 POST /topic/delete\?topic=nothere \(127\.0\.0\.1:\d+\) ")


# -- debug -----------------------------------------------------------------------------------------------
def test_setblockrate(nsqd):
    status, headers, body = req(nsqd, "PUT", "/debug/setblockrate?rate=abc")
    assert status == 400
    assert body == b'invalid block rate : strconv.Atoi: parsing "abc": invalid syntax'
    assert V1_HEADER.lower() not in headers
    status, _, body = req(nsqd, "PUT", "/debug/setblockrate")
    assert (status, body) == (400, b'invalid block rate : strconv.Atoi: parsing "": '
                                   b'invalid syntax')
    status, _, body = req(nsqd, "PUT", "/debug/setblockrate?rate=99999999999999999999")
    assert status == 400 and body.endswith(b"value out of range")
    status, _, body = req(nsqd, "PUT", "/debug/setblockrate?rate=1")
    assert (status, body) == (200, b"")
    status, _, body = req(nsqd, "PUT", "/debug/setblockrate", b"rate=5",
                          {"Content-Type": "application/x-www-form-urlencoded"})
    assert (status, body) == (200, b"")


def test_freememory(nsqd):
    status, headers, body = req(nsqd, "POST", "/debug/freememory")
    assert (status, body) == (200, b"")
    assert_v1_error(req(nsqd, "GET", "/debug/freememory"), 405, "METHOD_NOT_ALLOWED")


@pytest.mark.parametrize("path", ["/debug/pprof/", "/debug/pprof/cmdline",
                                  "/debug/pprof/symbol", "/debug/pprof/heap",
                                  "/debug/pprof/goroutine", "/debug/pprof/block",
                                  "/debug/pprof/threadcreate",
                                  "/debug/pprof/profile?seconds=1"])
def test_pprof_routes(nsqd, path):
    status, headers, body = req(nsqd, "GET", path)
    assert status == 200 and body
    assert V1_HEADER.lower() not in headers


def test_pprof_symbol_post(nsqd):
    status, _, body = req(nsqd, "POST", "/debug/pprof/symbol", b"0x1234")
    assert status == 200 and body.startswith(b"num_symbols: 1\n")


# -- TLS required -----------------------------------------------------------------------------------------
@pytest.fixture
def cert_pair(tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    try:
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days",
                        "1", "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out",
                        str(cert)], check=True, capture_output=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        pytest.skip("openssl not available")
    return str(cert), str(key)


def test_tls_required_forbids_plain_http(nsqd_factory, cert_pair):
    cert, key = cert_pair
    d = nsqd_factory(f"--tls-cert={cert}", f"--tls-key={key}", "--tls-required=true",
                     "--https-address=127.0.0.1:0")
    for method, path in (("GET", "/ping"), ("POST", "/pub?topic=x"), ("GET", "/nope")):
        status, headers, body = req(d, method, path, b"x" if method == "POST" else None)
        assert status == 403
        assert re.fullmatch(rb'\{"message": "TLS_REQUIRED", "https_port": \d+\}', body), body
        assert headers["content-type"] == JSON_CT
        assert headers[V1_HEADER.lower()] == "nsq; version=1.0"


def test_tls_required_tcp_https_allows_plain_http(nsqd_factory, cert_pair):
    cert, key = cert_pair
    d = nsqd_factory(f"--tls-cert={cert}", f"--tls-key={key}", "--tls-required=tcp-https",
                     "--https-address=127.0.0.1:0")
    assert req(d, "GET", "/ping")[:3:2] == (200, b"OK")


# -- in-process daemon: states that are hard to reach from outside ---------------------------------------
@pytest.fixture
async def inproc(tmp_path):
    import io

    from nsqpy.log import Logger
    from nsqpy.nsqd.daemon import NSQD
    from nsqpy.nsqd.options import parse_nsqd_options

    opts = parse_nsqd_options(["--tcp-address=127.0.0.1:0", "--http-address=127.0.0.1:0",
                               f"--data-path={tmp_path}", "--broadcast-address=127.0.0.1"])
    stream = io.StringIO()
    n = NSQD(opts, Logger("[nsqd] ", "info", stream=stream))
    n.log_stream = stream
    await n.start()
    yield n
    await n.stop()


async def test_ping_unhealthy(inproc):
    import aiohttp
    inproc.broker.disk_failed(OSError("no space left on device"))
    async with aiohttp.ClientSession() as s:
        async with s.get(f"http://127.0.0.1:{inproc.http_port}/ping") as r:
            assert r.status == 500
            assert await r.read() == b"NOK - no space left on device"
            assert "X-Nsq-Content-Type" not in r.headers
        async with s.get(f"http://127.0.0.1:{inproc.http_port}/stats?format=json") as r:
            assert (await r.json())["health"] == "NOK - no space left on device"
        async with s.get(f"http://127.0.0.1:{inproc.http_port}/stats") as r:
            assert "\nHealth: NOK - no space left on device\n" in await r.text()
        inproc.broker.disk_ok()
        async with s.get(f"http://127.0.0.1:{inproc.http_port}/ping") as r:
            assert (r.status, await r.read()) == (200, b"OK")
    assert re.search(r"INFO: 500 GET /ping \(127\.0\.0\.1:\d+\) ", inproc.log_stream.getvalue())


async def test_handler_panic_is_internal_error(inproc, monkeypatch):
    import aiohttp

    def boom(name):
        raise RuntimeError("boom")

    monkeypatch.setattr(inproc.broker, "get_existing_topic", boom)
    async with aiohttp.ClientSession() as s:
        async with s.post(f"http://127.0.0.1:{inproc.http_port}/topic/empty?topic=x") as r:
            assert r.status == 500
            assert await r.read() == b'{"message":"INTERNAL_ERROR"}'
    log = inproc.log_stream.getvalue()
    assert "ERROR: panic in HTTP handler - " in log
    assert re.search(r"INFO: 500 POST /topic/empty\?topic=x ", log)


async def test_https_listener_and_tls_required(inproc, cert_pair):
    import ssl

    import aiohttp

    from nsqpy.nsqd.http_api import start_http_server

    cert, key = cert_pair
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    inproc.opts.tls_required = 2
    https, https_port = await start_http_server(inproc, "127.0.0.1", 0, ssl_context=ctx)
    plain, plain_port = await start_http_server(inproc, "127.0.0.1", 0)
    inproc.https_port = https_port
    client_ctx = ssl.create_default_context()
    client_ctx.check_hostname = False
    client_ctx.verify_mode = ssl.CERT_NONE
    try:
        async with aiohttp.ClientSession() as s:
            async with s.get(f"https://127.0.0.1:{https_port}/ping", ssl=client_ctx) as r:
                assert (r.status, await r.read()) == (200, b"OK")
            async with s.post(f"https://127.0.0.1:{https_port}/pub?topic=tls", data=b"m",
                              ssl=client_ctx) as r:
                assert (r.status, await r.read()) == (200, b"OK")
            async with s.get(f"http://127.0.0.1:{plain_port}/ping") as r:
                assert r.status == 403
                assert await r.read() == (b'{"message": "TLS_REQUIRED", "https_port": %d}'
                                          % https_port)
                assert r.headers["Content-Type"] == JSON_CT
                assert r.headers["X-Nsq-Content-Type"] == "nsq; version=1.0"
    finally:
        await https.close()
        await plain.close()


async def test_port_zero_and_close(inproc):
    import aiohttp

    from nsqpy.nsqd.http_api import start_http_server

    handle, port = await start_http_server(inproc, "127.0.0.1", 0)
    assert port > 0
    async with aiohttp.ClientSession() as s:
        async with s.get(f"http://127.0.0.1:{port}/ping") as r:
            assert r.status == 200
    await handle.close()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_pub_huge_content_length_answered_before_body(nsqd):
    c = Raw(nsqd.http_port)
    c.send(b"POST /pub?topic=huge HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\n\r\n"
           b"partial")
    status, headers, body = c.read_response()
    assert_v1_error((status, headers, body), 413, "MSG_TOO_BIG")
    assert headers.get("connection", "").lower() == "close"
    assert c.is_closed()


def test_unread_small_body_keeps_connection(nsqd):
    c = Raw(nsqd.http_port)
    assert_v1_empty(c.request("POST", "/topic/create?topic=kb", b"ignored body"))
    assert c.request("GET", "/ping")[2] == b"OK"
    c.close()


# -- units ------------------------------------------------------------------------------------------------
def test_parse_query_like_go():
    from nsqpy.nsqd.http_api import parse_query
    assert parse_query("topic=a&topic=b&x=1+2&y=%41&&z") == {
        "topic": "a", "x": "1 2", "y": "A", "z": ""}
    for bad in ("a=%", "a=%4", "a=%zz", "a=1;b=2", "%gg=1"):
        with pytest.raises(ValueError):
            parse_query(bad)
    assert parse_query("a=%zz&rate=5;x&rate=7", strict=False) == {"rate": "7"}


def test_clean_path_like_httprouter():
    from nsqpy.nsqd.http_api import clean_path
    assert clean_path("") == "/"
    assert clean_path("//ping") == "/ping"
    assert clean_path("/a/../b/./c/") == "/b/c/"
    assert clean_path("ping") == "/ping"
    assert clean_path("/../..") == "/"
