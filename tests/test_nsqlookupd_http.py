"""nsqlookupd HTTP API (spec nsqlookupd.md §1, §3, §4) against a real nsqlookupd subprocess."""
import json
import socket
import struct
import time

import pytest

from toolutil import factory, lookupd_fixture, start_lookupd

V1_HEADER = "X-Nsq-Content-Type"
JSON_CT = "application/json; charset=utf-8"


BROADCAST = "--broadcast-address=lookupd.test"

lookupd = lookupd_fixture(BROADCAST)


class Producer:
    """A fake nsqd speaking V1 to the lookupd."""

    def __init__(self, d, broadcast="nsqd.test", tcp_port=4150, http_port=4151, hostname="h"):
        self.sock = socket.create_connection(d.tcp_address, timeout=5)
        self.f = self.sock.makefile("rb")
        self.sock.sendall(b"  V1")
        body = json.dumps({"broadcast_address": broadcast, "tcp_port": tcp_port,
                           "http_port": http_port, "version": "1.3.0",
                           "hostname": hostname}).encode()
        self.cmd(b"IDENTIFY\n" + struct.pack(">i", len(body)) + body)
        host, port = self.sock.getsockname()[:2]
        self.remote = f"{host}:{port}"

    def cmd(self, data: bytes) -> bytes:
        self.sock.sendall(data)
        (n,) = struct.unpack(">i", self.f.read(4))
        return self.f.read(n)

    def register(self, topic, channel=None):
        line = f"REGISTER {topic}" + (f" {channel}" if channel else "") + "\n"
        assert self.cmd(line.encode()) == b"OK"

    def close(self):
        self.f.close()
        self.sock.close()


@pytest.fixture
def producer(lookupd):
    with factory(lambda **kw: Producer(lookupd, **kw), Producer.close) as make:
        yield make


def req(d, method, path, body=None, headers=None):
    return d.http(method, path, body=body, headers=headers)


def ok_json(d, path, method="GET"):
    status, headers, body = req(d, method, path)
    assert status == 200, (path, status, body)
    assert headers["Content-Type"] == JSON_CT
    assert headers[V1_HEADER] == "nsq; version=1.0"
    return json.loads(body), body


def expect_error(d, method, path, status, message):
    got_status, headers, body = req(d, method, path)
    assert (got_status, body) == (status, json.dumps({"message": message},
                                                     separators=(",", ":")).encode())
    assert headers["Content-Type"] == JSON_CT
    assert headers[V1_HEADER] == "nsq; version=1.0"


def post_ok(d, path):
    status, headers, body = req(d, "POST", path)
    assert (status, body) == (200, b""), (path, status, body)
    assert headers[V1_HEADER] == "nsq; version=1.0"
    assert "Content-Type" not in headers


# -- /ping /info ----------------------------------------------------------------------------------------
def test_ping_plain_text_ok(lookupd):
    status, headers, body = req(lookupd, "GET", "/ping")
    assert (status, body) == (200, b"OK")
    assert headers["Content-Type"] == "text/plain; charset=utf-8"
    assert V1_HEADER not in headers


def test_info_version(lookupd):
    doc, raw = ok_json(lookupd, "/info")
    assert raw == b'{"version":"1.3.0"}'


# -- /topics /channels -------------------------------------------------------------------------------
def test_topics_empty_is_empty_list(lookupd):
    assert ok_json(lookupd, "/topics")[1] == b'{"topics":[]}'


def test_topics_lists_registered_and_created(lookupd, producer):
    producer().register("a")
    post_ok(lookupd, "/topic/create?topic=b")
    assert sorted(ok_json(lookupd, "/topics")[0]["topics"]) == ["a", "b"]


def test_channels_missing_topic(lookupd):
    expect_error(lookupd, "GET", "/channels", 400, "MISSING_ARG_TOPIC")


def test_channels_bad_query_is_invalid_request(lookupd):
    expect_error(lookupd, "GET", "/channels?topic=%zz", 400, "INVALID_REQUEST")
    expect_error(lookupd, "GET", "/channels?topic=a;b=c", 400, "INVALID_REQUEST")


def test_channels_unknown_topic_is_empty_and_name_not_validated(lookupd):
    assert ok_json(lookupd, "/channels?topic=nope")[1] == b'{"channels":[]}'
    assert ok_json(lookupd, "/channels?topic=bad!name")[1] == b'{"channels":[]}'


def test_channels_lists_registered_and_created(lookupd, producer):
    producer().register("t", "c1")
    post_ok(lookupd, "/channel/create?topic=t&channel=c2")
    assert sorted(ok_json(lookupd, "/channels?topic=t")[0]["channels"]) == ["c1", "c2"]


# -- /lookup -----------------------------------------------------------------------------------------
def test_lookup_missing_topic(lookupd):
    expect_error(lookupd, "GET", "/lookup", 400, "MISSING_ARG_TOPIC")


