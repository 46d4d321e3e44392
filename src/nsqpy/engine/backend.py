"""The disk side of a topic or channel queue.

:class:`Backend` wraps a :class:`~nsqpy.engine.diskqueue.DiskQueue`: it reports write
failures to the broker (nsqd turns unhealthy until the next good write) and hands
fsyncs to a worker thread so the event loop never waits on the disk.
:class:`NullBackend` is the sink of ``#ephemeral`` topics and channels.
"""
import asyncio

from .diskqueue import DiskQueue


class BackendError(Exception):
    """A disk write failed; str() is the OS error text."""


class Backend:
    __slots__ = ("dq", "broker", "syncing")

    def __init__(self, dq: DiskQueue, broker):
        self.dq = dq
        self.broker = broker
        self.syncing = False

    @property
    def depth(self) -> int:
        return self.dq.depth

    def put(self, data: bytes) -> None:
        try:
            self.dq.put(data)
        except OSError as e:
            self._write_failed(e)
        self._written()

    def put_many(self, datas) -> None:
        try:
            self.dq.put_many(datas)
        except OSError as e:
            self._write_failed(e)
        self._written()

    def _write_failed(self, e: OSError) -> None:
        self.broker.disk_failed(e)
        raise BackendError(str(e)) from e

    def _written(self) -> None:
        broker = self.broker
        if broker.health_error is not None:
            broker.disk_ok()
        broker.dirty_backends.add(self)        # the --sync-timeout timer looks only at these
        if self.dq.sync_due():
            self.sync_soon()

    def get(self):
        data = self.dq.get()
        self.broker.dirty_backends.add(self)
        if self.dq.sync_due():
            self.sync_soon()
        return data

    def get_many(self, max_n: int) -> list:
        datas = self.dq.get_many(max_n)
        self.broker.dirty_backends.add(self)
        if self.dq.sync_due():
            self.sync_soon()
        return datas

    def sync_soon(self) -> None:
        """fsync in a worker thread; at most one at a time per queue."""
        if self.syncing:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.dq.sync()
            return
        self.syncing = True
        fut = loop.run_in_executor(None, self.dq.sync)
        fut.add_done_callback(self._synced)

    def _synced(self, fut) -> None:
        self.syncing = False
        exc = fut.exception()
        if exc is not None:
            self.broker.log.error(f"DISKQUEUE({self.dq.name}): sync failed - {exc}")
        if self.dq.dirty():                    # failed, or written while syncing: next tick
            self.broker.dirty_backends.add(self)

    def sync_if_dirty(self) -> None:
        """The --sync-timeout rule; a queue busy syncing is looked at again by _synced."""
        if self.dq.dirty():
            self.sync_soon()

    def empty(self) -> None:
        self.dq.empty()

    def close(self) -> None:
        self.dq.close()

    def delete(self) -> None:
        self.broker.backends.discard(self)
        self.broker.dirty_backends.discard(self)
        self.dq.delete()


class NullBackend:
    """Ephemeral queues: overflow beyond the memory queue is discarded."""
    __slots__ = ()
    depth = 0

    def put(self, data: bytes) -> None:
        pass

    def put_many(self, datas) -> None:
        pass

    def get(self):
        return None

    def get_many(self, max_n: int) -> list:
        return []

    def sync_soon(self) -> None:
        pass

    def sync_if_dirty(self) -> None:
        pass

    def empty(self) -> None:
        pass

    def close(self) -> None:
        pass

    def delete(self) -> None:
        pass
