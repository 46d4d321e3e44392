"""nsqd lifecycle: CLI, data-dir lock, disk overflow, clean stop and restore."""
import json
import os
import struct
import subprocess
import time

from daemons import BIN, Conn, Daemon, start_nsqd
from nsqpy.protocol import commands as cmds


def run_nsqd(*args, timeout=10):
    return subprocess.run([os.path.join(BIN, "nsqd"), *args], capture_output=True,
                          timeout=timeout, text=True)


def test_version_flag_prints_go_form():
    r = run_nsqd("--version")
    assert r.returncode == 0
    assert r.stdout.startswith("nsqd v1.3.0 (built w/python3.")


def test_unknown_flag_exits_2():
    r = run_nsqd("--no-such-flag")
    assert r.returncode == 2
    assert "flag provided but not defined: -no-such-flag" in r.stderr


def test_startup_log_lines(nsqd):
    text = nsqd.log_text()
    assert "INFO: nsqd v1.3.0 (built w/python3." in text
    assert f"INFO: TCP: listening on 127.0.0.1:{nsqd.tcp_port}" in text
    assert f"INFO: HTTP: listening on 127.0.0.1:{nsqd.http_port}" in text
    assert text.startswith("[nsqd] ")


def test_listens_quickly(tmp_path):
    t0 = time.monotonic()
    d = start_nsqd(tmp_path)
    try:
        assert time.monotonic() - t0 < 1.5   # process start included; the daemon itself is ~0.3 s
    finally:
        d.stop()


def test_data_path_lock_refuses_second_daemon(nsqd, tmp_path):
    d = Daemon("nsqd", ["--tcp-address=127.0.0.1:0", "--http-address=127.0.0.1:0",
                        f"--data-path={nsqd.data_path}"])
    try:
        d.start(timeout=5)
        raise AssertionError("second nsqd started on a locked data path")
    except RuntimeError as e:
        assert "cannot flock directory" in str(e)
        assert "possibly in use by another instance of nsqd" in str(e)
        assert d.proc.returncode == 1


def test_sigterm_exits_zero_and_says_bye(nsqd):
    assert nsqd.stop() == 0
    assert "NSQ: bye" in nsqd.log_text()


def test_metadata_written_with_topics_and_channels(nsqd, conn_factory):
    c = conn_factory(nsqd)
    c.subscribe("meta", "ch")
    c.subscribe  # noqa: B018
    conn_factory(nsqd).pub("meta2", b"x")
    nsqd.stop()
    meta = json.load(open(os.path.join(nsqd.data_path, "nsqd.dat")))
    assert meta["version"] == "1.3.0"
    names = {t["name"]: t for t in meta["topics"]}
    assert names["meta"]["channels"] == [{"name": "ch", "paused": False}]
    assert names["meta2"]["channels"] is None


def test_ephemeral_names_not_persisted(nsqd, conn_factory):
    c = conn_factory(nsqd)
    c.subscribe("eph#ephemeral", "c")
    nsqd.stop()
    meta = json.load(open(os.path.join(nsqd.data_path, "nsqd.dat")))
    assert meta["topics"] is None


def test_overflow_to_disk_and_read_back(nsqd_factory, conn_factory):
    d = nsqd_factory("--mem-queue-size=5")
    p = conn_factory(d)
    bodies = [b"m%03d" % i for i in range(40)]
    p.send(cmds.encode_mpub("ovf", bodies))
    p.expect_response()
    t = d.stats(topic="ovf")["topics"][0]
    assert (t["depth"], t["backend_depth"]) == (40, 35)
    assert any(f.startswith("ovf.diskqueue.") for f in os.listdir(d.data_path))
    c = conn_factory(d)
    c.subscribe("ovf", "c", rdy=100)
    got = []
    for _ in range(40):
        msg_id, _, body, _ = c.read_message()
        got.append(body)
        c.send(cmds.encode_fin(msg_id))
    assert sorted(got) == bodies


def test_mem_queue_size_zero_goes_through_disk(nsqd_factory, conn_factory):
    d = nsqd_factory("--mem-queue-size=0")
    c = conn_factory(d)
    c.subscribe("z", "c")
    p = conn_factory(d)
    p.pub("z", b"a")
    p.pub("z", b"b")
    ch = d.channel_stats("z", "c")
    assert (ch["depth"], ch["backend_depth"]) == (2, 2)
    c.send(b"RDY 2\n")
    assert sorted([c.read_message()[2], c.read_message()[2]]) == [b"a", b"b"]


