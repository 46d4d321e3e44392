"""nsq_to_file end to end: real nsqd (and nsqlookupd), real files, rotation, gzip, work dir."""
import functools
import gzip
import os
import re
import signal
import socket
import time
import zlib

import pytest

import toolutil
from nsqpy.apps.nsq_to_file import strftime
from toolutil import StreamTool, assert_one_line_fatal, factory, mpub, pub, tcp

TOOL = toolutil.tool_path("nsq_to_file")
HOST = socket.gethostname().split(".")[0]


class Tool(StreamTool):
    def __init__(self, *args):
        super().__init__("nsq_to_file", *args)

    def wait_stderr(self, text, timeout=10.0, count=1):
        deadline = time.monotonic() + timeout
        while self.stderr.count(text) < count:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                time.sleep(0.1)
                if self.stderr.count(text) >= count:
                    return
                raise AssertionError(f"no {text!r} (x{count}) in stderr "
                                     f"(rc={self.proc.poll()}):\n{self.stderr}")
            time.sleep(0.02)

    def stop(self, sig=signal.SIGTERM, timeout=15.0):
        self.proc.send_signal(sig)
        return self.wait(timeout)


@pytest.fixture
def tools():
    with factory(Tool, Tool.kill) as make:
        yield make


lookupd = toolutil.lookupd_fixture()


def run(*args, timeout=15):
    return toolutil.run(TOOL, *args, timeout=timeout)


wait_until = functools.partial(toolutil.wait_until, timeout=10.0)


def all_finished(d, topic, n, channel="nsq_to_file"):
    ch = d.channel_stats(topic, channel) or {}
    return (ch.get("message_count"), ch.get("in_flight_count"), ch.get("depth")) == (n, 0, 0)


def datetimes(fmt="%Y-%m-%d_%H"):
    """The <DATETIME> values possible during a test (an hour may turn meanwhile)."""
    now = time.time()
    return {strftime(fmt, now - 60), strftime(fmt, now), strftime(fmt, now + 60)}


def gzip_members(data):
    """Decompress concatenated gzip members: list of member payloads."""
    members = []
    while data:
        d = zlib.decompressobj(wbits=31)
        members.append(d.decompress(data) + d.flush())
        assert d.eof, "truncated gzip member"
        data = d.unused_data
    return members


# -- flags ----------------------------------------------------------------------------------

def test_version_and_usage():
    res = run("--version")
    assert (res.returncode, res.stdout) == (0, b"nsq_to_file v1.3.0\n")
    res = run("--bogus")
    assert res.returncode == 2
    lines = res.stderr.decode().splitlines()
    assert lines[0] == "flag provided but not defined: -bogus"
    assert lines[1] == "Usage of nsqd:"   # [quirk] upstream's flag set name
    for flag in ("-channel string", "-datetime-format string", "-filename-format string",
                 "-gzip", "-gzip-level int", "-host-identifier string", "-log-level string",
                 "-log-prefix string", "-output-dir string", "-rotate-interval duration",
                 "-rotate-size rotate-size", "-skip-empty-files", "-sync-interval duration",
                 "-topic value", "-topic-pattern string", "-topic-refresh duration",
                 "-work-dir string", "-consumer-opt value", "-max-in-flight int"):
        assert "  " + flag in lines, flag
    assert '    \tnsq channel (default "nsq_to_file")' in lines
    assert "    \tsync file to disk every duration (default 30s)" in lines


