"""nsqadmin's JSON API, routing, actions, notifications, ACL, /config and flags, against
live clusters (nsqlookupd + two nsqd, or nsqd-address mode) started by fixtures."""
from __future__ import annotations

import base64
import gzip
import json
import os
import socket
import subprocess
import sys
import time
import zlib

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "browser"))

from nsqadmin_cluster import (BIN, Cluster, Consumer, Sink, http_json, nsqd_topic,  # noqa: E402
                              start_admin, wait_for)
from daemons import start_nsqd  # noqa: E402

TOPIC_KEYS = ["node", "hostname", "topic_name", "depth", "memory_depth", "backend_depth",
              "message_count", "nodes", "channels", "paused", "e2e_processing_latency"]
CHANNEL_KEYS = ["node", "hostname", "topic_name", "channel_name", "depth", "memory_depth",
                "backend_depth", "in_flight_count", "deferred_count", "requeue_count",
                "timeout_count", "message_count", "client_count", "nodes", "clients", "paused",
                "e2e_processing_latency"]
CLIENT_KEYS = ["node", "remote_address", "version", "client_id", "hostname", "user_agent",
               "connect_ts", "connected", "in_flight_count", "ready_count", "finish_count",
               "requeue_count", "message_count", "sample_rate", "deflate", "snappy", "authed",
               "auth_identity", "auth_identity_url", "tls", "tls_cipher_suite", "tls_version",
               "tls_negotiated_protocol", "tls_negotiated_protocol_is_mutual"]
PRODUCER_KEYS = ["remote_addresses", "remote_address", "hostname", "broadcast_address",
                 "tcp_port", "http_port", "version", "topics", "out_of_date"]
E2E_KEYS = ["count", "percentiles", "topic", "channel", "host"]


def run_admin(*args, timeout=10):
    return subprocess.run([os.path.join(BIN, "nsqadmin"), *args], capture_output=True,
                          text=True, timeout=timeout)


# ---------------------------------------------------------------------------------------
# fixtures
# ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("nsqadmin-cluster"), n_nsqd=2)
    yield c
    c.stop()


@pytest.fixture(scope="module")
def sink():
    s = Sink()
    yield s
    s.close()


@pytest.fixture(scope="module")
def admin(cluster, sink):
    a = start_admin(f"--lookupd-http-address={cluster.lookupd_http}",
                    f"--notification-http-endpoint={sink.url}/notify")
    yield a
    a.stop()


@pytest.fixture(scope="module")
def nsqd_pair(tmp_path_factory):
    base = tmp_path_factory.mktemp("nsqadmin-nsqd-mode")
    ds = []
    for i in range(2):
        data = os.path.join(str(base), f"n{i}")
        os.makedirs(data)
        ds.append(start_nsqd(base, data_path=data))
    yield ds
    for d in ds:
        d.stop()


@pytest.fixture(scope="module")
def nsqd_admin(nsqd_pair):
    a = start_admin(*[f"--nsqd-http-address=127.0.0.1:{d.http_port}" for d in nsqd_pair])
    yield a
    a.stop()


@pytest.fixture
def unique(request):
    """A topic/channel name unique to the test."""
    name = request.node.name.replace("[", "_").replace("]", "").replace("-", "_")
    return f"{name[:40]}_{int(time.time() * 1000) % 100000}"


def notifications_for(sink, topic, n, timeout=10.0):
    """The first ``n`` notifications about ``topic`` (they arrive asynchronously)."""
    def mine():
        with sink.cond:
            got = [json.loads(r["body"]) for r in sink.requests if r["path"] == "/notify"]
        got = [g for g in got if g.get("topic") == topic]
        return got if len(got) >= n else None
    return wait_for(mine, timeout=timeout, what=f"{n} notifications for {topic}")[:n]


# ---------------------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------------------
def test_version():
    r = run_admin("--version")
    assert r.returncode == 0
    assert r.stdout.startswith("nsqadmin v1.3.0 (built w/")


@pytest.mark.parametrize("args,text", [
    ((), "--nsqd-http-address or --lookupd-http-address required"),
    (("--nsqd-http-address=127.0.0.1:4151", "--lookupd-http-address=127.0.0.1:4161"),
     "use --nsqd-http-address or --lookupd-http-address not both"),
    (("--nsqd-http-address=127.0.0.1:4151", "--http-client-tls-cert=/x.pem"),
     "--http-client-tls-key must be specified with --http-client-tls-cert"),
    (("--nsqd-http-address=127.0.0.1:4151", "--http-client-tls-key=/x.pem"),
     "--http-client-tls-cert must be specified with --http-client-tls-key"),
    (("--lookupd-http-address=nohostport",),
     "failed to resolve --lookupd-http-address (nohostport) - "),
    (("--nsqd-http-address=no.such.host.invalid:4151",),
     "failed to resolve --nsqd-http-address (no.such.host.invalid:4151) - "),
    (("--nsqd-http-address=127.0.0.1:4151", "--allow-config-from-cidr=bogus"),
     "failed to parse --allow-config-from-cidr (bogus) - invalid CIDR address: bogus"),
    (("--nsqd-http-address=127.0.0.1:4151", "--proxy-graphite", "--graphite-url=http://[::1"),
     "failed to parse --graphite-url (http://[::1) - "),
    (("--nsqd-http-address=127.0.0.1:4151", "--http-client-tls-root-ca-file=/no/such/ca.pem"),
     "failed to read TLS root CA file /no/such/ca.pem - "),
])
def test_fatal_startup_checks(args, text):
    r = run_admin(*args, "--http-address=127.0.0.1:0")
    assert r.returncode == 1, r.stderr
    assert "[nsqadmin] " in r.stderr and " FATAL: failed to instantiate nsqadmin - " in r.stderr
    assert text in r.stderr, r.stderr


def test_listen_failure():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    port = s.getsockname()[1]
    try:
        r = run_admin("--nsqd-http-address=127.0.0.1:4151", f"--http-address=127.0.0.1:{port}")
    finally:
        s.close()
    assert r.returncode == 1
    assert (f"FATAL: failed to instantiate nsqadmin - listen (127.0.0.1:{port}) failed - "
            f"listen tcp 127.0.0.1:{port}: bind: address already in use") in r.stderr


