"""A channel: one queue of a topic, load-balanced over its consumers.

Messages go straight to a ready consumer when there is one, else to the memory queue
(up to ``--mem-queue-size``), else to the disk queue.  In-flight messages wait in a
timing wheel of 100 ms buckets (the scan interval, so no precision is lost); deferred
messages in a heap ordered by due time.
"""
import heapq
import random
from collections import deque
from time import monotonic

from .backend import BackendError
from .consumer import STATE_SUBSCRIBED
from .message import Message

TICKS_PER_SECOND = 10          # in-flight timeouts are checked every 100 ms (QUEUE_SCAN_INTERVAL)


class ChannelError(Exception):
    """A consumer command that the channel refuses; str() is the reason clients see."""


class Channel:
    def __init__(self, topic, name: str, broker):
        self.topic = topic
        self.topic_name = topic.name
        self.name = name
        self.broker = broker
        self.ephemeral = name.endswith("#ephemeral")
        opts = broker.opts
        self.mem_queue_size = opts.mem_queue_size
        self.direct_ok = self.mem_queue_size > 0 or self.ephemeral
        self.max_msg_timeout = opts.max_msg_timeout / 1e9
        self.memory = deque()
        self.backend = broker.make_backend(f"{topic.name}:{name}", self.ephemeral or topic.ephemeral)
        self.consumers = {}            # consumer -> None (insertion-ordered set)
        self.ready = {}                # consumers that may take a message now
        self.in_flight = {}            # msg id -> Message
        self.timeouts = {}             # tick -> {msg id -> Message}
        self.scan_tick = int(monotonic() * TICKS_PER_SECOND)
        self.deferred = []             # heap of (due monotonic, seq, Message)
        self.deferred_seq = 0
        self.paused = False
        self.exiting = False
        self.deleted = False
        self.message_count = 0
        self.requeue_count = 0
        self.timeout_count = 0
        self.e2e = broker.new_e2e_stream()
        self._from_backend = False     # alternate memory/disk when both hold messages

    # -- counters ----------------------------------------------------------------------
    def depth(self) -> int:
        return len(self.memory) + self.backend.depth

    @property
    def in_flight_count(self) -> int:
        return len(self.in_flight)

    @property
    def deferred_count(self) -> int:
        return len(self.deferred)

    # -- putting messages ----------------------------------------------------------------
    def put(self, msg: Message) -> None:
        """A message from the topic: deliver, queue, or defer (DPUB)."""
        self.message_count += 1
        if msg.defer_ms:
            self._defer(msg, msg.defer_ms)
        else:
            self._put(msg)

    def _put(self, msg: Message) -> None:
        if self.ready and self.direct_ok and not self.paused:
            self._deliver(msg)
        elif len(self.memory) < self.mem_queue_size:
            self.memory.append(msg)
        else:
            try:
                self.backend.put(msg.encode())
            except BackendError as e:
                self.broker.log.error(
                    f"CHANNEL({self.name}): failed to write message to backend - {e}")

    def _defer(self, msg: Message, delay_ms: int) -> None:
        self.deferred_seq += 1
        heapq.heappush(self.deferred, (monotonic() + delay_ms / 1000.0, self.deferred_seq, msg))
        self.broker.scan_set.add(self)

    # -- delivery -------------------------------------------------------------------------
    def _deliver(self, msg: Message) -> None:
        ready = self.ready
        c = next(iter(ready))
        if len(ready) > 1:             # round robin over ready consumers
            del ready[c]
            ready[c] = None
        if c.sample_rate and random.randint(0, 99) > c.sample_rate:
            return                     # sampled out: lost for this channel, like upstream
        now = monotonic()
        msg.attempts += 1
        msg.deliver_ts = now
        msg.consumer = c
        tick = int((now + c.msg_timeout) * TICKS_PER_SECOND) + 1
        msg.tick = tick
        bucket = self.timeouts.get(tick)
        if bucket is None:
            self.timeouts[tick] = {msg.id: msg}
            self.broker.scan_set.add(self)     # a new bucket: make sure the scanner looks here
        else:
            bucket[msg.id] = msg
        self.in_flight[msg.id] = msg
        c.in_flight += 1
        c.message_count += 1
        if c.in_flight >= c.rdy:
            c.ready = False
            del ready[c]
            c.send_message(msg)
            c.flush()
        else:
            c.send_message(msg)

    def pump(self) -> None:
        """Hand queued messages to ready consumers until one side runs out."""
        memory = self.memory
        backend = self.backend
        while self.ready and not self.paused:
            if backend.depth and (self._from_backend or not memory):
                self._from_backend = False
                data = backend.get()
                if data is not None:
                    msg = Message.decode(data)
                elif memory:                 # the disk queue cannot read right now
                    msg = memory.popleft()
                else:
                    return
            elif memory:
                self._from_backend = True
                msg = memory.popleft()
            else:
                return
            self._deliver(msg)

    # -- consumers ------------------------------------------------------------------------
    def add_consumer(self, c) -> None:
        limit = self.broker.opts.max_channel_consumers
        if limit and len(self.consumers) >= limit:
            raise ChannelError(
                f"consumers for {self.topic_name}:{self.name} exceeds limit of {limit}")
        if self.exiting:
            raise ChannelError("exiting")
        self.consumers[c] = None
        c.channel = self

    def remove_consumer(self, c) -> None:
        if self.consumers.pop(c, 1) is not None:
            return
        self.ready.pop(c, None)
        c.ready = False
        if self.ephemeral and not self.consumers and not self.exiting:
            self.topic.delete_channel(self.name)

    def consumer_ready(self, c) -> None:
        c.ready = True
        self.ready[c] = None
        if not self.paused:
            self.pump()

    def consumer_unready(self, c) -> None:
        c.ready = False
        self.ready.pop(c, None)

    # -- consumer commands ------------------------------------------------------------------
    def _owned(self, c, msg_id: bytes) -> Message:
        """The in-flight message ``msg_id`` if ``c`` holds it, else the reason it can't."""
        msg = self.in_flight.get(msg_id)
        if msg is None:
            raise ChannelError("ID not in flight")
        if msg.consumer is not c:
            raise ChannelError("client does not own message")
        return msg

    def _unschedule(self, msg: Message) -> None:
        bucket = self.timeouts[msg.tick]
        del bucket[msg.id]
        if not bucket:
            del self.timeouts[msg.tick]

    def _take(self, c, msg_id: bytes) -> Message:
        msg = self._owned(c, msg_id)
        del self.in_flight[msg_id]
        self._unschedule(msg)
        msg.consumer = None
        return msg

    def finish(self, c, msg_id: bytes) -> None:
        msg = self._take(c, msg_id)
        c.finish_count += 1
        c.in_flight -= 1
        if self.e2e is not None:
            self.e2e.add_sample(msg.timestamp)
        if (c.in_flight < c.rdy and not c.ready and c.state == STATE_SUBSCRIBED
                and not c.output_blocked):
            # ready again; the connection calls pump() once after the whole read, so a
            # batch of FINs refills in one pass
            c.ready = True
            self.ready[c] = None

    def requeue(self, c, msg_id: bytes, delay_ms: int) -> None:
        if self.exiting:
            raise ChannelError("exiting")
        msg = self._take(c, msg_id)
        self.requeue_count += 1
        c.requeue_count += 1
        c.in_flight -= 1
        if delay_ms > 0:
            self._defer(msg, delay_ms)
        else:
            self._put(msg)
        c.update_ready()

    def touch(self, c, msg_id: bytes) -> None:
        msg = self._owned(c, msg_id)
        now = monotonic()
        deadline = min(now + c.msg_timeout, msg.deliver_ts + self.max_msg_timeout)
        tick = max(int(deadline * TICKS_PER_SECOND) + 1, self.scan_tick)
        if tick != msg.tick:
            self._unschedule(msg)
            msg.tick = tick
            self.timeouts.setdefault(tick, {})[msg_id] = msg
            self.broker.scan_set.add(self)

    # -- the queue scanner ---------------------------------------------------------------------
    def scan(self, now: float) -> bool:
        """Time out expired in-flight messages and release due deferred ones."""
        worked = False
        now_tick = int(now * TICKS_PER_SECOND)
        if self.timeouts:
            timeouts = self.timeouts
            if now_tick - self.scan_tick > 64:       # not scanned for a while: only due buckets
                ticks = [t for t in timeouts if t <= now_tick]
            else:
                ticks = range(self.scan_tick, now_tick + 1)
            for tick in ticks:
                bucket = timeouts.pop(tick, None)
                if bucket:
                    worked = True
                    for msg in bucket.values():
                        self._time_out(msg)
        self.scan_tick = now_tick + 1
        deferred = self.deferred
        while deferred and deferred[0][0] <= now:
            msg = heapq.heappop(deferred)[2]
            worked = True
            self._put(msg)
        return worked

    def _time_out(self, msg: Message) -> None:
        del self.in_flight[msg.id]
        c = msg.consumer
        msg.consumer = None
        self.timeout_count += 1
        self._put(msg)
        if c is not None:
            c.in_flight -= 1
            c.update_ready()

    # -- admin -------------------------------------------------------------------------------
    def pause(self) -> None:
        self.paused = True

    def unpause(self) -> None:
        self.paused = False
        self.pump()

    def empty(self) -> None:
        """Drop queued, in-flight and deferred messages (HTTP /channel/empty)."""
        for c in self.consumers:
            c.in_flight = 0
        self.in_flight.clear()
        self.timeouts.clear()
        self.deferred.clear()
        self.memory.clear()
        self.backend.empty()
        for c in list(self.consumers):
            c.update_ready()

    def close(self, delete: bool = False) -> None:
        """Stop the channel: disconnect consumers, then flush (close) or discard (delete)."""
        if self.exiting:
            return
        self.exiting = True
        log = self.broker.log
        log.info(f"CHANNEL({self.name}): {'deleting' if delete else 'closing'}")
        for c in list(self.consumers):
            c.close_connection()
        self.consumers.clear()
        self.ready.clear()
        if delete:
            self.in_flight.clear()
            self.timeouts.clear()
            self.deferred.clear()
            self.memory.clear()
            self.backend.delete()
            return
        self.flush_to_backend()
        self.backend.close()

    def flush_to_backend(self) -> None:
        mem, inflight, deferred = len(self.memory), len(self.in_flight), len(self.deferred)
        if mem or inflight or deferred:
            self.broker.log.info(
                f"CHANNEL({self.name}): flushing {mem} memory {inflight} in-flight "
                f"{deferred} deferred messages to backend")
        records = [m.encode() for m in self.memory]
        records += [m.encode() for m in self.in_flight.values()]
        records += [entry[2].encode() for entry in sorted(self.deferred)]
        self.memory.clear()
        self.in_flight.clear()
        self.timeouts.clear()
        self.deferred.clear()
        if records:
            self.backend.put_many(records)
