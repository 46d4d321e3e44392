"""Disk queue: go-diskqueue v1.1.0 compatible files (spec/storage.md §2)."""
import asyncio
import os
import re
import stat
import struct
import tempfile
import threading
import time
from collections import deque

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from nsqpy.engine import diskqueue as dqmod
from nsqpy.engine.diskqueue import DiskQueue, DiskQueueError


class Log:
    def __init__(self):
        self.lines = []

    def __call__(self, level, msg):
        self.lines.append((level, msg))

    def has(self, level, pattern):
        return any(lv == level and re.search(pattern, m) for lv, m in self.lines)


def mk(path, name="t", max_bytes=1 << 20, min_size=1, max_size=1 << 16, sync_every=2500, log=None):
    return DiskQueue(name, str(path), max_bytes, min_size, max_size, sync_every, 2.0, log=log)


def rec(payload: bytes) -> bytes:
    return struct.pack(">i", len(payload)) + payload


def payload30(i: int) -> bytes:
    # the shape of an nsqd record: 8-byte ts, 2-byte attempts, 16-byte id, 4-byte body
    return struct.pack(">qH", 1700000000000000000 + i, 0) + b"%016x" % i + b"msg%d" % (i % 10)


def files(path):
    return sorted(os.listdir(path))


def meta(path, name="t"):
    with open(os.path.join(path, f"{name}.diskqueue.meta.dat"), "rb") as f:
        return f.read()


def data_file(path, num, name="t"):
    return os.path.join(path, "%s.diskqueue.%06d.dat" % (name, num))


def drain(q):
    out = []
    while True:
        d = q.get()
        if d is None:
            return out
        out.append(d)


# -- basics ---------------------------------------------------------------------------------

def test_put_get_round_trip(tmp_path):
    q = mk(tmp_path)
    msgs = [b"hello", b"x" * 1000, bytes(range(256)), b"a"]
    for m in msgs:
        q.put(m)
    assert q.depth == 4
    got = [q.get() for _ in range(4)]
    assert got == msgs
    assert q.get() is None
    assert q.depth == 0
    q.close()


def test_interleaved_put_get_reads_buffered_records(tmp_path):
    q = mk(tmp_path)
    for i in range(1000):
        q.put(b"m%d" % i)
        if i % 3 == 0:
            assert q.get() is not None
    rest = drain(q)
    assert len(rest) == 1000 - 334
    assert rest[-1] == b"m999"
    assert q.depth == 0
    q.close()


def test_depth_restored_after_close_reopen(tmp_path):
    q = mk(tmp_path)
    for i in range(10):
        q.put(b"msg-%d" % i)
    assert q.get() == b"msg-0"
    q.close()
    q = mk(tmp_path)
    assert q.depth == 9
    assert drain(q) == [b"msg-%d" % i for i in range(1, 10)]
    q.close()
    q = mk(tmp_path)
    assert q.depth == 0
    assert q.get() is None
    q.close()


def test_metadata_bytes_match_go_observed_case(tmp_path):
    # --max-bytes-per-file=120, 34-byte records: 3 records (102 bytes) per file
    q = mk(tmp_path, max_bytes=120, min_size=26, max_size=1024 + 26)
    for i in range(4):
        q.put(payload30(i))
    q.close()
    assert meta(tmp_path) == b"4\n0,0\n1,34\n"
    assert os.path.getsize(data_file(tmp_path, 0)) == 102
    assert os.path.getsize(data_file(tmp_path, 1)) == 34


def test_file_naming_and_mode(tmp_path):
    q = mk(tmp_path, name="topic:chan", max_bytes=10)
    for i in range(3):
        q.put(b"0123456789")   # one record per file
    q.close()
    assert files(tmp_path) == ["topic:chan.diskqueue.000000.dat", "topic:chan.diskqueue.000001.dat",
                               "topic:chan.diskqueue.000002.dat", "topic:chan.diskqueue.meta.dat"]
    for f in files(tmp_path):
        assert stat.S_IMODE(os.stat(tmp_path / f).st_mode) == 0o600


