"""A topic: accepts published messages and copies each to every channel.

While the topic has channels and is not paused, a published message is copied to the
channels at once (the Go pump with nothing waiting in front of it).  Otherwise it waits
in the topic's memory queue (up to ``--mem-queue-size``) or disk queue, and a drain
moves the backlog to the channels once there are some.
"""
import asyncio
import time
from collections import deque

from ..protocol.ids import IDGenerationError, IDGenerator
from .channel import Channel
from .message import Message

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
    def _next_id(self) -> bytes:
        idgen = self.idgen
        while True:
            try:
                return idgen.next_id()
            except IDGenerationError:
                time.sleep(0.001)  # the clock unit is ~1 ms; upstream sleeps the same

    def put(self, body: bytes, defer_ms: int = 0) -> None:
        self.put_many((body,), defer_ms)

    def put_many(self, bodies, defer_ms: int = 0) -> None:
        """Publish bodies atomically with respect to validation (all accepted or error)."""
        if self.exiting:
            raise TopicError("exiting")
        now = time.time_ns()
        next_id = self.idgen.next_id
        msgs = []
        nbytes = 0
        for body in bodies:
            try:
                mid = next_id()
            except IDGenerationError:
                mid = self._next_id()
            msgs.append(Message(mid, body, now, 0, defer_ms))
            nbytes += len(body)
        channels = self.channels
        if channels and not self.paused and self.started and (
                self.mem_queue_size or defer_ms or self.ephemeral) and not self.memory:
            if len(channels) == 1:
                (ch,) = channels.values()
                for msg in msgs:
                    ch.put(msg)
            else:
                chans = list(channels.values())
                first, rest = chans[0], chans[1:]
                for msg in msgs:
                    for ch in rest:
                        ch.put(msg.copy())
                    first.put(msg)
        else:
            self._enqueue(msgs)
            self.schedule_drain()
        self.message_count += len(msgs)
        self.message_bytes += nbytes

    def _enqueue(self, msgs) -> None:
        room = self.mem_queue_size - len(self.memory)
        if room > 0:
            self.memory.extend(msgs[:room])
            msgs = msgs[room:]
        if msgs:
            self.backend.put_many([m.encode() for m in msgs])

    # -- moving the backlog to channels --------------------------------------------------------
    def schedule_drain(self) -> None:
        if (not self._drain_scheduled and self.channels and not self.paused and self.started
                and not self.exiting and self.depth()):
            self._drain_scheduled = True
            asyncio.get_running_loop().call_soon(self._drain)

    def _drain(self) -> None:
        self._drain_scheduled = False
        memory = self.memory
        backend = self.backend
        for _ in range(DRAIN_BATCH):
            if not self.channels or self.paused or self.exiting or not self.started:
                return
            if memory:
                msg = memory.popleft()
            elif backend.depth:
                data = backend.get()
                if data is None:             # the disk queue cannot read right now
                    return                   # (the next publish schedules another drain)
                msg = Message.decode(data)   # a deferred delay is not on disk (upstream quirk)
            else:
                return
            self._fan_out(msg)
        self.schedule_drain()

    def _fan_out(self, msg: Message) -> None:
        chans = list(self.channels.values())
        for ch in chans[1:]:
            ch.put(msg.copy())
        chans[0].put(msg)

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
            self.backend.put_many([m.encode() for m in self.memory])
            self.memory.clear()
        self.backend.close()
