"""DiskQueue metadata: the ``<name>.diskqueue.meta.dat`` file (``"%d\\n%d,%d\\n%d,%d\\n"``:
depth, readFileNum,readPos, writeFileNum,writePos), read leniently at startup and
persisted atomically (temp file, optional fsync, rename).

Whenever the file numbers change (roll, read file finished, error recovery, first
record of a fresh/emptied queue) the metadata is rewritten at once without fsync
(write temp file + rename, ~tens of µs), before any record reaches a new write file.
A process killed before the following sync() thus never leaves records in a file the
metadata doesn't know about: at restart the stale-metadata rule moves the writer past
them and the reader recovers them.  Metadata snapshots are numbered so an older one
never replaces a newer one.

``DiskQueueMetadata`` is a mixin for :class:`nsqpy.engine.diskqueue.DiskQueue`; it uses
the queue's state and locks and calls ``self._fsync_meta`` for the temp-file fsync."""
from __future__ import annotations

import os
import re

META_RE = re.compile(
    rb"[ \t]*([+-]?\d+)\n[ \t]*([+-]?\d+),[ \t]*([+-]?\d+)\n[ \t]*([+-]?\d+),[ \t]*([+-]?\d+)(?:\n|\Z)")

_TMP_FLAGS = os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0) | os.O_TRUNC


def unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


class DiskQueueMetadata:
    """Reading and persisting a DiskQueue's metadata file."""

    def metadata_file_name(self) -> str:
        return self._meta_path

    def _fsync_meta(self, fd: int) -> None:
        os.fsync(fd)

    # -- startup ----------------------------------------------------------------------------
    def _retrieve_metadata(self) -> None:
        log = self._log
        try:
            with open(self._meta_path, "rb") as f:
                raw = f.read()
        except FileNotFoundError:
            raw = None
            self._meta_stale = True     # fresh queue: persist before the first record lands
        except OSError as e:
            log("ERROR", f"DISKQUEUE({self.name}) failed to retrieveMetaData - {e}")
            raw = None
        if raw is not None:
            m = META_RE.match(raw)
            if m is None:
                log("ERROR", f"DISKQUEUE({self.name}) failed to retrieveMetaData - "
                             f"cannot parse {raw[:64]!r} as \"%d\\n%d,%d\\n%d,%d\\n\"")
                self._meta_stale = True
            else:
                self._depth, self._rfn, self._rpos, self._wfn, self._wpos = (
                    int(g) for g in m.groups())

        # metadata not synced at the last shutdown (crash): the write file may hold more
        # than writePos says.  Never overwrite it: write to a new file, the reader
        # salvages the old one up to its real size.  (Also applied when the metadata
        # was missing or unreadable and we start from zero.)
        fn = self._file_name(self._wfn)
        try:
            size = os.stat(fn).st_size
        except FileNotFoundError:
            return
        except OSError as e:
            log("ERROR", f"DISKQUEUE({self.name}) failed to retrieveMetaData - {e}")
            return
        if self._wpos < size:
            log("WARNING", f"DISKQUEUE({self.name}) {fn} metadata writePos {self._wpos} "
                           f"< file size of {size}, skipping to new file")
            self._wfn += 1
            self._wpos = 0
            self._meta_stale = True
            # the depth in a stale meta file misses the records past its writePos
            depth = self._count_unread()
            if depth != self._depth:
                log("INFO", f"DISKQUEUE({self.name}) depth {self._depth} in metadata, "
                            f"{depth} messages on disk")
                self._depth = depth

    def _buffered_records(self) -> int:
        """Records accepted but not yet written (not counted in persisted metadata)."""
        n = 0
        for wf in (*self._rolled, self._w):
            buf = wf.buf
            pos, end = 0, len(buf)
            while pos < end:
                pos += 4 + int.from_bytes(buf[pos:pos + 4], "big")
                n += 1
        return n

    def _count_unread(self) -> int:
        """Records from the read position to the write position (a file older than the
        write file counts to its end), by walking the length headers; stops at the
        first unreadable or invalid one (the reader will quarantine that file)."""
        total = 0
        num, pos = self._rfn, self._rpos
        while num <= self._wfn:
            end = self._wpos if num == self._wfn else None
            try:
                with open(self._file_name(num), "rb") as f:
                    if end is None:
                        end = os.fstat(f.fileno()).st_size
                    while pos < end:
                        f.seek(pos)
                        hdr = f.read(4)
                        if len(hdr) != 4:
                            return total
                        n = int.from_bytes(hdr, "big", signed=True)
                        if n < self.min_msg_size or n > self.max_msg_size or pos + 4 + n > end:
                            return total
                        total += 1
                        pos += 4 + n
            except FileNotFoundError:
                pass
            except OSError:
                return total
            num, pos = num + 1, 0
        return total

    # -- persistence ------------------------------------------------------------------------
    def _meta_locked(self, wpos: int) -> bytes:
        """The metadata to persist (under _lock); a subclass may report an older read
        position (nsqd --durable: the last one its in-flight journal covers)."""
        return b"%d\n%d,%d\n%d,%d\n" % (self._depth, self._rfn, self._rpos, self._wfn, wpos)

    def _write_meta_tmp(self, meta: bytes, fsync: bool) -> str:
        tmp = "%s.%d.tmp" % (self._meta_path, int.from_bytes(os.urandom(8), "big") >> 1)
        fd = os.open(tmp, _TMP_FLAGS, 0o600)
        try:
            os.write(fd, meta)
            if fsync:
                self._fsync_meta(fd)
        except BaseException:
            os.close(fd)
            unlink_quietly(tmp)
            raise
        os.close(fd)
        return tmp

    def _persist_metadata(self, meta: bytes, gen: int, seq: int) -> None:
        tmp = self._write_meta_tmp(meta, True)
        try:
            with self._lock:
                if gen == self._gen and not self._deleted and seq > self._meta_renamed:
                    os.replace(tmp, self._meta_path)
                    self._meta_renamed = seq
                    tmp = None
        finally:
            if tmp is not None:
                unlink_quietly(tmp)

    def _persist_quick_locked(self, strict: bool = False) -> None:
        """Persist the metadata now, without fsync, on the loop thread (under _lock).

        Done whenever the file numbers change (write file rolled, read file finished,
        error recovery), before any record reaches the new write file: if the process
        dies before the next sync(), the metadata still names the newest write file, so
        at restart the stale-metadata rule moves the writer past it instead of
        overwriting records (go-diskqueue persists synchronously at these points; the
        fsync is left to the sync() that sync_due() asks for).  writePos is the part of
        the write file already handed to the OS.

        If the write fails (disk full, read-only) the metadata stays stale: the next
        flush persists it first (``strict``: raising) and writes no record before it
        succeeded."""
        if self._deleted or self._closed:
            self._meta_stale = False
            return
        meta = self._meta_locked(self._w.flushed)
        self._meta_seq += 1
        seq = self._meta_seq
        try:
            tmp = self._write_meta_tmp(meta, False)
            try:
                os.replace(tmp, self._meta_path)
            except BaseException:
                unlink_quietly(tmp)
                raise
        except OSError as e:
            self._meta_stale = True
            self._log("ERROR", f"DISKQUEUE({self.name}) failed to persist metadata - {e}")
            if strict:
                raise
            return
        self._meta_stale = False
        self._meta_renamed = seq