def test_clean_stop_flushes_memory_in_flight_and_deferred_then_restores(tmp_path):
    data = str(tmp_path / "keep")
    d = start_nsqd(tmp_path, data_path=data)
    try:
        c = Conn(d.tcp_address)
        c.subscribe("keep", "c", rdy=2)
        p = Conn(d.tcp_address)
        for body in (b"inflight1", b"inflight2", b"queued1", b"queued2"):
            p.pub("keep", body)
        p.send(cmds.encode_dpub("keep", 600000, b"deferred1"))
        p.expect_response()
        first = c.read_message()
        c.read_message()
        assert first[1] == 1
        st = d.channel_stats("keep", "c")
        assert (st["in_flight_count"], st["depth"], st["deferred_count"]) == (2, 2, 1)
    finally:
        assert d.stop() == 0
    assert "CHANNEL(c): flushing 2 memory 2 in-flight 1 deferred messages to backend" in d.log_text()
    d2 = start_nsqd(tmp_path, data_path=data)
    try:
        st = d2.channel_stats("keep", "c")
        assert st["depth"] == 5
        c = Conn(d2.tcp_address)
        c.subscribe("keep", "c", rdy=10)
        got = {}
        for _ in range(5):
            msg_id, attempts, body, _ = c.read_message()
            got[body] = attempts
        assert got[b"inflight1"] == 2 and got[b"queued1"] == 1 and got[b"deferred1"] == 1
    finally:
        d2.stop()


def test_restart_restores_paused_state(tmp_path):
    data = str(tmp_path / "p")
    d = start_nsqd(tmp_path, data_path=data)
    try:
        assert d.http("POST", "/topic/create?topic=pt")[0] == 200
        assert d.http("POST", "/channel/create?topic=pt&channel=pc")[0] == 200
        assert d.http("POST", "/channel/pause?topic=pt&channel=pc")[0] == 200
    finally:
        d.stop()
    d2 = start_nsqd(tmp_path, data_path=data)
    try:
        assert d2.channel_stats("pt", "pc")["paused"] is True
    finally:
        d2.stop()


def test_reads_a_go_written_data_directory(tmp_path):
    """nsqd.dat and a disk queue laid out byte for byte as Go nsqd v1.3.0 writes them."""
    data = tmp_path / "go"
    data.mkdir()
    (data / "nsqd.dat").write_bytes(
        b'{"topics":[{"name":"gt","paused":false,"channels":[{"name":"gc","paused":false}]}],'
        b'"version":"1.3.0"}')
    records = b""
    for i, body in enumerate((b"msg6", b"msg7")):
        payload = struct.pack(">qH", 1700000000000000000 + i, 1) + b"18a73e545566900%d" % i + body
        records += struct.pack(">i", len(payload)) + payload
    (data / "gt:gc.diskqueue.000000.dat").write_bytes(records)
    (data / "gt:gc.diskqueue.meta.dat").write_bytes(b"2\n0,0\n0,%d\n" % len(records))
    d = start_nsqd(tmp_path, data_path=str(data))
    try:
        c = Conn(d.tcp_address)
        c.subscribe("gt", "gc", rdy=5)
        got = sorted((c.read_message() for _ in range(2)), key=lambda m: m[2])
        assert [(m[0], m[1], m[2]) for m in got] == [
            (b"18a73e5455669000", 2, b"msg6"), (b"18a73e5455669001", 2, b"msg7")]
    finally:
        d.stop()


def test_unparsable_metadata_is_fatal(tmp_path):
    data = tmp_path / "bad"
    data.mkdir()
    (data / "nsqd.dat").write_text("{not json")
    r = run_nsqd("--tcp-address=127.0.0.1:0", "--http-address=127.0.0.1:0", f"--data-path={data}")
    assert r.returncode == 1
    assert "FATAL: failed to load metadata - failed to parse metadata in" in r.stderr


def test_missing_data_path_is_fatal(tmp_path):
    r = run_nsqd("--tcp-address=127.0.0.1:0", "--http-address=127.0.0.1:0",
                 f"--data-path={tmp_path / 'nope'}")
    assert r.returncode == 1
    assert "failed to lock data-path: open" in r.stderr


def test_config_file_sets_options_and_flags_win(tmp_path):
    conf = tmp_path / "nsqd.toml"
    conf.write_text('mem_queue_size = 3\nmax_rdy_count = 7\nmsg_timeout = "5s"\n')
    d = start_nsqd(tmp_path, f"--config={conf}", "--max-rdy-count=9")
    try:
        assert d.http("GET", "/config/mem_queue_size")[2] == b"3"
        assert d.http("GET", "/config/max_rdy_count")[2] == b"9"
        assert d.http("GET", "/config/msg_timeout")[2] == b"5000000000"
        c = Conn(d.tcp_address)
        assert c.identify(feature_negotiation=True)["max_rdy_count"] == 9
    finally:
        d.stop()


def test_two_daemons_cannot_bind_the_same_tcp_port(nsqd, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    r = run_nsqd(f"--tcp-address=127.0.0.1:{nsqd.tcp_port}", "--http-address=127.0.0.1:0",
                 f"--data-path={other}")
    assert r.returncode == 1
    assert f"listen (127.0.0.1:{nsqd.tcp_port}) failed" in r.stderr
