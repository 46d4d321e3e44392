"""statsd output (spec semantics.md §5) received on a real UDP socket from a real nsqd."""
import re
import socket
import time
from types import SimpleNamespace

import pytest

from nsqpy.nsqd.statsd import pack_datagrams, statsd_prefix


@pytest.fixture
def udp():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.2)
    yield sock
    sock.close()


def collect(sock, seconds):
    """Datagrams received within ``seconds``."""
    out = []
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            out.append(sock.recv(65536))
        except socket.timeout:
            pass
    return out


def pushes(sock, n, timeout=10.0, marker=b"mem.gc_runs:"):
    """Read datagrams until ``n`` pushes (each ends with the mem.gc_runs line) arrived."""
    got = []
    deadline = time.time() + timeout
    while time.time() < deadline and sum(marker in d for d in got) < n:
        try:
            got.append(sock.recv(65536))
        except socket.timeout:
            pass
    return got


def lines_of(datagrams):
    out = []
    for d in datagrams:
        assert d.endswith(b"\n"), d
        out += d.decode().split("\n")[:-1]
    return out


def start(nsqd_factory, udp, *extra):
    port = udp.getsockname()[1]
    return nsqd_factory(f"--statsd-address=127.0.0.1:{port}", "--statsd-interval=1s", *extra)


def test_statsd_lines_and_prefix(nsqd_factory, udp):
    d = start(nsqd_factory, udp)
    d.http("POST", "/topic/create?topic=st1")
    d.http("POST", "/channel/create?topic=st1&channel=c1")
    d.http("POST", "/mpub?topic=st1", b"a\nbb\nccc")
    prefix = f"nsq.127_0_0_1_{d.http_port}."
    assert d.http("GET", "/config/statsd_prefix")[2] == prefix.encode()
    grams = pushes(udp, 3)
    lines = lines_of(grams)
    assert all(line.startswith(prefix) for line in lines), lines
    names = [line[len(prefix):] for line in lines]
    stat = {}
    for n in names:
        m = re.fullmatch(r"(.+):(-?\d+)\|(c|g)", n)
        assert m, n
        stat.setdefault(m.group(1), []).append((int(m.group(2)), m.group(3)))
    t = "topic.st1."
    c = "topic.st1.channel.c1."
    for key, kind in ((t + "message_count", "c"), (t + "message_bytes", "c"),
                      (t + "depth", "g"), (t + "backend_depth", "g"),
                      (c + "message_count", "c"), (c + "depth", "g"),
                      (c + "backend_depth", "g"), (c + "in_flight_count", "g"),
                      (c + "deferred_count", "g"), (c + "requeue_count", "c"),
                      (c + "timeout_count", "c"), (c + "clients", "g")):
        assert key in stat, (key, names)
        assert all(k == kind for _, k in stat[key]), (key, stat[key])
    for key in ("heap_objects", "heap_idle_bytes", "heap_in_use_bytes", "heap_released_bytes",
                "gc_pause_usec_100", "gc_pause_usec_99", "gc_pause_usec_95", "next_gc_bytes"):
        assert stat["mem." + key][0][1] == "g"
    assert stat["mem.gc_runs"][0][1] == "c"
    # counters are deltas: the whole count once, 0 in later pushes
    for key, total in ((t + "message_count", 3), (t + "message_bytes", 6),
                       (c + "message_count", 3)):
        values = [v for v, _ in stat[key]]
        assert sum(values) == total and values.count(total) == 1 and values[-1] == 0, values
    assert stat[t + "depth"][-1] == (0, "g")
    assert stat[c + "depth"][-1] == (3, "g")
    # order of the per-topic block
    keys = [n.split(":")[0] for n in names]
    first = keys.index(t + "message_count")
    assert keys[first:first + 12] == [
        t + "message_count", t + "message_bytes", t + "depth", t + "backend_depth",
        c + "message_count", c + "depth", c + "backend_depth", c + "in_flight_count",
        c + "deferred_count", c + "requeue_count", c + "timeout_count", c + "clients"]
    d.wait_for_log(r"INFO: STATSD: pushing stats to 127\.0\.0\.1:\d+")