def test_bad_flags_and_help():
    r = run_admin("--no-such-flag")
    assert r.returncode == 2
    assert "flag provided but not defined: -no-such-flag" in r.stderr
    r = run_admin("--help")
    assert r.returncode == 0
    assert r.stderr.startswith("Usage of nsqadmin:")
    for flag in ("-acl-http-header", "-admin-user", "-allow-config-from-cidr", "-base-path",
                 "-graphite-url", "-lookupd-http-address", "-notification-http-endpoint",
                 "-nsqd-http-address", "-proxy-graphite", "-statsd-interval"):
        assert f"\n  {flag} " in r.stderr or f"\n  {flag}\n" in r.stderr


def test_startup_log_lines_and_sigterm():
    a = start_admin("--nsqd-http-address=127.0.0.1:4151")
    text = a.log_text()
    assert "INFO: nsqadmin v1.3.0 (built w/" in text
    assert "INFO: HTTP: listening on 127.0.0.1:" in text
    assert text.index("nsqadmin v1.3.0") < text.index("HTTP: listening on")
    assert a.stop() == 0


def test_config_file(tmp_path, cluster):
    cfg = tmp_path / "nsqadmin.cfg"
    cfg.write_text(f'nsqlookupd_http_addresses = ["{cluster.lookupd_http}"]\n'
                   f'log_level = "DEBUG"\nbase_path = "/cfg"\n'
                   f'http_client_request_timeout = 7000\n')
    a = start_admin(f"--config={cfg}")
    try:
        assert a.api("GET", "/cfg/config/log_level") == (200, 1)
        assert a.api("GET", "/cfg/config/nsqlookupd_http_addresses") == (200, [cluster.lookupd_http])
        assert a.api("GET", "/cfg/config/http_client_request_timeout") == (200, 7_000_000_000)
        assert a.api("GET", "/cfg/ping") == (200, "OK")
    finally:
        a.stop()


# ---------------------------------------------------------------------------------------
# routing, static, compression
# ---------------------------------------------------------------------------------------
def test_ping_and_pages(admin):
    status, hdrs, body = admin.request("GET", "/ping")
    assert (status, body) == (200, b"OK")
    for path in ("/", "/topics", "/topics/a", "/topics/a/b", "/nodes", "/nodes/127.0.0.1:1",
                 "/counter", "/lookup"):
        status, hdrs, body = admin.request("GET", path)
        assert status == 200, path
        assert hdrs["Content-Type"] == "text/html"
        text = body.decode()
        assert "var IS_ADMIN = true;" in text
        assert 'var BASE_PATH = "/";' in text
        assert 'var VERSION = "1.3.0";' in text
        assert "var GRAPH_ENABLED = false;" in text
        assert '/static/nsqadmin.js' in text and '/static/nsqadmin.css' in text
        assert "http://" not in text.split("<body>")[0].replace('"http://', "")  # no external assets


def test_static_assets(admin):
    status, hdrs, body = admin.request("GET", "/static/nsqadmin.js")
    assert status == 200 and hdrs["Content-Type"] == "text/javascript; charset=utf-8"
    assert b"/api/" in body
    status, hdrs, _ = admin.request("GET", "/static/nsqadmin.css")
    assert status == 200 and hdrs["Content-Type"] == "text/css; charset=utf-8"
    status, hdrs, _ = admin.request("GET", "/static/favicon.svg")
    assert status == 200 and hdrs["Content-Type"] == "image/svg+xml"
    assert admin.request("GET", "/static/nope.js")[::2] == (404, b"NOT_FOUND")
    assert admin.request("GET", "/fonts/nope.woff")[::2] == (404, b"NOT_FOUND")
    assert admin.request("GET", "/static/..%2fhttp_api.py")[0] == 404


def test_router_errors(admin):
    status, hdrs, body = admin.request("GET", "/nope")
    assert (status, json.loads(body)) == (404, {"message": "NOT_FOUND"})
    assert hdrs["X-Nsq-Content-Type"] == "nsq; version=1.0"
    status, hdrs, body = admin.request("PUT", "/api/topics")
    assert (status, json.loads(body)) == (405, {"message": "METHOD_NOT_ALLOWED"})
    assert hdrs["Allow"] == "GET, OPTIONS, POST"
    status, hdrs, _ = admin.request("OPTIONS", "/api/topics/x")
    assert status == 200 and hdrs["Allow"] == "DELETE, GET, OPTIONS, POST"
    status, hdrs, _ = admin.request("GET", "/topics/")
    assert status == 301 and hdrs["Location"] == "/topics"
    status, hdrs, _ = admin.request("POST", "/api/topics/")
    assert status == 307 and hdrs["Location"] == "/api/topics"
    status, hdrs, _ = admin.request("GET", "/API/Nodes")
    assert status == 301 and hdrs["Location"] == "/api/nodes"
    status, hdrs, _ = admin.request("GET", "/api/../api/nodes?x=1")
    assert status in (200, 301)


def test_compression(admin):
    status, hdrs, body = admin.request("GET", "/api/nodes", headers={"Accept-Encoding": "gzip"},
                                       decode=False)
    assert status == 200 and hdrs["Content-Encoding"] == "gzip"
    assert json.loads(gzip.decompress(body))["message"] == ""
    status, hdrs, body = admin.request("GET", "/ping", headers={"Accept-Encoding": "deflate, gzip"},
                                       decode=False)
    assert hdrs["Content-Encoding"] == "deflate"
    assert zlib.decompress(body, -15) == b"OK"
    status, hdrs, body = admin.request("GET", "/ping", headers={"Accept-Encoding": "br"},
                                       decode=False)
    assert "Content-Encoding" not in hdrs and body == b"OK"


def test_request_log(admin):
    admin.request("GET", "/api/topics?x=1")
    admin.wait_for_log(r"INFO: 200 GET /api/topics\?x=1 \(127\.0\.0\.1:\d+\) ")
    admin.request("GET", "/no/such")
    admin.wait_for_log(r"INFO: 404 GET /no/such \(127\.0\.0\.1:\d+\) ")