def test_validation(tmp_path):
    a = "--nsqd-tcp-address=127.0.0.1:1"
    assert_one_line_fatal(run("--topic=t", a, "extra", "args"), "unknown arguments: [extra args]")
    assert_one_line_fatal(run("--topic=t", a, "--log-level=loud"), "--log-level is invalid")
    assert_one_line_fatal(run("--topic=t", a, "--channel="), "--channel is required")
    assert_one_line_fatal(run("--topic=t", a, "--http-client-connect-timeout=0s"),
                          "--http-client-connect-timeout should be positive")
    assert_one_line_fatal(run("--topic=t", a, "--http-client-request-timeout=-1s"),
                          "--http-client-request-timeout should be positive")
    assert_one_line_fatal(run("--topic=t"), "--nsqd-tcp-address or --lookupd-http-address required.")
    assert_one_line_fatal(run("--topic=t", a, "--lookupd-http-address=127.0.0.1:2"),
                          "use --nsqd-tcp-address or --lookupd-http-address not both")
    assert_one_line_fatal(run("--topic=t", a, "--gzip-level=0"),
                          "invalid --gzip-level value (0), should be 1-9")
    assert_one_line_fatal(run(a), "--topic or --topic-pattern required")
    assert_one_line_fatal(run(a, "--topic-pattern=x"),
                          "--lookupd-http-address must be specified when no --topic specified")
    for extra in ("--gzip", "--rotate-size=10", "--rotate-interval=1m",
                  f"--work-dir={tmp_path}/w"):
        res = run("--topic=t", a, f"--output-dir={tmp_path}/o", extra,
                  "--filename-format=<TOPIC>.<DATETIME>.log")
        assert res.returncode == 1, extra
        err = res.stderr.decode()
        assert err.startswith("[nsq_to_file] ") and err.count("\n") == 1, err
        assert err.rstrip().endswith(
            "FATAL: missing <REV> in --filename-format when gzip, rotation, or work dir enabled")
    res = run("--topic=t", a, "--consumer-opt=max_in_flight,-1")
    assert res.returncode == 2
    assert res.stderr.decode().startswith('invalid value "max_in_flight,-1" for flag -consumer-opt')


# -- writing --------------------------------------------------------------------------------

def test_plain_file_name_contents_and_fin_after_sync(tmp_path, nsqd, tools):
    out = tmp_path / "out"
    pub(nsqd, "plain", b"first")
    t = tools("--topic=plain", f"--nsqd-tcp-address={tcp(nsqd)}", f"--output-dir={out}")
    # the first message opens the file, which syncs (and FINs) at once
    t.wait_stderr("syncing 1 records to disk")
    [name] = os.listdir(out)
    assert name in {f"plain.{HOST}.{dt}.log" for dt in datetimes()}
    path = out / name
    assert path.read_bytes() == b"first\n"
    assert t.stderr.count("[nsq_to_file] ") >= 2
    assert f"INFO: [plain/nsq_to_file] opening {out}/{name}" in t.stderr
    # later messages are written at once but FINed only at the next sync (30s away)
    mpub(nsqd, "plain", [b"second", b"third"])
    wait_until(lambda: path.read_bytes() == b"first\nsecond\nthird\n", msg="written")
    time.sleep(0.2)
    ch = nsqd.channel_stats("plain", "nsq_to_file")
    assert ch["in_flight_count"] == 2
    assert ch["clients"][0]["user_agent"] == "nsq_to_file/1.3.0 go-nsq/1.1.0"
    # SIGTERM: stop the consumer, sync, FIN, close, exit 0; nothing lost
    assert t.stop() == 0
    assert "syncing 2 records to disk" in t.stderr
    assert "Traceback" not in t.stderr
    ch = nsqd.channel_stats("plain", "nsq_to_file")
    assert (ch["depth"], ch["in_flight_count"], ch["requeue_count"], ch["message_count"]) == \
        (0, 0, 0, 3)
    assert path.read_bytes() == b"first\nsecond\nthird\n"


def test_plain_mode_appends_to_an_existing_file(tmp_path, nsqd, tools):
    out = tmp_path / "out"
    out.mkdir()
    dt = strftime("%Y-%m-%d_%H")
    existing = out / f"app.{HOST}.{dt}.log"
    existing.write_bytes(b"old\n")
    pub(nsqd, "app", b"new")
    t = tools("--topic=app", f"--nsqd-tcp-address={tcp(nsqd)}", f"--output-dir={out}")
    t.wait_stderr("syncing 1 records")
    assert t.stop() == 0
    if strftime("%Y-%m-%d_%H") == dt:
        assert existing.read_bytes() == b"old\nnew\n"