def test_lookup_unknown_topic_is_404(lookupd):
    expect_error(lookupd, "GET", "/lookup?topic=nope", 404, "TOPIC_NOT_FOUND")


def test_lookup_exact_shape_and_key_order(lookupd, producer):
    p = producer(broadcast="nsqd1.local", tcp_port=4150, http_port=4151, hostname="h1")
    p.register("t", "ch1")
    _, raw = ok_json(lookupd, "/lookup?topic=t")
    assert raw == (b'{"channels":["ch1"],"producers":[{"remote_address":"'
                   + p.remote.encode() + b'","hostname":"h1","broadcast_address":"nsqd1.local",'
                   b'"tcp_port":4150,"http_port":4151,"version":"1.3.0"}]}')


def test_lookup_created_topic_without_producers(lookupd):
    post_ok(lookupd, "/channel/create?topic=t&channel=c")
    assert ok_json(lookupd, "/lookup?topic=t")[1] == b'{"channels":["c"],"producers":[]}'


def test_lookup_repeated_param_uses_first(lookupd, producer):
    producer().register("first")
    assert len(ok_json(lookupd, "/lookup?topic=first&topic=second")[0]["producers"]) == 1


# -- /nodes ------------------------------------------------------------------------------------------
def test_nodes_empty(lookupd):
    assert ok_json(lookupd, "/nodes")[1] == b'{"producers":[]}'


def test_nodes_exact_shape(lookupd, producer):
    p = producer(broadcast="127.0.0.1", tcp_port=14150, http_port=14151, hostname="vm")
    p.register("t2")
    p.register("s1", "c")
    doc, raw = ok_json(lookupd, "/nodes")
    (node,) = doc["producers"]
    assert list(node) == ["remote_address", "hostname", "broadcast_address", "tcp_port",
                          "http_port", "version", "tombstones", "topics"]
    assert node["remote_address"] == p.remote
    assert (node["hostname"], node["broadcast_address"], node["tcp_port"],
            node["http_port"], node["version"]) == ("vm", "127.0.0.1", 14150, 14151, "1.3.0")
    assert sorted(node["topics"]) == ["s1", "t2"]
    assert node["tombstones"] == [False, False]


def test_nodes_identified_without_topics(lookupd, producer):
    producer()
    (node,) = ok_json(lookupd, "/nodes")[0]["producers"]
    assert node["topics"] == [] and node["tombstones"] == []


# -- create / delete ------------------------------------------------------------------------------------
def test_topic_create_errors(lookupd):
    expect_error(lookupd, "POST", "/topic/create", 400, "MISSING_ARG_TOPIC")
    expect_error(lookupd, "POST", "/topic/create?topic=bad!", 400, "INVALID_ARG_TOPIC")
    expect_error(lookupd, "POST", "/topic/create?topic=", 400, "INVALID_ARG_TOPIC")


def test_topic_create_adds_empty_registration(lookupd):
    post_ok(lookupd, "/topic/create?topic=t")
    lookupd.wait_for_log(r"INFO: DB: adding topic\(t\)")
    assert ok_json(lookupd, "/lookup?topic=t")[0] == {"channels": [], "producers": []}
    assert ok_json(lookupd, "/debug")[0] == {}          # empty registrations not dumped


def test_topic_delete_removes_topic_and_its_channels(lookupd, producer):
    producer().register("t", "c")
    post_ok(lookupd, "/channel/create?topic=t&channel=c2")
    post_ok(lookupd, "/topic/delete?topic=t")
    lookupd.wait_for_log(r"DB: removing channel\(c\) from topic\(t\)")
    lookupd.wait_for_log(r"DB: removing topic\(t\)")
    expect_error(lookupd, "GET", "/lookup?topic=t", 404, "TOPIC_NOT_FOUND")
    assert ok_json(lookupd, "/channels?topic=t")[0] == {"channels": []}
    assert ok_json(lookupd, "/topics")[0] == {"topics": []}


def test_topic_delete_absent_or_invalid_is_ok(lookupd):
    post_ok(lookupd, "/topic/delete?topic=nope")
    post_ok(lookupd, "/topic/delete?topic=bad!")
    expect_error(lookupd, "POST", "/topic/delete", 400, "MISSING_ARG_TOPIC")


@pytest.mark.parametrize("path", ["/channel/create", "/channel/delete"])
def test_channel_endpoints_argument_errors(lookupd, path):
    expect_error(lookupd, "POST", path, 400, "MISSING_ARG_TOPIC")
    expect_error(lookupd, "POST", f"{path}?topic=b@d", 400, "INVALID_ARG_TOPIC")
    expect_error(lookupd, "POST", f"{path}?topic=t", 400, "MISSING_ARG_CHANNEL")
    expect_error(lookupd, "POST", f"{path}?topic=t&channel=b@d", 400, "INVALID_ARG_CHANNEL")


