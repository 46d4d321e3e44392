"""nsqd <-> nsqlookupd (spec nsqlookupd.md §4-5, semantics.md §4).

Part 1 drives :class:`nsqpy.nsqd.lookup.LookupPeers` in-process (a stand-in nsqd object)
against real nsqlookupd subprocesses. Part 2 is end to end with real nsqd subprocesses,
which needs the daemon wiring (``broker.listeners.append(peers.notify)``,
``peers.start()``, ``set_addresses``, ``precreate_channels``, ``close``).
"""
import asyncio
import io
import json
import signal
import socket
import struct
import time

import pytest

from daemons import Daemon, start_nsqd

from nsqpy.log import Logger
from nsqpy.nsqd import lookup as lookup_mod
from nsqpy.nsqd.lookup import LookupPeers
from nsqpy.nsqd.options import default_options


# -- helpers ---------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_lookupd(*extra, tcp_port=0, http_port=0, broadcast="lookupd.test") -> Daemon:
    return Daemon("nsqlookupd", [f"--tcp-address=127.0.0.1:{tcp_port}",
                                 f"--http-address=127.0.0.1:{http_port}",
                                 f"--broadcast-address={broadcast}"] + list(extra)).start()


def tcp_addr(d) -> str:
    return f"127.0.0.1:{d.tcp_port}"


def get_json(d, path):
    status, _, body = d.http("GET", path)
    assert status == 200, (path, status, body)
    return json.loads(body)


def lookup(d, topic):
    status, _, body = d.http("GET", f"/lookup?topic={topic}")
    if status == 404:
        return None
    assert status == 200, body
    return json.loads(body)


def producer_ports(d, topic):
    doc = lookup(d, topic)
    return sorted(p["tcp_port"] for p in doc["producers"]) if doc else []


def node_ports(d):
    return sorted(p["tcp_port"] for p in get_json(d, "/nodes")["producers"])


async def eventually(pred, timeout=5.0, interval=0.02):
    deadline = time.monotonic() + timeout
    while True:
        if await asyncio.to_thread(pred):
            return
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(interval)


def wait_until(pred, timeout=5.0, interval=0.02):
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(interval)


@pytest.fixture
def lookupds():
    started = []

    def make(*extra, **kw):
        d = start_lookupd(*extra, **kw)
        started.append(d)
        return d

    yield make
    for d in started:
        d.stop()


# -- Part 1: LookupPeers in-process ---------------------------------------------------------------
class FakeChannel:
    def __init__(self, name):
        self.name = name
        self.ephemeral = name.endswith("#ephemeral")


class FakeTopic:
    def __init__(self, broker, name):
        self.broker = broker
        self.name = name
        self.ephemeral = name.endswith("#ephemeral")
        self.channels = {}
        self.started = True

    def start(self):
        self.started = True

    def get_channel(self, name):
        ch = self.channels.get(name)
        if ch is None:
            ch = self.channels[name] = FakeChannel(name)
            self.broker.emit("channel_created", self, ch)
        return ch

    def delete_channel(self, name):
        ch = self.channels.pop(name)
        self.broker.emit("channel_deleted", self, ch)


class FakeBroker:
    def __init__(self):
        self.topics = {}
        self.listeners = []

    def emit(self, event, topic, channel):
        for fn in self.listeners:
            fn(event, topic, channel)

    def get_topic(self, name):
        t = self.topics.get(name)
        if t is None:
            t = self.topics[name] = FakeTopic(self, name)
            self.emit("topic_created", t, None)
        return t

    def delete_topic(self, name):
        t = self.topics.pop(name)
        self.emit("topic_deleted", t, None)


class FakeNSQD:
    def __init__(self, lookupd_addresses, tcp_port=14150, http_port=14151, **opts):
        self.opts = default_options()
        self.opts.broadcast_address = "nsqd.test"
        self.opts.nsqlookupd_tcp_addresses = list(lookupd_addresses)
        for k, v in opts.items():
            setattr(self.opts, k, v)
        self.stream = io.StringIO()
        self.log = Logger("[nsqd] ", "debug", stream=self.stream)
        self.broker = FakeBroker()
        self.tcp_port = tcp_port
        self.http_port = http_port
        self.hostname = "nsqd-host"

    def log_text(self):
        return self.stream.getvalue()


