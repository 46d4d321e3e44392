"""GET /stats (spec nsqd-http.md §3 /stats): JSON key order, filters, text format."""
import json
import re
import time

from nsqpy.protocol import commands as cmds
from nsqpy.nsqd import stats as stats_mod

TOP_KEYS = ["version", "health", "start_time", "topics", "memory", "producers"]
TOPIC_KEYS = ["topic_name", "channels", "depth", "backend_depth", "message_count",
              "message_bytes", "paused", "e2e_processing_latency"]
CHANNEL_KEYS = ["channel_name", "depth", "backend_depth", "in_flight_count", "deferred_count",
                "message_count", "requeue_count", "timeout_count", "client_count", "clients",
                "paused", "e2e_processing_latency"]
CLIENT_KEYS = ["client_id", "hostname", "version", "remote_address", "state", "ready_count",
               "in_flight_count", "message_count", "finish_count", "requeue_count",
               "connect_ts", "sample_rate", "deflate", "snappy", "user_agent", "tls",
               "tls_cipher_suite", "tls_version", "tls_negotiated_protocol",
               "tls_negotiated_protocol_is_mutual"]
MEM_KEYS = ["heap_objects", "heap_idle_bytes", "heap_in_use_bytes", "heap_released_bytes",
            "gc_pause_usec_100", "gc_pause_usec_99", "gc_pause_usec_95", "next_gc_bytes",
            "gc_total_runs"]


def raw_stats(d, query=""):
    status, headers, body = d.http("GET", "/stats" + query)
    assert status == 200, body
    return headers, body


def setup_pub_sub(d, conn_factory, topic="s1", channel="ch1"):
    prod = conn_factory(d)
    prod.identify(client_id="prod", hostname="prodhost", user_agent="probe-pub/1.0")
    prod.pub(topic, b"x")
    cons = conn_factory(d)
    cons.identify(client_id="cons", hostname="conshost", user_agent="probe-sub/1.0")
    cons.subscribe(topic, channel, rdy=5)
    return prod, cons


def wait_for(fn, timeout=5.0):
    deadline = time.time() + timeout
    while True:
        v = fn()
        if v or time.time() > deadline:
            return v
        time.sleep(0.05)


def test_stats_json_empty(nsqd):
    headers, body = raw_stats(nsqd, "?format=json")
    assert headers["Content-Type"] == "application/json; charset=utf-8"
    assert headers["X-Nsq-Content-Type"] == "nsq; version=1.0"
    s = json.loads(body)
    assert list(s) == TOP_KEYS
    assert s["version"] == "1.3.0" and s["health"] == "OK"
    assert s["topics"] == [] and s["producers"] is None
    assert list(s["memory"]) == MEM_KEYS
    assert all(isinstance(v, int) and v >= 0 for v in s["memory"].values())


def test_stats_json_key_order_with_clients(nsqd, conn_factory):
    prod, cons = setup_pub_sub(nsqd, conn_factory)
    cons.read_message()
    s = json.loads(raw_stats(nsqd, "?format=json&include_mem=false")[1])
    assert list(s) == ["version", "health", "start_time", "topics", "producers"]
    (t,) = s["topics"]
    assert list(t) == TOPIC_KEYS
    assert (t["topic_name"], t["message_count"], t["message_bytes"]) == ("s1", 1, 1)
    assert t["e2e_processing_latency"] == {"count": 0, "percentiles": None}
    (c,) = t["channels"]
    assert list(c) == CHANNEL_KEYS
    assert (c["client_count"], c["in_flight_count"], c["message_count"]) == (1, 1, 1)
    (cl,) = c["clients"]
    assert list(cl) == CLIENT_KEYS
    assert (cl["client_id"], cl["hostname"], cl["user_agent"], cl["state"],
            cl["ready_count"], cl["sample_rate"], cl["version"]) == (
        "cons", "conshost", "probe-sub/1.0", 3, 5, 0, "V2")
    assert re.fullmatch(r"127\.0\.0\.1:\d+", cl["remote_address"])
    (p,) = s["producers"]
    assert list(p) == CLIENT_KEYS[:15] + ["pub_counts"] + CLIENT_KEYS[15:]
    assert p["pub_counts"] == [{"topic": "s1", "count": 1}]
    assert (p["client_id"], p["state"]) == ("prod", 0)


