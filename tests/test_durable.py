"""nsqd --durable: acknowledgements after fsync (group commit), and in-flight / deferred /
queued messages surviving kill -9 (docs/durability.md)."""
import glob
import os
import struct
import time

from daemons import Conn, start_nsqd


def durable_nsqd(tmp_path, *extra):
    return start_nsqd(tmp_path, "--durable", *extra, data_path=str(tmp_path / "data"))


def restart(d, tmp_path, *extra):
    """SIGKILL, then start again on the same data dir."""
    d.kill()
    return durable_nsqd(tmp_path, *extra)


def pub_cmd(topic: str, body: bytes) -> bytes:
    return f"PUB {topic}\n".encode() + struct.pack(">i", len(body)) + body


def receive_all(d, topic, channel, want, timeout=10.0, rdy=100):
    """Subscribe and FIN everything until ``want`` distinct bodies arrived."""
    c = Conn(d.tcp_address)
    c.subscribe(topic, channel, rdy)
    got = {}
    deadline = time.monotonic() + timeout
    while len(got) < want and time.monotonic() < deadline:
        msg_id, attempts, body, _ = c.read_message(timeout=deadline - time.monotonic())
        got[body] = attempts
        c.send(b"FIN " + msg_id + b"\n")
    c.close()
    return got


def wait_for_channel_in_metadata(d, timeout=5.0):
    """nsqd.dat is written in the background; a channel missing from it after kill -9
    would only come back (journal and all) when someone subscribes again."""
    path = os.path.join(d.data_path, "nsqd.dat")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(path) and b'"name":"c"' in open(path, "rb").read():
            return
        time.sleep(0.02)
    raise AssertionError("channel not in nsqd.dat")


def durable_stats(d):
    return d.stats()["durable"]


def test_pub_ok_arrives_after_the_record_is_in_the_queue_file(tmp_path):
    d = durable_nsqd(tmp_path)
    try:
        c = Conn(d.tcp_address)
        c.send(pub_cmd("t", b"body-in-the-file"))
        c.expect_response(b"OK")
        files = glob.glob(os.path.join(d.data_path, "t.diskqueue.0*.dat"))
        assert any(b"body-in-the-file" in open(f, "rb").read() for f in files)
        st = durable_stats(d)
        assert st["commits"] >= 1 and st["fsyncs"] >= 1 and st["acks"] >= 1
        c.close()
    finally:
        d.stop()


def test_pipelined_pubs_share_fsyncs(tmp_path):
    d = durable_nsqd(tmp_path)
    try:
        c = Conn(d.tcp_address)
        n = 2000
        c.send(b"".join(pub_cmd("t", b"m%05d" % i) for i in range(n)))
        for _ in range(n):
            c.expect_response(b"OK")
        st = durable_stats(d)
        assert 1 <= st["commits"] < n // 10, st
        assert st["fsyncs"] < n // 5, st
        assert d.stats(topic="t")["topics"][0]["depth"] == n
        c.close()
    finally:
        d.stop()


def test_acknowledged_queued_messages_survive_kill9(tmp_path):
    d = durable_nsqd(tmp_path)
    c = Conn(d.tcp_address)
    c.send(b"".join(pub_cmd("t", b"q%d" % i) for i in range(300)))
    for _ in range(300):
        c.expect_response(b"OK")
    d = restart(d, tmp_path)
    try:
        got = receive_all(d, "t", "c", 300)
        assert set(got) == {b"q%d" % i for i in range(300)}
    finally:
        d.stop()


def test_in_flight_message_survives_kill9_and_is_redelivered(tmp_path):
    d = durable_nsqd(tmp_path)
    c = Conn(d.tcp_address)
    c.subscribe("t", "c", 1)
    p = Conn(d.tcp_address)
    p.send(pub_cmd("t", b"held"))
    p.expect_response(b"OK")
    msg_id, attempts, body, _ = c.read_message()
    assert (body, attempts) == (b"held", 1)
    time.sleep(0.5)               # the delivery is journaled, the queue position committed
    files = glob.glob(os.path.join(d.data_path, "t:c.journal.dat"))
    assert files and b"held" in open(files[0], "rb").read()
    d = restart(d, tmp_path)
    try:
        assert d.channel_stats("t", "c")["depth"] == 1
        got = receive_all(d, "t", "c", 1)
        assert got == {b"held": 2}   # the journal kept the attempt count
    finally:
        d.stop()


