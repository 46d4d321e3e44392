"""Disk faults against a real nsqd (spec storage.md §2.4, §3): corrupt data files are
quarantined as ``<file>.bad`` and the daemon keeps serving; publishes the disk cannot
store are refused (TCP ``E_PUB_FAILED``; HTTP 500 ``INTERNAL_ERROR`` as issue #8 asks,
where Go answers 503 ``EXITING``; /ping 500 ``NOK - <err>``), nothing already
acknowledged is lost, and publishing works again without a restart once the disk does.

Full disk: a small tmpfs mounted by the test.  Where mounting is not possible the test
falls back to a per-process file-size limit (RLIMIT_FSIZE with SIGXFSZ ignored, set in
a wrapper that execs nsqd and raised again with prlimit) and says so in its output.
Read-only data dir: the directory is chmod'ed 0500 while nsqd runs; as root, nsqd is
started without CAP_DAC_OVERRIDE (setpriv) so the permissions apply to it.
"""
import json
import os
import resource
import shutil
import stat
import struct
import subprocess
import sys
import time

import pytest

from daemons import BIN, Conn, Daemon
from daemons import consume_exactly as receive
from nsqpy.protocol import commands as cmds
from test_data_compat import as_delivered, go_nsqd_dat_130, go_payload, go_record, write_go_queue

SEG = "%s.diskqueue.%06d.dat"


def start(tmp_path, data, *extra, wrapper=None) -> Daemon:
    args = ["--tcp-address=127.0.0.1:0", "--http-address=127.0.0.1:0",
            f"--data-path={data}", "--broadcast-address=127.0.0.1"] + list(extra)
    d = Daemon(wrapper or "nsqd", args)
    d.data_path = str(data)
    return d.start()


def still_serving(d, topic="alive", body=b"still here"):
    c = Conn(d.tcp_address)
    c.pub(topic, body)
    c.close()
    assert [m[2] for m in receive(d, topic, "ch", 1)] == [body]


def pub_raw(c, topic, body):
    """PUB; returns None on OK or the error frame's text."""
    c.send(cmds.encode_pub(topic, body))
    ft, data = c.read_frame(timeout=10)
    if ft == 0 and data == b"OK":
        return None
    assert ft == 1, (ft, data)
    return data


# -- corrupt files ---------------------------------------------------------------------------------
def _go_dir(tmp_path, topic, channel):
    data = tmp_path / "data"
    data.mkdir()
    (data / "nsqd.dat").write_bytes(go_nsqd_dat_130([(topic, False, [(channel, False)])]))
    return data


def test_truncated_segment_is_renamed_bad_and_later_segments_delivered(tmp_path):
    data = _go_dir(tmp_path, "tt", "tc")
    seg0 = [go_payload(i, b"zero-%d" % i) for i in range(4)]
    seg1 = [go_payload(10 + i, b"one-%d" % i) for i in range(3)]
    write_go_queue(data, "tt:tc", [seg0, seg1])
    raw0 = (data / (SEG % ("tt:tc", 0))).read_bytes()
    cut = sum(4 + len(p) for p in seg0[:2]) + 4 + 10      # inside the third record
    (data / (SEG % ("tt:tc", 0))).write_bytes(raw0[:cut])
    d = start(tmp_path, data)
    try:
        got = receive(d, "tt", "tc", 5)
        assert sorted(got) == sorted(as_delivered(seg0[:2] + seg1))
        assert (data / (SEG % ("tt:tc", 0) + ".bad")).read_bytes() == raw0[:cut]
        assert not (data / (SEG % ("tt:tc", 0))).exists()
        d.wait_for_log(r"jump to next file and saving bad file as .*tt:tc\.diskqueue\.000000\.dat\.bad")
        assert d.channel_stats("tt", "tc")["depth"] == 0
        still_serving(d)
    finally:
        assert d.stop() == 0
    assert "Traceback" not in d.log_text()


