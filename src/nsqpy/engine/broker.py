"""The broker: every topic of one nsqd, their metadata file, and the background work.

It owns topic creation and deletion, ``nsqd.dat`` (storage.md §4-5), health (a failed disk
write makes nsqd unhealthy until the next good one), the 100 ms queue scanner that times
out in-flight messages and releases deferred ones, the ``--sync-timeout`` fsync timer, and
the clean-stop flush.  It knows nothing of sockets: listeners subscribe to topology changes
through :attr:`listeners`.
"""
import asyncio
import json
import os
import threading
import time

from ..protocol.names import is_valid_channel_name, is_valid_topic_name
from .backend import Backend, NullBackend
from .diskqueue import DiskQueue
from .e2e import E2EStream
from .topic import Topic

QUEUE_SCAN_INTERVAL = 0.1        # upstream's queueScanInterval
METADATA_FILE = "nsqd.dat"
META_PACING = 10                 # coalesced nsqd.dat rewrites: wait 10x the last snapshot's cost
MIN_RECORD_SIZE = 26             # smallest valid disk record: the message header


class MetadataError(Exception):
    pass


class Broker:
    def __init__(self, opts, log):
        self.opts = opts
        self.log = log
        self.topics = {}
        self.health_error = None
        self.data_path = opts.data_path or ""
        self.loading = False
        self.exiting = False
        self.listeners = []            # callables(event, topic, channel_or_None)
        self.topic_starter = None      # callable(topic) that later calls topic.start()
        self.backends = set()          # every disk backend (--durable commits look at all)
        self.dirty_backends = set()    # disk backends written or read since the sync timer
                                       # last looked: an idle queue costs the timer nothing
        self.scan_set = set()          # channels holding in-flight or deferred messages
        self._scan_wakeup = None       # set while the scanner sleeps with nothing to scan
        self._loop = None              # see running_loop()
        self._meta_lock = threading.Lock()
        self._meta_state = 0           # 0 idle, 1 writing (or pacing), 2 and dirty again
        self._meta_cost = 0.0          # seconds the last nsqd.dat snapshot took on the loop
        self._tasks = []
        # --durable: every queued message goes through the disk queues, publishes are
        # acknowledged after a group commit (engine/commit.py, docs/durability.md)
        self.committer = None
        if getattr(opts, "durable", False):
            from .commit import GroupCommit      # (only durable nsqds load it)
            opts.mem_queue_size = 0
            self.committer = GroupCommit(self)

    # -- health --------------------------------------------------------------------------
    @property
    def health(self) -> str:
        return "OK" if self.health_error is None else f"NOK - {self.health_error}"

    def is_healthy(self) -> bool:
        return self.health_error is None

    def disk_failed(self, err: Exception) -> None:
        self.health_error = str(err)

    def disk_ok(self) -> None:
        self.health_error = None

    # -- factories used by topics and channels ----------------------------------------------
    def make_backend(self, name: str, ephemeral: bool):
        if ephemeral:
            return NullBackend()
        opts = self.opts
        if self.committer is None:
            queue_class = DiskQueue
        else:
            from .commit import DurableDiskQueue
            queue_class = DurableDiskQueue
        dq = queue_class(name, self.data_path or ".", opts.max_bytes_per_file, MIN_RECORD_SIZE,
                         opts.max_msg_size + MIN_RECORD_SIZE, opts.sync_every,
                         opts.sync_timeout / 1e9, log=self.log.log)
        backend = Backend(dq, self)
        self.backends.add(backend)
        if dq.dirty():
            self.dirty_backends.add(backend)
        return backend

    def new_e2e_stream(self):
        pcts = self.opts.e2e_processing_latency_percentiles
        if not pcts:
            return None
        return E2EStream(pcts, self.opts.e2e_processing_latency_window_time)

    # -- topics --------------------------------------------------------------------------------
    def get_topic(self, name: str) -> Topic:
        topic = self.topics.get(name)
        if topic is not None:
            return topic
        topic = Topic(name, self)
        self.topics[name] = topic
        self.log.info(f"TOPIC({name}): created")
        if self.topic_starter is not None and not self.loading and not topic.ephemeral:
            topic.started = False
            self.topic_starter(topic)      # creates lookupd's channels, then topic.start()
        self._notify("topic_created", topic, None)
        return topic

    def get_existing_topic(self, name: str):
        return self.topics.get(name)

    def delete_topic(self, name: str) -> bool:
        topic = self.topics.get(name)
        if topic is None:
            return False
        topic.close(delete=True)
        self.topics.pop(name, None)
        self._notify("topic_deleted", topic, None)
        return True

    def channel_created(self, topic, channel) -> None:
        self._notify("channel_created", topic, channel)

    def channel_deleted(self, topic, channel) -> None:
        self._notify("channel_deleted", topic, channel)

    def _notify(self, event: str, topic, channel) -> None:
        if self.loading:
            return
        for fn in self.listeners:
            fn(event, topic, channel)
        if not (topic.ephemeral or (channel is not None and channel.ephemeral)):
            self.persist_metadata_soon()

    def channels(self):
        for topic in list(self.topics.values()):
            yield from list(topic.channels.values())

    # -- metadata (nsqd.dat) ----------------------------------------------------------------------
    @property
    def metadata_path(self) -> str:
        return os.path.join(self.data_path, METADATA_FILE) if self.data_path else METADATA_FILE

    def metadata(self) -> dict:
        topics = []
        for topic in self.topics.values():
            if topic.ephemeral:
                continue
            chans = [{"name": ch.name, "paused": ch.paused}
                     for ch in topic.channels.values() if not ch.ephemeral]
            topics.append({"name": topic.name, "paused": topic.paused,
                           "channels": chans or None})
        return {"topics": topics or None, "version": self.opts_version()}

    @staticmethod
    def opts_version() -> str:
        from .. import NSQ_VERSION
        return NSQ_VERSION

    def persist_metadata(self) -> None:
        """Write nsqd.dat now (atomically: temp file, fsync, rename)."""
        self._write_metadata(json.dumps(self.metadata(), separators=(",", ":")).encode())

    def _write_metadata(self, data: bytes) -> None:
        with self._meta_lock:
            path = self.metadata_path
            self.log.info(f"NSQ: persisting topic/channel metadata to {path}")
            tmp = f"{path}.{int.from_bytes(os.urandom(4), 'big') >> 1}.tmp"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                try:
                    os.write(fd, data)
                    os.fsync(fd)
                finally:
                    os.close(fd)
                os.replace(tmp, path)
            except OSError:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass
                raise

    async def persist_metadata_now(self) -> None:
        """Write nsqd.dat before returning, the fsync in a worker thread."""
        data = json.dumps(self.metadata(), separators=(",", ":")).encode()
        await asyncio.get_running_loop().run_in_executor(None, self._write_metadata, data)

    def persist_metadata_soon(self) -> None:
        """Coalesced write from a worker thread, so the loop never waits on fsync."""
        if self._meta_state:
            self._meta_state = 2
            return
        self._meta_state = 1
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._meta_state = 0
            self.persist_metadata()
            return
        started = time.perf_counter()
        data = json.dumps(self.metadata(), separators=(",", ":")).encode()
        self._meta_cost = time.perf_counter() - started
        fut = loop.run_in_executor(None, self._write_metadata, data)
        fut.add_done_callback(self._metadata_written)

    def _metadata_written(self, fut) -> None:
        exc = fut.exception()
        if exc is not None:
            self.log.error(f"NSQ: failed to persist metadata - {exc}")
        if self._meta_state == 2 and not self.exiting:
            # changed again while writing: the next snapshot waits 10x what the last one
            # took on the loop, so creating thousands of topics is not quadratic in loop time
            self._meta_state = 1
            asyncio.get_running_loop().call_later(META_PACING * self._meta_cost,
                                                  self._persist_again)
        else:
            self._meta_state = 0

    def _persist_again(self) -> None:
        self._meta_state = 0
        if not self.exiting:
            self.persist_metadata_soon()

    def load_metadata(self) -> None:
        path = self.metadata_path
        try:
            with open(path, "rb") as f:
                raw = f.read()
        except FileNotFoundError:
            return
        except OSError as e:
            raise MetadataError(f"failed to read metadata from {path} - {e}") from e
        try:
            meta = json.loads(raw)
            topics = meta.get("topics") or []
            if not isinstance(topics, list):
                raise ValueError("topics is not a list")
        except (ValueError, AttributeError) as e:
            raise MetadataError(f"failed to parse metadata in {path} - {e}") from e
        self.loading = True
        try:
            for t in topics:
                name = t.get("name", "")
                if not is_valid_topic_name(name):
                    self.log.warning(f"skipping creation of invalid topic {name}")
                    continue
                topic = self.get_topic(name)
                if t.get("paused"):
                    topic.pause()
                for c in t.get("channels") or []:
                    cname = c.get("name", "")
                    if not is_valid_channel_name(cname):
                        self.log.warning(f"skipping creation of invalid channel {cname}")
                        continue
                    ch = topic.get_channel(cname)
                    if c.get("paused"):
                        ch.pause()
        finally:
            self.loading = False

    # -- background work ------------------------------------------------------------------------
    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._scan_loop()), loop.create_task(self._sync_loop())]
        for topic in self.topics.values():
            topic.schedule_drain()
        if self.committer is not None:
            self.committer.start()

    def running_loop(self):
        """The event loop, cached (asyncio.get_running_loop() makes a getpid() syscall,
        which costs more than a whole message on the hot paths that need the loop)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            loop = self._loop = asyncio.get_running_loop()
        return loop

    def want_scan(self, ch) -> None:
        """``ch`` holds in-flight or deferred messages: the scanner must look at it."""
        self.scan_set.add(ch)
        if self._scan_wakeup is not None:
            self._scan_wakeup.set()

    async def _scan_loop(self) -> None:
        while True:
            if not self.scan_set:             # nothing in flight or deferred anywhere:
                wakeup = self._scan_wakeup = asyncio.Event()   # sleep until there is
                await wakeup.wait()
                self._scan_wakeup = None
            await asyncio.sleep(QUEUE_SCAN_INTERVAL)
            now = time.monotonic()
            for ch in list(self.scan_set):
                if ch.exiting or not (ch.timeouts or ch.deferred):
                    self.scan_set.discard(ch)
                    continue
                try:
                    ch.scan(now)
                except Exception as e:  # never let one channel stop the scanner
                    self.log.error(f"QUEUESCAN: channel {ch.name} - {e!r}")

    async def _sync_loop(self) -> None:
        interval = max(self.opts.sync_timeout / 1e9, 0.01)
        while True:
            await asyncio.sleep(interval)
            dirty = self.dirty_backends
            if dirty:
                self.dirty_backends = set()
                for backend in dirty:
                    backend.sync_if_dirty()

    def close(self) -> None:
        """Clean stop: persist metadata, flush every queue to disk (storage.md §6)."""
        if self.exiting:
            return
        self.exiting = True
        try:
            self.persist_metadata()
        except OSError as e:
            self.log.error(f"NSQ: failed to persist metadata - {e}")
        self.log.info("NSQ: closing topics")
        for topic in list(self.topics.values()):
            topic.close()
        if self.committer is not None:
            self.committer.close()
        self.log.info("NSQ: stopping subsystems")
        for task in self._tasks:
            task.cancel()
        self.log.info("QUEUESCAN: closing")

