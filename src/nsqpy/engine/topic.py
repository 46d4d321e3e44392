"""A topic: accepts published messages and copies each to every channel.

While the topic has channels and is not paused, a published message is copied to the
channels at once (the Go pump with nothing waiting in front of it).  Otherwise it waits
in the topic's memory queue (up to ``--mem-queue-size``) or disk queue, and a drain
moves the backlog to the channels once there are some.
"""
import time
from collections import deque

from ..protocol.ids import IDGenerationError, IDGenerator, seq_hex
from .backend import BackendError
from .channel import Channel
from .message import RECORD_HEAD, frame_head, to_record

_RECORD_HEAD = RECORD_HEAD.pack
DRAIN_BATCH = 512                # backlog messages moved per loop turn (keeps the loop responsive)


class TopicError(Exception):
    """The topic refused a publish; str() is the reason (e.g. ``exiting``)."""


class Topic:
    def __init__(self, name: str, broker):
        self.name = name
        self.broker = broker
        self.ephemeral = name.endswith("#ephemeral")
        opts = broker.opts
        self.mem_queue_size = opts.mem_queue_size
        self.memory = deque()
        self.backend = broker.make_backend(name, self.ephemeral)
        self.channels = {}
        self.paused = False
        self.started = True           # False while channels known to lookupd are being created
        self.exiting = False
        self.message_count = 0
        self.message_bytes = 0
        self.idgen = IDGenerator(opts.id)
        self._drain_scheduled = False

    def depth(self) -> int:
        return len(self.memory) + self.backend.depth

    # -- publishing --------------------------------------------------------------------------
    def put(self, body: bytes, defer_ms: int = 0) -> None:
        """One message (HTTP /pub, TCP PUB/DPUB): put_many's rules, without its lists."""
        if self.exiting:
            raise TopicError("exiting")
        now = time.time_ns()
        try:
            ident = self.idgen.one()
        except IDGenerationError:
            self.put_many((body,), defer_ms)     # sleeps and retries
            return
        n = len(body)
        memory = self.memory
        channels = self.channels
        if channels and not memory and not self.paused and self.started and (
                self.mem_queue_size or defer_ms or self.ephemeral):
            frame = frame_head(n, now) + ident + body
            for ch in channels.values():
                ch.put(frame, defer_ms)
        else:
            if len(memory) < self.mem_queue_size:
                frame = frame_head(n, now) + ident + body
                memory.append((frame, defer_ms) if defer_ms else frame)
            else:
                self.backend.put(_RECORD_HEAD(now, 0) + ident + body)
            if not self._drain_scheduled and channels:
                self.schedule_drain()
        self.message_count += 1
        self.message_bytes += n

    def put_many(self, bodies, defer_ms: int = 0) -> None:
        """Publish bodies atomically with respect to validation (all accepted or error)."""
        if self.exiting:
            raise TopicError("exiting")
        channels = self.channels
        direct = bool(channels) and not self.paused and self.started and bool(
            self.mem_queue_size or defer_ms or self.ephemeral) and not self.memory
        total = len(bodies)
        # what stays in memory is a frame; what goes straight to this topic's disk queue
        # is encoded as a disk record at once (no frame to convert)
        n_frames = total if direct else min(total, max(self.mem_queue_size - len(self.memory), 0))
        frames, records, nbytes = self._encode(bodies, n_frames)
        if direct:
            # every channel gets the same (immutable) frame objects
            if defer_ms:
                for ch in channels.values():
                    for frame in frames:
                        ch.put(frame, defer_ms)
            else:
                for ch in channels.values():
                    ch.put_many(frames)
        else:
            if records:                  # first: if the disk refuses, nothing is accepted
                self.backend.put_many(records)
            if frames:
                if defer_ms:     # a DPUB waiting in memory keeps its delay (on disk it doesn't)
                    self.memory.extend((f, defer_ms) for f in frames)
                else:
                    self.memory.extend(frames)
            self.schedule_drain()
        self.message_count += total
        self.message_bytes += nbytes

    def _encode(self, bodies, n_frames: int):
        """New ids for ``bodies``: the first ``n_frames`` as first-delivery frames, the
        rest as disk records (attempts 0).  Returns (frames, records, body bytes)."""
        now = time.time_ns()
        reserve = self.idgen.reserve
        hexes = seq_hex()
        frames = []
        records = []
        nbytes = 0
        total = len(bodies)
        done = 0
        while done < total:
            try:
                prefix, seq, count = reserve(total - done)
            except IDGenerationError:
                time.sleep(0.001)            # the clock unit is ~1 ms; upstream sleeps the same
                continue
            head_len = -1
            head = b""
            record_head = _RECORD_HEAD(now, 0) + prefix
            i = done
            for body in bodies[done:done + count] if done or count < total else bodies:
                n = len(body)
                if i < n_frames:
                    if n != head_len:        # equal sizes share one header + id prefix
                        head = frame_head(n, now) + prefix
                        head_len = n
                    frames.append(head + hexes[seq] + body)
                else:
                    records.append(record_head + hexes[seq] + body)
                seq += 1
                i += 1
                nbytes += n
            done += count
        return frames, records, nbytes

    # -- moving the backlog to channels --------------------------------------------------------
    def schedule_drain(self) -> None:
        if (not self._drain_scheduled and self.channels and not self.paused and self.started
                and not self.exiting and self.depth()):
            self._drain_scheduled = True
            self.broker.running_loop().call_soon(self._drain)

    def _drain(self) -> None:
        self._drain_scheduled = False
        memory = self.memory
        backend = self.backend
        for _ in range(DRAIN_BATCH):
            if not self.channels or self.paused or self.exiting or not self.started:
                return
            defer_ms = 0
            if memory:
                frame = memory.popleft()
                if frame.__class__ is tuple:
                    frame, defer_ms = frame
            elif backend.depth:
                datas = backend.get_many(DRAIN_BATCH)
                if not datas:                # the disk queue cannot read right now
                    return                   # (the next publish schedules another drain)
                # a deferred delay is not on disk (upstream quirk)
                for ch in self.channels.values():
                    ch.put_records(datas)
                break
            else:
                return
            for ch in self.channels.values():
                ch.put(frame, defer_ms)
        self.schedule_drain()

    # -- channels ------------------------------------------------------------------------------
    def get_channel(self, name: str) -> Channel:
        ch = self.channels.get(name)
        if ch is None:
            ch = Channel(self, name, self.broker)
            self.channels[name] = ch
            self.broker.log.info(f"TOPIC({self.name}): new channel({name})")
            self.broker.channel_created(self, ch)
            self.schedule_drain()
        return ch

    def delete_channel(self, name: str) -> bool:
        ch = self.channels.pop(name, None)
        if ch is None:
            return False
        ch.close(delete=True)
        self.broker.channel_deleted(self, ch)
        if self.ephemeral and not self.channels and not self.exiting:
            self.broker.delete_topic(self.name)
        return True

    # -- admin ---------------------------------------------------------------------------------
    def start(self) -> None:
        """Begin copying to channels (after lookupd's channels for it were created)."""
        self.started = True
        self.schedule_drain()

    def pause(self) -> None:
        self.paused = True

    def unpause(self) -> None:
        self.paused = False
        self.schedule_drain()

    def empty(self) -> None:
        self.memory.clear()
        self.backend.empty()

    def close(self, delete: bool = False) -> None:
        if self.exiting:
            return
        self.exiting = True
        self.broker.log.info(f"TOPIC({self.name}): {'deleting' if delete else 'closing'}")
        for ch in list(self.channels.values()):
            ch.close(delete=delete)
        if delete:
            self.channels.clear()
            self.memory.clear()
            self.backend.delete()
            return
        if self.memory:
            try:
                self.backend.put_many([to_record(f if f.__class__ is bytes else f[0])
                                       for f in self.memory])
            except BackendError as e:
                self.broker.log.error(f"TOPIC({self.name}): failed to flush messages to backend - {e}")
            self.memory.clear()
        self.backend.close()