# ---------------------------------------------------------------------------------------
# read API (lookupd mode)
# ---------------------------------------------------------------------------------------
def test_topics(admin, cluster, unique):
    a, b = unique + "_b", unique + "_a"
    cluster.pub(0, a)
    cluster.pub(1, b)
    cluster.wait_producers(a, 1)
    cluster.wait_producers(b, 1)
    doc = admin.get_json("/api/topics")
    assert list(doc) == ["topics", "message"]
    assert doc["message"] == ""
    assert a in doc["topics"] and b in doc["topics"]
    assert doc["topics"] == sorted(doc["topics"])


def test_topic_aggregate(admin, cluster, unique):
    t = unique
    for i in range(2):
        cluster.create_channel(i, t, "ch1")
    cluster.create_channel(0, t, "ch2")
    cluster.pub(0, t, b"a", n=3)
    cluster.pub(1, t, b"b", n=2)
    cluster.wait_producers(t, 2)
    doc = admin.get_json(f"/api/topics/{t}")
    assert list(doc) == TOPIC_KEYS + ["message"]
    assert doc["node"] == "*" and doc["hostname"] == "" and doc["topic_name"] == t
    assert doc["message_count"] == 5 and doc["message"] == ""
    assert doc["depth"] == 0 and doc["memory_depth"] == 0
    assert [n["node"] for n in doc["nodes"]] == sorted([cluster.node(0), cluster.node(1)],
                                                        key=lambda x: x)  # same hostname
    for n in doc["nodes"]:
        assert list(n) == TOPIC_KEYS and n["nodes"] is None
        assert n["hostname"] == socket.gethostname()
        for c in n["channels"]:
            assert list(c) == CHANNEL_KEYS and c["nodes"] is None and c["clients"] is None
            assert c["node"] == n["node"]
        assert list(n["e2e_processing_latency"]) == E2E_KEYS
        assert n["e2e_processing_latency"]["host"] == ""
    chans = {c["channel_name"]: c for c in doc["channels"]}
    assert set(chans) == {"ch1", "ch2"}
    ch1 = chans["ch1"]
    assert list(ch1) == CHANNEL_KEYS
    assert ch1["node"] == "*" and ch1["depth"] == 5 and ch1["message_count"] == 5
    assert ch1["memory_depth"] == 5 and ch1["backend_depth"] == 0
    assert len(ch1["nodes"]) == 2 and chans["ch2"]["depth"] == 3
    e2e = doc["e2e_processing_latency"]
    assert list(e2e) == E2E_KEYS
    assert (e2e["topic"], e2e["channel"], e2e["host"]) == (t, "", "*")
    assert ch1["e2e_processing_latency"]["channel"] == "ch1"


def test_topic_without_producers_and_unknown(admin, cluster, unique):
    t = unique
    status, _ = http_json(cluster.lookupd.http_base + f"/topic/create?topic={t}", "POST")
    assert status == 200
    doc = admin.get_json(f"/api/topics/{t}")
    assert doc == {"node": "", "hostname": "", "topic_name": t, "depth": 0, "memory_depth": 0,
                   "backend_depth": 0, "message_count": 0, "nodes": None, "channels": None,
                   "paused": False, "e2e_processing_latency": None, "message": ""}
    want = ('UPSTREAM_ERROR: failed to query any nsqlookupd: got response 404 Not Found '
            '"{\\"message\\":\\"TOPIC_NOT_FOUND\\"}"')
    assert admin.api("GET", "/api/topics/no_such_topic_x") == (502, {"message": want})
    assert admin.api("GET", "/api/topics/no_such_topic_x/ch") == (502, {"message": want})


def test_channel_with_clients(admin, cluster, unique):
    t = unique
    cluster.create_channel(0, t, "ch")
    cluster.create_channel(1, t, "ch")
    cluster.wait_producers(t, 2)
    c0 = Consumer(cluster.nsqds[0], t, "ch", rdy=5, client_id="c0", hostname="host-b")
    c1 = Consumer(cluster.nsqds[1], t, "ch", rdy=0, client_id="c1", hostname="host-a",
                  sample_rate=10)
    try:
        cluster.pub(0, t, b"m", n=4)
        cluster.pub(1, t, b"m", n=3)
        wait_for(lambda: c0.received == 4, what="messages delivered")
        doc = wait_for(lambda: (lambda d: d if d["channels_ok"] else None)(
            _channel_doc(admin, t)), what="finish counts")
        assert list(doc) == CHANNEL_KEYS + ["message", "channels_ok"]
        assert doc["node"] == "*" and doc["client_count"] == 2
        assert doc["depth"] == 3 and doc["message_count"] == 7
        clients = doc["clients"]
        assert [c["hostname"] for c in clients] == ["host-a", "host-b"]  # sorted by hostname
        for c in clients:
            assert list(c) == CLIENT_KEYS
            assert c["user_agent"] == "nsqadmin-test/1.0" and c["version"] == "V2"
            assert 0 <= c["connected"] < 60 * 10**9 and c["connected"] % 10**9 == 0
        a, b = clients
        assert a["node"] == cluster.node(1) and a["ready_count"] == 0 and a["sample_rate"] == 10
        assert b["node"] == cluster.node(0) and b["finish_count"] == 4 and b["ready_count"] == 5
        assert [n["node"] for n in doc["nodes"]] == sorted([cluster.node(0), cluster.node(1)])
        for n in doc["nodes"]:
            assert len(n["clients"]) == 1 and n["clients"][0]["node"] == n["node"]
    finally:
        c0.close()
        c1.close()
    assert admin.get_json(f"/api/topics/{t}/no_such_channel") == {"message": ""}


def _channel_doc(admin, t):
    doc = admin.get_json(f"/api/topics/{t}/ch")
    fin = {c["client_id"]: c["finish_count"] for c in doc.get("clients") or []}
    doc["channels_ok"] = fin.get("c0") == 4
    return doc