def test_truncated_write_segment_behind_metadata_is_renamed_bad_and_writes_go_on(tmp_path):
    """The metadata says the write file is longer than it is (a lost tail)."""
    data = _go_dir(tmp_path, "wt", "wc")
    seg = [go_payload(i, b"w-%d" % i) for i in range(4)]
    write_go_queue(data, "wt:wc", [seg])
    path = data / (SEG % ("wt:wc", 0))
    raw = path.read_bytes()
    keep = sum(4 + len(p) for p in seg[:3])
    path.write_bytes(raw[:keep])                # the 4th record is gone entirely
    d = start(tmp_path, data, "--mem-queue-size=0")
    try:
        got = receive(d, "wt", "wc", 3)
        assert sorted(got) == sorted(as_delivered(seg[:3]))
        assert (data / (SEG % ("wt:wc", 0) + ".bad")).exists()
        # new messages go to a new write file of the same queue, and are read back
        c = Conn(d.tcp_address)
        for i in range(3):
            c.pub("wt", b"after-%d" % i)
        c.close()
        assert sorted(m[2] for m in receive(d, "wt", "wc", 3)) == [b"after-0", b"after-1", b"after-2"]
    finally:
        assert d.stop() == 0
    assert "Traceback" not in d.log_text()


@pytest.mark.parametrize("bit", [31, 24])      # negative length / length past the max
def test_bit_flipped_record_length_is_renamed_bad_and_later_segments_delivered(tmp_path, bit):
    data = _go_dir(tmp_path, "bt", "bc")
    seg0 = [go_payload(i, b"b0-%d" % i) for i in range(5)]
    seg1 = [go_payload(20 + i, b"b1-%d" % i) for i in range(2)]
    write_go_queue(data, "bt:bc", [seg0, seg1])
    path = data / (SEG % ("bt:bc", 0))
    raw = bytearray(path.read_bytes())
    at = sum(4 + len(p) for p in seg0[:2])      # the 3rd record's length field
    (n,) = struct.unpack(">i", raw[at:at + 4])
    raw[at:at + 4] = struct.pack(">I", (n ^ (1 << bit)) & 0xFFFFFFFF)
    path.write_bytes(bytes(raw))
    d = start(tmp_path, data)
    try:
        got = receive(d, "bt", "bc", 4)
        assert sorted(got) == sorted(as_delivered(seg0[:2] + seg1))
        assert (data / (SEG % ("bt:bc", 0) + ".bad")).read_bytes() == bytes(raw)
        d.wait_for_log(r"invalid message read size")
        still_serving(d)
    finally:
        assert d.stop() == 0
    assert "Traceback" not in d.log_text()


def test_missing_segment_is_skipped_and_later_segments_delivered(tmp_path):
    data = _go_dir(tmp_path, "mt", "mc")
    segs = [[go_payload(i, b"gone-%d" % i) for i in range(2)],
            [go_payload(10 + i, b"kept-%d" % i) for i in range(3)]]
    write_go_queue(data, "mt:mc", segs)
    (data / (SEG % ("mt:mc", 0))).unlink()
    d = start(tmp_path, data)
    try:
        got = receive(d, "mt", "mc", 3)
        assert sorted(got) == sorted(as_delivered(segs[1]))
        assert d.channel_stats("mt", "mc")["depth"] == 0
        still_serving(d)
    finally:
        assert d.stop() == 0
    assert "Traceback" not in d.log_text()


def test_stale_metadata_keeps_records_past_write_pos_and_writes_to_a_new_file(tmp_path):
    """After a crash the meta file lags the data file: nothing in the data file is
    overwritten, every record in it is delivered, new records go to the next file."""
    data = _go_dir(tmp_path, "st", "sc")
    seg = [go_payload(i, b"s-%d" % i) for i in range(6)]
    write_go_queue(data, "st:sc", [seg])
    raw = (data / (SEG % ("st:sc", 0))).read_bytes()
    lag = sum(4 + len(p) for p in seg[:3])
    (data / "st:sc.diskqueue.meta.dat").write_bytes(b"3\n0,0\n0,%d\n" % lag)
    d = start(tmp_path, data, "--mem-queue-size=0")
    try:
        d.wait_for_log(r"metadata writePos %d < file size of %d, skipping to new file" % (lag, len(raw)))
        c = Conn(d.tcp_address)
        c.pub("st", b"new-0")
        c.pub("st", b"new-1")
        c.close()
        deadline = time.monotonic() + 5
        while not (data / (SEG % ("st:sc", 1))).exists():
            assert time.monotonic() < deadline, "new records were not written to file 1"
            time.sleep(0.05)
        assert (data / (SEG % ("st:sc", 0))).read_bytes() == raw     # not overwritten
        got = receive(d, "st", "sc", 8)
        assert sorted(m[2] for m in got) == sorted([p[26:] for p in seg] + [b"new-0", b"new-1"])
        assert d.channel_stats("st", "sc")["depth"] == 0
    finally:
        assert d.stop() == 0