def test_stats_json_compact_bytes(nsqd):
    nsqd.http("POST", "/topic/create?topic=z")
    body = raw_stats(nsqd, "?format=json&include_mem=false")[1]
    assert body.startswith(b'{"version":"1.3.0","health":"OK","start_time":')
    assert body.endswith(b',"topics":[{"topic_name":"z","channels":[],"depth":0,'
                         b'"backend_depth":0,"message_count":0,"message_bytes":0,'
                         b'"paused":false,"e2e_processing_latency":{"count":0,'
                         b'"percentiles":null}}],"producers":null}')


def test_stats_topics_and_channels_sorted(nsqd):
    for t in ("b", "a", "c"):
        nsqd.http("POST", f"/topic/create?topic={t}")
    for c in ("z", "x", "y"):
        nsqd.http("POST", f"/channel/create?topic=b&channel={c}")
    s = nsqd.stats()
    assert [t["topic_name"] for t in s["topics"]] == ["a", "b", "c"]
    assert [c["channel_name"] for c in s["topics"][1]["channels"]] == ["x", "y", "z"]


def test_stats_topic_filter(nsqd, conn_factory):
    setup_pub_sub(nsqd, conn_factory)
    nsqd.http("POST", "/topic/create?topic=other")
    s = nsqd.stats(topic="other")
    assert [t["topic_name"] for t in s["topics"]] == ["other"]
    # the producer is listed but its pub_counts for another topic are filtered away
    (p,) = s["producers"]
    assert "pub_counts" not in p


def test_stats_unknown_topic_filter_is_null(nsqd, conn_factory):
    setup_pub_sub(nsqd, conn_factory)
    s = nsqd.stats(topic="nope")
    assert s["topics"] is None and s["producers"] is None
    assert s["health"] == "OK" and "memory" in s


def test_stats_channel_filter(nsqd):
    nsqd.http("POST", "/topic/create?topic=t1")
    nsqd.http("POST", "/topic/create?topic=t2")
    nsqd.http("POST", "/channel/create?topic=t1&channel=a")
    nsqd.http("POST", "/channel/create?topic=t1&channel=b")
    nsqd.http("POST", "/channel/create?topic=t2&channel=b")
    nsqd.http("POST", "/topic/create?topic=t3")
    s = nsqd.stats(channel="a")
    assert [(t["topic_name"], [c["channel_name"] for c in t["channels"]])
            for t in s["topics"]] == [("t1", ["a"])]
    s = nsqd.stats(channel="b")
    assert [t["topic_name"] for t in s["topics"]] == ["t1", "t2"]
    assert nsqd.stats(channel="zzz")["topics"] == []


def test_stats_include_clients_false(nsqd, conn_factory):
    setup_pub_sub(nsqd, conn_factory)
    s = nsqd.stats(include_clients="false")
    c = s["topics"][0]["channels"][0]
    assert c["clients"] is None and c["client_count"] == 1
    assert s["producers"] is None
    # any other value means the default (true)
    s = nsqd.stats(include_clients="nope")
    assert len(s["topics"][0]["channels"][0]["clients"]) == 1


def test_stats_include_mem_false(nsqd):
    assert "memory" not in nsqd.stats(include_mem="0")
    assert "memory" in nsqd.stats(include_mem="yes")


def test_stats_invalid_request(nsqd):
    status, _, body = nsqd.http("GET", "/stats?format=json&topic=%zz")
    assert (status, body) == (400, b'{"message":"INVALID_REQUEST"}')