def test_nodes_and_node(admin, cluster, unique):
    t = unique
    cluster.create_channel(0, t, "ch")
    cluster.pub(0, t, b"x", n=2)
    cluster.wait_producers(t, 1)
    c = Consumer(cluster.nsqds[0], t, "ch", rdy=0)
    try:
        doc = admin.get_json("/api/nodes")
        assert list(doc) == ["nodes", "message"]
        nodes = doc["nodes"]
        assert len(nodes) == 2
        for n in nodes:
            assert list(n) == PRODUCER_KEYS
            assert n["broadcast_address"] == "127.0.0.1" and n["version"] == "1.3.0"
            assert n["out_of_date"] is False
            assert len(n["remote_addresses"]) == 1
            assert n["remote_addresses"][0].startswith(cluster.lookupd_http + "/127.0.0.1:")
            assert n["remote_addresses"][0].endswith(n["remote_address"])
            names = [x["topic"] for x in n["topics"] or []]
            assert names == sorted(names)
        n0 = next(n for n in nodes if n["http_port"] == cluster.nsqds[0].http_port)
        assert n0["tcp_port"] == cluster.nsqds[0].tcp_port
        assert {"topic": t, "tombstoned": False} in n0["topics"]

        doc = admin.get_json(f"/api/nodes/{cluster.node(0)}")
        assert list(doc) == ["node", "topics", "total_messages", "total_clients", "message"]
        assert doc["node"] == cluster.node(0)
        mine = next(x for x in doc["topics"] if x["topic_name"] == t)
        assert list(mine) == TOPIC_KEYS and mine["message_count"] == 2
        ch = mine["channels"][0]
        assert len(ch["clients"]) == 1 and list(ch["clients"][0]) == CLIENT_KEYS
        assert doc["total_messages"] == sum(x["message_count"] for x in doc["topics"])
        assert doc["total_clients"] >= 1
        assert admin.api("GET", "/api/nodes/127.0.0.1:1") == (404, {"message": "NODE_NOT_FOUND"})
    finally:
        c.close()


def test_counter(admin, cluster, unique):
    t = unique
    cluster.create_channel(0, t, "ch")
    cluster.create_channel(1, t, "ch")
    cluster.pub(0, t, n=3)
    cluster.pub(1, t, n=2)
    cluster.wait_producers(t, 2)
    doc = admin.get_json("/api/counter")
    assert list(doc) == ["stats", "message"]
    for i, want in ((0, 3), (1, 2)):
        key = f"{t}:ch:{cluster.node(i)}"
        assert doc["stats"][key] == {"node": cluster.node(i), "topic_name": t,
                                     "channel_name": "ch", "message_count": want}
    assert list(doc["stats"]) == sorted(doc["stats"])


def test_inactive_topics(admin, cluster, unique):
    t = unique
    for path in (f"/topic/create?topic={t}", f"/channel/create?topic={t}&channel=cc"):
        assert http_json(cluster.lookupd.http_base + path, "POST")[0] == 200
    doc = admin.get_json("/api/topics?inactive=true")
    assert list(doc) == ["topics", "message"]
    assert doc["topics"][t] == ["cc"]
    t2 = t + "_2"
    assert http_json(cluster.lookupd.http_base + f"/topic/create?topic={t2}", "POST")[0] == 200
    assert admin.get_json("/api/topics?inactive=true")["topics"][t2] is None
    cluster.pub(0, t)  # now it has a producer
    cluster.wait_producers(t, 1)
    assert t not in admin.get_json("/api/topics?inactive=true")["topics"]


def test_history(admin, cluster, unique):
    t = unique
    cluster.create_channel(0, t, "ch")
    cluster.pub(0, t, n=5)
    cluster.wait_producers(t, 1)

    def sampled():
        d = admin.get_json(f"/api/history?topic={t}")
        return d if len(d["topic"]) >= 2 else None
    doc = wait_for(sampled, timeout=15, what="history samples")
    assert doc["interval"] == 0.5 and doc["window"] == 3600
    ts, depth, msgs = doc["topic"][-1]
    assert msgs == 5 and depth == 0
    assert doc["channels"]["ch"][-1][1] == 5
    doc = admin.get_json(f"/api/history?topic={t}&channel=ch")
    assert doc["channel"][-1][4] == 5
    doc = admin.get_json("/api/history")
    assert t in doc["topics"] and doc["totals"]


# ---------------------------------------------------------------------------------------
# actions (lookupd mode), their effects in nsqd /stats and their notifications
# ---------------------------------------------------------------------------------------
def _both_have(cluster, t, ch=None):
    for i in range(2):
        cluster.create_channel(i, t, ch or "ch")
    cluster.wait_producers(t, 2)


def test_topic_pause_unpause_empty(admin, cluster, sink, unique):
    t = unique
    _both_have(cluster, t)
    hdrs = {"Authorization": "Basic " + base64.b64encode(b"bob:pw").decode(),
            "User-Agent": "pytest-agent", "Content-Type": "application/json"}
    assert admin.api("POST", f"/api/topics/{t}", {"action": "pause"}, hdrs) == (200, {"message": ""})
    for d in cluster.nsqds:
        assert nsqd_topic(d, t)["paused"] is True
    assert admin.get_json(f"/api/topics/{t}")["paused"] is True
    cluster.pub(0, t, n=4)
    assert nsqd_topic(cluster.nsqds[0], t)["depth"] == 4
    assert admin.api("POST", f"/api/topics/{t}", {"action": "empty"}, hdrs)[0] == 200
    assert nsqd_topic(cluster.nsqds[0], t)["depth"] == 0
    assert admin.api("POST", f"/api/topics/{t}", {"action": "unpause"}, hdrs)[0] == 200
    for d in cluster.nsqds:
        assert nsqd_topic(d, t)["paused"] is False
    notes = notifications_for(sink, t, 3)
    assert [n["action"] for n in notes] == ["pause_topic", "empty_topic", "unpause_topic"]
    n = notes[0]
    assert list(n) == ["action", "topic", "timestamp", "user", "remote_ip", "user_agent", "url",
                       "via"]
    assert n["topic"] == t and n["user"] == "bob" and n["user_agent"] == "pytest-agent"
    assert n["remote_ip"].startswith("127.0.0.1:")
    assert n["url"] == f"http://127.0.0.1:{admin.http_port}/api/topics/{t}"
    assert n["via"] == socket.gethostname()
    assert abs(n["timestamp"] - time.time()) < 30
    req = next(r for r in sink.requests if json.loads(r["body"]).get("topic") == t)
    assert req["method"] == "POST" and req["path"] == "/notify"
    assert req["headers"]["Content-Type"] == "application/json"