def test_file_number_wider_than_six_digits(tmp_path):
    (tmp_path / "t.diskqueue.meta.dat").write_bytes(b"0\n1234567,0\n1234567,0\n")
    q = mk(tmp_path)
    q.put(b"abc")
    q.close()
    assert "t.diskqueue.1234567.dat" in files(tmp_path)


def test_log_lines(tmp_path):
    log = Log()
    q = mk(tmp_path, name="tt", log=log)
    q.put(b"abc")
    assert q.get() == b"abc"
    q.close()
    fn = data_file(tmp_path, 0, "tt")
    assert ("INFO", f"DISKQUEUE(tt): writeOne() opened {fn}") in log.lines
    assert ("INFO", f"DISKQUEUE(tt): readOne() opened {fn}") in log.lines
    assert ("INFO", "DISKQUEUE(tt): closing") in log.lines


# -- rolling --------------------------------------------------------------------------------

@pytest.mark.parametrize("payload,expect_in_first", [(45, 2), (46, 2), (47, 1)])
def test_rolling_rule_at_boundary(tmp_path, payload, expect_in_first):
    # max 100: records of 49 / 50 / 51 bytes; 2x50 = 100 fits exactly, 2x51 = 102 rolls
    q = mk(tmp_path, max_bytes=100)
    for i in range(3):
        q.put(bytes([i]) * payload)
    q.close()
    size0 = os.path.getsize(data_file(tmp_path, 0))
    assert size0 == expect_in_first * (payload + 4)
    total = os.path.getsize(data_file(tmp_path, 1)) + size0
    if os.path.exists(data_file(tmp_path, 2)):
        total += os.path.getsize(data_file(tmp_path, 2))
    assert total == 3 * (payload + 4)
    q = mk(tmp_path, max_bytes=100)
    assert drain(q) == [bytes([i]) * payload for i in range(3)]
    q.close()


def test_oversized_record_alone_in_empty_file(tmp_path):
    q = mk(tmp_path, max_bytes=100)
    q.put(b"a" * 10)
    q.put(b"b" * 300)     # doesn't fit behind the first: rolls, then alone in file 1
    q.put(b"c" * 10)      # file 1 is over the limit: rolls
    q.close()
    assert os.path.getsize(data_file(tmp_path, 0)) == 14
    assert os.path.getsize(data_file(tmp_path, 1)) == 304
    assert os.path.getsize(data_file(tmp_path, 2)) == 14
    assert meta(tmp_path) == b"3\n0,0\n2,14\n"
    q = mk(tmp_path, max_bytes=100)
    assert drain(q) == [b"a" * 10, b"b" * 300, b"c" * 10]
    q.close()


def test_roll_marks_sync_due(tmp_path):
    q = mk(tmp_path, max_bytes=20)
    q.put(b"a" * 16)
    assert not q.sync_due()
    q.put(b"b" * 16)
    assert q.sync_due()
    q.sync()
    assert not q.sync_due() and not q.dirty()
    # the old file was written and fsynced by sync(), metadata points at file 1
    assert os.path.getsize(data_file(tmp_path, 0)) == 20
    assert meta(tmp_path) == b"2\n0,0\n1,20\n"
    q.close()


def test_fully_read_files_deleted(tmp_path):
    q = mk(tmp_path, max_bytes=120, min_size=26, max_size=1050)
    for i in range(7):
        q.put(payload30(i))          # files 0, 1 (3 each), 2 (1)
    q.sync()
    assert [f for f in files(tmp_path) if f.endswith(".dat")] == [
        "t.diskqueue.000000.dat", "t.diskqueue.000001.dat", "t.diskqueue.000002.dat",
        "t.diskqueue.meta.dat"]
    for i in range(2):
        assert q.get() == payload30(i)
    assert os.path.exists(data_file(tmp_path, 0))
    assert not q.sync_due()
    assert q.get() == payload30(2)   # last record of file 0: file 0 deleted at once
    assert not os.path.exists(data_file(tmp_path, 0))
    assert q.sync_due()              # moved to a new read file
    q.sync()
    assert meta(tmp_path) == b"4\n1,0\n2,34\n"
    assert [q.get() for _ in range(4)] == [payload30(i) for i in range(3, 7)]
    assert not os.path.exists(data_file(tmp_path, 1))
    assert os.path.exists(data_file(tmp_path, 2))   # the write file stays
    q.close()
    assert meta(tmp_path) == b"0\n2,34\n2,34\n"