def test_statsd_datagram_size_limit(nsqd_factory, udp):
    d = start(nsqd_factory, udp, "--statsd-udp-packet-size=100")
    for i in range(5):
        d.http("POST", f"/topic/create?topic=topic{i}")
    grams = pushes(udp, 1)
    assert len(grams) > 5
    for g in grams:
        assert len(g) <= 100, g
        # lines are never split across datagrams
        assert all(re.fullmatch(r"nsq\.[\w]+\.[\w.#-]+:-?\d+\|[cg]", line)
                   for line in g.decode().split("\n")[:-1]), g


def test_statsd_custom_prefix_no_mem(nsqd_factory, udp):
    d = start(nsqd_factory, udp, "--statsd-prefix=custom", "--statsd-mem-stats=false")
    d.http("POST", "/topic/create?topic=cp")
    assert d.http("GET", "/config/statsd_prefix")[2] == b"custom."
    lines = lines_of(collect(udp, 2.5))
    assert lines and all(line.startswith("custom.topic.cp.") for line in lines), lines


def test_statsd_exclude_ephemeral(nsqd_factory, udp):
    d = start(nsqd_factory, udp, "--statsd-exclude-ephemeral")
    d.http("POST", "/topic/create?topic=keep")
    d.http("POST", "/topic/create?topic=eph%23ephemeral")
    d.http("POST", "/channel/create?topic=keep&channel=ch%23ephemeral")
    d.http("POST", "/channel/create?topic=keep&channel=real")
    text = "\n".join(lines_of(pushes(udp, 2)))
    assert "topic.keep.depth" in text and "topic.keep.channel.real.depth" in text
    assert "ephemeral" not in text


def test_statsd_e2e_gauges(nsqd_factory, udp):
    d = start(nsqd_factory, udp, "--e2e-processing-latency-percentile=0.99",
              "--e2e-processing-latency-percentile=0.5")
    d.http("POST", "/topic/create?topic=e")
    d.http("POST", "/channel/create?topic=e&channel=c")
    text = "\n".join(lines_of(pushes(udp, 1)))
    for name in ("topic.e.e2e_processing_latency_99:", "topic.e.e2e_processing_latency_50:",
                 "topic.e.channel.c.e2e_processing_latency_99:",
                 "topic.e.channel.c.e2e_processing_latency_50:"):
        assert name in text, text


def test_statsd_closing_logged(nsqd_factory, udp):
    d = start(nsqd_factory, udp)
    pushes(udp, 1)
    d.stop()
    assert "INFO: STATSD: closing" in d.log_text()


# -- units ------------------------------------------------------------------------------------------
def test_pack_datagrams_never_splits_lines():
    lines = [b"a" * 10 + b"\n", b"b" * 10 + b"\n", b"c" * 30 + b"\n", b"d\n"]
    assert pack_datagrams(lines, 25) == [lines[0] + lines[1], lines[2], lines[3]]
    assert pack_datagrams(lines, 1000) == [b"".join(lines)]
    assert pack_datagrams([], 10) == []


def test_statsd_prefix_substitution():
    def fake(prefix, addr="vm.local", port=4151):
        opts = SimpleNamespace(statsd_prefix=prefix, broadcast_address=addr,
                               broadcast_http_port=0)
        return SimpleNamespace(opts=opts, http_port=port, hostname="host")

    assert statsd_prefix(fake("nsq.%s")) == "nsq.vm_local_4151."
    assert statsd_prefix(fake("nsq.%s.")) == "nsq.vm_local_4151."
    assert statsd_prefix(fake("plain")) == "plain."
    assert statsd_prefix(fake("")) == ""
    assert statsd_prefix(fake("x.%s", addr="::1")) == "x.[__1]_4151."