def test_channel_pause_unpause_empty(admin, cluster, sink, unique):
    t = unique
    _both_have(cluster, t, "ch")
    cluster.pub(0, t, n=3)
    cluster.pub(1, t, n=2)
    assert admin.api("POST", f"/api/topics/{t}/ch", {"action": "pause"}) == (200, {"message": ""})
    for d in cluster.nsqds:
        assert d.channel_stats(t, "ch")["paused"] is True
    assert admin.get_json(f"/api/topics/{t}/ch")["paused"] is True
    assert admin.api("POST", f"/api/topics/{t}/ch", {"action": "unpause"})[0] == 200
    assert all(d.channel_stats(t, "ch")["paused"] is False for d in cluster.nsqds)
    assert admin.api("POST", f"/api/topics/{t}/ch", {"action": "empty"}, {"X-Scheme": "https"})[0] == 200
    assert [d.channel_stats(t, "ch")["depth"] for d in cluster.nsqds] == [0, 0]
    notes = notifications_for(sink, t, 3)
    assert [n["action"] for n in notes] == ["pause_channel", "unpause_channel", "empty_channel"]
    assert list(notes[0]) == ["action", "topic", "channel", "timestamp", "remote_ip",
                              "user_agent", "url", "via"]
    assert notes[0]["channel"] == "ch"
    assert notes[2]["url"] == f"https://127.0.0.1:{admin.http_port}/api/topics/{t}/ch"


def test_action_errors(admin, cluster, unique):
    t = unique
    cluster.pub(0, t)
    cluster.wait_producers(t, 1)
    assert admin.api("POST", f"/api/topics/{t}", {"action": "explode"}) == \
        (400, {"message": "INVALID_ACTION"})
    assert admin.api("POST", f"/api/topics/{t}/ch", {}) == (400, {"message": "INVALID_ACTION"})
    assert admin.api("POST", f"/api/topics/{t}", b"") == (400, {"message": "EOF"})
    assert admin.api("POST", f"/api/topics/{t}", b"nope") == \
        (400, {"message": "invalid character 'o' in literal null (expecting 'u')"})
    assert admin.api("POST", f"/api/topics/{t}", b"{") == (400, {"message": "unexpected EOF"})
    assert admin.api("POST", f"/api/topics/{t}", b"{\"action\":1}") == \
        (400, {"message": "json: cannot unmarshal number into Go struct field .action of type string"})
    # channel missing on the node: a partial failure, reported as a warning
    status, doc = admin.api("POST", f"/api/topics/{t}/nochan", {"action": "pause"})
    assert status == 200
    assert doc["message"] == ('WARNING: got response 404 Not Found '
                              '"{\\"message\\":\\"CHANNEL_NOT_FOUND\\"}"')


def test_create_topic_and_channel(admin, cluster, sink, unique):
    t = unique
    assert admin.api("POST", "/api/topics", {"topic": t}) == (200, {"message": ""})
    assert t in cluster.lookupd_json("/topics")["topics"]
    # a channel is created in lookupd and on every nsqd that has the topic
    cluster.pub(0, t)
    cluster.wait_producers(t, 1)
    assert admin.api("POST", "/api/topics", {"topic": t, "channel": "newch"}) == (200, {"message": ""})
    assert "newch" in cluster.lookupd_json(f"/channels?topic={t}")["channels"]
    assert cluster.nsqds[0].channel_stats(t, "newch") is not None
    notes = notifications_for(sink, t, 3)
    assert [(n["action"], n.get("channel")) for n in notes] == \
        [("create_topic", None), ("create_topic", None), ("create_channel", "newch")]
    assert admin.api("POST", "/api/topics", {"topic": "bad topic!"}) == (400, {"message": "INVALID_TOPIC"})
    assert admin.api("POST", "/api/topics", {"topic": t, "channel": "bad/ch"}) == \
        (400, {"message": "INVALID_CHANNEL"})
    assert admin.api("POST", "/api/topics", b"[1]")[0] == 400
    assert admin.api("POST", "/api/topics", b"xyz") == \
        (400, {"message": "invalid character 'x' looking for beginning of value"})


def test_delete_channel_and_topic(admin, cluster, sink, unique):
    t = unique
    _both_have(cluster, t, "ch")
    cluster.create_channel(0, t, "other")
    assert admin.api("DELETE", f"/api/topics/{t}/ch") == (200, {"message": ""})
    assert [d.channel_stats(t, "ch") for d in cluster.nsqds] == [None, None]
    assert cluster.nsqds[0].channel_stats(t, "other") is not None
    assert "ch" not in cluster.lookupd_json(f"/channels?topic={t}")["channels"]
    assert admin.api("DELETE", f"/api/topics/{t}") == (200, {"message": ""})
    assert [nsqd_topic(d, t) for d in cluster.nsqds] == [None, None]
    assert t not in cluster.lookupd_json("/topics")["topics"]
    notes = notifications_for(sink, t, 2)
    assert [n["action"] for n in notes] == ["delete_channel", "delete_topic"]


def test_tombstone_topic_producer(admin, cluster, sink, unique):
    t = unique
    _both_have(cluster, t)
    node = cluster.node(0)
    assert admin.api("DELETE", f"/api/nodes/{node}", {"topic": t}) == (200, {"message": ""})
    assert nsqd_topic(cluster.nsqds[0], t) is None
    assert nsqd_topic(cluster.nsqds[1], t) is not None
    producers = cluster.lookupd_json(f"/lookup?topic={t}")["producers"]
    assert [p["http_port"] for p in producers] == [cluster.nsqds[1].http_port]
    note = notifications_for(sink, t, 1)[0]
    assert note["action"] == "tombstone_topic_producer" and note["node"] == node
    assert list(note)[:4] == ["action", "topic", "node", "timestamp"]
    assert admin.api("DELETE", f"/api/nodes/{node}", b"garbage") == (400, {"message": "INVALID_BODY"})
    assert admin.api("DELETE", f"/api/nodes/{node}", {"topic": "b a d"}) == \
        (400, {"message": "INVALID_TOPIC"})


