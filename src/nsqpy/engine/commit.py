"""nsqd --durable: group commit, and disk queues whose read position waits for it.

:class:`GroupCommit` is the broker's single commit pipeline.  A publish writes its
records to the topic's disk queue at once and asks for the *next* commit step
(:meth:`GroupCommit.request`); a step

1. on the loop thread, notes every durable queue's read position (its *mark*) and takes
   the pending journal appends;
2. in a worker thread, fsyncs every dirty disk queue (data, then its metadata), then the
   journals (so a journal record saying "back in the queue" is never durable before
   the queue data it refers to);
3. back on the loop thread, makes each queue's mark its *committed* read position and
   calls everyone who asked before the step started.

Everything written before a step started is on disk when it ends; requests arriving
meanwhile wait for the next step, so one fsync covers any number of pipelined publishes.

:class:`DurableDiskQueue` persists only the committed read position in its metadata
(``_meta_locked``) and keeps fully read data files until metadata naming a later file
has been fsynced.  A message read from a queue is therefore always in at least one
fsynced place: the queue (at or after the persisted read position), a channel's queue
(the topic -> channel copy), or the channel's journal (in flight / deferred).
"""
import asyncio
import os
import time
from time import monotonic

from .diskqueue import DiskQueue
from .journal import Journal
from .message import from_record, to_record

__all__ = ["DurableDiskQueue", "GroupCommit"]

IDLE_COMMIT_INTERVAL = 0.1     # journals / read positions with no publisher waiting


class DurableDiskQueue(DiskQueue):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._depth = self._count_records()
        self._committed = (self._rfn, self._rpos, self._nread)
        self._kept = []                # fully read files not yet deletable

    def _count_records(self) -> int:
        """The real number of records from the read position on.  After a crash the
        files hold records written after the last metadata (and, here, records read
        again from the committed position); the metadata's depth would be too small and
        the engine stops reading a queue whose depth is 0."""
        n = 0
        for num in range(self._rfn, self._wfn + 1):
            try:
                f = open(self._file_name(num), "rb")
            except FileNotFoundError:
                continue
            except OSError:
                return self._depth
            with f:
                end = os.fstat(f.fileno()).st_size
                pos = self._rpos if num == self._rfn else 0
                f.seek(pos)
                while True:
                    hdr = f.read(4)
                    if len(hdr) < 4:
                        break
                    size = int.from_bytes(hdr, "big", signed=True)
                    if (size < self.min_msg_size or size > self.max_msg_size
                            or pos + 4 + size > end):
                        break
                    pos += 4 + size
                    f.seek(pos)
                    n += 1
        return n

    # called on the loop thread
    def read_mark(self):
        return (self._rfn, self._rpos, self._nread)

    def committed_file(self) -> int:
        return self._committed[0]

    def commit_read(self, mark) -> None:
        """``mark`` is covered by fsynced journals/queues: persist it from now on."""
        with self._lock:
            if mark != self._committed and not self._closed:
                self._committed = mark
                self._need_sync = True      # the next sync (step or timer) persists it

    def drop_kept_files(self, before: int) -> None:
        """Delete the kept data files numbered below ``before`` (metadata naming file
        ``before`` or later is durable)."""
        keep = []
        for num in self._kept:
            if num < before:
                DiskQueue._remove_read_file(self, num)
            else:
                keep.append(num)
        self._kept = keep

    def release(self) -> None:
        """Clean close: everything read is safe elsewhere; persist the real position."""
        with self._lock:
            self._committed = (self._rfn, self._rpos, self._nread)
        self.drop_kept_files(self._rfn)

    def close(self) -> None:
        if not self._closed:
            self.release()
        super().close()

    # DiskQueue hooks
    def _meta_locked(self, wpos: int) -> bytes:
        rfn, rpos, nread = self._committed
        depth = self._depth + (self._nread - nread)
        return b"%d\n%d,%d\n%d,%d\n" % (depth, rfn, rpos, self._wfn, wpos)

    def _remove_read_file(self, num: int) -> None:
        self._kept.append(num)

    def _skip_to_next_rw_file_locked(self):
        err = super()._skip_to_next_rw_file_locked()     # empty() / tail corruption
        self._committed = (self._rfn, self._rpos, self._nread)
        for num in self._kept:
            DiskQueue._remove_read_file(self, num)
        self._kept = []
        return err