def test_reader_at_end_of_write_file_follows_roll(tmp_path):
    q = mk(tmp_path, max_bytes=100)
    q.put(b"a" * 46)
    q.put(b"b" * 46)
    assert drain(q) == [b"a" * 46, b"b" * 46]
    q.put(b"c" * 46)                 # rolls; file 0 fully read -> deleted
    assert not os.path.exists(data_file(tmp_path, 0))
    q.close()
    assert meta(tmp_path) == b"1\n1,0\n1,50\n"
    q = mk(tmp_path, max_bytes=100)
    assert drain(q) == [b"c" * 46]
    q.close()


def test_stored_reader_at_end_of_complete_file(tmp_path):
    # metadata as go-diskqueue may leave it: reader at the end of an older file
    (tmp_path / "t.diskqueue.000000.dat").write_bytes(rec(b"x" * 30))
    (tmp_path / "t.diskqueue.000001.dat").write_bytes(rec(b"y" * 30))
    (tmp_path / "t.diskqueue.meta.dat").write_bytes(b"1\n0,34\n1,34\n")
    log = Log()
    q = mk(tmp_path, log=log)
    assert q.get() == b"y" * 30
    assert q.get() is None
    assert not any(f.endswith(".bad") for f in files(tmp_path))
    assert not os.path.exists(data_file(tmp_path, 0))
    q.close()


# -- empty / delete -------------------------------------------------------------------------

def test_empty_deletes_files_and_advances_write_file(tmp_path):
    log = Log()
    q = mk(tmp_path, max_bytes=120, log=log)
    for i in range(7):
        q.put(payload30(i))
    q.sync()
    assert q.get() == payload30(0)
    q.empty()
    assert log.has("INFO", r"^DISKQUEUE\(t\): emptying$")
    assert files(tmp_path) == []          # data files 0..2 and the meta file
    assert q.depth == 0
    assert q.get() is None
    q.put(payload30(9))
    q.sync()
    assert files(tmp_path) == ["t.diskqueue.000003.dat", "t.diskqueue.meta.dat"]
    assert meta(tmp_path) == b"1\n3,0\n3,34\n"
    q.close()
    q = mk(tmp_path, max_bytes=120)
    assert drain(q) == [payload30(9)]
    q.close()


def test_empty_then_close_persists_new_positions(tmp_path):
    q = mk(tmp_path)
    q.put(b"abc")
    q.empty()
    q.close()
    assert files(tmp_path) == ["t.diskqueue.meta.dat"]
    assert meta(tmp_path) == b"0\n1,0\n1,0\n"


def test_delete_leaves_no_files(tmp_path):
    log = Log()
    q = mk(tmp_path, max_bytes=120, log=log)
    for i in range(7):
        q.put(payload30(i))
    q.sync()
    q.delete()
    assert files(tmp_path) == []
    assert log.has("INFO", r"^DISKQUEUE\(t\): deleting$")
    with pytest.raises(OSError):
        q.put(b"x")
    q.sync()                               # late sync from a worker: no-op
    q.close()
    assert files(tmp_path) == []


def test_bad_files_survive_empty(tmp_path):
    (tmp_path / "t.diskqueue.000000.dat.bad").write_bytes(b"junk")
    q = mk(tmp_path)
    q.put(b"abc")
    q.delete()
    assert files(tmp_path) == ["t.diskqueue.000000.dat.bad"]


# -- errors ---------------------------------------------------------------------------------

def test_put_rejects_size_out_of_range(tmp_path):
    q = mk(tmp_path, min_size=4, max_size=8)
    with pytest.raises(OSError, match=r"invalid message write size \(3\)"):
        q.put(b"abc")
    with pytest.raises(OSError):
        q.put(b"123456789")
    with pytest.raises(DiskQueueError):
        q.put_many([b"1234", b"12345678", b"1"])   # all or nothing
    assert q.depth == 0
    q.put(b"1234")
    q.close()
    with pytest.raises(DiskQueueError, match="exiting"):
        q.put(b"1234")
    q = mk(tmp_path, min_size=4, max_size=8)
    assert drain(q) == [b"1234"]
    q.close()