# ---------------------------------------------------------------------------------------
# ACL, /config, base path, graphite
# ---------------------------------------------------------------------------------------
def test_admin_users_acl(cluster, unique):
    t = unique
    cluster.pub(0, t)
    cluster.wait_producers(t, 1)
    a = start_admin(f"--lookupd-http-address={cluster.lookupd_http}", "--admin-user=alice",
                    "--admin-user=carol")
    b = start_admin(f"--lookupd-http-address={cluster.lookupd_http}", "--admin-user=alice",
                    "--acl-http-header=X-Auth-User")
    try:
        forbidden = (403, {"message": "FORBIDDEN"})
        for method, path, body in (("POST", "/api/topics", {"topic": t}),
                                   ("POST", f"/api/topics/{t}", {"action": "pause"}),
                                   ("POST", f"/api/topics/{t}/ch", b"not json"),
                                   ("DELETE", f"/api/topics/{t}", None),
                                   ("DELETE", f"/api/topics/{t}/ch", None),
                                   ("DELETE", f"/api/nodes/{cluster.node(0)}", {"topic": t})):
            assert a.api(method, path, body) == forbidden, path
            assert a.api(method, path, body, {"X-Forwarded-User": "mallory"}) == forbidden
        assert nsqd_topic(cluster.nsqds[0], t)["paused"] is False
        assert a.api("POST", f"/api/topics/{t}", {"action": "pause"},
                     {"X-Forwarded-User": "carol"}) == (200, {"message": ""})
        assert nsqd_topic(cluster.nsqds[0], t)["paused"] is True
        # reads stay open
        assert a.api("GET", f"/api/topics/{t}")[0] == 200
        page = a.request("GET", "/")[2].decode()
        assert "var IS_ADMIN = false;" in page
        page = a.request("GET", "/", headers={"X-Forwarded-User": "alice"})[2].decode()
        assert "var IS_ADMIN = true;" in page
        assert b.api("POST", f"/api/topics/{t}", {"action": "unpause"},
                     {"X-Forwarded-User": "alice"}) == forbidden
        assert b.api("POST", f"/api/topics/{t}", {"action": "unpause"},
                     {"X-Auth-User": "alice"}) == (200, {"message": ""})
        assert nsqd_topic(cluster.nsqds[0], t)["paused"] is False
    finally:
        a.stop()
        b.stop()


def test_config_endpoint(admin, cluster):
    assert admin.api("GET", "/config/log_level") == (200, 2)
    assert admin.api("GET", "/config/http_client_connect_timeout") == (200, 2_000_000_000)
    assert admin.api("GET", "/config/statsd_interval") == (200, 60_000_000_000)
    status, hdrs, body = admin.request("GET", "/config/acl_http_header")
    assert (status, body) == (200, b"X-Forwarded-User")
    assert admin.api("GET", "/config/nsqlookupd_http_addresses") == (200, [cluster.lookupd_http])
    assert admin.api("GET", "/config/nsqd_http_addresses") == (200, [])
    assert admin.api("GET", "/config/admin_users") == (200, [])
    assert admin.api("GET", "/config/proxy_graphite") == (200, False)
    assert admin.api("GET", "/config/base_path")[1] == "/"
    assert admin.api("GET", "/config/nope") == (400, {"message": "INVALID_OPTION"})
    assert admin.api("PUT", "/config/log_level", b"debug") == (200, 1)
    assert admin.api("PUT", "/config/log_level", b"loud") == (400, {"message": "INVALID_VALUE"})
    assert admin.api("PUT", "/config/log_level", b"") == (413, {"message": "INVALID_VALUE"})
    assert admin.api("PUT", "/config/log_level", b"x" * (1024 * 1024 + 1)) == \
        (413, {"message": "INVALID_VALUE"})
    assert admin.api("PUT", "/config/log_level", b"INFO") == (200, 2)
    assert admin.api("PUT", "/config/base_path", b"/x") == (400, {"message": "INVALID_OPTION"})
    assert admin.api("PUT", "/config/nsqlookupd_http_addresses", b"nope") == \
        (400, {"message": "INVALID_VALUE"})
    addrs = json.dumps([cluster.lookupd_http, "127.0.0.1:1"]).encode()
    assert admin.api("PUT", "/config/nsqlookupd_http_addresses", addrs) == \
        (200, [cluster.lookupd_http, "127.0.0.1:1"])
    try:
        status, doc = admin.api("GET", "/api/nodes")
        assert status == 200 and len(doc["nodes"]) == 2
        assert doc["message"].startswith('WARNING: Get "http://127.0.0.1:1/nodes": dial tcp '
                                         '127.0.0.1:1: connect: connection refused')
    finally:
        assert admin.api("PUT", "/config/nsqlookupd_http_addresses",
                         json.dumps([cluster.lookupd_http]).encode())[0] == 200


def test_config_cidr(cluster):
    a = start_admin(f"--lookupd-http-address={cluster.lookupd_http}",
                    "--allow-config-from-cidr=10.0.0.0/8")
    b = start_admin(f"--lookupd-http-address={cluster.lookupd_http}",
                    "--allow-config-from-cidr=")
    try:
        assert a.api("GET", "/config/log_level") == (403, {"message": "FORBIDDEN"})
        assert a.api("PUT", "/config/log_level", b"debug") == (403, {"message": "FORBIDDEN"})
        assert b.api("GET", "/config/log_level") == (200, 2)
        assert b.request("GET", "/config/allow_config_from_cidr")[::2] == (200, b"")
    finally:
        a.stop()
        b.stop()


def test_base_path(cluster):
    a = start_admin(f"--lookupd-http-address={cluster.lookupd_http}", "--base-path=admin/")
    try:
        assert a.api("GET", "/admin/ping") == (200, "OK")
        assert a.api("GET", "/admin/api/nodes")[0] == 200
        assert a.api("GET", "/ping") == (404, {"message": "NOT_FOUND"})
        assert a.api("GET", "/api/nodes")[0] == 404
        status, hdrs, body = a.request("GET", "/admin")
        assert status == 200 and b'var BASE_PATH = "/admin";' in body
        assert b'src="/admin/static/nsqadmin.js"' in body
        assert a.request("GET", "/admin/topics/x/y")[0] == 200
        assert a.request("GET", "/admin/static/nsqadmin.css")[0] == 200
        status, hdrs, _ = a.request("GET", "/admin/")
        assert status == 301 and hdrs["Location"] == "/admin"
        assert a.api("GET", "/admin/config/base_path") == (200, "/admin")
    finally:
        a.stop()


