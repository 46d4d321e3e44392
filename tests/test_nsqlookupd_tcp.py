"""nsqlookupd TCP protocol V1 and daemon lifecycle (spec nsqlookupd.md §1-2, flags.md §2,
§5) against a real nsqlookupd subprocess over real sockets."""
import json
import os
import socket
import struct
import subprocess
import time

import pytest

from daemons import BIN, Daemon
from toolutil import factory, lookupd_fixture, start_lookupd, wait_until

from nsqpy.nsqlookupd.registration_db import (PeerInfo, Producer, RegistrationDB,
                                              filter_by_active)


BROADCAST = "--broadcast-address=lookupd.test"

lookupd = lookupd_fixture(BROADCAST)


class V1:
    """A blocking nsqlookupd V1 client over a real socket."""

    def __init__(self, daemon, magic=b"  V1", timeout=5.0):
        self.sock = socket.create_connection(daemon.tcp_address, timeout=timeout)
        self.buf = b""
        if magic:
            self.sock.sendall(magic)

    @property
    def local(self) -> str:
        host, port = self.sock.getsockname()[:2]
        return f"{host}:{port}"

    def send(self, data: bytes):
        self.sock.sendall(data)

    def _need(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed by server")
            self.buf += chunk

    def read(self) -> bytes:
        self._need(4)
        (size,) = struct.unpack(">i", self.buf[:4])
        self._need(4 + size)
        data, self.buf = self.buf[4:4 + size], self.buf[4 + size:]
        return data

    def cmd(self, line: bytes) -> bytes:
        self.send(line)
        return self.read()

    def identify(self, **fields) -> dict:
        info = {"broadcast_address": "nsqd.test", "tcp_port": 4150, "http_port": 4151,
                "version": "1.3.0", "hostname": "h1"}
        info.update(fields)
        body = json.dumps(info).encode()
        resp = self.cmd(b"IDENTIFY\n" + struct.pack(">i", len(body)) + body)
        return json.loads(resp)

    def expect_closed(self, timeout=5.0):
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    break
                self.buf += chunk
        except ConnectionResetError:
            pass
        assert self.buf == b"", self.buf

    def expect_error(self, text: bytes):
        assert self.read() == text
        self.expect_closed()

    def close(self):
        self.sock.close()


@pytest.fixture
def client(lookupd):
    with factory(lambda **kw: V1(lookupd, **kw), V1.close) as make:
        yield make


def get_json(d, path):
    status, _, body = d.http("GET", path)
    assert status == 200, (path, status, body)
    return json.loads(body)


def producers(d, topic):
    return get_json(d, f"/lookup?topic={topic}")["producers"]


# -- handshake -------------------------------------------------------------------------------------
def test_bad_magic_gets_size_prefixed_e_bad_protocol_and_close(lookupd, client):
    c = client(magic=b"  V2")
    assert c.read() == b"E_BAD_PROTOCOL"
    c.expect_closed()
    lookupd.wait_for_log(r"ERROR: client\(127\.0\.0\.1:\d+\) bad protocol magic '  V2'")
    assert client().cmd(b"PING\n") == b"OK"   # still serving


def test_client_log_lines_new_client_and_magic(lookupd, client):
    c = client()
    c.cmd(b"PING\n")
    lookupd.wait_for_log(rf"INFO: TCP: new client\({c.local}\)")
    lookupd.wait_for_log(rf"INFO: CLIENT\({c.local}\): desired protocol magic '  V1'")


def test_close_before_magic_logs_failed_to_read_protocol_version(lookupd):
    s = socket.create_connection(lookupd.tcp_address)
    s.sendall(b"  ")
    s.close()
    lookupd.wait_for_log(r"ERROR: failed to read protocol version - unexpected EOF")


# -- PING ------------------------------------------------------------------------------------------------
def test_ping_before_identify_is_ok(client):
    c = client()
    assert c.cmd(b"PING\n") == b"OK"
    assert c.cmd(b"PING\r\n") == b"OK"


def test_ping_after_identify_updates_last_update(lookupd, client):
    c = client()
    c.identify()
    first = get_json(lookupd, "/debug")["client::"][0]["last_update"]
    time.sleep(0.01)
    assert c.cmd(b"PING\n") == b"OK"
    second = get_json(lookupd, "/debug")["client::"][0]["last_update"]
    assert second > first
    lookupd.wait_for_log(rf"CLIENT\({c.local}\): pinged \(last ping \S+\)")


# -- IDENTIFY --------------------------------------------------------------------------------------------
def test_identify_response_is_lookupds_own_info_keys_sorted(lookupd, client):
    c = client()
    body = json.dumps({"broadcast_address": "b", "tcp_port": 1, "http_port": 2,
                       "version": "1.3.0"}).encode()
    resp = c.cmd(b"IDENTIFY\n" + struct.pack(">i", len(body)) + body)
    assert resp == (b'{"broadcast_address":"lookupd.test","hostname":"'
                    + socket.gethostname().encode() + b'","http_port":'
                    + str(lookupd.http_port).encode() + b',"tcp_port":'
                    + str(lookupd.tcp_port).encode() + b',"version":"1.3.0"}')


def test_identify_logs_and_registers_client(lookupd, client):
    c = client()
    c.identify(broadcast_address="bb", tcp_port=11, http_port=22, version="9.9")
    lookupd.wait_for_log(rf"INFO: CLIENT\({c.local}\): IDENTIFY Address:bb TCP:11 HTTP:22 "
                         r"Version:9\.9$")
    lookupd.wait_for_log(rf"INFO: DB: client\({c.local}\) REGISTER category:client key: "
                         r"subkey:$")
    (node,) = get_json(lookupd, "/nodes")["producers"]
    assert node["remote_address"] == c.local and node["broadcast_address"] == "bb"


def test_identify_twice_is_fatal(client):
    c = client()
    c.identify()
    c.send(b"IDENTIFY\n")
    c.expect_error(b"E_INVALID cannot IDENTIFY again")


@pytest.mark.parametrize("missing", ["broadcast_address", "tcp_port", "http_port", "version"])
def test_identify_missing_field_is_fatal(client, missing):
    c = client()
    info = {"broadcast_address": "b", "tcp_port": 1, "http_port": 2, "version": "v"}
    del info[missing]
    body = json.dumps(info).encode()
    c.send(b"IDENTIFY\n" + struct.pack(">i", len(body)) + body)
    c.expect_error(b"E_BAD_BODY IDENTIFY missing fields")


@pytest.mark.parametrize("body", [b"not json", b"[1]", b'{"tcp_port":"1"}', b""])
def test_identify_bad_json_is_fatal(lookupd, client, body):
    c = client()
    c.send(b"IDENTIFY\n" + struct.pack(">i", len(body)) + body)
    c.expect_error(b"E_BAD_BODY IDENTIFY failed to decode JSON body")
    lookupd.wait_for_log(r"ERROR: \[127\.0\.0\.1:\d+\] - E_BAD_BODY IDENTIFY failed to decode "
                         r"JSON body - ")


def test_identify_size_unreadable_is_fatal(client):
    c = client()
    c.send(b"IDENTIFY\n\x00\x00")
    c.sock.shutdown(socket.SHUT_WR)
    c.expect_error(b"E_BAD_BODY IDENTIFY failed to read body size")


def test_identify_body_unreadable_is_fatal(client):
    c = client()
    c.send(b"IDENTIFY\n\x00\x00\x00\x20{")
    c.sock.shutdown(socket.SHUT_WR)
    c.expect_error(b"E_BAD_BODY IDENTIFY failed to read body")


def test_identify_negative_size_is_fatal(client):
    c = client()
    c.send(b"IDENTIFY\n" + struct.pack(">i", -5))
    c.expect_error(b"E_BAD_BODY IDENTIFY failed to read body")


def test_identify_body_arriving_in_pieces(client):
    c = client()
    body = json.dumps({"broadcast_address": "b", "tcp_port": 1, "http_port": 2,
                       "version": "v"}).encode()
    data = b"IDENTIFY\n" + struct.pack(">i", len(body)) + body
    for i in range(0, len(data), 7):
        c.send(data[i:i + 7])
        time.sleep(0.002)
    assert json.loads(c.read())["version"] == "1.3.0"


# -- command errors -----------------------------------------------------------------------------------
def test_invalid_command_is_fatal(client):
    c = client()
    c.send(b"FOO bar\n")
    c.expect_error(b"E_INVALID invalid command FOO")


def test_empty_line_is_invalid_command(client):
    c = client()
    c.send(b"\n")
    c.expect_error(b"E_INVALID invalid command ")


@pytest.mark.parametrize("cmd", [b"REGISTER", b"UNREGISTER"])
def test_register_before_identify_is_fatal(client, cmd):
    c = client()
    c.send(cmd + b" t\n")
    c.expect_error(b"E_INVALID client must IDENTIFY")


@pytest.mark.parametrize("cmd", [b"REGISTER", b"UNREGISTER"])
def test_register_without_topic_is_fatal(client, cmd):
    c = client()
    c.identify()
    c.send(cmd + b"\n")
    c.expect_error(b"E_INVALID " + cmd + b" insufficient number of params")


@pytest.mark.parametrize("cmd", [b"REGISTER", b"UNREGISTER"])
def test_register_invalid_topic_is_fatal(client, cmd):
    c = client()
    c.identify()
    c.send(cmd + b" a*b\n")
    c.expect_error(b"E_BAD_TOPIC " + cmd + b" topic name 'a*b' is not valid")


@pytest.mark.parametrize("cmd", [b"REGISTER", b"UNREGISTER"])
def test_register_invalid_channel_is_fatal(client, cmd):
    c = client()
    c.identify()
    c.send(cmd + b" t c*d\n")
    c.expect_error(b"E_BAD_CHANNEL " + cmd + b" channel name 'c*d' is not valid")


def test_fatal_error_unregisters_the_client(lookupd, client):
    c = client()
    c.identify()
    assert c.cmd(b"REGISTER t1 c1\n") == b"OK"
    c.send(b"NOPE\n")
    c.expect_error(b"E_INVALID invalid command NOPE")
    assert get_json(lookupd, "/nodes")["producers"] == []
    assert producers(lookupd, "t1") == []


def test_bad_client_does_not_disturb_others(lookupd, client):
    good = client()
    good.identify()
    assert good.cmd(b"REGISTER t2\n") == b"OK"
    for junk in (b"GARBAGE\n", b"REGISTER x\n", b"IDENTIFY\n\xff\xff\xff\xff"):
        bad = client()
        bad.send(junk)
        bad.read()
        bad.expect_closed()
    assert good.cmd(b"PING\n") == b"OK"
    assert len(producers(lookupd, "t2")) == 1


# -- registration ------------------------------------------------------------------------------------
def test_register_topic_and_channel(lookupd, client):
    c = client()
    c.identify()
    assert c.cmd(b"REGISTER t c\n") == b"OK"
    lookupd.wait_for_log(rf"DB: client\({c.local}\) REGISTER category:channel key:t subkey:c$")
    lookupd.wait_for_log(rf"DB: client\({c.local}\) REGISTER category:topic key:t subkey:$")
    got = get_json(lookupd, "/lookup?topic=t")
    assert got["channels"] == ["c"]
    assert [p["remote_address"] for p in got["producers"]] == [c.local]
    assert get_json(lookupd, "/channels?topic=t") == {"channels": ["c"]}


def test_register_topic_only(lookupd, client):
    c = client()
    c.identify()
    assert c.cmd(b"REGISTER t\n") == b"OK"
    assert get_json(lookupd, "/lookup?topic=t")["channels"] == []
    assert get_json(lookupd, "/topics") == {"topics": ["t"]}


def test_register_same_twice_is_a_noop(lookupd, client):
    c = client()
    c.identify()
    c.cmd(b"REGISTER t c\n")
    c.cmd(b"REGISTER t c\n")
    assert len(producers(lookupd, "t")) == 1
    assert lookupd.log_text().count("REGISTER category:channel key:t subkey:c") == 1


def test_two_producers_of_one_topic(lookupd, client):
    a, b = client(), client()
    a.identify(broadcast_address="a")
    b.identify(broadcast_address="b")
    a.cmd(b"REGISTER t\n")
    b.cmd(b"REGISTER t\n")
    assert sorted(p["broadcast_address"] for p in producers(lookupd, "t")) == ["a", "b"]


def test_unregister_channel_keeps_its_name(lookupd, client):
    c = client()
    c.identify()
    c.cmd(b"REGISTER t c\n")
    assert c.cmd(b"UNREGISTER t c\n") == b"OK"
    lookupd.wait_for_log(rf"DB: client\({c.local}\) UNREGISTER category:channel key:t subkey:c$")
    got = get_json(lookupd, "/lookup?topic=t")
    assert got["channels"] == ["c"]             # the name persists
    assert len(got["producers"]) == 1           # still a producer of the topic


def test_unregister_last_ephemeral_channel_deletes_it(lookupd, client):
    a, b = client(), client()
    a.identify()
    b.identify()
    a.cmd(b"REGISTER t c#ephemeral\n")
    b.cmd(b"REGISTER t c#ephemeral\n")
    a.cmd(b"UNREGISTER t c#ephemeral\n")
    assert get_json(lookupd, "/channels?topic=t")["channels"] == ["c#ephemeral"]
    b.cmd(b"UNREGISTER t c#ephemeral\n")
    assert get_json(lookupd, "/channels?topic=t")["channels"] == []


def test_unregister_topic_drops_channels_with_warning(lookupd, client):
    c = client()
    c.identify()
    c.cmd(b"REGISTER t c1\n")
    c.cmd(b"REGISTER t c2\n")
    assert c.cmd(b"UNREGISTER t\n") == b"OK"
    lookupd.wait_for_log(rf"WARNING: client\({c.local}\) unexpected UNREGISTER category:channel "
                         r"key:t subkey:c1$")
    lookupd.wait_for_log(rf"DB: client\({c.local}\) UNREGISTER category:topic key:t subkey:$")
    got = get_json(lookupd, "/lookup?topic=t")
    assert got["producers"] == [] and sorted(got["channels"]) == ["c1", "c2"]
    assert get_json(lookupd, "/nodes")["producers"][0]["topics"] == []


def test_unregister_last_ephemeral_topic_deletes_it(lookupd, client):
    c = client()
    c.identify()
    c.cmd(b"REGISTER t#ephemeral\n")
    c.cmd(b"UNREGISTER t#ephemeral\n")
    assert get_json(lookupd, "/topics") == {"topics": []}
    status, _, _ = lookupd.http("GET", "/lookup?topic=t%23ephemeral")
    assert status == 404


def test_unregister_unknown_is_ok(client):
    c = client()
    c.identify()
    assert c.cmd(b"UNREGISTER nope\n") == b"OK"
    assert c.cmd(b"UNREGISTER nope ch\n") == b"OK"


def test_connection_close_removes_producer_everywhere(lookupd, client):
    c = client()
    c.identify()
    c.cmd(b"REGISTER t c\n")
    local = c.local
    c.close()
    lookupd.wait_for_log(rf"INFO: PROTOCOL\(V1\): \[{local}\] exiting ioloop")
    lookupd.wait_for_log(rf"DB: client\({local}\) UNREGISTER category:topic key:t subkey:$")
    lookupd.wait_for_log(rf"ERROR: client\({local}\) - EOF")
    got = get_json(lookupd, "/lookup?topic=t")
    assert got == {"channels": ["c"], "producers": []}      # names persist
    assert get_json(lookupd, "/nodes") == {"producers": []}
    assert get_json(lookupd, "/debug") == {}


def test_inactive_producer_hidden_but_kept():
    d = start_lookupd(BROADCAST, "--inactive-producer-timeout=300ms")
    try:
        c = V1(d)
        c.identify()
        c.cmd(b"REGISTER t\n")
        assert len(producers(d, "t")) == 1
        time.sleep(0.4)
        assert producers(d, "t") == []
        assert get_json(d, "/nodes") == {"producers": []}
        assert "topic:t:" in get_json(d, "/debug")       # still in the DB
        c.cmd(b"PING\n")                                # a ping revives it
        assert len(producers(d, "t")) == 1
        c.close()
    finally:
        d.stop()


# -- daemon ----------------------------------------------------------------------------------------------
def run(*args, timeout=10):
    return subprocess.run([os.path.join(BIN, "nsqlookupd"), *args], capture_output=True,
                          timeout=timeout)


def test_version_flag():
    r = run("--version")
    assert r.returncode == 0
    assert r.stdout.decode().startswith("nsqlookupd v1.3.0 (built w/")


def test_help_lists_flags_sorted():
    r = run("-h")
    assert r.returncode == 0
    err = r.stderr.decode()
    assert err.startswith("Usage of nsqlookupd:\n  -broadcast-address string\n")
    flags = [line.split()[0] for line in err.splitlines() if line.startswith("  -")]
    assert flags == ["-broadcast-address", "-config", "-http-address",
                     "-inactive-producer-timeout", "-log-level", "-log-prefix", "-tcp-address",
                     "-tombstone-lifetime", "-verbose", "-version"]
    assert "(default 5m0s)" in err and "(default 45s)" in err


def test_unknown_flag_exits_2():
    r = run("--nope")
    assert r.returncode == 2
    assert r.stderr.decode().startswith("flag provided but not defined: -nope\nUsage of")


def test_bad_duration_flag_exits_2():
    r = run("--tombstone-lifetime=5")
    assert r.returncode == 2
    assert 'invalid value "5" for flag -tombstone-lifetime: parse error' in r.stderr.decode()


def test_startup_log_lines_and_clean_stop(lookupd):
    text = lookupd.log_text()
    assert "INFO: nsqlookupd v1.3.0 (built w/" in text
    assert f"INFO: HTTP: listening on 127.0.0.1:{lookupd.http_port}" in text
    assert f"INFO: TCP: listening on 127.0.0.1:{lookupd.tcp_port}" in text
    assert lookupd.stop() == 0
    text = lookupd.log_text()
    assert f"TCP: closing 127.0.0.1:{lookupd.tcp_port}" in text
    assert f"HTTP: closing 127.0.0.1:{lookupd.http_port}" in text


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_log_prefix_and_level_flags():
    port = free_port()
    proc = subprocess.Popen([os.path.join(BIN, "nsqlookupd"), "--log-prefix=[LK] ",
                             "--log-level=warn", f"--tcp-address=127.0.0.1:{port}",
                             "--http-address=127.0.0.1:0"], stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                s = socket.create_connection(("127.0.0.1", port))
                break
            except ConnectionRefusedError:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        s.sendall(b"  V1BAD\n")
        s.recv(100)
        s.close()
        time.sleep(0.1)
    finally:
        proc.terminate()
        proc.wait(10)
    lines = proc.stderr.read().decode().splitlines()
    assert lines and all(line.startswith("[LK] ") for line in lines)
    assert not any(" INFO: " in line for line in lines)
    assert any(" ERROR: [127.0.0.1:" in line for line in lines)


def test_wildcard_address_prints_as_ipv6_any():
    d = Daemon("nsqlookupd", ["--tcp-address=0.0.0.0:0", "--http-address=:0"]).start()
    try:
        assert f"TCP: listening on [::]:{d.tcp_port}" in d.log_text()
        assert f"HTTP: listening on [::]:{d.http_port}" in d.log_text()
        assert V1(d).cmd(b"PING\n") == b"OK"
    finally:
        d.stop()


def test_config_file_values_and_flag_precedence(tmp_path):
    cfg = tmp_path / "lookupd.toml"
    cfg.write_text('broadcast_address = "from-config"\ntombstone_lifetime = 200\n'
                   'log_prefix = "[cfg] "\ntcp_address = "127.0.0.1:0"\n'
                   'http_address = "127.0.0.1:0"\ninactive_producer_timeout = "1h"\n')
    d = Daemon("nsqlookupd", [f"--config={cfg}", "--log-prefix=[flag] "]).start()
    try:
        assert d.log_text().startswith("[flag] ")
        assert V1(d).identify()["broadcast_address"] == "from-config"
    finally:
        d.stop()


def test_config_integer_duration_means_milliseconds(tmp_path):
    cfg = tmp_path / "lookupd.toml"
    cfg.write_text("inactive_producer_timeout = 50\n")
    d = Daemon("nsqlookupd", [f"--config={cfg}", "--tcp-address=127.0.0.1:0",
                              "--http-address=127.0.0.1:0"]).start()
    try:
        c = V1(d)
        c.identify()
        assert len(get_json(d, "/nodes")["producers"]) == 1
        time.sleep(0.1)
        assert get_json(d, "/nodes")["producers"] == []
        c.close()
    finally:
        d.stop()


def test_config_uncoercible_value_is_fatal(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("tombstone_lifetime = true\n")
    r = run(f"--config={cfg}")
    assert r.returncode == 1
    assert ("Resolve failed to coerce value true (45s) for field TombstoneLifetime - invalid "
            "time.Duration value type bool") in r.stderr.decode()


def test_config_bad_log_level_is_fatal(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('log_level = "loud"\n')
    r = run(f"--config={cfg}")
    assert r.returncode == 1
    assert "[nsqlookupd] " in r.stderr.decode()
    assert "FATAL: failed parsing log_level loud" in r.stderr.decode()


def test_config_missing_file_is_fatal(tmp_path):
    r = run(f"--config={tmp_path}/missing.toml")
    assert r.returncode == 1
    assert (f"FATAL: failed to load config file {tmp_path}/missing.toml - open "
            f"{tmp_path}/missing.toml: no such file or directory") in r.stderr.decode()


def test_listen_failure_is_fatal(lookupd):
    r = run(f"--tcp-address=127.0.0.1:{lookupd.tcp_port}", "--http-address=127.0.0.1:0")
    assert r.returncode == 1
    err = r.stderr.decode()
    assert "FATAL: failed to instantiate nsqlookupd" in err
    assert (f"listen (127.0.0.1:{lookupd.tcp_port}) failed - listen tcp "
            f"127.0.0.1:{lookupd.tcp_port}: bind: address already in use") in err


def test_unix_socket_listeners(tmp_path):
    tcp_path, http_path = str(tmp_path / "tcp.sock"), str(tmp_path / "http.sock")
    proc = subprocess.Popen([os.path.join(BIN, "nsqlookupd"), f"--tcp-address={tcp_path}",
                             f"--http-address={http_path}"], stderr=subprocess.PIPE)
    try:
        wait_until(lambda: os.path.exists(tcp_path) and os.path.exists(http_path))
        s = socket.socket(socket.AF_UNIX)
        s.connect(tcp_path)
        s.sendall(b"  V1PING\n")
        assert s.recv(6) == b"\x00\x00\x00\x02OK"
        s.close()
    finally:
        proc.terminate()
        assert proc.wait(10) == 0
    text = proc.stderr.read().decode()
    assert f"TCP: listening on {tcp_path}" in text and f"HTTP: listening on {http_path}" in text


def test_sigint_stops_cleanly(lookupd):
    import signal
    assert lookupd.stop(sig=signal.SIGINT) == 0


# -- registration DB unit behaviour ---------------------------------------------------------------
def _peer(pid, last_update=None):
    return PeerInfo(pid, pid, "h", "b", 1, 2, "v",
                    time.time_ns() if last_update is None else last_update)


def test_db_wildcard_finds_and_indexes_stay_consistent():
    db = RegistrationDB()
    a, b = _peer("a"), _peer("b")
    assert db.add_producer(("topic", "t", ""), Producer(a))
    assert not db.add_producer(("topic", "t", ""), Producer(a))
    db.add_producer(("channel", "t", "c1"), Producer(a))
    db.add_producer(("channel", "t", "c2"), Producer(b))
    db.add_producer(("channel", "u", "c1"), Producer(b))
    assert sorted(db.find_registrations("channel", "t", "*")) == [
        ("channel", "t", "c1"), ("channel", "t", "c2")]
    assert sorted(db.find_registrations("channel", "*", "c1")) == [
        ("channel", "t", "c1"), ("channel", "u", "c1")]
    assert len(db.find_registrations("channel", "*", "*")) == 3
    assert [p.peer_info.id for p in db.find_producers("channel", "*", "*")] == ["a", "b"]
    assert sorted(db.lookup_registrations("b")) == [("channel", "t", "c2"), ("channel", "u", "c1")]
    db.remove_registration(("channel", "t", "c2"))
    assert db.lookup_registrations("b") == [("channel", "u", "c1")]
    assert db.remove_producer(("channel", "u", "c1"), "b") == (True, 0)
    assert db.lookup_registrations("b") == []
    assert db.has_registration(("channel", "u", "c1"))        # key survives
    assert db.remove_producer(("nope", "", ""), "b") == (False, 0)


def test_db_filter_by_active_inactive_and_tombstoned():
    old = Producer(_peer("old", time.time_ns() - 10_000_000_000))
    live = Producer(_peer("live"))
    dead = Producer(_peer("dead"))
    dead.tombstone()
    ps = [old, live, dead]
    assert filter_by_active(ps, 5_000_000_000, 45_000_000_000) == [live]
    assert filter_by_active(ps, 5_000_000_000, 0) == [live, dead]
    assert filter_by_active(ps, 60_000_000_000, 1) == [old, live, dead]