def test_sync_interval_and_batch_size_fin(tmp_path, nsqd, tools):
    out = tmp_path / "out"
    pub(nsqd, "batch", b"open")
    t = tools("--topic=batch", f"--nsqd-tcp-address={tcp(nsqd)}", f"--output-dir={out}",
              "--max-in-flight=4", "--sync-interval=300ms")
    t.wait_stderr("syncing 1 records")
    mpub(nsqd, "batch", [b"b%d" % i for i in range(10)])
    wait_until(lambda: all_finished(nsqd, "batch", 11), msg="all finished")
    assert t.stop() == 0
    [name] = os.listdir(out)
    lines = (out / name).read_bytes().splitlines()
    assert lines[0] == b"open" and sorted(lines[1:]) == sorted(b"b%d" % i for i in range(10))


def test_gzip_rotation_by_size_work_dir(tmp_path, nsqd, tools):
    out, work = tmp_path / "out", tmp_path / "work"
    bodies = [b"message-%02d" % i for i in range(30)]
    mpub(nsqd, "gz", bodies)
    t = tools("--topic=gz", f"--nsqd-tcp-address={tcp(nsqd)}", f"--output-dir={out}",
              f"--work-dir={work}", "--gzip", "--gzip-level=9", "--rotate-size=100",
              "--max-in-flight=5", "--sync-interval=200ms")
    wait_until(lambda: all_finished(nsqd, "gz", 30), msg="all finished")
    assert t.stop() == 0, t.stderr
    assert os.listdir(work) == []   # everything moved to the output dir when closed
    names = sorted(os.listdir(out))
    rx = re.compile(rf"^gz\.{re.escape(HOST)}-(\d{{6}})\.(.+)\.log\.gz$")
    revs = []
    got = b""
    multi_member = False
    for name in names:
        m = rx.match(name)
        assert m, name
        assert m.group(2) in datetimes()
        revs.append(int(m.group(1)))
        data = (out / name).read_bytes()
        assert data[:4] == b"\x1f\x8b\x08\x00"
        members = gzip_members(data)
        multi_member |= len(members) > 1
        assert gzip.decompress(data) == b"".join(members)
        got += b"".join(members)
    assert len(names) >= 3, names            # ~11 bytes per line, rotated above 100 bytes
    assert revs == list(range(len(revs)))
    assert multi_member                      # each sync ends a gzip member
    assert sorted(got.splitlines()) == sorted(bodies)
    assert "moving finished file" in t.stderr


def test_rotation_by_interval(tmp_path, nsqd, tools):
    out = tmp_path / "out"
    pub(nsqd, "iv", b"one")
    t = tools("--topic=iv", f"--nsqd-tcp-address={tcp(nsqd)}", f"--output-dir={out}",
              "--rotate-interval=300ms", "--sync-interval=10m", "--skip-empty-files")
    t.wait_stderr("syncing 1 records")
    time.sleep(0.5)
    pub(nsqd, "iv", b"two")
    t.wait_stderr("syncing 1 records", count=2)
    assert "since last open, rotating..." in t.stderr
    assert t.stop() == 0
    names = sorted(os.listdir(out))
    assert len(names) == 2, names
    assert [n.split(".")[1] for n in names] == [f"{HOST}-000000", f"{HOST}-000001"]
    assert [(out / n).read_bytes() for n in names] == [b"one\n", b"two\n"]


def test_filename_format_tokens(tmp_path, nsqd, tools):
    out = tmp_path / "out"
    pub(nsqd, "fmt", b"x")
    t = tools("--topic=fmt", f"--nsqd-tcp-address={tcp(nsqd)}", f"--output-dir={out}",
              "--filename-format=sub/<TOPIC>-<HOST>-<PID><REV>-<DATETIME>.txt",
              "--host-identifier=id_<SHORT_HOST>", "--datetime-format=%Y%m%d%%",
              "--gzip")
    t.wait_stderr("syncing 1 records")
    pid = t.proc.pid
    assert t.stop() == 0
    [name] = os.listdir(out / "sub")
    assert name in {f"fmt-id_{HOST}-{pid}-000000-{dt}.txt.gz" for dt in datetimes("%Y%m%d%%")}
    assert gzip.decompress((out / "sub" / name).read_bytes()) == b"x\n"


