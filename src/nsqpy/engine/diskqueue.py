"""A filesystem backed FIFO queue, byte-compatible with go-diskqueue v1.1.0.

On-disk layout (see spec/storage.md §2)::

    <data_path>/<name>.diskqueue.meta.dat        "%d\\n%d,%d\\n%d,%d\\n"
                                                 depth, readFileNum,readPos, writeFileNum,writePos
    <data_path>/<name>.diskqueue.%06d.dat        records: int32 big-endian length L, L bytes payload
    <data_path>/<name>.diskqueue.%06d.dat.bad    a data file that failed to parse

Threading model
---------------
``put``/``put_many``/``get``/``empty``/``delete``/``close``/``flush`` run on one thread
(the asyncio loop thread).  ``sync`` may run concurrently on a worker thread.  All state
shared with ``sync`` is guarded by ``_lock``, which is only ever held for in-memory work
plus, at most, one ``pwrite`` of the write buffer, a few ``unlink``\\ s (empty) or a
metadata write without fsync (see below).  The expensive part of a sync (fsync of the
data files and of the metadata temp file) happens outside ``_lock``; concurrent syncs
are serialised by ``_sync_lock``.  Rolling to a new write file does no fsync on the loop
thread: the old file's fd is kept and fsynced by the next sync() (``sync_due()`` turns
True at once, as go-diskqueue syncs at every roll).

Metadata reading and (quick / synced) persistence: see :mod:`.diskqueue_meta`;
corrupt files (``.bad``) and tail checks: :mod:`.diskqueue_recovery`.

A failed write is cut back to the last complete record (``ftruncate``) so no half
record stays in a data file; no record is written to a file the metadata doesn't name
yet (a failed metadata write blocks the flush, see :mod:`.diskqueue_meta`).

Writes are buffered in memory (one buffer per data file that still has unwritten
records) and handed to the OS by a single ``pwrite`` when

* a put would make the buffered bytes exceed ``WRITE_BUFFER_SIZE`` (the buffer is
  written first; if that fails the put raises and nothing is accepted),
* the reader reaches the buffered region,
* a sync starts (the metadata always describes data already written to the OS),
* the end of the current event-loop iteration (``put`` schedules this with
  ``loop.call_soon`` when it runs inside a loop), so a killed process loses at most the
  records of one loop iteration -- like Go, which writes every record immediately,
  the data then survives a crash of the process (not of the machine) and is recovered
  through the stale-metadata rule at the next start.

A put/put_many that raises has changed nothing.  A write that fails where no caller can
be told (end-of-iteration flush, reader catching up) keeps the records buffered (they
are retried at the same offsets), is logged, and makes the next ``put``/``put_many``
retry the write first and raise ``OSError`` (accepting nothing) if it still fails.
"""
from __future__ import annotations

import asyncio
import os
import struct
import threading

from .diskqueue_meta import DiskQueueMetadata
from .diskqueue_recovery import DiskQueueRecovery, _WriteFile

__all__ = ["DiskQueue", "DiskQueueError", "WRITE_BUFFER_SIZE", "READ_BUFFER_SIZE"]

WRITE_BUFFER_SIZE = 128 * 1024
READ_BUFFER_SIZE = 64 * 1024

_len = struct.Struct(">i")
_pack_len = _len.pack
_unpack_len = _len.unpack

# indirections so tests can inject I/O failures
_pwrite = os.pwrite
_fsync = os.fsync

_get_running_loop = asyncio._get_running_loop

_OPEN_FLAGS = os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)


class DiskQueueError(OSError):
    """A put/empty the queue refused (closed queue, record size out of range)."""


def _noop_log(level: str, msg: str) -> None:
    pass