def test_write_failure_reported_on_next_put_and_retried(tmp_path, monkeypatch):
    q = mk(tmp_path)
    q.put(b"first")
    q.flush()
    calls = []

    def failing(fd, data, off):
        calls.append(off)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(dqmod, "_pwrite", failing)
    q.put(b"second")                       # accepted into the buffer
    with pytest.raises(OSError):
        q.flush()
    assert q.depth == 2
    with pytest.raises(OSError, match="No space left"):
        q.put(b"third")                    # refused, nothing changed
    with pytest.raises(OSError):
        q.put_many([b"third", b"fourth"])
    assert q.depth == 2
    assert q.get() == b"first"
    assert q.get() is None                 # "second" can't be written yet: not readable
    assert calls
    monkeypatch.setattr(dqmod, "_pwrite", os.pwrite)
    q.put(b"third")                        # retries the write first
    assert q.depth == 3 - 1
    assert drain(q) == [b"second", b"third"]
    q.close()
    assert meta(tmp_path) == b"0\n0,%d\n0,%d\n" % (9 + 10 + 9, 9 + 10 + 9)


def test_put_raising_on_write_failure_changes_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(dqmod, "WRITE_BUFFER_SIZE", 64)
    q = mk(tmp_path)
    q.put(b"a" * 30)                       # 34 bytes buffered
    real = os.pwrite
    monkeypatch.setattr(dqmod, "_pwrite", lambda fd, data, off: (_ for _ in ()).throw(
        OSError(5, "Input/output error")))
    with pytest.raises(OSError, match="Input/output error"):
        q.put(b"b" * 30)                   # 68 > 64: the buffer must be written first
    with pytest.raises(OSError):
        q.put_many([b"c" * 10])            # retries the failed write first
    assert q.depth == 1 and q._wpos == 34
    monkeypatch.setattr(dqmod, "_pwrite", real)
    q.put(b"b" * 30)
    assert drain(q) == [b"a" * 30, b"b" * 30]
    q.close()
    assert meta(tmp_path) == b"0\n0,68\n0,68\n"
    assert os.path.getsize(data_file(tmp_path, 0)) == 68


def test_put_rejects_non_bytes_without_side_effects(tmp_path):
    q = mk(tmp_path)
    with pytest.raises(TypeError):
        q.put("text")
    assert q.depth == 0
    with pytest.raises(TypeError):
        q.put_many([b"good", "bad"])
    assert q.depth == 0
    q.put(bytearray(b"ok"))
    q.put(memoryview(b"fine"))
    q.put_many([bytearray(b"also"), memoryview(b"fine too")])
    assert drain(q) == [b"ok", b"fine", b"also", b"fine too"]
    q.close()


def test_corruption_truncated_record_renamed_bad_and_skipped(tmp_path):
    log = Log()
    q = mk(tmp_path, max_bytes=120, min_size=26, max_size=1050)
    for i in range(9):
        q.put(payload30(i))                 # files 0,1,2 with 3 records each
    q.close()
    with open(data_file(tmp_path, 0), "r+b") as f:
        f.truncate(102 - 10)                # third record cut short
    q = mk(tmp_path, max_bytes=120, min_size=26, max_size=1050, log=log)
    got = drain(q)
    assert got == [payload30(i) for i in (0, 1, 3, 4, 5, 6, 7, 8)]
    assert "t.diskqueue.000000.dat.bad" in files(tmp_path)
    assert log.has("WARNING", r"jump to next file and saving bad file as .*000000\.dat\.bad")
    assert log.has("ERROR", r"reading at 68 of .*000000\.dat - unexpected EOF")
    assert log.has("ERROR", r"positive depth at tail \(1\), data loss, resetting 0")
    assert q.depth == 0
    q.put(payload30(99))
    assert q.get() == payload30(99)
    q.close()