# -- full disk -------------------------------------------------------------------------------------
class SmallDisk:
    """A data dir whose space can be taken away and given back while nsqd runs: a
    tmpfs of ``size_kib`` filled with a ballast file, or where mounting is refused, a
    file-size limit (RLIMIT_FSIZE, SIGXFSZ ignored) set on the nsqd process with
    prlimit.  NSQPY_TEST_NO_MOUNT=1 forces the fallback."""

    def __init__(self, tmp_path, size_kib=1024):
        self.tmp_path = tmp_path
        self.dir = tmp_path / "small"
        self.dir.mkdir()
        self.daemon = None
        self.why = "NSQPY_TEST_NO_MOUNT is set"
        if not os.environ.get("NSQPY_TEST_NO_MOUNT"):
            r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kib}k,mode=0700",
                                "tmpfs", str(self.dir)], capture_output=True, text=True)
            if r.returncode == 0:
                self.mode = "tmpfs"
                self.ballast = self.dir / "ballast"
                return
            self.why = r.stderr.strip() or f"mount exited {r.returncode}"
        self.mode = "rlimit"

    @property
    def reason(self) -> bytes:
        return b"no space left on device" if self.mode == "tmpfs" else b"file too large"

    def start(self, *extra) -> Daemon:
        wrapper = None
        if self.mode == "rlimit":
            wrapper = self.tmp_path / "nsqd-fsize"
            wrapper.write_text(
                f"#!{sys.executable}\n"
                "import os, signal, sys\n"
                "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)   # EFBIG instead of a kill\n"
                f"os.execv({os.path.join(BIN, 'nsqd')!r}, ['nsqd'] + sys.argv[1:])\n")
            wrapper.chmod(0o755)
        self.daemon = start(self.tmp_path, self.dir, *extra,
                            wrapper=str(wrapper) if wrapper else None)
        return self.daemon

    def take_away(self, leave: int) -> None:
        """tmpfs: a ballast file takes all but ``leave`` bytes; rlimit: no file of
        nsqd's may grow past ``leave`` bytes."""
        if self.mode == "tmpfs":
            st = os.statvfs(self.dir)
            with open(self.ballast, "wb") as f:
                f.write(b"\0" * max(st.f_bavail * st.f_frsize - leave, 0))
        else:
            resource.prlimit(self.daemon.proc.pid, resource.RLIMIT_FSIZE,
                             (leave, resource.RLIM_INFINITY))

    def give_back(self) -> None:
        if self.mode == "tmpfs":
            self.ballast.unlink()
        elif self.daemon.proc.poll() is None:      # (a new process has no limit anyway)
            resource.prlimit(self.daemon.proc.pid, resource.RLIMIT_FSIZE,
                             (resource.RLIM_INFINITY, resource.RLIM_INFINITY))

    def close(self) -> None:
        if self.daemon is not None:
            self.daemon.kill()
        if self.mode == "tmpfs":
            subprocess.run(["umount", "-l", str(self.dir)], capture_output=True)


@pytest.fixture
def small_disk(tmp_path):
    disk = SmallDisk(tmp_path)
    if disk.mode == "rlimit":
        print(f"cannot mount a tmpfs here ({disk.why}); using RLIMIT_FSIZE instead")
    yield disk
    disk.close()


def _fill_until_refused(d, topic, body_size=2000, limit=5000):
    """PUB until nsqd refuses; returns (acknowledged bodies, the error text)."""
    acked = []
    c = Conn(d.tcp_address)
    try:
        for i in range(limit):
            body = b"%06d-" % i + b"f" * body_size
            err = pub_raw(c, topic, body)
            if err is not None:
                return acked, err
            acked.append(body)
    finally:
        c.close()
    raise AssertionError(f"{limit} publishes of {body_size} bytes were all accepted")