def test_sighup_closes_and_reopens_with_work_dir(tmp_path, nsqd, tools):
    out, work = tmp_path / "out", tmp_path / "work"
    pub(nsqd, "hup", b"before")
    t = tools("--topic=hup", f"--nsqd-tcp-address={tcp(nsqd)}", f"--output-dir={out}",
              f"--work-dir={work}")
    t.wait_stderr("syncing 1 records")
    assert not out.exists() or os.listdir(out) == []
    t.proc.send_signal(signal.SIGHUP)
    t.wait_stderr("moving finished file")
    wait_until(lambda: out.exists() and len(os.listdir(out)) == 1, msg="moved")
    pub(nsqd, "hup", b"after")
    t.wait_stderr("syncing 1 records", count=2)
    assert t.stop() == 0
    names = sorted(os.listdir(out))
    assert [n.split(".")[1] for n in names] == [f"{HOST}-000000", f"{HOST}-000001"]
    assert [(out / n).read_bytes() for n in names] == [b"before\n", b"after\n"]
    assert os.listdir(work) == []


def test_existing_output_files_are_never_overwritten(tmp_path, nsqd, tools):
    out, work = tmp_path / "out", tmp_path / "work"
    out.mkdir()
    dt = strftime("%Y-%m-%d_%H")
    taken = out / f"ow.{HOST}-000000.{dt}.log"
    taken.write_bytes(b"precious\n")
    pub(nsqd, "ow", b"fresh")
    t = tools("--topic=ow", f"--nsqd-tcp-address={tcp(nsqd)}", f"--output-dir={out}",
              f"--work-dir={work}")
    t.wait_stderr("syncing 1 records")
    assert t.stop() == 0
    assert taken.read_bytes() == b"precious\n"
    if strftime("%Y-%m-%d_%H") == dt:
        assert "output file already exists" in t.stderr
        assert (out / f"ow.{HOST}-000001.{dt}.log").read_bytes() == b"fresh\n"


@pytest.mark.parametrize("skip", [False, True])
def test_skip_empty_files(tmp_path, nsqd, tools, skip):
    out = tmp_path / "out"
    args = ["--topic=empty", f"--nsqd-tcp-address={tcp(nsqd)}", f"--output-dir={out}",
            "--sync-interval=200ms"]
    if skip:
        args.append("--skip-empty-files")
    t = tools(*args)
    t.wait_stderr("subscribed to empty/nsq_to_file")
    time.sleep(0.8)
    assert t.stop() == 0
    files = os.listdir(out) if out.exists() else []
    if skip:
        assert files == []
    else:
        # the sync timer opens the file even without messages
        assert len(files) == 1 and (out / files[0]).read_bytes() == b""


def test_topic_pattern_discovery(tmp_path, nsqd_factory, lookupd, tools):
    nsqd = nsqd_factory(f"--lookupd-tcp-address=127.0.0.1:{lookupd.tcp_port}")
    pub(nsqd, "keep_a", b"A")
    pub(nsqd, "drop_b", b"B")
    wait_until(lambda: lookupd.http("GET", "/lookup?topic=drop_b")[0] == 200, msg="registered")
    out = tmp_path / "out"
    t = tools("--topic-pattern=^keep", f"--lookupd-http-address=127.0.0.1:{lookupd.http_port}",
              "--topic-refresh=200ms", f"--output-dir={out}")
    t.wait_stderr("syncing 1 records")
    t.wait_stderr("skipping topic drop_b (doesn't match pattern ^keep)")
    # a topic created later is picked up at the next refresh
    pub(nsqd, "keep_c", b"C")
    t.wait_stderr("syncing 1 records", count=2)
    assert t.stop() == 0
    names = sorted(os.listdir(out))
    assert [n.split(".")[0] for n in names] == ["keep_a", "keep_c"]
    assert [(out / n).read_bytes() for n in names] == [b"A\n", b"C\n"]


def test_unreachable_nsqd_is_logged_not_a_traceback(tmp_path, tools):
    t = tools("--topic=t", "--nsqd-tcp-address=127.0.0.1:1", f"--output-dir={tmp_path}")
    t.wait_stderr("couldn't create logger for new topic t: dial tcp 127.0.0.1:1: connect: "
                  "connection refused")
    assert t.stop(signal.SIGINT) == 0
    assert "Traceback" not in t.stderr