def test_corruption_bad_length_renamed_bad_and_skipped(tmp_path):
    log = Log()
    q = mk(tmp_path, max_bytes=120, min_size=26, max_size=1050)
    for i in range(6):
        q.put(payload30(i))
    q.close()
    with open(data_file(tmp_path, 0), "r+b") as f:
        f.seek(34)
        f.write(b"\xff\xff\xff\xff")       # length -1
    q = mk(tmp_path, max_bytes=120, min_size=26, max_size=1050, log=log)
    assert q.get() == payload30(0)
    assert q.get() == payload30(3)          # skipped the rest of file 0
    assert log.has("ERROR", r"invalid message read size \(-1\)")
    assert os.path.exists(data_file(tmp_path, 0) + ".bad")
    assert not os.path.exists(data_file(tmp_path, 0))
    assert q.sync_due()
    assert drain(q) == [payload30(4), payload30(5)]
    q.close()


def test_corruption_in_write_file_moves_writer(tmp_path):
    log = Log()
    q = mk(tmp_path, min_size=26, max_size=1050)
    for i in range(3):
        q.put(payload30(i))
    q.close()
    with open(data_file(tmp_path, 0), "r+b") as f:
        f.seek(34)
        f.write(struct.pack(">i", 5000))    # too big
    q = mk(tmp_path, min_size=26, max_size=1050, log=log)
    assert q.get() == payload30(0)
    assert q.get() is None
    assert q.depth == 0                     # positive depth at tail reset
    q.put(payload30(7))
    q.close()
    assert files(tmp_path) == ["t.diskqueue.000000.dat.bad", "t.diskqueue.000001.dat",
                               "t.diskqueue.meta.dat"]
    assert meta(tmp_path) == b"1\n1,0\n1,34\n"
    q = mk(tmp_path, min_size=26, max_size=1050)
    assert drain(q) == [payload30(7)]
    q.close()


def test_missing_read_file_skipped(tmp_path):
    log = Log()
    q = mk(tmp_path, max_bytes=20)
    for i in range(3):
        q.put(b"%016d" % i)                  # one per file
    q.close()
    os.remove(data_file(tmp_path, 1))
    q = mk(tmp_path, max_bytes=20, log=log)
    assert drain(q) == [b"%016d" % 0, b"%016d" % 2]
    assert log.has("ERROR", r"failed to rename bad diskqueue file")
    q.close()


def test_stale_metadata_writer_moves_to_new_file(tmp_path):
    log = Log()
    q = mk(tmp_path)
    for i in range(3):
        q.put(b"rec-%d" % i)
    q.sync()
    stale = meta(tmp_path)
    q.put(b"rec-3")
    q.put(b"rec-4")
    q.close()
    (tmp_path / "t.diskqueue.meta.dat").write_bytes(stale)   # as after a crash
    assert stale == b"3\n0,0\n0,27\n"
    q = mk(tmp_path, log=log)
    assert log.has("WARNING", r"metadata writePos 27 < file size of 45, skipping to new file")
    q.put(b"rec-5")
    q.flush()
    assert os.path.getsize(data_file(tmp_path, 0)) == 45     # not overwritten
    assert os.path.getsize(data_file(tmp_path, 1)) == 9
    assert drain(q) == [b"rec-%d" % i for i in range(6)]
    assert q.depth == 0
    q.close()


def crash(q):
    """Process killed: buffered records already handed to the OS, no metadata sync."""
    q.flush()
    q._close_reader()
    with q._lock:
        q._close_write_files_locked()
    q._closed = True


def test_crash_recovery_keeps_data_written_after_last_sync(tmp_path):
    q = mk(tmp_path, max_bytes=100)
    for i in range(10):
        q.put(b"r%02d" % i + b"." * 20)             # 27 bytes: 3 per file
    q.sync()
    assert [q.get() for _ in range(4)] == [b"r%02d" % i + b"." * 20 for i in range(4)]
    for i in range(10, 14):
        q.put(b"r%02d" % i + b"." * 20)
    # r10, r11 went to file 3, r12 rolled to file 4: the metadata was persisted (without
    # fsync) at that roll, before r12 reached file 4; r13 followed without a sync
    crash(q)
    assert meta(tmp_path) == b"9\n1,27\n4,0\n"
    log = Log()
    q = mk(tmp_path, max_bytes=100, log=log)
    assert log.has("WARNING", r"000004\.dat metadata writePos 0 < file size of 54, skipping to new file")
    got = drain(q)
    assert got == [b"r%02d" % i + b"." * 20 for i in range(4, 14)]   # nothing lost
    assert q.depth == 0
    q.put(b"after")
    assert q.get() == b"after"
    q.close()
    assert not any(f.endswith(".bad") for f in files(tmp_path))