def test_stats_paused_and_counters(nsqd, conn_factory):
    nsqd.http("POST", "/topic/create?topic=pc")
    nsqd.http("POST", "/channel/create?topic=pc&channel=c")
    nsqd.http("POST", "/mpub?topic=pc", b"a\nb\nc")
    nsqd.http("POST", "/pub?topic=pc&defer=100000", b"d")
    nsqd.http("POST", "/channel/pause?topic=pc&channel=c")
    c = nsqd.channel_stats("pc", "c")
    assert (c["depth"], c["deferred_count"], c["message_count"], c["paused"]) == (3, 1, 4, True)
    t = nsqd.stats(topic="pc")["topics"][0]
    assert (t["message_count"], t["message_bytes"]) == (4, 4)


def test_stats_e2e_percentiles(nsqd_factory, conn_factory):
    d = nsqd_factory("--e2e-processing-latency-percentile=0.5",
                     "--e2e-processing-latency-percentile=0.99")
    d.http("POST", "/topic/create?topic=e2e")
    assert d.stats()["topics"][0]["e2e_processing_latency"] == {"count": 0,
                                                                "percentiles": None}
    c = conn_factory(d)
    c.subscribe("e2e", "c", rdy=10)
    for i in range(3):
        d.http("POST", "/pub?topic=e2e", b"m")
        msg_id = c.read_message()[0]
        c.send(cmds.encode_fin(msg_id))
    ch = wait_for(lambda: (d.channel_stats("e2e", "c")["e2e_processing_latency"]["count"] == 3
                           and d.channel_stats("e2e", "c")))
    assert ch, d.channel_stats("e2e", "c")
    pcts = ch["e2e_processing_latency"]["percentiles"]
    # flag values are sorted descending
    assert [p["quantile"] for p in pcts] == [0.99, 0.5]
    assert all(list(p) == ["quantile", "value"] and p["value"] > 0 for p in pcts)
    t = d.stats()["topics"][0]["e2e_processing_latency"]
    assert t["count"] == 3 and [p["quantile"] for p in t["percentiles"]] == [0.99, 0.5]
    text = d.http("GET", "/stats?topic=e2e")[2].decode()
    assert re.search(r"e2e%: [0-9.]+(ns|us|ms|s), [0-9.]+(ns|us|ms|s)\n", text), text


# -- text format ---------------------------------------------------------------------------------
def test_stats_text_empty(nsqd):
    headers, body = raw_stats(nsqd, "?include_mem=false")
    assert headers["Content-Type"] == "text/plain; charset=utf-8"
    assert headers["X-Nsq-Content-Type"] == "nsq; version=1.0"
    lines = body.decode().split("\n")
    assert re.fullmatch(r"nsqd v1\.3\.0 \(built w/\S+\)", lines[0])
    assert re.fullmatch(r"start_time \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)", lines[1])
    assert re.fullmatch(r"uptime [0-9hms.µn]+", lines[2])
    assert lines[3:] == ["", "Health: OK", "", "Topics: None", "", "Producers: None", ""]


def test_stats_text_memory_block(nsqd):
    body = raw_stats(nsqd)[1].decode()
    block = body.split("\nMemory:\n")[1].split("\n\n")[0].split("\n")
    assert [re.fullmatch(r"   (\S+) *\t\d+", line).group(1) for line in block] == MEM_KEYS
    assert all(len(line.split("\t")[0]) == 3 + 25 for line in block)


