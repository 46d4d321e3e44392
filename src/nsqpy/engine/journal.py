"""nsqd --durable: a channel's in-flight / deferred journal.

Messages a channel has taken out of its disk queue (in flight to a consumer, or deferred
by REQ/DPUB) exist nowhere else, so a durable channel appends them here:

* ``D`` -- the channel owns this message outside its queue: the full 26+N byte record
  (the disk-queue layout) and a due time (wall-clock ns, 0 = in flight).  A later ``D``
  for the same id replaces the earlier one (in flight -> deferred -> in flight ...).
* ``F`` -- the message left that state: finished, or written back to the disk queue
  (timeout, REQ without delay, deferred and now due).
* ``C`` -- the channel was emptied: forget everything before.

File ``<topic>:<channel>.journal.dat`` next to the disk queue files; each record is
``type(1) len(4, big-endian) crc32(4) payload(len)``.  A torn or corrupt tail ends the
replay.  Appends are buffered in memory and written + fsynced by the broker's group
commit (:mod:`.commit`), which persists a queue's read position only after the journal
records covering everything read before it are fsynced.  When the file grows past
``COMPACT_BYTES`` it is rewritten from the channel's live state (temp file, fsync,
rename).  On start the journal is replayed: in-flight messages go back into the
queue, deferred ones are deferred again for the time they had left.
"""
import os
import struct
import threading
import zlib

__all__ = ["Journal", "COMPACT_BYTES"]

COMPACT_BYTES = 8 * 1024 * 1024

_HDR = struct.Struct(">cII")
_DUE = struct.Struct(">q")
_OPEN_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)


def _record(kind: bytes, payload: bytes) -> bytes:
    return _HDR.pack(kind, len(payload), zlib.crc32(payload)) + payload


def encode_delivered(record: bytes, due_ns: int) -> bytes:
    return _record(b"D", _DUE.pack(due_ns) + record)


class Journal:
    """Appends on the event-loop thread; :meth:`write_and_sync` on a commit worker."""

    def __init__(self, path: str, log=None):
        self.path = path
        self.log = log
        self.buf = bytearray()         # appended, not yet handed to a commit step
        self.snapshot = None           # compaction: the live records replacing the file
        self.size = 0                  # bytes in the file (plus those handed to a step)
        self.closed = False
        self._fd = None
        self._lock = threading.Lock()  # file operations (worker) vs close/remove (loop)
        try:
            self.size = os.stat(path).st_size
        except OSError:
            pass

    # -- appending (event-loop thread) --------------------------------------------------------
    def delivered(self, record: bytes, due_ns: int = 0) -> None:
        if not self.closed:
            self.buf += encode_delivered(record, due_ns)

    def done(self, msg_id: bytes) -> None:
        if not self.closed:
            self.buf += _record(b"F", msg_id)

    def clear(self) -> None:
        if not self.closed:
            self.buf += _record(b"C", b"")

    def pending(self) -> bool:
        return bool(self.buf) or self.snapshot is not None

    def take(self, live_records=None):
        """Hand the pending appends to a commit step: (snapshot or None, bytes).  With
        ``live_records`` (a callable giving the channel's in-flight/deferred records) and
        a file past COMPACT_BYTES, the step rewrites the file from those instead."""
        snap = self.snapshot
        if snap is None and live_records is not None and self.size + len(self.buf) > COMPACT_BYTES:
            snap = b"".join(encode_delivered(rec, due) for rec, due in live_records())
            self.buf = bytearray()
        self.snapshot = None
        data = bytes(self.buf)
        self.buf = bytearray()
        if snap is not None:
            self.size = len(snap) + len(data)
        else:
            self.size += len(data)
        return snap, data

    # -- the commit step (worker thread) ------------------------------------------------------
    def write_and_sync(self, snapshot, data: bytes) -> int:
        """Write (after an optional compaction) and fsync; returns the number of fsyncs."""
        fsyncs = 0
        with self._lock:
            if self.closed:
                return 0
            if snapshot is not None:
                self._replace(snapshot)
                fsyncs += 1
            if data:
                fd = self._open()
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
                os.fsync(fd)
                fsyncs += 1
        return fsyncs

    def _open(self) -> int:
        if self._fd is None:
            self._fd = os.open(self.path, _OPEN_FLAGS, 0o600)
        return self._fd

    def _replace(self, content: bytes) -> None:
        tmp = "%s.%d.tmp" % (self.path, int.from_bytes(os.urandom(8), "big") >> 1)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            view = memoryview(content)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def rewrite(self, live) -> None:
        """Synchronously replace the file with ``live`` [(record, due_ns)] (used at start)."""
        content = b"".join(encode_delivered(rec, due) for rec, due in live)
        with self._lock:
            self._replace(content)
        self.size = len(content)
        self.buf = bytearray()
        self.snapshot = None

    # -- replay (start) ---------------------------------------------------------------------
    def replay(self) -> dict:
        """{msg id: (record, due_ns)} for messages the journal still owns."""
        live = {}
        try:
            with open(self.path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return live
        pos, end = 0, len(data)
        while pos + _HDR.size <= end:
            kind, n, crc = _HDR.unpack_from(data, pos)
            payload = data[pos + _HDR.size:pos + _HDR.size + n]
            if len(payload) != n or zlib.crc32(payload) != crc:
                if self.log is not None:
                    self.log.warning(f"JOURNAL({self.path}): torn record at {pos}, ignoring the rest")
                break
            pos += _HDR.size + n
            if kind == b"D" and n >= 8 + 26:
                rec = payload[8:]
                live[rec[10:26]] = (rec, _DUE.unpack_from(payload)[0])
            elif kind == b"F":
                live.pop(payload, None)
            elif kind == b"C":
                live.clear()
        return live

    # -- end --------------------------------------------------------------------------------
    def close(self, remove: bool = False) -> None:
        """Stop journaling; ``remove`` deletes the file (clean close after the queue holds
        everything, or channel deletion)."""
        with self._lock:
            self.closed = True
            self.buf = bytearray()
            self.snapshot = None
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
            if remove:
                try:
                    os.remove(self.path)
                except FileNotFoundError:
                    pass