def test_channel_create_adds_channel_and_topic(lookupd):
    post_ok(lookupd, "/channel/create?topic=t&channel=c")
    lookupd.wait_for_log(r"DB: adding channel\(c\) in topic\(t\)")
    assert ok_json(lookupd, "/topics")[0] == {"topics": ["t"]}
    assert ok_json(lookupd, "/channels?topic=t")[0] == {"channels": ["c"]}


def test_channel_delete_missing_is_404(lookupd):
    post_ok(lookupd, "/topic/create?topic=t")
    expect_error(lookupd, "POST", "/channel/delete?topic=t&channel=c", 404, "CHANNEL_NOT_FOUND")


def test_channel_delete_leaves_topic(lookupd, producer):
    producer().register("t", "c")
    post_ok(lookupd, "/channel/delete?topic=t&channel=c")
    lookupd.wait_for_log(r"DB: removing channel\(c\) from topic\(t\)")
    doc = ok_json(lookupd, "/lookup?topic=t")[0]
    assert doc["channels"] == [] and len(doc["producers"]) == 1


def test_ephemeral_names_accepted(lookupd):
    post_ok(lookupd, "/channel/create?topic=t%23ephemeral&channel=c%23ephemeral")
    assert ok_json(lookupd, "/channels?topic=t%23ephemeral")[0] == {"channels": ["c#ephemeral"]}


# -- tombstones ---------------------------------------------------------------------------------------
def test_tombstone_argument_errors(lookupd):
    expect_error(lookupd, "POST", "/topic/tombstone", 400, "MISSING_ARG_TOPIC")
    expect_error(lookupd, "POST", "/topic/tombstone?topic=t", 400, "MISSING_ARG_NODE")


def test_tombstone_unknown_is_ok(lookupd):
    post_ok(lookupd, "/topic/tombstone?topic=nope&node=x:1")


def test_tombstone_hides_producer_from_lookup_for_its_lifetime():
    d = start_lookupd(BROADCAST, "--tombstone-lifetime=500ms")
    a = b = None
    try:
        a = Producer(d, broadcast="a.test", http_port=1001)
        b = Producer(d, broadcast="b.test", http_port=1002)
        a.register("t")
        b.register("t")
        a.register("u")
        post_ok(d, "/topic/tombstone?topic=t&node=a.test:1001")
        d.wait_for_log(r"DB: setting tombstone for producer@a\.test:1001 of topic\(t\)")
        assert [p["broadcast_address"] for p in ok_json(d, "/lookup?topic=t")[0]["producers"]] \
            == ["b.test"]
        assert len(ok_json(d, "/lookup?topic=u")[0]["producers"]) == 1   # per topic
        # /nodes keeps the tombstoned node and flags the topic
        nodes = {n["broadcast_address"]: n for n in ok_json(d, "/nodes")[0]["producers"]}
        flags = dict(zip(nodes["a.test"]["topics"], nodes["a.test"]["tombstones"]))
        assert flags == {"t": True, "u": False}
        dbg = ok_json(d, "/debug")[0]["topic:t:"]
        tomb = [e for e in dbg if e["broadcast_address"] == "a.test"][0]
        assert tomb["tombstoned"] is True and tomb["tombstoned_at"] > 0
        time.sleep(0.6)
        assert len(ok_json(d, "/lookup?topic=t")[0]["producers"]) == 2
        nodes = {n["broadcast_address"]: n for n in ok_json(d, "/nodes")[0]["producers"]}
        assert nodes["a.test"]["tombstones"] == [False, False]
    finally:
        for p in (a, b):
            if p is not None:
                p.close()
        d.stop()


def test_tombstone_cleared_when_producer_unregisters_and_registers_again(lookupd, producer):
    p = producer(broadcast="a.test", http_port=1001)
    p.register("t")
    post_ok(lookupd, "/topic/tombstone?topic=t&node=a.test:1001")
    assert ok_json(lookupd, "/lookup?topic=t")[0]["producers"] == []
    assert p.cmd(b"UNREGISTER t\n") == b"OK"
    p.register("t")
    assert len(ok_json(lookupd, "/lookup?topic=t")[0]["producers"]) == 1


# -- /debug ------------------------------------------------------------------------------------------
def test_debug_dump_shape(lookupd, producer):
    p = producer(broadcast="b", tcp_port=1, http_port=2, hostname="hh")
    p.register("foo", "ch1")
    post_ok(lookupd, "/topic/create?topic=empty")
    doc, raw = ok_json(lookupd, "/debug")
    assert list(doc) == ["channel:foo:ch1", "client::", "topic:foo:"]
    (entry,) = doc["client::"]
    assert list(entry) == ["broadcast_address", "hostname", "http_port", "id", "last_update",
                           "tcp_port", "tombstoned", "tombstoned_at", "version"]
    assert entry["id"] == p.remote and entry["hostname"] == "hh"
    assert abs(entry["last_update"] - time.time_ns()) < 60e9
    assert entry["tombstoned"] is False
    assert entry["tombstoned_at"] == -6795364578871345152