@pytest.fixture
async def make_peers():
    made = []

    def make(nsqd, ping_interval=None):
        peers = LookupPeers(nsqd)
        if ping_interval is not None:
            peers.ping_interval = ping_interval
        nsqd.broker.listeners.append(peers.notify)
        made.append(peers)
        return peers

    yield make
    for p in made:
        await p.close()


async def test_peer_identifies_with_broadcast_info_and_logs(lookupds, make_peers):
    lk = lookupds()
    nsqd = FakeNSQD([tcp_addr(lk)], broadcast_tcp_port=1234, broadcast_http_port=5678)
    peers = make_peers(nsqd)
    peers.start()
    await eventually(lambda: get_json(lk, "/nodes")["producers"])
    (node,) = get_json(lk, "/nodes")["producers"]
    assert (node["broadcast_address"], node["tcp_port"], node["http_port"], node["hostname"],
            node["version"]) == ("nsqd.test", 1234, 5678, "nsqd-host", "1.3.0")
    text = nsqd.log_text()
    addr = tcp_addr(lk)
    assert f"INFO: LOOKUP({addr}): adding peer" in text
    assert f"INFO: LOOKUP connecting to {addr}" in text
    await eventually(lambda: "peer info" in nsqd.log_text())
    assert (f"INFO: LOOKUPD({addr}): peer info {{TCPPort:{lk.tcp_port} HTTPPort:{lk.http_port} "
            f"Version:1.3.0 BroadcastAddress:lookupd.test}}") in nsqd.log_text()


async def test_peer_defaults_to_actual_ports(lookupds, make_peers):
    lk = lookupds()
    nsqd = FakeNSQD([tcp_addr(lk)], tcp_port=4444, http_port=5555)
    make_peers(nsqd).start()
    await eventually(lambda: node_ports(lk) == [4444])
    assert get_json(lk, "/nodes")["producers"][0]["http_port"] == 5555


async def test_connect_announces_existing_topics_and_channels(lookupds, make_peers):
    lk = lookupds()
    nsqd = FakeNSQD([tcp_addr(lk)])
    b = nsqd.broker
    b.get_topic("lonely")
    t = b.get_topic("busy")
    t.get_channel("c1")
    t.get_channel("c2#ephemeral")
    make_peers(nsqd).start()
    await eventually(lambda: lookup(lk, "busy") and len(lookup(lk, "busy")["channels"]) == 2)
    assert sorted(lookup(lk, "busy")["channels"]) == ["c1", "c2#ephemeral"]
    assert producer_ports(lk, "lonely") == [14150]
    assert producer_ports(lk, "busy") == [14150]
    assert "INFO: LOOKUPD(%s): REGISTER busy c1" % tcp_addr(lk) in nsqd.log_text()
    assert "INFO: LOOKUPD(%s): REGISTER lonely" % tcp_addr(lk) in nsqd.log_text()


async def test_topology_changes_forwarded(lookupds, make_peers):
    lk = lookupds()
    nsqd = FakeNSQD([tcp_addr(lk)])
    peers = make_peers(nsqd)
    peers.start()
    await eventually(lambda: node_ports(lk) == [14150])
    b = nsqd.broker
    t = b.get_topic("t")
    await eventually(lambda: producer_ports(lk, "t") == [14150])
    t.get_channel("c")
    await eventually(lambda: lookup(lk, "t")["channels"] == ["c"])
    t.get_channel("e#ephemeral")
    await eventually(lambda: sorted(lookup(lk, "t")["channels"]) == ["c", "e#ephemeral"])
    t.delete_channel("e#ephemeral")
    await eventually(lambda: lookup(lk, "t")["channels"] == ["c"])   # ephemeral name gone
    t.delete_channel("c")
    b.delete_topic("t")
    await eventually(lambda: producer_ports(lk, "t") == [])
    text = nsqd.log_text()
    addr = tcp_addr(lk)
    for line in (f"LOOKUPD({addr}): topic REGISTER t", f"LOOKUPD({addr}): channel REGISTER t c",
                 f"LOOKUPD({addr}): channel UNREGISTER t c", f"LOOKUPD({addr}): topic UNREGISTER t"):
        assert line in text


async def test_ping_every_interval(lookupds, make_peers):
    lk = lookupds()
    nsqd = FakeNSQD([tcp_addr(lk)])
    make_peers(nsqd, ping_interval=0.1).start()
    await eventually(lambda: "pinged (last ping" in lk.log_text())