class DiskQueue(DiskQueueRecovery, DiskQueueMetadata):
    def __init__(self, name: str, data_path: str, max_bytes_per_file: int, min_msg_size: int,
                 max_msg_size: int, sync_every: int, sync_timeout: float, log=None):
        self.name = name
        self.data_path = data_path
        self.max_bytes_per_file = int(max_bytes_per_file)
        self.min_msg_size = int(min_msg_size)
        self.max_msg_size = int(max_msg_size)
        self.sync_every = int(sync_every)
        self.sync_timeout = sync_timeout
        self._log = log or _noop_log

        self._lock = threading.Lock()        # guards state shared with sync()
        self._sync_lock = threading.Lock()   # serialises sync()
        # hand-off so a busy loop thread can't starve sync() of _lock: a sync about to
        # take _lock raises _sync_waiting, the loop thread then waits on _handoff
        # (set again as soon as sync's short critical section is over)
        self._sync_waiting = False
        self._handoff = threading.Event()
        self._handoff.set()

        # persisted state
        self._depth = 0
        self._rfn = 0       # readFileNum
        self._rpos = 0      # readPos
        self._wfn = 0       # writeFileNum
        self._wpos = 0      # writePos (logical: includes buffered records)

        self._count = 0           # writes + reads since the last sync
        self._need_sync = False   # roll / new read file / error recovery
        self._gen = 0             # bumped by empty()/delete(): in-flight syncs must not rename
        self._meta_seq = 0        # metadata snapshots are numbered; an older one never
        self._meta_renamed = 0    # replaces a newer one
        self._meta_stale = False  # file numbers changed: persist metadata before new data
        self._closed = False
        self._deleted = False
        self._werr = None         # last failed background write, retried by the next put
        self._flush_scheduled = False
        self._loop = None         # the event loop that runs end-of-turn flushes (cached)
        self._unflushed = 0       # bytes buffered, not yet written to the OS
        self._nread = 0           # records read since start (monotonic; see _meta_locked)

        # reader
        self._reader = None       # buffered file object on the current read file
        self._read_end = None     # size of the current read file when it is complete

        self._rolled = []         # completed write files still to be written/fsynced
        self._ends = {}           # file number -> final size, for files rolled by us

        self._meta_path = os.path.join(data_path, f"{name}.diskqueue.meta.dat")
        self._retrieve_metadata()
        self._w = _WriteFile(self._wfn, self._wpos)

    # -- names ------------------------------------------------------------------------------
    def _file_name(self, num: int) -> str:
        return os.path.join(self.data_path, "%s.diskqueue.%06d.dat" % (self.name, num))

    def file_name(self, num: int) -> str:
        return self._file_name(num)

    # -- status -----------------------------------------------------------------------------
    @property
    def depth(self) -> int:
        d = self._depth
        if d > 0:
            return d
        # metadata depth too low (corrupt/stale meta file): go-diskqueue reads by
        # position, not by depth, so report 1 while there is still something to read
        # (the tail check resets depth when the reader catches up)
        return 1 if self._rfn < self._wfn or self._rpos < self._wpos else d

    def sync_due(self) -> bool:
        """sync-every count reached, or a state change that go-diskqueue syncs at once
        (rolled to a new write file, moved to a new read file, error recovery)."""
        return self._need_sync or self._count >= self.sync_every

    def dirty(self) -> bool:
        """The --sync-timeout timer rule: anything happened since the last sync."""
        return self._need_sync or self._count > 0

    needs_sync = sync_due

    # -- writing ----------------------------------------------------------------------------
    def put(self, data) -> None:
        if self._sync_waiting:
            self._handoff.wait()
        n = len(data)
        if n < self.min_msg_size or n > self.max_msg_size or self._closed or self._werr is not None:
            self._check_put((data,))
        with self._lock:
            t = 4 + n
            if self._unflushed and self._unflushed + t > WRITE_BUFFER_SIZE:
                self._flush_or_raise_locked()
            wpos = self._wpos
            if wpos > 0 and wpos + t > self.max_bytes_per_file:
                self._roll_locked()
                wpos = 0
            buf = self._w.buf
            mark = len(buf)
            try:
                buf += _pack_len(n)
                buf += data
            except BaseException:
                del buf[mark:]
                raise
            self._wpos = wpos + t
            self._depth += 1
            self._count += 1
            self._unflushed += t
            if self._meta_stale:
                self._persist_quick_locked()
            if self._unflushed >= WRITE_BUFFER_SIZE:   # a single huge record
                self._flush_bg_locked()
        if not self._flush_scheduled:
            self._schedule_flush()

    def put_many(self, datas) -> None:
        """Append several records; all are accepted or (raising) none."""
        if not isinstance(datas, (list, tuple)):
            datas = list(datas)
        if not datas:
            return
        if self._sync_waiting:
            self._handoff.wait()
        lo, hi = self.min_msg_size, self.max_msg_size
        total = 4 * len(datas)
        bad = False
        for d in datas:
            n = len(d)
            total += n
            if n < lo or n > hi or type(d) is not bytes:
                bad = True
        if bad or self._closed or self._werr is not None:
            self._check_put(datas)
        maxb = self.max_bytes_per_file
        with self._lock:
            if self._unflushed and self._unflushed + total > WRITE_BUFFER_SIZE:
                self._flush_or_raise_locked()
            wpos = self._wpos
            buf = self._w.buf
            for d in datas:
                n = len(d)
                if wpos > 0 and wpos + 4 + n > maxb:
                    self._wpos = wpos
                    self._roll_locked()
                    wpos = 0
                    buf = self._w.buf
                buf += _pack_len(n)
                buf += d
                wpos += 4 + n
            self._wpos = wpos
            self._depth += len(datas)
            self._count += len(datas)
            self._unflushed += total
            if self._meta_stale:
                self._persist_quick_locked()
            if self._unflushed >= WRITE_BUFFER_SIZE:   # a big batch: write it now
                self._flush_bg_locked()
        if not self._flush_scheduled:
            self._schedule_flush()

    def _check_put(self, datas) -> None:
        """Slow path of put/put_many: raise for what go-diskqueue would refuse, and retry a
        failed background write (raising, with nothing accepted, if it fails again)."""
        if self._closed:
            raise DiskQueueError("exiting")
        for d in datas:
            if type(d) is not bytes and memoryview(d).itemsize != 1:   # TypeError if not bytes-like
                raise TypeError(f"a bytes-like object is required, not {type(d).__name__!r}")
            n = len(d)
            if n < self.min_msg_size or n > self.max_msg_size:
                raise DiskQueueError(f"invalid message write size ({n}) minMsgSize={self.min_msg_size} "
                                     f"maxMsgSize={self.max_msg_size}")
        if self._werr is not None:
            with self._lock:
                self._flush_or_raise_locked()   # put refused, state unchanged

    def _roll_locked(self) -> None:
        """Start the next write file: the old one keeps its unwritten records and is
        written + fsynced by the next flush/sync (sync_due() turns True)."""
        old = self._w
        oldnum, oldpos = self._wfn, self._wpos
        self._ends[oldnum] = oldpos
        if old.fd is not None or old.buf:
            self._rolled.append(old)
        self._wfn = oldnum + 1
        self._wpos = 0
        self._w = _WriteFile(self._wfn, 0)
        self._need_sync = True
        self._meta_stale = True
        if self._rfn == oldnum:
            if self._reader is not None:
                self._read_end = oldpos
            if self._rpos >= oldpos:
                # everything in the old file has been read: go on to the new one now so
                # the metadata never points the reader at the end of a complete file
                self._next_read_file_locked()

    def _write_file(self, wf: _WriteFile) -> None:
        if wf.fd is None:
            fn = self._file_name(wf.num)
            fd = os.open(fn, _OPEN_FLAGS, 0o600)
            wf.fd = fd
            self._log("INFO", f"DISKQUEUE({self.name}): writeOne() opened {fn}")
        buf = wf.buf
        total = len(buf)
        off = wf.flushed
        done = 0
        try:
            done = _pwrite(wf.fd, buf, off)
            if done < total:                 # a short write: go on from where it stopped
                with memoryview(buf) as mv:
                    while done < total:
                        done += _pwrite(wf.fd, mv[done:], off + done)
        except OSError:
            if done:
                # no half record may stay behind the last complete one (a restart would
                # read it as corruption): cut the file back, the retry rewrites it all
                try:
                    os.ftruncate(wf.fd, off)
                except OSError as e:
                    self._log("ERROR", f"DISKQUEUE({self.name}) failed to truncate "
                                       f"{self._file_name(wf.num)} to {off} - {e}")
            raise
        wf.flushed = off + total
        wf.buf = bytearray()

    def _flush_locked(self) -> None:
        """Write every buffered record (raises OSError; what was not written stays
        buffered and is retried at the same offsets)."""
        try:
            if self._meta_stale and (self._w.buf or any(wf.buf for wf in self._rolled)):
                # records must never reach a file the metadata doesn't name yet
                self._persist_quick_locked(strict=True)
            for wf in self._rolled:
                if wf.buf:
                    self._write_file(wf)
            if self._w.buf:
                self._write_file(self._w)
        except BaseException:
            self._unflushed = sum(len(wf.buf) for wf in self._rolled) + len(self._w.buf)
            raise
        self._unflushed = 0

    def _flush_or_raise_locked(self) -> None:
        try:
            self._flush_locked()
        except OSError as e:
            self._werr = e
            raise
        self._werr = None

    def _flush_bg_locked(self) -> None:
        """Flush where the caller cannot report an error: keep the records buffered,
        remember the error for the next put."""
        try:
            self._flush_locked()
        except OSError as e:
            self._write_failed(e)
        else:
            self._werr = None

    def _write_failed(self, e: OSError) -> None:
        if self._werr is None:      # log once per failure episode, not on every retry
            self._log("ERROR", f"DISKQUEUE({self.name}) failed to write - {e}")
        self._werr = e

    def flush(self) -> None:
        """Hand all buffered records to the OS now (raises OSError)."""
        with self._lock:
            self._flush_or_raise_locked()

    def _schedule_flush(self) -> None:
        # the loop is cached: asyncio's get_running_loop() costs a getpid() syscall
        loop = self._loop
        if loop is None or loop.is_closed():
            loop = self._loop = _get_running_loop()
        if loop is not None:
            self._flush_scheduled = True
            loop.call_soon(self._auto_flush)

    def _auto_flush(self) -> None:
        self._flush_scheduled = False
        if self._closed or not self._unflushed:
            return
        with self._lock:
            self._flush_bg_locked()

    # -- reading ----------------------------------------------------------------------------
    def _close_reader(self) -> None:
        r = self._reader
        if r is not None:
            self._reader = None
            self._read_end = None
            try:
                r.close()
            except OSError:
                pass

    def _next_read_file_locked(self) -> None:
        """The current read file is complete and fully read: delete it, go to the next."""
        old = self._rfn
        self._close_reader()
        self._rfn = old + 1
        self._rpos = 0
        self._need_sync = True
        self._meta_stale = True
        self._ends.pop(old, None)
        self._remove_read_file(old)

    def _remove_read_file(self, num: int) -> None:
        """A data file fully read: delete it (a subclass may keep it a while longer)."""
        fn = self._file_name(num)
        try:
            os.remove(fn)
        except OSError as e:
            self._log("ERROR", f"DISKQUEUE({self.name}) failed to Remove({fn}) - {e}")

    def _open_reader(self):
        fn = self._file_name(self._rfn)
        f = open(fn, "rb", buffering=READ_BUFFER_SIZE)
        try:
            self._log("INFO", f"DISKQUEUE({self.name}): readOne() opened {fn}")
            if self._rpos > 0:
                f.seek(self._rpos)
            if self._rfn < self._wfn:
                end = self._ends.get(self._rfn)
                if end is None:
                    end = os.fstat(f.fileno()).st_size
                self._read_end = end
            else:
                self._read_end = None
        except BaseException:
            f.close()
            raise
        self._reader = f
        return f

    def _unwritten_at(self, rfn: int, rpos: int) -> bool:
        """Is the record at (rfn, rpos) still only in a write buffer?"""
        w = self._w
        if w.num == rfn:
            return rpos >= w.flushed and bool(w.buf)
        for wf in self._rolled:
            if wf.num == rfn:
                return rpos >= wf.flushed and bool(wf.buf)
        return False

    def get(self):
        """Next record's payload (advancing the read position) or None if empty."""
        if self._closed:
            return None
        if self._sync_waiting:
            self._handoff.wait()
        while True:
            rfn = self._rfn
            rpos = self._rpos
            wfn = self._wfn
            if rfn >= wfn:
                if rfn > wfn or rpos > self._wpos:
                    with self._lock:
                        self._check_tail_locked()
                        if self._meta_stale:
                            self._persist_quick_locked()
                    return None
                if rpos == self._wpos:
                    return None
            if rfn < wfn:
                if self._rolled and self._unwritten_at(rfn, rpos):
                    if not self._flush_for_read():
                        return None
            elif rpos >= self._w.flushed:
                if not self._flush_for_read():
                    return None
            r = self._reader
            if r is None:
                try:
                    r = self._open_reader()
                except OSError as e:
                    self._read_error(rpos, e)
                    continue
            if rfn < wfn and rpos >= self._read_end:
                with self._lock:
                    self._next_read_file_locked()
                    self._check_tail_locked()
                    self._persist_quick_locked()
                continue
            hdr = r.read(4)
            if len(hdr) != 4:
                self._read_error(rpos, "EOF" if not hdr else "unexpected EOF")
                continue
            n = _unpack_len(hdr)[0]
            if n < self.min_msg_size or n > self.max_msg_size:
                self._read_error(rpos, f"invalid message read size ({n})")
                continue
            data = r.read(n)
            if len(data) != n:
                self._read_error(rpos, "unexpected EOF")
                continue
            with self._lock:
                rpos += 4 + n
                self._rpos = rpos
                self._depth -= 1
                self._nread += 1
                self._count += 1
                if rfn < self._wfn:
                    if rpos >= self._read_end:
                        self._next_read_file_locked()
                        self._check_tail_locked()
                        self._persist_quick_locked()
                elif rpos >= self._wpos:
                    self._check_tail_locked()
                    if self._meta_stale:
                        self._persist_quick_locked()
            return data

    def get_many(self, max_n: int) -> list:
        """Up to ``max_n`` payloads, exactly as that many :meth:`get` calls would return
        them, but records well inside the readable part of the current read file are
        parsed in bulk (one read, one lock).  Every boundary case (file end, write
        position, unflushed data, errors) is left to :meth:`get`."""
        out = []
        while len(out) < max_n:
            got = self._get_bulk(max_n - len(out))
            if got:
                out += got
                continue
            data = self.get()
            if data is None:
                break
            out.append(data)
        return out

    def _get_bulk(self, max_n: int):
        r = self._reader
        if r is None or self._closed or self._sync_waiting:
            return None
        rfn = self._rfn
        rpos = self._rpos
        if rfn < self._wfn:
            limit = self._read_end
            if limit is None:
                return None
            for wf in self._rolled:
                if wf.num == rfn and wf.buf:
                    limit = min(limit, wf.flushed)
        else:
            limit = min(self._w.flushed, self._wpos)
        avail = limit - rpos
        if avail < 64:
            return None
        try:
            chunk = r.read(min(avail, READ_BUFFER_SIZE))
        except OSError:
            return None                  # get() meets the error again and handles it
        n_chunk = len(chunk)
        lo, hi = self.min_msg_size, self.max_msg_size
        unpack = _len.unpack_from
        out = []
        pos = 0
        while len(out) < max_n and pos + 4 <= n_chunk:
            n = unpack(chunk, pos)[0]
            end = pos + 4 + n
            # the last record before the limit is left to get() (tail bookkeeping)
            if n < lo or n > hi or end > n_chunk or rpos + end >= limit:
                break
            out.append(chunk[pos + 4:end])
            pos = end
        if pos != n_chunk:
            r.seek(rpos + pos)
        if out:
            with self._lock:
                self._rpos = rpos + pos
                self._depth -= len(out)
                self._nread += len(out)
                self._count += len(out)
        return out

    def _flush_for_read(self) -> bool:
        with self._lock:
            try:
                self._flush_locked()
            except OSError as e:
                self._write_failed(e)
                return False
            self._werr = None
            return True

    def _close_write_files_locked(self) -> None:
        for wf in (*self._rolled, self._w):
            if wf.fd is not None:
                try:
                    os.close(wf.fd)
                except OSError:
                    pass
                wf.fd = None
        self._rolled.clear()

    # -- empty / close / delete -------------------------------------------------------------
    def empty(self) -> None:
        """Destructively drop everything: data files readFileNum..writeFileNum and the
        metadata file; the next write starts at writeFileNum+1."""
        if self._closed:
            raise DiskQueueError("exiting")
        self._log("INFO", f"DISKQUEUE({self.name}): emptying")
        with self._lock:
            err = self._skip_to_next_rw_file_locked()
            try:
                os.remove(self._meta_path)
            except FileNotFoundError:
                pass
            except OSError as e:
                self._log("ERROR", f"DISKQUEUE({self.name}) failed to remove metadata file - {e}")
                err = e
            self._gen += 1
            self._count = 0
            self._need_sync = False
            self._meta_stale = True     # written again before the next record lands
        if err is not None:
            raise err

    def close(self) -> None:
        """Flush, fsync, persist metadata, close files."""
        if self._closed:
            return
        self._log("INFO", f"DISKQUEUE({self.name}): closing")
        self._closed = True
        self._log("INFO", f"DISKQUEUE({self.name}): closing ... ioLoop")
        self._close_reader()
        try:
            self._sync()
        except OSError as e:
            # like go-diskqueue's Close: reported, not fatal (nsqd goes on closing the
            # other queues); what was still buffered could not be written
            self._log("ERROR", f"DISKQUEUE({self.name}) failed to close - {e} "
                               f"({self._buffered_records()} messages not written)")
        finally:
            with self._lock:
                self._close_write_files_locked()

    def delete(self) -> None:
        """empty() then close without persisting metadata: no files remain."""
        if self._closed:
            return
        try:
            self.empty()
        finally:
            self._log("INFO", f"DISKQUEUE({self.name}): deleting")
            with self._lock:
                self._closed = True
                self._deleted = True
                self._gen += 1
                self._close_reader()
                self._close_write_files_locked()
            self._log("INFO", f"DISKQUEUE({self.name}): closing ... ioLoop")

    # -- sync -------------------------------------------------------------------------------
    def sync(self) -> None:
        """fsync the data written so far and persist the metadata atomically.
        Safe to call from a worker thread while the loop thread keeps using the queue."""
        if self._closed:
            return
        self._sync()

    def _sync(self) -> None:
        with self._sync_lock:
            self._handoff.clear()
            self._sync_waiting = True
            try:
                with self._lock:
                    if self._deleted:
                        return
                    try:
                        self._flush_locked()
                    except OSError as e:
                        self._werr = e
                        self._need_sync = True
                        self._log("ERROR", f"DISKQUEUE({self.name}) failed to sync - {e}")
                        raise
                    self._werr = None
                    meta = self._meta_locked(self._wpos)
                    gen = self._gen
                    self._meta_seq += 1
                    seq = self._meta_seq
                    self._meta_stale = False
                    rolled = self._rolled
                    self._rolled = []
                    fd = self._w.fd
                    cur = os.dup(fd) if fd is not None else None
                    self._count = 0
                    self._need_sync = False
            finally:
                self._sync_waiting = False
                self._handoff.set()
            try:
                err = None
                for wf in rolled:
                    if wf.fd is None:
                        continue
                    try:
                        _fsync(wf.fd)
                    except OSError as e:
                        err = err or e
                    finally:
                        os.close(wf.fd)
                        wf.fd = None
                if cur is not None:
                    try:
                        _fsync(cur)
                    finally:
                        os.close(cur)
                if err is not None:
                    raise err
                self._persist_metadata(meta, gen, seq)
            except OSError as e:
                self._need_sync = True
                self._meta_stale = True
                self._log("ERROR", f"DISKQUEUE({self.name}) failed to sync - {e}")
                raise

    def _fsync_meta(self, fd: int) -> None:
        _fsync(fd)      # through the module-level indirection (tests inject failures)

    def __repr__(self) -> str:
        return (f"<DiskQueue {self.name!r} depth={self._depth} read={self._rfn},{self._rpos} "
                f"write={self._wfn},{self._wpos}>")