# -- router ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/create_topic", "/delete_topic", "/create_channel",
                                  "/delete_channel", "/tombstone_topic_producer", "/nope"])
def test_removed_and_unknown_endpoints_404(lookupd, path):
    expect_error(lookupd, "GET", path + "?topic=t", 404, "NOT_FOUND")
    expect_error(lookupd, "POST", path + "?topic=t", 404, "NOT_FOUND")


def test_wrong_method_405_with_allow(lookupd):
    status, headers, body = req(lookupd, "POST", "/ping")
    assert (status, body) == (405, b'{"message":"METHOD_NOT_ALLOWED"}')
    assert headers["Allow"] == "GET, OPTIONS"
    status, headers, _ = req(lookupd, "GET", "/topic/create?topic=t")
    assert status == 405 and headers["Allow"] == "OPTIONS, POST"
    status, headers, _ = req(lookupd, "PUT", "/debug/pprof/symbol")
    assert status == 405 and headers["Allow"] == "GET, OPTIONS, POST"


def test_options_lists_allowed_methods(lookupd):
    status, headers, body = req(lookupd, "OPTIONS", "/lookup")
    assert (status, body, headers["Allow"]) == (200, b"", "GET, OPTIONS")


def raw_request(port, line):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(line.encode() + b"\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head = data.split(b"\r\n\r\n", 1)[0].decode()
    status = int(head.split(" ")[1])
    headers = dict(h.split(": ", 1) for h in head.split("\r\n")[1:])
    return status, headers


def test_trailing_slash_redirects(lookupd):
    status, headers = raw_request(lookupd.http_port, "GET /ping/ HTTP/1.1")
    assert (status, headers["Location"]) == (301, "/ping")
    status, headers = raw_request(lookupd.http_port, "GET /lookup/?topic=t HTTP/1.1")
    assert (status, headers["Location"]) == (301, "/lookup?topic=t")
    status, headers = raw_request(lookupd.http_port, "POST /topic/create/?topic=t HTTP/1.1")
    assert (status, headers["Location"]) == (307, "/topic/create?topic=t")
    status, headers = raw_request(lookupd.http_port, "GET /debug/pprof/ HTTP/1.1")
    assert (status, headers["Location"]) == (301, "/debug/pprof")


def test_case_and_clean_path_redirects(lookupd):
    status, headers = raw_request(lookupd.http_port, "GET /PING HTTP/1.1")
    assert (status, headers["Location"]) == (301, "/ping")
    status, headers = raw_request(lookupd.http_port, "GET /x/../nodes HTTP/1.1")
    assert (status, headers["Location"]) == (301, "/nodes")


def test_pprof_index_and_cmdline(lookupd):
    status, headers, body = req(lookupd, "GET", "/debug/pprof")
    assert status == 200 and b"Types of profiles available" in body
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    status, _, body = req(lookupd, "GET", "/debug/pprof/cmdline")
    assert status == 200 and b"nsqlookupd" in body


def test_request_log_line(lookupd):
    req(lookupd, "GET", "/lookup?topic=nope")
    lookupd.wait_for_log(r"INFO: 404 GET /lookup\?topic=nope \(127\.0\.0\.1:\d+\) \S+s$")
    req(lookupd, "GET", "/nowhere")
    lookupd.wait_for_log(r"INFO: 404 GET /nowhere \(127\.0\.0\.1:\d+\) \S+s$")
    req(lookupd, "GET", "/ping")
    lookupd.wait_for_log(r"INFO: 200 GET /ping \(127\.0\.0\.1:\d+\) \S+s$")


def test_accept_header_ignored_and_keepalive(lookupd):
    with socket.create_connection(("127.0.0.1", lookupd.http_port), timeout=5) as s:
        for _ in range(3):
            s.sendall(b"GET /info HTTP/1.1\r\nHost: x\r\n"
                      b"Accept: application/vnd.nsq; version=1.0\r\n\r\n")
            data = b""
            while not data.endswith(b'{"version":"1.3.0"}'):
                chunk = s.recv(65536)
                assert chunk
                data += chunk
            assert data.startswith(b"HTTP/1.1 200 OK\r\n")


def test_post_body_is_ignored(lookupd):
    status, _, body = req(lookupd, "POST", "/topic/create?topic=t", body=b"topic=other")
    assert (status, body) == (200, b"")
    assert ok_json(lookupd, "/topics")[0] == {"topics": ["t"]}