def _graphite_responder(rec):
    if rec["path"].startswith("/render?"):
        if "target=bad" in rec["path"]:
            return 500, "text/plain", b"boom"
        body = json.dumps([{"target": "x", "datapoints": [[120.0, 1700000000],
                                                          [60.0, 1700000060]]}]).encode()
        if "target=negative" in rec["path"]:
            body = json.dumps([{"target": "x", "datapoints": [[-1.0, 1700000000]]}]).encode()
        return 200, "application/json", body
    return 404, "text/plain", b"not found"


def test_graphite_rate_and_proxy(nsqd_pair):
    g = Sink(_graphite_responder)
    host = g.url.replace("http://", "")
    a = start_admin(f"--nsqd-http-address=127.0.0.1:{nsqd_pair[0].http_port}",
                    f"--graphite-url=http://user:secret@{host}", "--proxy-graphite",
                    "--statsd-interval=30s")
    try:
        doc = a.get_json("/api/graphite?metric=rate&target=sumSeries(foo)")
        assert doc == {"rate": "4.00"}  # 120 / 30s
        req = g.requests[-1]
        assert req["path"] == "/render?format=json&from=-60sec&target=sumSeries%28foo%29&until=-30sec"
        assert req["headers"]["Accept"] == "application/vnd.nsq; version=1.0"
        assert a.get_json("/api/graphite?metric=rate&target=negative") == {"rate": "N/A"}
        assert a.api("GET", "/api/graphite?metric=depth&target=x") == \
            (400, {"message": "INVALID_ARG_METRIC"})
        assert a.api("GET", "/api/graphite?metric=rate") == (400, {"message": "INVALID_ARG_TARGET"})
        assert a.api("GET", "/api/graphite?metric=rate&target=bad") == \
            (500, {"message": "INTERNAL_ERROR"})
        page = a.request("GET", "/")[2].decode()
        assert "var GRAPH_ENABLED = true;" in page and "var PROXY_GRAPHITE = true;" in page
        assert 'var GRAPHITE_URL = "";' in page and "var STATSD_INTERVAL = 30;" in page
        n = len(g.requests)
        status, hdrs, body = a.request("GET", "/render?target=abc&format=json")
        assert status == 200 and json.loads(body)[0]["target"] == "x"
        req = g.requests[n]
        assert req["path"] == "/render?target=abc&format=json"
        assert req["headers"]["Authorization"] == "Basic " + base64.b64encode(b"user:secret").decode()
    finally:
        a.stop()
        g.close()


def test_graphite_disabled_has_no_render(admin):
    assert admin.api("GET", "/render?target=x") == (404, {"message": "NOT_FOUND"})


# ---------------------------------------------------------------------------------------
# nsqd-address mode and partial failures
# ---------------------------------------------------------------------------------------
def test_nsqd_mode_reads(nsqd_admin, nsqd_pair, unique):
    t = unique
    for d in nsqd_pair:
        assert d.http("POST", f"/topic/create?topic={t}")[0] == 200
        assert d.http("POST", f"/channel/create?topic={t}&channel=ch")[0] == 200
        assert d.http("POST", f"/pub?topic={t}", b"hi")[0] == 200
    doc = nsqd_admin.get_json("/api/topics")
    assert t in doc["topics"] and doc["topics"] == sorted(doc["topics"])
    assert nsqd_admin.get_json("/api/topics?inactive=true") == {"topics": {}, "message": ""}
    doc = nsqd_admin.get_json(f"/api/topics/{t}")
    assert doc["message_count"] == 2 and len(doc["nodes"]) == 2
    assert {n["node"] for n in doc["nodes"]} == {f"127.0.0.1:{d.http_port}" for d in nsqd_pair}
    doc = nsqd_admin.get_json("/api/nodes")
    assert [n["http_port"] for n in doc["nodes"]] == [d.http_port for d in nsqd_pair]
    for n in doc["nodes"]:
        assert list(n) == PRODUCER_KEYS
        assert n["remote_addresses"] is None and n["remote_address"] == ""
        assert {"topic": t, "tombstoned": False} in n["topics"]
    node = f"127.0.0.1:{nsqd_pair[1].http_port}"
    assert nsqd_admin.get_json(f"/api/nodes/{node}")["node"] == node
    doc = nsqd_admin.get_json("/api/counter")
    assert doc["stats"][f"{t}:ch:{node}"]["message_count"] == 1


def test_nsqd_mode_actions(nsqd_admin, nsqd_pair, unique):
    t = unique
    for d in nsqd_pair:
        assert d.http("POST", f"/topic/create?topic={t}")[0] == 200
        assert d.http("POST", f"/channel/create?topic={t}&channel=ch")[0] == 200
    assert nsqd_admin.api("POST", f"/api/topics/{t}/ch", {"action": "pause"}) == (200, {"message": ""})
    assert all(d.channel_stats(t, "ch")["paused"] for d in nsqd_pair)
    assert nsqd_admin.api("DELETE", f"/api/topics/{t}/ch") == (200, {"message": ""})
    assert all(d.channel_stats(t, "ch") is None for d in nsqd_pair)
    assert nsqd_admin.api("DELETE", f"/api/topics/{t}") == (200, {"message": ""})
    assert all(nsqd_topic(d, t) is None for d in nsqd_pair)
    # no lookupd: creating goes to every nsqd
    assert nsqd_admin.api("POST", "/api/topics", {"topic": t, "channel": "c2"}) == (200, {"message": ""})
    assert all(d.channel_stats(t, "c2") is not None for d in nsqd_pair)
    node = f"127.0.0.1:{nsqd_pair[0].http_port}"
    assert nsqd_admin.api("DELETE", f"/api/nodes/{node}", {"topic": t}) == (200, {"message": ""})
    assert nsqd_topic(nsqd_pair[0], t) is None and nsqd_topic(nsqd_pair[1], t) is not None