def test_full_disk_refuses_publishes_keeps_acknowledged_and_recovers_without_restart(
        tmp_path, small_disk):
    disk = small_disk
    d = disk.start("--mem-queue-size=0", "--max-bytes-per-file=65536", "--sync-timeout=200ms")
    try:
        disk.take_away(leave=48 * 1024)
        acked, err = _fill_until_refused(d, "full")
        assert acked, "not even one message fitted"
        assert err.startswith(b"E_PUB_FAILED PUB failed ") and disk.reason in err.lower(), err
        # the daemon keeps serving: it answers, reports itself unhealthy, refuses over HTTP
        status, _, body = d.http("GET", "/ping")
        assert status == 500 and body.startswith(b"NOK - ") and disk.reason in body.lower(), body
        status, _, body = d.http("POST", "/pub?topic=full", b"refused over http")
        assert (status, json.loads(body)) == (500, {"message": "INTERNAL_ERROR"})
        c = Conn(d.tcp_address)
        assert pub_raw(c, "full", b"refused again") is not None
        c.close()
        time.sleep(0.5)                         # a few --sync-timeout ticks fail too
        assert d.proc.poll() is None
        # space returns: publishing works again, no restart
        disk.give_back()
        c = Conn(d.tcp_address)
        for i in range(3):
            assert pub_raw(c, "full", b"after-%d" % i) is None
        c.close()
        status, _, body = d.http("GET", "/ping")
        assert (status, body) == (200, b"OK")
        assert d.http("POST", "/pub?topic=full", b"after-http")[0] == 200
        want = acked + [b"after-0", b"after-1", b"after-2", b"after-http"]
        got = receive(d, "full", "fc", len(want), quiet=1.0)
        assert sorted(m[2] for m in got) == sorted(want)    # nothing acknowledged lost
    finally:
        assert d.stop() == 0
    assert "Traceback" not in d.log_text()


def test_full_disk_durable_refuses_with_e_pub_failed_and_recovers(tmp_path, small_disk):
    disk = small_disk
    d = disk.start("--durable", "--max-bytes-per-file=65536")
    try:
        disk.take_away(leave=48 * 1024)
        acked, err = _fill_until_refused(d, "dfull")
        assert acked, "not even one message fitted"
        assert err.startswith(b"E_PUB_FAILED PUB failed"), err
        assert d.proc.poll() is None
        disk.give_back()
        c = Conn(d.tcp_address)
        for i in range(3):
            assert pub_raw(c, "dfull", b"after-%d" % i) is None
        c.close()
        want = acked + [b"after-0", b"after-1", b"after-2"]
        c = Conn(d.tcp_address)                    # durable: duplicates allowed, no loss
        c.subscribe("dfull", "dc", rdy=len(want) + 50)
        got = set()
        try:
            while True:
                m = c.read_message(timeout=1.0)
                got.add(m[2])
                c.send(cmds.encode_fin(m[0]))
        except (TimeoutError, OSError):
            pass
        c.close()
        assert set(want) <= got
    finally:
        assert d.stop() == 0
    assert "Traceback" not in d.log_text()


def test_full_disk_topic_backlog_moving_to_a_channel_loses_nothing(tmp_path, small_disk):
    """A paused topic's backlog (on disk) moves on to a channel whose disk queue can't
    store it: what the channel cannot write stays in memory until delivered."""
    disk = small_disk
    d = disk.start("--mem-queue-size=0", "--sync-timeout=200ms")
    try:
        sub = Conn(d.tcp_address)
        sub.subscribe("back", "bc")                 # the channel, RDY 0
        assert d.http("POST", "/topic/pause?topic=back")[0] == 200
        # more than one drain batch (512) and one write buffer (128 KiB) of records:
        # after the first failed write the channel's puts are refused
        n = 700
        bodies = [b"%04d-" % i + b"b" * 200 for i in range(n)]
        c = Conn(d.tcp_address)
        for b in bodies:
            c.pub("back", b)
        c.close()
        deadline = time.monotonic() + 5
        while os.path.getsize(disk.dir / (SEG % ("back", 0))) < n * (4 + 26 + 205):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        disk.take_away(leave=20 * 1024)
        assert d.http("POST", "/topic/unpause?topic=back")[0] == 200
        d.wait_for_log(r"CHANNEL\(bc\): failed to write message to backend")
        time.sleep(0.5)
        st = d.channel_stats("back", "bc")
        assert st["depth"] == n, st
        disk.give_back()
        sub.close()
        got = receive(d, "back", "bc", n, quiet=1.0)
        assert sorted(m[2] for m in got) == bodies
    finally:
        assert d.stop() == 0
    assert "Traceback" not in d.log_text()