class GroupCommit:
    def __init__(self, broker):
        self.broker = broker
        self.log = broker.log
        self.journals = {}             # Journal -> channel (for compaction snapshots)
        self.started = 0               # steps started
        self.finished = 0              # steps finished
        self.running = False
        self.scheduled = False
        self.waiters = []              # (step, callback(step, ok))
        self.stats = {"commits": 0, "fsyncs": 0, "acks": 0}
        self._task = None

    # -- asking -------------------------------------------------------------------------------
    def request(self, callback) -> int:
        """Call ``callback(step, ok)`` once everything written so far is fsynced;
        returns the step that will cover it."""
        step = self.started + 1
        self.waiters.append((step, callback))
        self._schedule()
        return step

    def wait(self):
        """An awaitable for HTTP handlers: True once the writes so far are fsynced."""
        fut = asyncio.get_running_loop().create_future()

        def done(step, ok):
            if not fut.done():
                fut.set_result(ok)
        self.request(done)
        return fut

    def _schedule(self) -> None:
        if not self.running and not self.scheduled:
            self.scheduled = True
            # call_soon: the rest of this read's pipelined commands join the same step
            asyncio.get_running_loop().call_soon(self._start)

    # -- channels -------------------------------------------------------------------------------
    def open_journal(self, channel) -> None:
        """Give a new durable channel its journal, first replaying what a previous run left:
        in-flight messages go back into the queue, deferred ones are deferred again."""
        dq = channel.backend.dq
        path = os.path.join(dq.data_path, f"{dq.name}.journal.dat")
        journal = Journal(path, self.log)
        live = journal.replay()
        if live:
            now = time.time_ns()
            back = []
            deferred = []
            for rec, due in live.values():
                if due > now:
                    deferred.append((rec, due))
                else:
                    back.append(rec)
            if back:
                channel.backend.put_many(back)
                dq.sync()              # in the queue for good before the journal forgets them
            for rec, due in deferred:
                channel._defer(from_record(rec), max((due - now) // 1_000_000, 1))
            journal.rewrite(deferred)  # now holds exactly the deferred ones
            self.log.info(f"DURABLE: CHANNEL({channel.name}): journal replayed, {len(back)} "
                          f"in-flight messages requeued, {len(deferred)} deferred")
        channel.journal = journal
        self.journals[journal] = channel

    def close_journal(self, channel) -> None:
        journal = channel.journal
        channel.journal = None
        self.journals.pop(journal, None)
        journal.close(remove=True)

    @staticmethod
    def live_records(channel):
        """The channel's in-flight and deferred messages as (record, due wall ns)."""
        out = [(entry[0][8:], 0) for entry in channel.in_flight.values()]
        if channel.deferred:
            now_m, now_w = monotonic(), time.time_ns()
            out += [(to_record(frame), now_w + max(int((due - now_m) * 1e9), 0))
                    for due, _, frame in channel.deferred]
        return out

    # -- the step -------------------------------------------------------------------------------
    def _durable_queues(self):
        for backend in list(self.broker.backends):
            dq = backend.dq
            if isinstance(dq, DurableDiskQueue):
                yield dq

    def _dirty(self) -> bool:
        if any(j.pending() for j in self.journals):
            return True
        for dq in self._durable_queues():
            if not dq._closed and (dq.dirty() or dq.read_mark() != dq._committed):
                return True
        return False

    def _start(self) -> None:
        self.scheduled = False
        if self.running:
            return
        self.started += 1
        self.running = True
        marks = []
        dqs = []
        for dq in self._durable_queues():
            if dq._closed:
                continue
            mark = dq.read_mark()
            if mark != dq._committed:
                marks.append((dq, mark))
            if dq.dirty():
                dqs.append((dq, dq.committed_file()))
        journals = []
        for j, ch in list(self.journals.items()):
            if j.pending():
                journals.append((j, *j.take(lambda ch=ch: self.live_records(ch))))
        fut = asyncio.get_running_loop().run_in_executor(None, self._work, dqs, journals)
        fut.add_done_callback(lambda f: self._finish(f, marks, dqs))

    def _work(self, dqs, journals) -> int:
        fsyncs = 0
        for dq, _ in dqs:
            if not dq._closed:
                dq.sync()
                fsyncs += 2                # data file + metadata temp file
        for j, snap, data in journals:
            fsyncs += j.write_and_sync(snap, data)
        return fsyncs

    def _finish(self, fut, marks, dqs) -> None:
        self.running = False
        step = self.started
        exc = fut.exception()
        ok = exc is None
        if ok:
            self.stats["commits"] += 1
            self.stats["fsyncs"] += fut.result()
            for dq, mark in marks:
                dq.commit_read(mark)
            for dq, persisted_file in dqs:
                dq.drop_kept_files(persisted_file)
        else:
            self.log.error(f"DURABLE: commit failed - {exc}")
            self.broker.disk_failed(exc)
        self.finished = step
        waiters = self.waiters
        ready = [w for w in waiters if w[0] <= step]
        if ready:
            self.waiters = [w for w in waiters if w[0] > step]
            self.stats["acks"] += len(ready)
            for _, cb in ready:
                try:
                    cb(step, ok)
                except Exception as e:      # never let one waiter stop the others
                    self.log.error(f"DURABLE: commit callback failed - {e!r}")
        if self.waiters and not self.broker.exiting:
            self._schedule()

    # -- background -----------------------------------------------------------------------------
    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._idle_loop())

    async def _idle_loop(self) -> None:
        """Commit journals and read positions when no publisher drives the steps."""
        while True:
            await asyncio.sleep(IDLE_COMMIT_INTERVAL)
            if not self.running and not self.scheduled and self._dirty():
                self._schedule()

    def close(self) -> None:
        """Clean stop (after every queue was closed, i.e. fsynced): release the waiters."""
        if self._task is not None:
            self._task.cancel()
        waiters, self.waiters = self.waiters, []
        for _, cb in waiters:
            try:
                cb(self.started, True)
            except Exception:
                pass

    def snapshot_stats(self) -> dict:
        return dict(self.stats, step=self.finished, time=time.time())
