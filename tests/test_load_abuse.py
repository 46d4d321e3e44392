"""Load and abuse against a real nsqd process (issue #8; the idle figure is issue #7's).

Each test prints the figures it measures (run with ``-s`` to see them):

* 10,000 concurrent V2 clients held: nsqd keeps serving a publisher and a consumer;
  time to open them and nsqd's RSS per connection;
* a consumer that never reads its socket: nsqd stops delivering to it (bounded
  buffering, like Go's blocked writer) and other channels/topics keep their throughput;
* 10,000 idle topics each with a channel cost ~no CPU, and --sync-timeout still syncs
  a dirty queue;
* ~1000 slow-loris HTTP clients: /ping and /pub still answered quickly, memory bounded;
* garbage after IDENTIFY (plain, snappy, deflate): an ``E_*`` error and a close, nsqd
  keeps serving and logs no traceback.
"""
import asyncio
import json
import os
import random
import resource
import socket
import statistics
import struct
import threading
import time

import pytest

from daemons import Conn
from nsqpy.protocol import commands as cmds
from nsqpy.protocol.compression import (DeflateDecoder, DeflateEncoder, SnappyDecoder,
                                        SnappyEncoder)
from nsqpy.protocol.frames import FrameDecoder

CLK_TCK = os.sysconf("SC_CLK_TCK")


