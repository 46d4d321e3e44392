"""Data-directory compatibility with Go nsqd (spec storage.md §2, §5).

Go -> nsqpy: the tests lay out ``nsqd.dat`` (the v1.2.1 and the v1.3.0 shapes) and
go-diskqueue files byte by byte with struct.pack, start a real nsqpy nsqd on them and
check that every message is delivered (and no message before the read position is).

nsqpy -> Go: nsqpy's files are parsed by ``GoQueueReader`` below, an independent
byte-level reader written from the spec (it follows go-diskqueue's read rules and does
not use any nsqpy code).
"""
import json
import os
import re
import stat
import struct
import time

from daemons import Conn, start_nsqd
from daemons import consume_exactly as consume_all
from nsqpy.protocol import commands as cmds

MAX_MSG_SIZE = 1048576          # nsqd's default --max-msg-size
BASE_TS = 1700000000000000000


# -- building Go-format files ------------------------------------------------------------------
def go_payload(n: int, body: bytes, attempts: int = 0) -> bytes:
    """A message in wire layout: int64 timestamp, uint16 attempts, 16 ASCII hex id, body."""
    return struct.pack(">qH", BASE_TS + n, attempts) + b"%016x" % (0x18a73e5455669000 + n) + body


def go_record(payload: bytes) -> bytes:
    return struct.pack(">i", len(payload)) + payload


def write_go_queue(data, name: str, segments, read_pos=(0, 0), depth=None, first_file=0):
    """go-diskqueue files for ``name``: one data file per list of payloads in ``segments``
    (numbered from first_file), the meta file with the read position given and the write
    position at the end of the last segment.  Returns the payloads at/after read_pos."""
    sizes = []
    for i, payloads in enumerate(segments):
        raw = b"".join(go_record(p) for p in payloads)
        (data / ("%s.diskqueue.%06d.dat" % (name, first_file + i))).write_bytes(raw)
        sizes.append(len(raw))
    rfn, rpos = read_pos
    unread = []
    for i, payloads in enumerate(segments):
        pos = 0
        for p in payloads:
            if (first_file + i, pos) >= (rfn, rpos):
                unread.append(p)
            pos += 4 + len(p)
    if depth is None:
        depth = len(unread)
    wfn = first_file + len(segments) - 1
    (data / f"{name}.diskqueue.meta.dat").write_bytes(
        b"%d\n%d,%d\n%d,%d\n" % (depth, rfn, rpos, wfn, sizes[-1]))
    return unread


def go_nsqd_dat_130(topics) -> bytes:
    """Go 1.3.0's shape: keys name, paused, channels; empty lists as null."""
    parts = []
    for name, paused, chans in topics:
        cs = ",".join('{"name":%s,"paused":%s}' % (json.dumps(c), json.dumps(p)) for c, p in chans)
        parts.append('{"name":%s,"paused":%s,"channels":%s}'
                     % (json.dumps(name), json.dumps(paused), "[%s]" % cs if chans else "null"))
    return ('{"topics":%s,"version":"1.3.0"}' % ("[%s]" % ",".join(parts) if parts else "null")).encode()


def go_nsqd_dat_121(topics) -> bytes:
    """Go 1.2.1's shape: keys in alphabetical order, empty lists as []."""
    parts = []
    for name, paused, chans in topics:
        cs = ",".join('{"name":%s,"paused":%s}' % (json.dumps(c), json.dumps(p)) for c, p in chans)
        parts.append('{"channels":[%s],"name":%s,"paused":%s}'
                     % (cs, json.dumps(name), json.dumps(paused)))
    return ('{"topics":[%s],"version":"1.2.1"}' % ",".join(parts)).encode()


# -- consuming ---------------------------------------------------------------------------------
def as_delivered(payloads):
    """What a consumer receives for stored payloads: id, attempts + 1, body, timestamp."""
    out = []
    for p in payloads:
        ts, attempts = struct.unpack(">qH", p[:10])
        out.append((p[10:26], attempts + 1, p[26:], ts))
    return out


# -- an independent go-diskqueue reader ---------------------------------------------------------
META = re.compile(rb"(-?\d+)\n(-?\d+),(-?\d+)\n(-?\d+),(-?\d+)\n")