def test_stats_text_topics_clients_producers(nsqd, conn_factory):
    prod, cons = setup_pub_sub(nsqd, conn_factory)
    cons.read_message()
    js = nsqd.stats()
    cport = js["topics"][0]["channels"][0]["clients"][0]["remote_address"].rsplit(":", 1)[1]
    pport = js["producers"][0]["remote_address"].rsplit(":", 1)[1]
    body = raw_stats(nsqd, "?include_mem=false")[1].decode()
    tail = body.split("Health: OK\n", 1)[1]
    cid = f"conshost:{cport} probe-sub/1.0"
    pid = f"prodhost:{pport} probe-pub/1.0"
    expected = (
        "\nTopics:"
        "\n   [s1             ] depth: 0     be-depth: 0     msgs: 1        e2e%: \n"
        "      [ch1                      ] depth: 0     be-depth: 0     inflt: 1    def: 0    "
        "re-q: 0     timeout: 0     msgs: 1        e2e%: \n"
        f"        [V2 {cid:<21}] state: 3 inflt: 1    rdy: 5    fin: 0        re-q: 0        "
        "msgs: 1        connected: 0s\n"
        "\nProducers:\n"
        f"   [V2 {pid:<21}] msgs: 1        topics: s1=1 connected: 0s\n")
    # connected durations depend on timing: normalise whole seconds
    tail = re.sub(r"connected: \d+s", "connected: 0s", tail)
    assert tail == expected


def test_stats_text_paused_prefixes(nsqd):
    nsqd.http("POST", "/topic/create?topic=averyveryverylongtopicname")
    nsqd.http("POST", "/channel/create?topic=averyveryverylongtopicname&channel=c")
    nsqd.http("POST", "/topic/pause?topic=averyveryverylongtopicname")
    nsqd.http("POST", "/channel/pause?topic=averyveryverylongtopicname&channel=c")
    body = raw_stats(nsqd, "?include_mem=false")[1].decode()
    assert ("\n*P [averyveryverylongtopicname] depth: 0     be-depth: 0     msgs: 0        "
            "e2e%: \n   *P [c                        ] depth: 0 ") in body


def test_stats_text_filters(nsqd):
    nsqd.http("POST", "/topic/create?topic=f1")
    nsqd.http("POST", "/topic/create?topic=f2")
    body = raw_stats(nsqd, "?topic=f2&include_mem=false")[1].decode()
    assert "[f2 " in body and "[f1 " not in body
    body = raw_stats(nsqd, "?topic=unknown&include_mem=false")[1].decode()
    assert "\nTopics: None\n" in body


# -- units -------------------------------------------------------------------------------------------
def test_e2e_string_units():
    e2e = {"count": 4, "percentiles": [
        {"quantile": 1, "value": 2.5e9}, {"quantile": 0.99, "value": 3.25e6},
        {"quantile": 0.95, "value": 1500}, {"quantile": 0.5, "value": 999}]}
    assert stats_mod.e2e_string(e2e) == "2.5s, 3.2ms, 1.5us, 999.0ns"
    assert stats_mod.e2e_string({"count": 0, "percentiles": None}) == ""


def test_go_json_escapes_like_go():
    assert stats_mod.go_json({"a": "<&>", "b": 1.0, "c": [], "d": None}) == \
        b'{"a":"\\u003c\\u0026\\u003e","b":1.0,"c":[],"d":null}'
    assert stats_mod.go_json({"s": "\b\f\u00e9"}) == '{"s":"\\u0008\\u000c\u00e9"}'.encode()


def test_client_line_formats():
    now = 1000.0
    consumer = {"version": "V2", "hostname": "h", "remote_address": "127.0.0.1:5",
                "user_agent": "ua", "state": 3, "in_flight_count": 2, "ready_count": 7,
                "finish_count": 1, "requeue_count": 0, "message_count": 3,
                "connect_ts": 935}
    assert stats_mod._client_line(consumer, now) == (
        "[V2 h:5 ua" + " " * 15 + "] state: 3 inflt: 2    rdy: 7    fin: 1        "
        "re-q: 0        msgs: 3        connected: 1m5s")
    producer = dict(consumer, pub_counts=[{"topic": "a", "count": 2},
                                          {"topic": "b", "count": 3}])
    assert stats_mod._client_line(producer, now) == (
        "[V2 h:5 ua" + " " * 15 + "] msgs: 5        topics: a=2,b=3 connected: 1m5s")