async def test_reconnects_and_reannounces_after_lookupd_restart(lookupds, make_peers):
    tcp, http = free_port(), free_port()
    lk = lookupds(tcp_port=tcp, http_port=http)
    nsqd = FakeNSQD([tcp_addr(lk)])
    nsqd.broker.get_topic("t").get_channel("c")
    make_peers(nsqd).start()
    await eventually(lambda: producer_ports(lk, "t") == [14150])
    await asyncio.to_thread(lk.stop)
    await asyncio.sleep(0.3)
    nsqd.broker.get_topic("later")                       # created while lookupd is down
    lk2 = await asyncio.to_thread(lookupds, tcp_port=tcp, http_port=http)
    await eventually(lambda: producer_ports(lk2, "t") == [14150]
                     and producer_ports(lk2, "later") == [14150])
    assert lookup(lk2, "t")["channels"] == ["c"]


async def test_unreachable_lookupd_is_retried(make_peers):
    port = free_port()
    nsqd = FakeNSQD([f"127.0.0.1:{port}"])
    make_peers(nsqd).start()
    await eventually(lambda: nsqd.log_text().count(f"LOOKUP connecting to 127.0.0.1:{port}") >= 2)
    assert "connection refused" in nsqd.log_text()
    lk = await asyncio.to_thread(start_lookupd, tcp_port=port)
    try:
        await eventually(lambda: node_ports(lk) == [14150])
    finally:
        await asyncio.to_thread(lk.stop)


async def test_set_addresses_adds_and_removes_peers(lookupds, make_peers):
    a, b = lookupds(), lookupds()
    nsqd = FakeNSQD([tcp_addr(a)])
    peers = make_peers(nsqd)
    peers.start()
    await eventually(lambda: node_ports(a) == [14150])
    peers.set_addresses([tcp_addr(b)])
    await eventually(lambda: node_ports(b) == [14150] and node_ports(a) == [])
    assert f"LOOKUP({tcp_addr(a)}): removing peer" in nsqd.log_text()
    assert f"LOOKUP({tcp_addr(b)}): adding peer" in nsqd.log_text()


async def test_close_disconnects_without_unregister(lookupds, make_peers):
    lk = lookupds()
    nsqd = FakeNSQD([tcp_addr(lk)])
    nsqd.broker.get_topic("t")
    peers = make_peers(nsqd)
    peers.start()
    await eventually(lambda: producer_ports(lk, "t") == [14150])
    await peers.close()
    assert "INFO: LOOKUP: closing" in nsqd.log_text()
    await eventually(lambda: node_ports(lk) == [])
    assert "UNREGISTER t" not in nsqd.log_text()
    assert lookup(lk, "t")["producers"] == []   # the name stays; the producer left


async def test_lookup_channels_unions_all_lookupds(lookupds, make_peers):
    a, b = lookupds(broadcast="127.0.0.1"), lookupds(broadcast="127.0.0.1")
    a.http("POST", "/channel/create?topic=t&channel=x")
    b.http("POST", "/channel/create?topic=t&channel=y")
    b.http("POST", "/channel/create?topic=t&channel=x")
    b.http("POST", "/channel/create?topic=t&channel=z%23ephemeral")
    nsqd = FakeNSQD([tcp_addr(a), tcp_addr(b)])
    peers = make_peers(nsqd)
    peers.start()
    await eventually(lambda: len(peers.http_addresses()) == 2)
    assert await peers.lookup_channels("t") == ["x", "y", "z#ephemeral"]
    assert await peers.lookup_channels("none") == []
    topic = nsqd.broker.get_topic("t")
    assert await peers.precreate_channels(topic) == ["x", "y"]
    assert sorted(topic.channels) == ["x", "y"]


async def test_topic_starter_creates_lookupd_channels_then_starts(lookupds, make_peers):
    lk = lookupds(broadcast="127.0.0.1")
    lk.http("POST", "/channel/create?topic=t&channel=x")
    nsqd = FakeNSQD([tcp_addr(lk)])
    peers = make_peers(nsqd)
    peers.start()
    await eventually(lambda: peers.http_addresses())
    topic = FakeTopic(nsqd.broker, "t")
    topic.started = False
    peers.topic_starter(topic)
    assert not topic.started                      # waits for lookupd's answer
    await eventually(lambda: topic.started)
    assert list(topic.channels) == ["x"]


async def test_topic_starter_without_lookupd_starts_at_once(make_peers):
    peers = make_peers(FakeNSQD([]))
    peers.start()
    topic = FakeTopic(FakeBroker(), "t")
    topic.started = False
    peers.topic_starter(topic)
    assert topic.started