# -- measuring the nsqd process ---------------------------------------------------------------
def rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def cpu_seconds(pid: int) -> float:
    """utime + stime of the process (all threads) from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def idle_cpu_percent(pid: int, seconds: float) -> float:
    c0, t0 = cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    c1, t1 = cpu_seconds(pid), time.monotonic()
    return 100.0 * (c1 - c0) / (t1 - t0)


def raise_nofile(need: int) -> None:
    """Raise this process's RLIMIT_NOFILE soft limit (nsqd started afterwards inherits it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= need:
        return
    if hard != resource.RLIM_INFINITY and hard < need:
        pytest.skip(f"RLIMIT_NOFILE hard limit {hard} < {need}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))


@pytest.fixture
def nofile():
    saved = resource.getrlimit(resource.RLIMIT_NOFILE)
    yield raise_nofile
    resource.setrlimit(resource.RLIMIT_NOFILE, saved)


def assert_no_traceback(daemon) -> None:
    log = daemon.log_text()
    assert "Traceback" not in log, log[-4000:]
    assert daemon.proc.poll() is None, "nsqd exited"


def pub_and_consume(daemon, topic: str, n: int, body: bytes = b"x" * 100) -> float:
    """PUB ``n`` messages one by one, then SUB and receive+FIN them: seconds taken."""
    t0 = time.monotonic()
    p = Conn(daemon.tcp_address)
    for _ in range(n):
        p.pub(topic, body)
    p.close()
    c = Conn(daemon.tcp_address)
    c.subscribe(topic, "ch", rdy=n)
    for _ in range(n):
        msg_id, _, got, _ = c.read_message(timeout=5)
        assert got == body
        c.send(cmds.encode_fin(msg_id))
    c.close()
    return time.monotonic() - t0


# -- 1. 10,000 concurrent client connections ---------------------------------------------------
HELD = 10_000


async def _open_held(port: int, n: int, concurrency: int = 200):
    """n real V2 clients on non-blocking sockets: even ones IDENTIFY, odd ones SUB; each
    waits for its OK.  Returns the sockets."""
    loop = asyncio.get_running_loop()
    identify = cmds.MAGIC_V2 + cmds.encode_identify({"client_id": "held", "hostname": "h",
                                                      "feature_negotiation": False})
    sub = cmds.MAGIC_V2 + cmds.encode_sub("held", "c")
    ok = struct.pack(">ii", 6, 0) + b"OK"
    socks = [None] * n
    sem = asyncio.Semaphore(concurrency)

    async def one(i):
        async with sem:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            await loop.sock_connect(s, ("127.0.0.1", port))
            await loop.sock_sendall(s, identify if i % 2 == 0 else sub)
            got = b""
            while len(got) < len(ok):
                chunk = await loop.sock_recv(s, 64)
                assert chunk, f"connection {i} closed"
                got += chunk
            assert got == ok, got
            socks[i] = s

    await asyncio.gather(*(one(i) for i in range(n)))
    return socks


def test_ten_thousand_held_connections_do_not_stop_service(nsqd_factory, nofile):
    nofile(HELD + 2048)                    # inherited by the nsqd started below
    d = nsqd_factory()
    pid = d.proc.pid
    with open(f"/proc/{pid}/limits") as f:
        (line,) = [ln for ln in f if ln.startswith("Max open files")]
    assert int(line.split()[3]) >= HELD + 2048, line
    base = pub_and_consume(d, "warm", 50)  # warm up code paths before measuring memory
    rss0 = rss(pid)
    t0 = time.monotonic()
    socks = asyncio.run(_open_held(d.tcp_port, HELD))
    opened = time.monotonic() - t0
    try:
        rss1 = rss(pid)
        per_conn = (rss1 - rss0) / HELD
        subs = d.channel_stats("held", "c")
        assert len(subs["clients"]) == HELD // 2
        t1 = time.monotonic()
        status, _, body = d.http("GET", "/ping")
        ping = time.monotonic() - t1
        assert (status, body) == (200, b"OK")
        served = pub_and_consume(d, "busy", 200)
        print(f"\n10k-conns: open {opened:.2f}s ({HELD / opened:.0f} conn/s), "
              f"nsqd RSS {rss0 / 2**20:.1f} -> {rss1 / 2**20:.1f} MiB = {per_conn:.0f} B/conn, "
              f"/ping {ping * 1000:.1f} ms, pub+consume 200 msgs {served * 1000:.0f} ms "
              f"(without the held conns, 50 msgs {base * 1000:.0f} ms)")
        assert ping < 1.0
        assert served < 5.0
        assert per_conn < 32 * 1024
    finally:
        for s in socks:
            s.close()
    # they all go away cleanly and nsqd still serves
    deadline = time.monotonic() + 20
    while (d.channel_stats("held", "c") or {}).get("clients") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not d.channel_stats("held", "c")["clients"]
    assert pub_and_consume(d, "after", 10) < 5.0
    assert_no_traceback(d)


# -- 2. a consumer that never reads -------------------------------------------------------------
STUCK_BODY = b"s" * 32768


def _stuck_consumer(daemon, topic: str, channel: str) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    s.connect(daemon.tcp_address)
    s.sendall(cmds.MAGIC_V2 + cmds.encode_sub(topic, channel) + cmds.encode_rdy(2500))
    return s                               # and never read


def _channel_throughput(daemon, topic: str, channel: str, n: int, body: bytes) -> float:
    """Messages/s through ``topic:channel``: a publisher thread MPUBs n messages while a
    consumer receives and FINs them."""
    c = Conn(daemon.tcp_address)
    # a small output buffer: what a FIN frees room for is sent at the end of that loop
    # turn, not at an output-buffer tick; otherwise the rate depends on whether this
    # reader happens to drain nsqd's buffer before a tick (two modes, 10k and 200k msgs/s)
    c.identify(output_buffer_size=64)
    c.subscribe(topic, channel, rdy=200)
    errors = []

    def publish():
        try:
            p = Conn(daemon.tcp_address)
            for _ in range(n // 50):
                p.send(cmds.encode_mpub(topic, [body] * 50))
                p.expect_response()
            p.close()
        except Exception as e:  # reported by the consumer side
            errors.append(e)

    t0 = time.monotonic()
    th = threading.Thread(target=publish)
    th.start()
    for _ in range(n // 50 * 50):
        msg_id, _, got, _ = c.read_message(timeout=10)
        c.send(cmds.encode_fin(msg_id))
    elapsed = time.monotonic() - t0
    th.join()
    c.close()
    assert not errors, errors
    return n / elapsed


def _median_throughput(daemon, topic: str, channel: str, n: int, body: bytes) -> float:
    """Median of five runs: short runs on a shared machine are noisy in both directions."""
    return statistics.median(_channel_throughput(daemon, topic, channel, n, body)
                             for _ in range(5))


def _stuck_client(daemon, topic: str, channel: str) -> dict:
    (client,) = daemon.channel_stats(topic, channel)["clients"]
    return client


def test_consumer_that_never_reads_is_bounded_and_does_not_slow_others(nsqd_factory):
    # a small memory queue: what the stuck channel cannot deliver goes to its disk queue,
    # so nsqd's RSS shows what it buffers for the stuck client itself
    d = nsqd_factory("--mem-queue-size=100")
    pid = d.proc.pid
    n, body = 3000, b"m" * 1024
    before_same = _median_throughput(d, "load", "good", n, body)
    before_other = _median_throughput(d, "other", "good", n, body)

    stuck = _stuck_consumer(d, "load", "stuck")
    try:
        d.wait_for_log(r"new channel\(stuck\)")
        rss0 = rss(pid)
        p = Conn(d.tcp_address)
        fill = 2000                         # 64 MiB: far beyond any socket buffer
        for _ in range(fill // 20):
            p.send(cmds.encode_mpub("load", [STUCK_BODY] * 20))
            p.expect_response()
        p.close()
        time.sleep(0.5)
        client = _stuck_client(d, "load", "stuck")
        rss1 = rss(pid)
        # drain the fill from the good channel, then measure with the stuck consumer held
        c = Conn(d.tcp_address)
        c.subscribe("load", "good", rdy=500)
        for _ in range(fill):
            msg_id, _, _, _ = c.read_message(timeout=10)
            c.send(cmds.encode_fin(msg_id))
        c.close()
        after_same = _median_throughput(d, "load", "good", n, body)
        after_other = _median_throughput(d, "other", "good", n, body)
        client2 = _stuck_client(d, "load", "stuck")
        rss2 = rss(pid)
        depth = d.channel_stats("load", "stuck")["depth"]
        print(f"\nstuck consumer: in flight {client['in_flight_count']} of RDY 2500 "
              f"({client['in_flight_count'] * len(STUCK_BODY) / 2**20:.1f} MiB) after a "
              f"{fill * len(STUCK_BODY) / 2**20:.0f} MiB fill, stuck channel depth {depth}; "
              f"nsqd RSS {rss0 / 2**20:.1f} -> {rss1 / 2**20:.1f} -> {rss2 / 2**20:.1f} MiB; "
              f"same-topic channel {before_same:.0f} -> {after_same:.0f} msg/s, "
              f"other topic {before_other:.0f} -> {after_other:.0f} msg/s")
        # nsqd stopped handing messages to the client once its socket was full
        assert client["in_flight_count"] * len(STUCK_BODY) < 16 * 2**20
        assert client2["in_flight_count"] == client["in_flight_count"]
        assert depth >= fill + n - client2["in_flight_count"]
        assert rss1 - rss0 < 48 * 2**20
        assert rss2 - rss0 < 48 * 2**20
        assert after_same > 0.5 * before_same
        assert after_other > 0.5 * before_other
    finally:
        stuck.close()
    assert_no_traceback(d)


def test_publisher_that_never_reads_responses_is_not_read_either(nsqd_factory):
    """Go's IOLoop blocks on writing a response: a client that never reads its OKs stops
    being read, so nsqd does not buffer an unbounded stream of responses for it."""
    d = nsqd_factory()
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(d.tcp_address)
    s.settimeout(0.5)
    s.sendall(cmds.MAGIC_V2)
    nop_pub = cmds.encode_pub("noread", b"x")
    chunk = nop_pub * 1000
    sent = 0
    try:
        deadline = time.monotonic() + 10   # 10 s of sending: it must block long before that
        while time.monotonic() < deadline:
            s.sendall(chunk)
            sent += len(chunk)
    except socket.timeout:
        pass
    count = d.stats(topic="noread")["topics"][0]["message_count"]
    print(f"\nnon-reading publisher: nsqd accepted {count} PUBs "
          f"({count * 10 / 2**20:.1f} MiB of unread OK responses) before it stopped reading; "
          f"the client got {sent / 2**20:.1f} MiB into the socket")
    assert count * len(nop_pub) < sent        # not everything sent was processed
    assert count * 10 < 8 * 2**20             # OK frames are 10 bytes
    s.close()
    assert_no_traceback(d)


# -- 3. 10,000 idle topics and channels --------------------------------------------------------
async def _http_pipeline(port: int, paths, concurrency: int = 4) -> None:
    """POST every path over a few keep-alive connections, requests pipelined in pairs."""
    paths = iter(paths)

    async def response(r):
        line = await r.readline()
        assert b" 200 " in line, line
        length = 0
        while True:
            h = await r.readline()
            if h in (b"\r\n", b""):
                break
            if h.lower().startswith(b"content-length:"):
                length = int(h.split(b":")[1])
        await r.readexactly(length)

    async def worker():
        r, w = await asyncio.open_connection("127.0.0.1", port)
        for group in paths:
            w.write(b"".join(b"POST %s HTTP/1.1\r\nHost: nsqd\r\nContent-Length: 0\r\n\r\n"
                             % p.encode() for p in group))
            for _ in group:
                await response(r)
        w.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))


def create_idle_topics(daemon, n: int) -> None:
    asyncio.run(_http_pipeline(daemon.http_port, (
        (f"/topic/create?topic=idle{i}", f"/channel/create?topic=idle{i}&channel=c")
        for i in range(n))))


IDLE_TOPICS = 10_000


def test_ten_thousand_idle_topics_with_channels_use_no_cpu(nsqd_factory):
    d = nsqd_factory()
    pid = d.proc.pid
    time.sleep(0.3)
    rss0 = rss(pid)
    t0 = time.monotonic()
    create_idle_topics(d, IDLE_TOPICS)
    created = time.monotonic() - t0
    d.wait_for_log(rf"TOPIC\(idle{IDLE_TOPICS - 1}\): new channel\(c\)")
    time.sleep(1.0)                         # let the metadata write settle
    rss1 = rss(pid)
    cpu = idle_cpu_percent(pid, 10.0)
    per = (rss1 - rss0) / IDLE_TOPICS
    print(f"\n10k idle topics+channels: created in {created:.1f}s, idle CPU {cpu:.2f}% of a "
          f"core over 10 s, RSS {rss0 / 2**20:.1f} -> {rss1 / 2**20:.1f} MiB = "
          f"{per:.0f} B per topic+channel")
    assert cpu < 1.0                        # was 1.0% when the sync timer visited every queue
    assert created < 15.0                   # was 21 s when every create re-serialised nsqd.dat
    meta = json.load(open(os.path.join(d.data_path, "nsqd.dat")))
    assert len(meta["topics"]) == IDLE_TOPICS
    d.kill()                                # a clean stop fsyncs 20k queues: not this test


def _queue_meta(daemon, name: str):
    path = os.path.join(daemon.data_path, f"{name}.diskqueue.meta.dat")
    try:
        with open(path) as f:
            return f.read().split("\n")[0]
    except FileNotFoundError:
        return None


@pytest.mark.parametrize("sync_timeout, synced", [("200ms", True), ("1h", False)])
def test_sync_timeout_syncs_a_dirty_queue_among_idle_ones(nsqd_factory, sync_timeout, synced):
    d = nsqd_factory("--mem-queue-size=0", "--sync-every=1000000",
                     f"--sync-timeout={sync_timeout}")
    create_idle_topics(d, 200)
    p = Conn(d.tcp_address)
    for _ in range(3):
        p.pub("dirty", b"payload")          # no channel: the topic's disk queue holds them
    p.close()
    deadline = time.monotonic() + 1.5
    while _queue_meta(d, "dirty") != "3" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert (_queue_meta(d, "dirty") == "3") is synced
    assert _queue_meta(d, "idle7") is None  # idle queues are never synced by the timer


# -- 4. slow-loris HTTP clients ------------------------------------------------------------------
LORIS = 1000


def test_slow_loris_http_clients_do_not_stop_service(nsqd_factory, nofile):
    nofile(LORIS + 1024)
    d = nsqd_factory()
    pid = d.proc.pid
    d.http("GET", "/ping")
    rss0 = rss(pid)
    socks = []
    try:
        for _ in range(LORIS):
            s = socket.create_connection(("127.0.0.1", d.http_port))
            s.setblocking(False)
            s.send(b"G")
            socks.append(s)
        header = b"ET /ping HTTP/1.1\r\nHost: nsqd\r\nX-Slow: " + b"a" * 4000
        pairs = []
        dropped = set()
        t_end = time.monotonic() + 6.0
        pos = 0
        pings = pubs = 0
        while time.monotonic() < t_end and pos < len(header):
            for s in socks:                 # one more byte on every connection
                try:
                    s.send(header[pos:pos + 1])
                except OSError:             # a server may time slow headers out: fine
                    dropped.add(s)
            pos += 1
            t0 = time.monotonic()
            status, _, body = d.http("GET", "/ping")
            assert (status, body) == (200, b"OK")
            status, _, body = d.http("POST", "/pub?topic=loris", b"hello")
            assert (status, body) == (200, b"OK")
            pairs.append(time.monotonic() - t0)
            pings += 1
            pubs += 1
            time.sleep(0.05)
        rss1 = rss(pid)
        worst = max(pairs)
        print(f"\nslow loris: {LORIS} conns trickled {pos} header bytes each; {pings} /ping + "
              f"/pub pairs, median {statistics.median(pairs) * 1000:.1f} ms, worst "
              f"{worst * 1000:.1f} ms (pair #{pairs.index(worst)}), {len(dropped)} closed by nsqd; nsqd RSS {rss0 / 2**20:.1f} -> "
              f"{rss1 / 2**20:.1f} MiB ({(rss1 - rss0) / LORIS:.0f} B/conn)")
        assert worst < 1.0
        assert rss1 - rss0 < 64 * 2**20
        assert d.stats(topic="loris")["topics"][0]["message_count"] == pubs
    finally:
        for s in socks:
            s.close()
    assert_no_traceback(d)


# -- 5. garbage after IDENTIFY -------------------------------------------------------------------
@pytest.fixture(scope="module")
def garbage_nsqd(tmp_path_factory):
    from daemons import start_nsqd
    d = start_nsqd(tmp_path_factory.mktemp("garbage"), "--snappy=true", "--deflate=true")
    yield d
    d.stop()


def _junk(seed: int, n: int) -> bytes:
    rng = random.Random(seed)
    return b"\x00" + bytes(rng.randrange(256) for _ in range(n))   # \x00: never a command


# junk sent after a valid IDENTIFY -> (responses before the error, error code)
GARBAGE = {
    "random-bytes": (_junk(1, 2000) + b"\n", 0, b"E_INVALID"),
    "binary-junk-70k": (_junk(2, 70000), 0, b"E_INVALID"),
    "huge-pub-size": (b"PUB t\n" + struct.pack(">I", 0xFFFFFFF0), 0, b"E_BAD_MESSAGE"),
    "huge-identify-size": (b"IDENTIFY\n" + struct.pack(">I", 0x7FFFFFFF), 0, b"E_BAD_BODY"),
    "huge-mpub-count": (b"MPUB t\n" + struct.pack(">II", 100, 0x7FFFFFFF), 0, b"E_BAD_BODY"),
    "negative-pub-size": (b"PUB t\n" + struct.pack(">i", -5), 0, b"E_BAD_MESSAGE"),
    # IDENTIFY is allowed again before SUB (upstream keeps stateInit): OK, then the junk
    "identify-again-then-junk": (cmds.encode_identify({}) + _junk(3, 100) + b"\n", 1,
                                 b"E_INVALID"),
}


def _identified(daemon, compression: str):
    c = Conn(daemon.tcp_address)
    fields = {"feature_negotiation": True}
    if compression:
        fields[compression] = True
    c.identify(**fields)
    if compression == "snappy":
        c.enc, c.dec = SnappyEncoder(), SnappyDecoder()
        c.expect_response(b"OK")
    elif compression == "deflate":
        c.enc, c.dec = DeflateEncoder(6), DeflateDecoder()
        c.expect_response(b"OK")
    return c


def _expect_error_then_close(c: Conn, code: bytes) -> bytes:
    ft, data = c.read_frame(timeout=5)
    assert ft == 1 and data.startswith(code), (ft, data)
    c.expect_closed()
    return data


@pytest.mark.parametrize("compression", ["", "snappy", "deflate"])
@pytest.mark.parametrize("case", sorted(GARBAGE))
def test_garbage_after_identify_gets_an_error_and_a_close(garbage_nsqd, case, compression):
    junk, oks, code = GARBAGE[case]
    c = _identified(garbage_nsqd, compression)
    try:
        c.send(junk)                        # compressed with the negotiated codec
        for _ in range(oks):
            c.expect_response(b"OK")
        _expect_error_then_close(c, code)
    finally:
        c.close()
    assert pub_and_consume(garbage_nsqd, f"after_{case}_{compression or 'plain'}", 3) < 5
    assert_no_traceback(garbage_nsqd)


@pytest.mark.parametrize("compression", ["snappy", "deflate"])
def test_uncompressed_junk_after_negotiating_compression_closes(garbage_nsqd, compression):
    c = _identified(garbage_nsqd, compression)
    try:
        c.sock.sendall(_junk(4, 5000))      # not a snappy/deflate stream at all
        c.expect_closed()
    finally:
        c.close()
    assert pub_and_consume(garbage_nsqd, f"after_raw_{compression}", 3) < 5
    assert_no_traceback(garbage_nsqd)


def test_garbage_from_many_clients_at_once_leaves_nsqd_serving(garbage_nsqd):
    conns = []
    for i in range(50):
        c = _identified(garbage_nsqd, ["", "snappy", "deflate"][i % 3])
        conns.append(c)
    for i, c in enumerate(conns):
        c.send(_junk(100 + i, 3000) + b"\n")
    for c in conns:
        _expect_error_then_close(c, b"E_INVALID")
        c.close()
    assert pub_and_consume(garbage_nsqd, "after_many", 5) < 5
    assert_no_traceback(garbage_nsqd)