def test_unparsable_metadata_starts_from_zero(tmp_path):
    (tmp_path / "t.diskqueue.meta.dat").write_bytes(b"garbage\n")
    log = Log()
    q = mk(tmp_path, log=log)
    assert log.has("ERROR", r"^DISKQUEUE\(t\) failed to retrieveMetaData")
    assert q.depth == 0
    assert q.get() is None
    q.close()
    assert meta(tmp_path) == b"0\n0,0\n0,0\n"


def test_tail_inconsistency_skips_to_fresh_file(tmp_path):
    (tmp_path / "t.diskqueue.000000.dat").write_bytes(rec(b"z" * 30))
    (tmp_path / "t.diskqueue.meta.dat").write_bytes(b"2\n0,50\n0,34\n")
    log = Log()
    q = mk(tmp_path, log=log)
    assert q.get() is None
    assert log.has("ERROR", r"readPos > writePos \(50 > 34\)")
    q.put(b"fresh")
    assert q.get() == b"fresh"
    assert q.depth == 0
    q.close()
    assert meta(tmp_path) == b"0\n1,9\n1,9\n"


# -- Go compatibility -----------------------------------------------------------------------

def test_reads_files_written_by_go(tmp_path):
    # byte for byte what go-diskqueue leaves after 4 PUBs with --max-bytes-per-file=120
    observed = bytes.fromhex("0000001e18eb18653a5d8eee0000313861373365353435353636393030306d736736")
    assert len(observed) == 34
    body = [observed[4:]] + [payload30(i) for i in range(1, 4)]
    (tmp_path / "t.diskqueue.000000.dat").write_bytes(b"".join(rec(p) for p in body[:3]))
    (tmp_path / "t.diskqueue.000001.dat").write_bytes(rec(body[3]))
    (tmp_path / "t.diskqueue.meta.dat").write_bytes(b"4\n0,0\n1,34\n")
    q = mk(tmp_path, max_bytes=120, min_size=26, max_size=1024 * 1024 + 26)
    assert q.depth == 4
    got = drain(q)
    assert got == body
    assert got[0][10:26] == b"18a73e5455669000" and got[0][26:] == b"msg6"
    q.close()
    assert files(tmp_path) == ["t.diskqueue.000001.dat", "t.diskqueue.meta.dat"]
    assert meta(tmp_path) == b"0\n1,34\n1,34\n"


def test_writes_same_bytes_as_go(tmp_path):
    body = [payload30(i) for i in range(4)]
    q = mk(tmp_path, max_bytes=120, min_size=26, max_size=1024 * 1024 + 26)
    q.put_many(body[:2])
    q.put(body[2])
    q.put(body[3])
    q.close()
    with open(data_file(tmp_path, 0), "rb") as f:
        assert f.read() == b"".join(rec(p) for p in body[:3])
    with open(data_file(tmp_path, 1), "rb") as f:
        assert f.read() == rec(body[3])
    assert meta(tmp_path) == b"4\n0,0\n1,34\n"


def test_metadata_parse_is_lenient_like_fscanf(tmp_path):
    (tmp_path / "t.diskqueue.000000.dat").write_bytes(rec(b"q" * 5))
    (tmp_path / "t.diskqueue.meta.dat").write_bytes(b"1\n0,0\n0,9")   # no final newline
    q = mk(tmp_path)
    assert q.depth == 1
    assert q.get() == b"q" * 5
    q.close()


# -- put_many, sync counter -----------------------------------------------------------------

def test_put_many(tmp_path, monkeypatch):
    writes = []
    real = os.pwrite

    def counting(fd, data, off):
        writes.append(len(data))
        return real(fd, data, off)

    monkeypatch.setattr(dqmod, "_pwrite", counting)
    q = mk(tmp_path, max_bytes=1000)
    batch = [b"%03d" % i * 10 for i in range(100)]    # 34-byte records, 29 per file
    q.put_many(batch)
    assert q.depth == 100
    q.flush()
    assert len(writes) == 4                           # one write per data file
    assert files(tmp_path) == ["t.diskqueue.%06d.dat" % i for i in range(4)] + ["t.diskqueue.meta.dat"]
    assert q.get() == batch[0]
    q.close()
    q = mk(tmp_path, max_bytes=1000)
    assert drain(q) == batch[1:]
    q.close()