async def test_lookup_channels_failure_is_logged_and_ignored(lookupds, make_peers):
    a, b = lookupds(broadcast="127.0.0.1"), lookupds(broadcast="127.0.0.1")
    a.http("POST", "/channel/create?topic=t&channel=x")
    nsqd = FakeNSQD([tcp_addr(a), tcp_addr(b)],
                    http_client_connect_timeout=200_000_000,
                    http_client_request_timeout=500_000_000)
    peers = make_peers(nsqd)
    peers.start()
    await eventually(lambda: len(peers.http_addresses()) == 2)
    await asyncio.to_thread(b.stop)
    assert await peers.lookup_channels("t") == ["x"]
    assert "WARNING: failed to query nsqlookupd for channels to pre-create for topic t" \
        in nsqd.log_text()


async def test_lookup_channels_without_identified_lookupd(make_peers):
    nsqd = FakeNSQD([f"127.0.0.1:{free_port()}"])
    peers = make_peers(nsqd)
    peers.start()
    assert await peers.lookup_channels("t") == []
    assert "ERROR: no available nsqlookupd to query for channels to pre-create for topic t" \
        in nsqd.log_text()


async def test_e_invalid_identify_answer_closes_and_retries(make_peers, monkeypatch):
    monkeypatch.setattr(lookup_mod, "RECONNECT_MIN", 0.05)
    seen = []

    async def handle(reader, writer):
        seen.append(await reader.readexactly(4))
        await reader.readline()
        (n,) = struct.unpack(">i", await reader.readexactly(4))
        seen.append(json.loads(await reader.readexactly(n)))
        writer.write(b"\x00\x00\x00\x09E_INVALID")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        nsqd = FakeNSQD([f"127.0.0.1:{port}"])
        make_peers(nsqd).start()
        await eventually(lambda: len(seen) >= 4)
        assert seen[0] == b"  V1"
        assert seen[1] == {"broadcast_address": "nsqd.test", "hostname": "nsqd-host",
                           "http_port": 14151, "tcp_port": 14150, "version": "1.3.0"}
        assert f"LOOKUPD(127.0.0.1:{port}): lookupd returned E_INVALID" in nsqd.log_text()
    finally:
        server.close()


async def test_identify_body_keys_sorted_on_the_wire(make_peers):
    got = asyncio.get_running_loop().create_future()

    async def handle(reader, writer):
        await reader.readexactly(4)
        line = await reader.readline()
        (n,) = struct.unpack(">i", await reader.readexactly(4))
        if not got.done():
            got.set_result((line, await reader.readexactly(n)))
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        nsqd = FakeNSQD([f"127.0.0.1:{server.sockets[0].getsockname()[1]}"])
        make_peers(nsqd).start()
        line, body = await asyncio.wait_for(got, 5)
        assert line == b"IDENTIFY\n"
        assert body == (b'{"broadcast_address":"nsqd.test","hostname":"nsqd-host",'
                        b'"http_port":14151,"tcp_port":14150,"version":"1.3.0"}')
    finally:
        server.close()


# -- Part 2: real nsqd daemons (needs the daemon wiring) ------------------------------------------
@pytest.fixture
def nsqds(tmp_path):
    started = []

    def make(*lookupd_daemons, extra=()):
        n = len(started)
        flags = [f"--lookupd-tcp-address={tcp_addr(d)}" for d in lookupd_daemons]
        d = start_nsqd(tmp_path / f"n{n}", *flags, *extra)
        started.append(d)
        return d

    yield make
    for d in started:
        d.stop()


def http_post(d, path, body=b""):
    status, _, resp = d.http("POST", path, body=body)
    assert status == 200, (path, status, resp)
    return resp


def test_nsqd_logs_lookup_peer_lines(lookupds, nsqds):
    lk = lookupds()
    n = nsqds(lk)
    addr = tcp_addr(lk)
    n.wait_for_log(rf"INFO: LOOKUP\({addr}\): adding peer")
    n.wait_for_log(rf"INFO: LOOKUP connecting to {addr}")
    n.wait_for_log(rf"INFO: LOOKUPD\({addr}\): peer info \{{TCPPort:{lk.tcp_port} "
                   rf"HTTPPort:{lk.http_port} Version:1\.3\.0 BroadcastAddress:lookupd\.test\}}")
    wait_until(lambda: node_ports(lk) == [n.tcp_port])