class GoQueueReader:
    """Reads a queue as go-diskqueue v1.1.0 would at startup, strictly: the meta file
    must be exactly ``%d\\n%d,%d\\n%d,%d\\n``; records are int32 big-endian length L
    (26 <= L <= max_msg_size + 26) plus payload; a file older than the write file is
    read to its end, the write file up to writePos."""

    def __init__(self, data_dir: str, name: str, max_msg_size: int = MAX_MSG_SIZE):
        self.dir = data_dir
        self.name = name
        raw = open(os.path.join(data_dir, f"{name}.diskqueue.meta.dat"), "rb").read()
        m = META.fullmatch(raw)
        assert m, f"meta file not in go-diskqueue's format: {raw!r}"
        self.depth, self.rfn, self.rpos, self.wfn, self.wpos = map(int, m.groups())
        self.min_size, self.max_size = 26, max_msg_size + 26

    def path(self, num: int) -> str:
        return os.path.join(self.dir, "%s.diskqueue.%06d.dat" % (self.name, num))

    def records(self):
        out = []
        num, pos = self.rfn, self.rpos
        while (num, pos) != (self.wfn, self.wpos):
            assert num <= self.wfn, "read position beyond write position"
            with open(self.path(num), "rb") as f:
                data = f.read()
            end = len(data) if num < self.wfn else self.wpos
            assert pos <= end <= len(data), (num, pos, end, len(data))
            while pos < end:
                (n,) = struct.unpack(">i", data[pos:pos + 4])
                assert self.min_size <= n <= self.max_size, f"bad record length {n} at {num},{pos}"
                assert pos + 4 + n <= end, f"record at {num},{pos} runs past the end"
                out.append(data[pos + 4:pos + 4 + n])
                pos += 4 + n
            if num < self.wfn:
                num, pos = num + 1, 0
        assert len(out) == self.depth, f"depth {self.depth} but {len(out)} records"
        return out

    def check_write_file_not_stale(self) -> None:
        """Go skips to a new write file when the write file is longer than writePos."""
        try:
            size = os.path.getsize(self.path(self.wfn))
        except FileNotFoundError:
            size = 0
        assert size == self.wpos, f"write file holds {size} bytes, metadata says {self.wpos}"

    def data_files(self):
        rx = re.compile(re.escape(self.name) + r"\.diskqueue\.(\d{6,})\.dat$")
        return sorted(int(m.group(1)) for f in os.listdir(self.dir) if (m := rx.match(f)))


def parse_message(payload: bytes):
    ts, attempts = struct.unpack(">qH", payload[:10])
    msg_id = payload[10:26]
    assert re.fullmatch(rb"[0-9a-f]{16}", msg_id), msg_id
    return ts, attempts, msg_id, payload[26:]


# -- Go -> nsqpy -----------------------------------------------------------------------------------
def test_go_1_3_0_nsqd_dat_restores_topics_channels_and_paused_flags(tmp_path):
    data = tmp_path / "go"
    data.mkdir()
    (data / "nsqd.dat").write_bytes(go_nsqd_dat_130([
        ("t_plain", False, []),
        ("t_paused", True, [("c_paused", True), ("c_live", False)]),
    ]))
    d = start_nsqd(tmp_path, data_path=str(data))
    try:
        topics = {t["topic_name"]: t for t in d.stats()["topics"]}
        assert set(topics) == {"t_plain", "t_paused"}
        assert topics["t_plain"]["paused"] is False and topics["t_plain"]["channels"] == []
        assert topics["t_paused"]["paused"] is True
        chans = {c["channel_name"]: c["paused"] for c in topics["t_paused"]["channels"]}
        assert chans == {"c_paused": True, "c_live": False}
    finally:
        assert d.stop() == 0


def test_go_1_2_1_nsqd_dat_restores_topics_channels_and_paused_flags(tmp_path):
    data = tmp_path / "go"
    data.mkdir()
    (data / "nsqd.dat").write_bytes(go_nsqd_dat_121([
        ("old_t", False, [("old_c", True)]),
        ("old_empty", True, []),
    ]))
    d = start_nsqd(tmp_path, data_path=str(data))
    try:
        topics = {t["topic_name"]: t for t in d.stats()["topics"]}
        assert set(topics) == {"old_t", "old_empty"}
        assert topics["old_empty"]["paused"] is True
        assert topics["old_t"]["paused"] is False
        assert [(c["channel_name"], c["paused"]) for c in topics["old_t"]["channels"]] == [
            ("old_c", True)]
    finally:
        assert d.stop() == 0
    # rewritten in 1.3.0's shape (keys name, paused, channels; no channels -> null)
    meta = json.loads((data / "nsqd.dat").read_bytes())
    by_name = {t["name"]: t for t in meta["topics"]}
    assert list(by_name["old_t"]) == ["name", "paused", "channels"]
    assert by_name["old_empty"]["channels"] is None