def test_sync_counter(tmp_path):
    q = mk(tmp_path, sync_every=3)
    assert not q.dirty()
    q.put(b"a")
    assert q.dirty() and not q.sync_due()
    q.put(b"b")
    q.get()
    assert q.sync_due() and q.needs_sync()
    q.sync()
    assert not q.dirty()
    assert meta(tmp_path) == b"1\n0,5\n0,10\n"
    q.put_many([b"c", b"d", b"e"])
    assert q.sync_due()
    q.close()


def test_sync_writes_metadata_atomically_via_tmp(tmp_path, monkeypatch):
    seen = []
    real = os.replace

    def spy(src, dst):
        seen.append((os.path.basename(src), os.path.basename(dst),
                     stat.S_IMODE(os.stat(src).st_mode)))
        return real(src, dst)

    monkeypatch.setattr(dqmod.os, "replace", spy)
    q = mk(tmp_path)
    q.put(b"abc")
    q.sync()
    q.close()
    assert len(seen) == 3       # before the first record of a fresh queue, sync, close
    for src, dst, mode in seen:
        assert re.fullmatch(r"t\.diskqueue\.meta\.dat\.\d+\.tmp", src)
        assert dst == "t.diskqueue.meta.dat" and mode == 0o600
    assert files(tmp_path) == ["t.diskqueue.000000.dat", "t.diskqueue.meta.dat"]


def test_auto_flush_at_end_of_loop_iteration(tmp_path):
    async def main():
        q = mk(tmp_path)
        q.put(b"abc")
        q.put(b"def")
        assert not os.path.exists(data_file(tmp_path, 0))
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert os.path.getsize(data_file(tmp_path, 0)) == 14
        q.close()

    asyncio.run(main())


# -- concurrency ----------------------------------------------------------------------------

def _parse_meta(raw):
    m = re.fullmatch(rb"(-?\d+)\n(-?\d+),(-?\d+)\n(-?\d+),(-?\d+)\n", raw)
    assert m, raw
    return tuple(int(x) for x in m.groups())


def test_sync_from_thread_while_putting(tmp_path):
    q = mk(tmp_path, max_bytes=4096, sync_every=10 ** 9)
    states = set()
    snapshots = []
    errors = []
    stop = threading.Event()

    def state():
        return (q._depth, q._rfn, q._rpos, q._wfn, q._wpos)

    real_persist = q._persist_metadata

    def spy(meta_bytes, gen, seq):
        snapshots.append(_parse_meta(meta_bytes))
        return real_persist(meta_bytes, gen, seq)

    q._persist_metadata = spy

    def syncer():
        try:
            while not stop.is_set():
                q.sync()
                # whatever metadata is on disk describes data already in the files
                on_disk = _parse_meta(meta(tmp_path))
                try:
                    size = os.path.getsize(data_file(tmp_path, on_disk[3]))
                except FileNotFoundError:
                    size = None if on_disk[4] else 0
                if size is not None:
                    assert size >= on_disk[4], (on_disk, size)
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    states.add(state())
    t = threading.Thread(target=syncer)
    t.start()
    model = deque()
    n = 0
    deadline = time.monotonic() + 30
    i = 0
    try:
        while (len(snapshots) < 30 or i < 20000) and time.monotonic() < deadline:
            i += 1
            if i % 64 == 0:
                time.sleep(0)          # the event loop's select(): lets the worker run
            if i % 7 == 3:
                got = q.get()
                assert got == (model.popleft() if model else None)
            elif i % 11 == 0:
                batch = [b"batch-%d-%d" % (i, k) for k in range(5)]
                q.put_many(batch)
                model.extend(batch)
            else:
                d = b"m-%d-" % n + b"x" * (n % 50)
                n += 1
                q.put(d)
                model.append(d)
            states.add(state())
    finally:
        stop.set()
        t.join()
    assert not errors, errors
    assert len(snapshots) > 10
    for snap in snapshots:
        assert snap in states          # every metadata sync() wrote was a real state
    q.close()
    assert _parse_meta(meta(tmp_path)) == state()
    q = mk(tmp_path, max_bytes=4096)
    assert q.depth == len(model)
    assert drain(q) == list(model)
    q.close()