def test_nsqd_registers_and_unregisters_topics_and_channels(lookupds, nsqds):
    lk = lookupds()
    n = nsqds(lk)
    http_post(n, "/topic/create?topic=reg")
    wait_until(lambda: producer_ports(lk, "reg") == [n.tcp_port])
    http_post(n, "/channel/create?topic=reg&channel=ch")
    wait_until(lambda: lookup(lk, "reg")["channels"] == ["ch"])
    http_post(n, "/channel/delete?topic=reg&channel=ch")
    n.wait_for_log(rf"LOOKUPD\({tcp_addr(lk)}\): channel UNREGISTER reg ch")
    http_post(n, "/topic/delete?topic=reg")
    wait_until(lambda: producer_ports(lk, "reg") == [])
    n.wait_for_log(rf"LOOKUPD\({tcp_addr(lk)}\): topic UNREGISTER reg")
    lk.wait_for_log(r"DB: client\(127\.0\.0\.1:\d+\) UNREGISTER category:topic key:reg subkey:$")


def test_nsqd_restart_reannounces_restored_topology(lookupds, nsqds, tmp_path):
    lk = lookupds()
    n = nsqds(lk)
    http_post(n, "/topic/create?topic=kept")
    http_post(n, "/channel/create?topic=kept&channel=c")
    http_post(n, "/topic/create?topic=kept2")
    n.stop()
    wait_until(lambda: node_ports(lk) == [])
    n.start()
    wait_until(lambda: producer_ports(lk, "kept") == [n.tcp_port]
               and producer_ports(lk, "kept2") == [n.tcp_port])
    assert lookup(lk, "kept")["channels"] == ["c"]


def test_ephemeral_channel_unregistered_when_last_client_leaves(lookupds, nsqds, conn_factory):
    lk = lookupds()
    n = nsqds(lk)
    c = conn_factory(n)
    c.identify()
    c.subscribe("eph", "tail#ephemeral")
    wait_until(lambda: lookup(lk, "eph") and lookup(lk, "eph")["channels"] == ["tail#ephemeral"])
    c.close()
    wait_until(lambda: lookup(lk, "eph")["channels"] == [])


def test_two_lookupds_three_nsqds_lookup_from_either(lookupds, nsqds):
    a, b = lookupds(), lookupds()
    ns = [nsqds(a, b) for _ in range(3)]
    for n in ns:
        http_post(n, "/pub?topic=shared", b"x")
    want = sorted(n.tcp_port for n in ns)
    wait_until(lambda: producer_ports(a, "shared") == want and producer_ports(b, "shared") == want)
    assert node_ports(a) == node_ports(b) == want


def test_tombstone_hides_producer_for_lifetime(lookupds, nsqds):
    lk = lookupds("--tombstone-lifetime=1s")
    n1, n2 = nsqds(lk), nsqds(lk)
    for n in (n1, n2):
        http_post(n, "/topic/create?topic=tomb")
    wait_until(lambda: len(producer_ports(lk, "tomb")) == 2)
    http_post(lk, f"/topic/tombstone?topic=tomb&node=127.0.0.1:{n1.http_port}")
    assert producer_ports(lk, "tomb") == [n2.tcp_port]
    node = [p for p in get_json(lk, "/nodes")["producers"] if p["tcp_port"] == n1.tcp_port][0]
    assert node["tombstones"] == [True]
    time.sleep(1.1)
    assert producer_ports(lk, "tomb") == sorted([n1.tcp_port, n2.tcp_port])


def test_sigkilled_nsqd_drops_out_immediately(lookupds, nsqds):
    lk = lookupds()
    n1, n2 = nsqds(lk), nsqds(lk)
    http_post(n1, "/topic/create?topic=k")
    wait_until(lambda: node_ports(lk) == sorted([n1.tcp_port, n2.tcp_port])
               and producer_ports(lk, "k") == [n1.tcp_port])
    n1.kill()
    wait_until(lambda: node_ports(lk) == [n2.tcp_port], timeout=3)
    assert producer_ports(lk, "k") == []


def test_stalled_nsqd_hidden_after_inactive_timeout(lookupds, nsqds):
    lk = lookupds("--inactive-producer-timeout=500ms")
    n = nsqds(lk)
    http_post(n, "/topic/create?topic=stall")
    wait_until(lambda: producer_ports(lk, "stall") == [n.tcp_port])
    n.proc.send_signal(signal.SIGSTOP)
    try:
        wait_until(lambda: node_ports(lk) == [] and producer_ports(lk, "stall") == [], timeout=3)
        assert "topic:stall:" in get_json(lk, "/debug")    # still registered, just inactive
    finally:
        n.proc.send_signal(signal.SIGCONT)