def test_go_topic_queue_in_three_segments_read_from_mid_segment_is_delivered(tmp_path):
    data = tmp_path / "go"
    data.mkdir()
    (data / "nsqd.dat").write_bytes(go_nsqd_dat_130([("gt", False, [("gc", False)])]))
    segs = [[go_payload(i, b"seg0-%d" % i, attempts=i % 3) for i in range(5)],
            [go_payload(10 + i, b"seg1-%d" % i) for i in range(4)],
            [go_payload(20 + i, b"seg2-%d" % i + b"x" * 300) for i in range(3)]]
    # the reader is after the first two records of segment 0
    rpos = sum(4 + len(p) for p in segs[0][:2])
    unread = write_go_queue(data, "gt", segs, read_pos=(0, rpos))
    assert len(unread) == 10
    d = start_nsqd(tmp_path, data_path=str(data))
    try:
        got = consume_all(d, "gt", "gc", len(unread))
        assert sorted(got) == sorted(as_delivered(unread))
        # within the topic queue the order is go-diskqueue's FIFO order
        assert [m[2] for m in got] == [p[26:] for p in unread]
    finally:
        assert d.stop() == 0


def test_go_topic_queue_without_channels_goes_to_the_first_subscriber(tmp_path):
    data = tmp_path / "go"
    data.mkdir()
    (data / "nsqd.dat").write_bytes(go_nsqd_dat_121([("lonely", False, [])]))
    segs = [[go_payload(i, b"a%d" % i) for i in range(3)], [go_payload(9, b"last")]]
    unread = write_go_queue(data, "lonely", segs)
    d = start_nsqd(tmp_path, data_path=str(data))
    try:
        assert d.stats(topic="lonely")["topics"][0]["depth"] == 4
        got = consume_all(d, "lonely", "first", 4)
        assert sorted(got) == sorted(as_delivered(unread))
    finally:
        assert d.stop() == 0


def test_go_channel_queue_in_segments_with_topic_backlog_is_delivered(tmp_path):
    data = tmp_path / "go"
    data.mkdir()
    (data / "nsqd.dat").write_bytes(go_nsqd_dat_130([("mt", False, [("mc", False)])]))
    chan_segs = [[go_payload(100 + i, b"chan-%d" % i, attempts=2) for i in range(4)],
                 [go_payload(110 + i, b"chan1-%d" % i) for i in range(2)]]
    # segment files numbered from 7 (earlier ones were consumed and deleted), reader at
    # the third record of file 7
    rpos = sum(4 + len(p) for p in chan_segs[0][:2])
    chan_unread = write_go_queue(data, "mt:mc", chan_segs, read_pos=(7, rpos), first_file=7)
    topic_unread = write_go_queue(data, "mt", [[go_payload(200, b"topic-0"),
                                                go_payload(201, b"topic-1")]])
    d = start_nsqd(tmp_path, data_path=str(data))
    try:
        assert d.channel_stats("mt", "mc")["depth"] == len(chan_unread) + len(topic_unread)
        got = consume_all(d, "mt", "mc", len(chan_unread) + len(topic_unread))
        assert sorted(got) == sorted(as_delivered(chan_unread + topic_unread))
    finally:
        assert d.stop() == 0


def test_go_paused_channel_queue_waits_until_unpaused(tmp_path):
    data = tmp_path / "go"
    data.mkdir()
    (data / "nsqd.dat").write_bytes(go_nsqd_dat_130([("pt", False, [("pc", True)])]))
    unread = write_go_queue(data, "pt:pc", [[go_payload(i, b"p%d" % i) for i in range(3)]])
    d = start_nsqd(tmp_path, data_path=str(data))
    try:
        c = Conn(d.tcp_address)
        c.subscribe("pt", "pc", rdy=10)
        try:
            frame = c.read_frame(timeout=0.7)
        except (TimeoutError, OSError):
            frame = None
        assert frame is None, "a paused channel delivered"
        status, _, _ = d.http("POST", "/channel/unpause?topic=pt&channel=pc")
        assert status == 200
        got = [c.read_message(timeout=10) for _ in range(3)]
        assert sorted(got) == sorted(as_delivered(unread))
        c.close()
    finally:
        assert d.stop() == 0


def test_go_paused_topic_keeps_its_queue_until_unpaused(tmp_path):
    data = tmp_path / "go"
    data.mkdir()
    (data / "nsqd.dat").write_bytes(go_nsqd_dat_121([("ptt", True, [("c", False)])]))
    unread = write_go_queue(data, "ptt", [[go_payload(i, b"q%d" % i) for i in range(2)]])
    d = start_nsqd(tmp_path, data_path=str(data))
    try:
        time.sleep(0.3)
        assert d.stats(topic="ptt")["topics"][0]["depth"] == 2
        assert d.channel_stats("ptt", "c")["depth"] == 0
        assert d.http("POST", "/topic/unpause?topic=ptt")[0] == 200
        got = consume_all(d, "ptt", "c", 2)
        assert sorted(got) == sorted(as_delivered(unread))
    finally:
        assert d.stop() == 0