def test_empty_during_sync_does_not_resurrect_metadata(tmp_path, monkeypatch):
    q = mk(tmp_path)
    q.put(b"abc")
    entered = threading.Event()
    release = threading.Event()
    real = dqmod._fsync

    def slow_fsync(fd):
        entered.set()
        release.wait(5)
        real(fd)

    monkeypatch.setattr(dqmod, "_fsync", slow_fsync)
    t = threading.Thread(target=q.sync)
    t.start()
    assert entered.wait(5)
    q.delete()                           # while the worker's sync is in fsync
    release.set()
    t.join()
    assert files(tmp_path) == []


# -- model-based ----------------------------------------------------------------------------

ops = st.lists(
    st.one_of(
        st.tuples(st.just("put"), st.binary(min_size=1, max_size=40)),
        st.tuples(st.just("put_many"), st.lists(st.binary(min_size=1, max_size=40), max_size=6)),
        st.tuples(st.just("get"), st.none()),
        st.tuples(st.just("reopen"), st.none()),
        st.tuples(st.just("sync"), st.none()),
        st.tuples(st.just("empty"), st.none()),
    ),
    max_size=60,
)


@settings(max_examples=int(os.environ.get("DQ_EXAMPLES", "150")), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=ops, max_bytes=st.sampled_from([16, 50, 100, 1 << 20]))
def test_fifo_model(ops, max_bytes):
    with tempfile.TemporaryDirectory() as d:
        q = mk(d, max_bytes=max_bytes, max_size=64)
        model = deque()
        for op, arg in ops:
            if op == "put":
                q.put(arg)
                model.append(arg)
            elif op == "put_many":
                q.put_many(arg)
                model.extend(arg)
            elif op == "get":
                assert q.get() == (model.popleft() if model else None)
            elif op == "reopen":
                q.close()
                q = mk(d, max_bytes=max_bytes, max_size=64)
            elif op == "sync":
                q.sync()
            elif op == "empty":
                q.empty()
                model.clear()
            assert q.depth == len(model)
            # only files between the reader and the writer exist, nothing went bad
            nums = []
            for f in os.listdir(d):
                assert not f.endswith(".bad") and not f.endswith(".tmp"), f
                m = re.fullmatch(r"t\.diskqueue\.(\d{6,})\.dat", f)
                if m:
                    nums.append(int(m.group(1)))
            assert all(q._rfn <= x <= q._wfn for x in nums), (nums, q)
        assert drain(q) == list(model)
        q.close()


@settings(max_examples=int(os.environ.get("DQ_EXAMPLES", "150")), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=ops, max_bytes=st.sampled_from([16, 50, 100, 1 << 20]))
def test_crash_recovery_model(ops, max_bytes):
    """Killed process (buffers already handed to the OS, no sync): after restart every
    unread record comes back in order, preceded at most by a replay of the last reads."""
    with tempfile.TemporaryDirectory() as d:
        q = mk(d, max_bytes=max_bytes, max_size=64)
        read, unread = [], deque()
        for op, arg in ops:
            if op == "put":
                q.put(arg)
                unread.append(arg)
            elif op == "put_many":
                q.put_many(arg)
                unread.extend(arg)
            elif op == "get":
                got = q.get()
                assert got == (unread.popleft() if unread else None)
                if got is not None:
                    read.append(got)
            elif op == "reopen":
                crash(q)
                q = mk(d, max_bytes=max_bytes, max_size=64)
                got = drain(q)
                k = len(got) - len(unread)
                assert k >= 0 and got[k:] == list(unread)
                assert got[:k] == read[len(read) - k:]
                read, unread = read + got[k:], deque()
            elif op == "sync":
                q.sync()
            elif op == "empty":
                q.empty()
                unread.clear()
            assert not any(f.endswith(".bad") for f in os.listdir(d))
        q.close()