def test_restarted_lookupd_gets_everything_reregistered(lookupds, nsqds):
    tcp, http = free_port(), free_port()
    lk = lookupds(tcp_port=tcp, http_port=http)
    n = nsqds(lk)
    http_post(n, "/topic/create?topic=rr")
    http_post(n, "/channel/create?topic=rr&channel=c1")
    http_post(n, "/topic/create?topic=rr2")
    wait_until(lambda: producer_ports(lk, "rr") == [n.tcp_port])
    lk.stop()
    lk.start()
    wait_until(lambda: producer_ports(lk, "rr") == [n.tcp_port]
               and producer_ports(lk, "rr2") == [n.tcp_port], timeout=10)
    assert lookup(lk, "rr")["channels"] == ["c1"]


def test_broadcast_address_and_ports_handed_out(lookupds, nsqds):
    lk = lookupds()
    n = nsqds(lk, extra=["--broadcast-address=nsqd.example", "--broadcast-tcp-port=7150",
                         "--broadcast-http-port=7151"])
    http_post(n, "/topic/create?topic=bc")
    wait_until(lambda: lookup(lk, "bc") and lookup(lk, "bc")["producers"])
    (p,) = lookup(lk, "bc")["producers"]
    assert (p["broadcast_address"], p["tcp_port"], p["http_port"]) == (
        "nsqd.example", 7150, 7151)


def test_put_config_lookupd_addresses_moves_registration(lookupds, nsqds):
    a, b = lookupds(), lookupds()
    n = nsqds(a)
    wait_until(lambda: node_ports(a) == [n.tcp_port])
    status, _, _ = n.http("PUT", "/config/nsqlookupd_tcp_addresses",
                          body=json.dumps([tcp_addr(b)]).encode())
    assert status == 200
    wait_until(lambda: node_ports(b) == [n.tcp_port] and node_ports(a) == [])


def test_new_topic_precreates_channels_known_to_lookupd(lookupds, nsqds):
    lk = lookupds(broadcast="127.0.0.1")
    http_post(lk, "/channel/create?topic=fresh&channel=pre")
    http_post(lk, "/channel/create?topic=fresh&channel=skip%23ephemeral")
    n = nsqds(lk)
    n.wait_for_log(r"peer info")
    http_post(n, "/pub?topic=fresh", b"hello")
    wait_until(lambda: n.channel_stats("fresh", "pre") is not None)
    wait_until(lambda: n.channel_stats("fresh", "pre")["depth"] == 1)
    assert n.channel_stats("fresh", "skip#ephemeral") is None


def test_nsqd_shutdown_sends_no_unregister(lookupds, nsqds):
    lk = lookupds()
    n = nsqds(lk)
    http_post(n, "/topic/create?topic=bye")
    wait_until(lambda: producer_ports(lk, "bye") == [n.tcp_port])
    assert n.stop() == 0
    assert "LOOKUP: closing" in n.log_text()
    assert "UNREGISTER" not in n.log_text()
    wait_until(lambda: node_ports(lk) == [])
    assert lookup(lk, "bye")["channels"] == []


async def test_pynsq_reader_discovers_all_nsqds_via_lookupd(lookupds, nsqds):
    nsq = pytest.importorskip("nsq")
    a, b = lookupds(), lookupds()
    ns = [nsqds(a, b) for _ in range(3)]
    for i, n in enumerate(ns):
        for j in range(5):
            await asyncio.to_thread(http_post, n, "/pub?topic=disco", b"m-%d-%d" % (i, j))
    want = sorted(n.tcp_port for n in ns)
    await eventually(lambda: producer_ports(a, "disco") == want
                     and producer_ports(b, "disco") == want)
    got = []

    def handler(msg):
        got.append(msg.body)
        return True

    r = nsq.Reader(topic="disco", channel="ch", message_handler=handler,
                   lookupd_http_addresses=[f"127.0.0.1:{a.http_port}",
                                           f"127.0.0.1:{b.http_port}"],
                   lookupd_poll_interval=1, max_in_flight=10)
    try:
        await eventually(lambda: len(got) >= 15, timeout=15)
        assert sorted(got) == sorted(b"m-%d-%d" % (i, j) for i in range(3) for j in range(5))
        assert sorted(conn.port for conn in r.conns.values()) == want
    finally:
        r.close()