# -- nsqpy -> Go -----------------------------------------------------------------------------------
def _publish_bodies(d, topic, bodies):
    c = Conn(d.tcp_address)
    try:
        for i in range(0, len(bodies), 7):
            c.send(cmds.encode_mpub(topic, bodies[i:i + 7]))
            c.expect_response()
    finally:
        c.close()


def test_go_reader_parses_nsqpy_topic_queue_across_segments(tmp_path):
    d = start_nsqd(tmp_path, "--mem-queue-size=0", "--max-bytes-per-file=400")
    bodies = [b"body-%03d-" % i + b"z" * (i % 40) for i in range(40)]
    t0 = time.time_ns()
    try:
        _publish_bodies(d, "wt", bodies)
    finally:
        assert d.stop() == 0
    r = GoQueueReader(d.data_path, "wt")
    assert (r.rfn, r.rpos) == (0, 0) and r.wfn >= 3
    r.check_write_file_not_stale()
    records = r.records()
    msgs = [parse_message(p) for p in records]
    assert [m[3] for m in msgs] == bodies
    assert all(m[1] == 0 for m in msgs)
    assert all(t0 - 10**9 <= m[0] <= time.time_ns() for m in msgs)
    assert len({m[2] for m in msgs}) == len(msgs)
    # roll rule: a file is closed when the next record would take it past the limit
    assert r.data_files() == list(range(r.rfn, r.wfn + 1))
    for num in range(r.rfn, r.wfn):
        size = os.path.getsize(r.path(num))
        assert size <= 400
        with open(r.path(num + 1), "rb") as f:
            (first_len,) = struct.unpack(">i", f.read(4))
        assert size + 4 + first_len > 400
    for f in os.listdir(d.data_path):
        if f.startswith("wt.") or f == "nsqd.dat":
            assert stat.S_IMODE(os.stat(os.path.join(d.data_path, f)).st_mode) == 0o600, f


def test_go_reader_parses_nsqpy_channel_queue_after_partial_consumption(tmp_path):
    d = start_nsqd(tmp_path, "--mem-queue-size=0", "--max-bytes-per-file=300")
    bodies = [b"m%02d" % i for i in range(30)]
    try:
        c = Conn(d.tcp_address)
        c.subscribe("ct", "cc")               # create the channel, no RDY yet
        _publish_bodies(d, "ct", bodies)
        deadline = time.monotonic() + 5
        while d.channel_stats("ct", "cc")["depth"] != 30:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        c.send(cmds.encode_rdy(11))
        done = [c.read_message(timeout=5) for _ in range(11)]
        c.send(cmds.encode_rdy(0))
        for m in done:
            c.send(cmds.encode_fin(m[0]))
        while d.channel_stats("ct", "cc")["in_flight_count"]:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        c.close()
    finally:
        assert d.stop() == 0
    r = GoQueueReader(d.data_path, "ct:cc")
    r.check_write_file_not_stale()
    assert r.rfn > 0 or r.rpos > 0          # a read position past the start
    assert r.data_files() == list(range(r.rfn, r.wfn + 1))   # read files were deleted
    left = [parse_message(p)[3] for p in r.records()]
    assert sorted(left + [m[2] for m in done]) == bodies
    assert left == bodies[11:]
    # the topic queue was drained to the channel
    t = GoQueueReader(d.data_path, "ct")
    assert t.depth == 0 and t.records() == []


def test_nsqd_dat_is_written_in_go_1_3_0_shape(tmp_path):
    d = start_nsqd(tmp_path)
    try:
        c = Conn(d.tcp_address)
        c.pub("shape", b"x")
        c.subscribe("shape", "sc")
        c.close()
        c2 = Conn(d.tcp_address)
        c2.pub("bare", b"y")
        c2.close()
        assert d.http("POST", "/channel/pause?topic=shape&channel=sc")[0] == 200
    finally:
        assert d.stop() == 0
    raw = open(os.path.join(d.data_path, "nsqd.dat"), "rb").read()
    meta = json.loads(raw)
    assert list(meta) == ["topics", "version"]
    topics = {t["name"]: t for t in meta["topics"]}
    assert re.fullmatch(rb'\{"topics":\[.*\],"version":"[0-9.]+"\}', raw)
    assert b'{"name":"shape","paused":false,"channels":[{"name":"sc","paused":true}]}' in raw
    assert b'{"name":"bare","paused":false,"channels":null}' in raw
    assert set(topics) == {"shape", "bare"}
    assert stat.S_IMODE(os.stat(os.path.join(d.data_path, "nsqd.dat")).st_mode) == 0o600