def test_full_disk_failed_write_leaves_no_half_record(tmp_path, small_disk):
    """A record that only partly fit is cut back: after a clean stop with the disk still
    full, a Go reader finds only whole records (and the restart delivers them)."""
    disk = small_disk
    d = disk.start("--mem-queue-size=0")
    disk.take_away(leave=48 * 1024)
    try:
        acked, _ = _fill_until_refused(d, "half", body_size=3000)
    finally:
        assert d.stop() == 0
    raw = (disk.dir / (SEG % ("half", 0))).read_bytes()
    pos, n = 0, 0
    while pos < len(raw):
        (ln,) = struct.unpack(">i", raw[pos:pos + 4])
        assert 26 <= ln and pos + 4 + ln <= len(raw), f"half record at {pos}"
        pos += 4 + ln
        n += 1
    # at most the last loop turn's acknowledged records could not be written
    assert len(acked) - 1 <= n <= len(acked)
    disk.give_back()
    d2 = disk.start("--mem-queue-size=0")
    try:
        got = receive(d2, "half", "hc", n, quiet=1.0)
        assert [m[2] for m in got] == acked[:n]
        d2.wait_for_log(r"metadata writePos \d+ < file size of %d, skipping to new file" % len(raw))
    finally:
        assert d2.stop() == 0
    assert "Traceback" not in d.log_text() + d2.log_text()


# -- read-only data dir ----------------------------------------------------------------------------
def _unprivileged_wrapper(tmp_path) -> str | None:
    """As root, permissions don't apply: run nsqd without CAP_DAC_OVERRIDE."""
    if os.geteuid() != 0:
        return None
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: a read-only directory can't be made")
    path = tmp_path / "nsqd-nodac"
    path.write_text("#!/bin/sh\nexec %s --inh-caps=-dac_override,-dac_read_search "
                    "--bounding-set=-dac_override,-dac_read_search -- %s \"$@\"\n"
                    % (setpriv, os.path.join(BIN, "nsqd")))
    path.chmod(0o755)
    return str(path)


def test_read_only_data_dir_refuses_publishes_then_recovers_without_restart(tmp_path):
    data = tmp_path / "ro"
    data.mkdir()
    d = start(tmp_path, data, "--mem-queue-size=0", "--max-bytes-per-file=4096",
              wrapper=_unprivileged_wrapper(tmp_path))
    try:
        c = Conn(d.tcp_address)
        c.pub("ro", b"before-0")
        c.pub("ro", b"before-1")
        os.chmod(data, stat.S_IRUSR | stat.S_IXUSR)
        try:
            acked, err = _fill_until_refused(d, "ro", body_size=500, limit=200)
            assert err.startswith(b"E_PUB_FAILED PUB failed ") and b"permission denied" in err.lower(), err
            assert d.http("GET", "/ping")[0] == 500
            assert d.http("POST", "/pub?topic=ro", b"nope")[0] == 500
        finally:
            os.chmod(data, stat.S_IRWXU)
        for i in range(2):
            assert pub_raw(c, "ro", b"after-%d" % i) is None
        c.close()
        assert d.http("GET", "/ping")[0] == 200
        want = [b"before-0", b"before-1"] + acked + [b"after-0", b"after-1"]
        got = receive(d, "ro", "rc", len(want), quiet=1.0)
        assert sorted(m[2] for m in got) == sorted(want)
    finally:
        os.chmod(data, stat.S_IRWXU)
        assert d.stop() == 0
    assert "Traceback" not in d.log_text()