def test_partial_and_total_upstream_failure(nsqd_pair, unique):
    t = unique
    assert nsqd_pair[0].http("POST", f"/topic/create?topic={t}")[0] == 200
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))
    dead_port = dead.getsockname()[1]
    dead.close()
    a = start_admin(f"--nsqd-http-address=127.0.0.1:{nsqd_pair[0].http_port}",
                    f"--nsqd-http-address=127.0.0.1:{dead_port}")
    b = start_admin(f"--nsqd-http-address=127.0.0.1:{dead_port}")
    try:
        err = (f'Get "http://127.0.0.1:{dead_port}/stats?format=json": dial tcp '
               f'127.0.0.1:{dead_port}: connect: connection refused')
        status, doc = a.api("GET", "/api/topics")
        assert status == 200 and t in doc["topics"]
        assert doc["message"] == "WARNING: " + err
        status, doc = a.api("GET", f"/api/topics/{t}")
        assert status == 200 and doc["message"].startswith("WARNING: Get ")
        assert b.api("GET", "/api/topics") == (502, {"message": "UPSTREAM_ERROR: failed to query any nsqd: " + err})
        status, doc = b.api("GET", "/api/nodes")
        assert status == 502 and doc["message"].startswith("UPSTREAM_ERROR: failed to query any nsqd: Get ")
        b.wait_for_log(r"ERROR: failed to get topics - failed to query any nsqd")
    finally:
        a.stop()
        b.stop()


def test_lookupd_mode_dead_lookupd(cluster):
    a = start_admin(f"--lookupd-http-address={cluster.lookupd_http}",
                    "--lookupd-http-address=127.0.0.1:1")
    try:
        status, doc = a.api("GET", "/api/topics")
        assert status == 200
        assert doc["message"] == ('WARNING: Get "http://127.0.0.1:1/topics": dial tcp '
                                  '127.0.0.1:1: connect: connection refused')
    finally:
        a.stop()


def test_dev_static_dir(tmp_path):
    (tmp_path / "nsqadmin.js").write_text("/* dev build */")
    (tmp_path / "app.js.map").write_text("{}")
    a = start_admin("--nsqd-http-address=127.0.0.1:4151", f"--dev-static-dir={tmp_path}")
    try:
        status, hdrs, body = a.request("GET", "/static/nsqadmin.js")
        assert (status, body) == (200, b"/* dev build */")
        status, hdrs, body = a.request("GET", "/static/app.js.map")
        assert status == 200 and hdrs["Content-Type"] == "application/json"
        assert a.request("GET", "/static/nsqadmin.css")[0] == 404
    finally:
        a.stop()


def test_e2e_percentiles_aggregate(tmp_path):
    ds = []
    for i in range(2):
        data = tmp_path / f"e2e{i}"
        data.mkdir()
        ds.append(start_nsqd(tmp_path, "--e2e-processing-latency-percentile=0.99,0.5",
                             data_path=str(data)))
    a = start_admin(*[f"--nsqd-http-address=127.0.0.1:{d.http_port}" for d in ds])
    consumers = []
    try:
        for d in ds:
            assert d.http("POST", "/topic/create?topic=lat")[0] == 200
            assert d.http("POST", "/channel/create?topic=lat&channel=ch")[0] == 200
            consumers.append(Consumer(d, "lat", "ch", rdy=10))
            assert d.http("POST", "/mpub?topic=lat", b"a\nb\nc")[0] == 200
        wait_for(lambda: all(c.received == 3 for c in consumers), what="deliveries")

        def ready():
            doc = a.get_json("/api/topics/lat/ch")
            nodes_ok = all((n["e2e_processing_latency"]["percentiles"] or []) and
                           n["e2e_processing_latency"]["count"] == 3 for n in doc["nodes"])
            return doc if nodes_ok else None
        doc = wait_for(ready, what="e2e percentiles")
        e2e = doc["e2e_processing_latency"]
        assert list(e2e) == E2E_KEYS
        assert (e2e["count"], e2e["topic"], e2e["channel"], e2e["host"]) == (6, "lat", "ch", "*")
        assert [p["quantile"] for p in e2e["percentiles"]] == [0.99, 0.5]
        node_p = [n["e2e_processing_latency"]["percentiles"] for n in doc["nodes"]]
        for i, p in enumerate(e2e["percentiles"]):
            assert list(p) == ["quantile", "value", "min", "max", "average", "count"]
            vals = [np[i]["value"] for np in node_p]
            assert p["min"] == min(vals) and p["max"] == max(vals)
            assert p["count"] == 6
            assert abs(p["average"] - sum(vals) / 2) < 1e-6 * max(1.0, abs(p["average"]))
        for n in doc["nodes"]:
            ne = n["e2e_processing_latency"]
            assert (ne["topic"], ne["channel"], ne["host"]) == ("", "", "")
            for p in ne["percentiles"]:
                assert p["min"] == p["max"] == p["average"] == p["value"] and p["count"] == 3
        topic = a.get_json("/api/topics/lat")
        assert topic["e2e_processing_latency"]["count"] == 6
        assert topic["e2e_processing_latency"]["channel"] == ""
    finally:
        for c in consumers:
            c.close()
        a.stop()
        for d in ds:
            d.stop()


def test_tls_required_nsqd_over_https(tmp_path):
    """An nsqd that answers 403 TLS_REQUIRED on HTTP is retried over HTTPS, verified with
    --http-client-tls-root-ca-file (or skipped with --http-client-tls-insecure-skip-verify)."""
    from tlsutil import make_test_cert
    cert, key = make_test_cert(tmp_path)
    d = start_nsqd(tmp_path, f"--tls-cert={cert}", f"--tls-key={key}", "--tls-required=true",
                   "--https-address=127.0.0.1:0")
    a = start_admin(f"--nsqd-http-address=127.0.0.1:{d.http_port}",
                    f"--http-client-tls-root-ca-file={cert}")
    b = start_admin(f"--nsqd-http-address=127.0.0.1:{d.http_port}",
                    "--http-client-tls-insecure-skip-verify")
    c = start_admin(f"--nsqd-http-address=127.0.0.1:{d.http_port}")
    try:
        assert d.http("POST", "/topic/create?topic=secure")[0] == 403
        for admin in (a, b):
            assert admin.api("POST", "/api/topics", {"topic": "secure"}) == (200, {"message": ""})
            doc = admin.get_json("/api/nodes")
            assert doc["nodes"][0]["http_port"] == d.http_port
            assert admin.get_json("/api/topics")["topics"] == ["secure"]
        status, doc = c.api("GET", "/api/topics")
        assert status == 502 and "certificate" in doc["message"].lower()
    finally:
        for x in (a, b, c):
            x.stop()
        d.stop()