def test_deferred_message_survives_kill9_and_stays_deferred(tmp_path):
    d = durable_nsqd(tmp_path)
    d.http("POST", "/topic/create?topic=t")
    d.http("POST", "/channel/create?topic=t&channel=c")
    wait_for_channel_in_metadata(d)
    c = Conn(d.tcp_address)
    c.send(b"DPUB t 2000\n" + struct.pack(">i", 5) + b"later")
    c.expect_response(b"OK")
    published = time.monotonic()
    d = restart(d, tmp_path)
    try:
        st = d.channel_stats("t", "c")
        assert st["deferred_count"] == 1 and st["depth"] == 0
        got = receive_all(d, "t", "c", 1)
        assert got == {b"later": 1}
        assert time.monotonic() - published >= 1.8
    finally:
        d.stop()


def test_requeued_with_delay_survives_kill9(tmp_path):
    d = durable_nsqd(tmp_path)
    c = Conn(d.tcp_address)
    c.subscribe("t", "c", 1)
    p = Conn(d.tcp_address)
    p.send(pub_cmd("t", b"again"))
    p.expect_response(b"OK")
    msg_id, _, _, _ = c.read_message()
    c.send(b"REQ " + msg_id + b" 1500\n")
    time.sleep(0.4)
    d = restart(d, tmp_path)
    try:
        assert d.channel_stats("t", "c")["deferred_count"] == 1
        assert receive_all(d, "t", "c", 1) == {b"again": 2}
    finally:
        d.stop()


def test_finished_messages_are_not_redelivered_after_kill9(tmp_path):
    d = durable_nsqd(tmp_path)
    c = Conn(d.tcp_address)
    c.send(b"".join(pub_cmd("t", b"f%d" % i) for i in range(50)))
    for _ in range(50):
        c.expect_response(b"OK")
    assert len(receive_all(d, "t", "c", 50)) == 50
    time.sleep(0.6)               # FINs journaled, read position committed and persisted
    d = restart(d, tmp_path)
    try:
        st = d.channel_stats("t", "c")
        assert st["depth"] == 0 and st["deferred_count"] == 0
    finally:
        d.stop()


def test_http_pub_mpub_and_dpub_are_durable(tmp_path):
    d = durable_nsqd(tmp_path)
    d.http("POST", "/topic/create?topic=t")
    d.http("POST", "/channel/create?topic=t&channel=c")
    wait_for_channel_in_metadata(d)
    assert d.http("POST", "/pub?topic=t", b"h1")[2] == b"OK"
    assert d.http("POST", "/mpub?topic=t", b"h2\nh3")[2] == b"OK"
    assert d.http("POST", "/pub?topic=t&defer=300", b"h4")[2] == b"OK"
    assert durable_stats(d)["acks"] >= 3
    d = restart(d, tmp_path)
    try:
        assert set(receive_all(d, "t", "c", 4)) == {b"h1", b"h2", b"h3", b"h4"}
    finally:
        d.stop()


def test_clean_restart_leaves_no_journal_and_redelivers_nothing(tmp_path):
    d = durable_nsqd(tmp_path)
    c = Conn(d.tcp_address)
    c.send(b"".join(pub_cmd("t", b"c%d" % i) for i in range(20)))
    for _ in range(20):
        c.expect_response(b"OK")
    assert len(receive_all(d, "t", "c", 10, rdy=10)) == 10
    time.sleep(0.2)
    d.stop()
    assert not glob.glob(os.path.join(d.data_path, "*.journal.dat"))
    d = durable_nsqd(tmp_path)
    try:
        assert d.channel_stats("t", "c")["depth"] == 10
    finally:
        d.stop()


def test_default_mode_writes_no_journal_and_reports_no_durable_stats(tmp_path):
    d = start_nsqd(tmp_path, "--mem-queue-size=0")
    try:
        c = Conn(d.tcp_address)
        c.subscribe("t", "c", 1)
        c.send(pub_cmd("t", b"x"))
        c.expect_response(b"OK")
        c.read_message()
        time.sleep(0.3)
        assert "durable" not in d.stats()
        assert not glob.glob(os.path.join(d.data_path, "*.journal.dat"))
    finally:
        d.stop()