def test_read_only_data_dir_at_startup_is_a_clear_fatal_error(tmp_path):
    """Go nsqd exits at startup when it cannot write nsqd.dat."""
    data = tmp_path / "rostart"
    data.mkdir()
    os.chmod(data, stat.S_IRUSR | stat.S_IXUSR)
    try:
        with pytest.raises(RuntimeError) as exc:
            start(tmp_path, data, wrapper=_unprivileged_wrapper(tmp_path))
    finally:
        os.chmod(data, stat.S_IRWXU)
    text = str(exc.value)
    assert "exited 1" in text
    assert "FATAL: failed to persist metadata - " in text and "ermission denied" in text, text
    assert "Traceback" not in text


# -- the engine rules behind the above (DiskQueue in this process, injected failures) ---------
def _dq(path, max_bytes=1 << 20):
    from nsqpy.engine.diskqueue import DiskQueue
    return DiskQueue("q", str(path), max_bytes, 1, 1 << 16, 2500, 2.0)


def test_diskqueue_writes_no_record_to_a_file_the_metadata_does_not_name(tmp_path, monkeypatch):
    """If the metadata can't be written when the write file rolls, the new file's
    records stay buffered (the put after reports the error) until it can."""
    from nsqpy.engine import diskqueue_meta
    q = _dq(tmp_path, max_bytes=64)
    q.put(b"a" * 40)
    q.flush()
    real = diskqueue_meta.DiskQueueMetadata._write_meta_tmp

    def refuse(self, meta, fsync):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(diskqueue_meta.DiskQueueMetadata, "_write_meta_tmp", refuse)
    q.put(b"b" * 40)                    # rolls to file 1: metadata can't say so
    with pytest.raises(OSError):
        q.flush()
    assert not os.path.exists(tmp_path / (SEG % ("q", 1)))
    with pytest.raises(OSError):        # the next put is refused, nothing accepted
        q.put(b"c" * 40)
    assert q.depth == 2
    monkeypatch.setattr(diskqueue_meta.DiskQueueMetadata, "_write_meta_tmp", real)
    q.put(b"c" * 40)
    q.flush()
    wfn = int((tmp_path / "q.diskqueue.meta.dat").read_bytes().split(b"\n")[2].split(b",")[0])
    assert wfn == 2 and (tmp_path / (SEG % ("q", 2))).exists()     # c rolled to file 2
    assert [q.get() for _ in range(3)] == [b"a" * 40, b"b" * 40, b"c" * 40]
    q.close()


def test_diskqueue_partial_write_is_cut_back_and_retried_whole(tmp_path, monkeypatch):
    from nsqpy.engine import diskqueue as dqmod
    q = _dq(tmp_path)
    q.put(b"x" * 30)
    q.flush()
    calls = []

    def short_then_fail(fd, data, off):
        calls.append(off)
        if len(calls) == 1:
            return os.pwrite(fd, bytes(data[:7]), off)      # half a record lands
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(dqmod, "_pwrite", short_then_fail)
    q.put(b"y" * 30)
    with pytest.raises(OSError):
        q.flush()
    path = tmp_path / (SEG % ("q", 0))
    assert path.stat().st_size == 34                        # the half record is gone
    monkeypatch.setattr(dqmod, "_pwrite", os.pwrite)
    q.flush()
    assert path.read_bytes() == go_record(b"x" * 30) + go_record(b"y" * 30)
    assert [q.get(), q.get(), q.get()] == [b"x" * 30, b"y" * 30, None]
    q.close()


def test_diskqueue_read_error_in_write_file_keeps_its_unwritten_records(tmp_path):
    q = _dq(tmp_path)
    for i in range(3):
        q.put(b"old-%d" % i + b"." * 20)
    q.flush()
    path = tmp_path / (SEG % ("q", 0))
    raw = bytearray(path.read_bytes())
    raw[0] ^= 0x80                                           # the first length goes negative
    with open(path, "r+b") as f:
        f.write(raw)
    q.put(b"new-0" + b"." * 20)                              # still buffered
    q.put(b"new-1" + b"." * 20)
    assert q.get() == b"new-0" + b"." * 20
    assert q.get() == b"new-1" + b"." * 20
    assert q.get() is None
    assert (tmp_path / (SEG % ("q", 0) + ".bad")).exists()
    q.close()
