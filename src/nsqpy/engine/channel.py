"""A channel: one queue of a topic, load-balanced over its consumers.

Messages (next-delivery frames, see :mod:`.message`) go straight to a ready consumer
when there is one, else to the memory queue
(up to ``--mem-queue-size``), else to the disk queue.  In-flight messages wait in a
timing wheel of 100 ms buckets (the scan interval, so no precision is lost); deferred
messages in a heap ordered by due time.
"""
import heapq
from collections import deque
from time import monotonic, time_ns

from .backend import BackendError
from .consumer import STATE_SUBSCRIBED
from .message import frame_timestamp, from_record, next_delivery, to_record

DELIVER_RUN = 64               # messages handed to one ready consumer before the next
TICKS_PER_SECOND = 10          # in-flight timeouts are checked every 100 ms (QUEUE_SCAN_INTERVAL)

# An in-flight message is a tuple (a class instance costs ~10x more to make):
# (the frame sent, monotonic delivery time, the consumer holding it, its timeout tick)
FRAME, DELIVERED, CONSUMER, TICK = range(4)


def _randint(a: int, b: int) -> int:
    import random           # only consumers with a sample rate need it
    return random.randint(a, b)


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
        self.in_flight = {}            # msg id -> in-flight entry (FRAME, DELIVERED, CONSUMER, TICK)
        self.timeouts = {}             # tick -> {msg id -> in-flight entry}
        self.scan_tick = int(monotonic() * TICKS_PER_SECOND)
        self.deferred = []             # heap of (due monotonic, seq, frame)
        self.deferred_seq = 0
        self.paused = False
        self.exiting = False
        self.deleted = False
        self.message_count = 0
        self.requeue_count = 0
        self.timeout_count = 0
        self.e2e = broker.new_e2e_stream()
        self._from_backend = False     # alternate memory/disk when both hold messages
        self._pump_soon = False
        self.journal = None            # nsqd --durable: in-flight/deferred journal
        if broker.committer is not None and not (self.ephemeral or topic.ephemeral):
            broker.committer.open_journal(self)

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
    def put(self, frame: bytes, defer_ms: int = 0) -> None:
        """A message (its next-delivery frame, see :mod:`.message`) from the topic:
        deliver, queue, or defer (DPUB)."""
        self.message_count += 1
        if defer_ms:
            self._defer(frame, defer_ms)
        else:
            self._put(frame)

    def put_many(self, frames) -> None:
        """A batch from the topic (MPUB): runs to ready consumers, then the memory queue,
        then one write to the disk queue."""
        self.message_count += len(frames)
        i = 0
        n = len(frames)
        if self.direct_ok and not self.paused:
            ready = self.ready
            while i < n and ready:
                c = self._pick()
                take = min(c.rdy - c.in_flight, DELIVER_RUN, n - i)
                if take <= 0:                # (not ready after all)
                    c.ready = False
                    ready.pop(c, None)
                    continue
                self._deliver_run(c, frames[i:i + take] if take < n else frames)
                i += take
        if i < n:
            memory = self.memory
            room = self.mem_queue_size - len(memory)
            if room > 0:
                memory.extend(frames[i:i + room])
                i += room
            if i < n:
                self._to_backend(frames[i:])

    def put_records(self, records) -> None:
        """Messages the topic read from its disk queue (a batch): as many as ready
        consumers and the memory queue can take become frames (see :meth:`put_many`);
        the rest go to this channel's disk queue as they are (no conversion)."""
        n = len(records)
        room = self.mem_queue_size - len(self.memory)
        if self.ready and self.direct_ok and not self.paused:
            for c in self.ready:
                room += c.rdy - c.in_flight
        k = min(n, max(room, 0))
        if k:
            frames = []
            for record in records[:k] if k < n else records:
                try:
                    frames.append(from_record(record))
                except ValueError as e:
                    self.broker.log.error(f"CHANNEL({self.name}): bad message on disk - {e}")
            self.put_many(frames)
        if k < n:
            self.message_count += n - k
            rest = records[k:] if k else records
            try:
                self.backend.put_many(rest)
            except BackendError as e:
                self._backend_failed(e, records=rest)
            self._wake_ready()

    def _wake_ready(self) -> None:
        if self.ready and not self._pump_soon and not self.paused:
            # mem-queue-size=0 / --durable: a ready consumer gets it from the disk queue
            self._pump_soon = True
            self.broker.running_loop().call_soon(self._pump_later)

    def _pump_later(self) -> None:
        self._pump_soon = False
        if not self.exiting:
            self.pump()

    def _put(self, frame: bytes) -> None:
        if self.ready and self.direct_ok and not self.paused:
            self._deliver(frame)
        elif len(self.memory) < self.mem_queue_size:
            self.memory.append(frame)
        else:
            self._to_backend((frame,))

    def _to_backend(self, frames) -> None:
        try:
            self.backend.put_many([to_record(f) for f in frames])
        except BackendError as e:
            self._backend_failed(e, frames=frames)
        if self.ready:
            self._wake_ready()

    def _backend_failed(self, err, records=(), frames=()) -> None:
        """The disk refused messages this nsqd already acknowledged: keep them in memory
        (beyond --mem-queue-size) rather than lose them."""
        self.broker.log.error(f"CHANNEL({self.name}): failed to write message to backend - {err}")
        memory = self.memory
        memory.extend(frames)
        for record in records:
            try:
                memory.append(from_record(record))
            except ValueError as e:
                self.broker.log.error(f"CHANNEL({self.name}): bad message on disk - {e}")

    def _defer(self, frame: bytes, delay_ms: int) -> None:
        self.deferred_seq += 1
        heapq.heappush(self.deferred, (monotonic() + delay_ms / 1000.0, self.deferred_seq, frame))
        self.broker.want_scan(self)
        if self.journal is not None:
            self.journal.delivered(to_record(frame), time_ns() + delay_ms * 1_000_000)

    # -- delivery -------------------------------------------------------------------------
    def _pick(self):
        """The next ready consumer, round robin (by runs of messages)."""
        ready = self.ready
        c = next(iter(ready))
        if len(ready) > 1:
            del ready[c]
            ready[c] = None
        return c

    def _deliver(self, frame: bytes) -> None:
        self._deliver_run(self._pick(), (frame,))

    def _deliver_run(self, c, frames) -> None:
        """Send ``frames`` (at most the room ``c`` has left) to ready consumer ``c``."""
        now = monotonic()
        tick = int((now + c.msg_timeout) * TICKS_PER_SECOND) + 1
        bucket = self.timeouts.get(tick)
        if bucket is None:
            bucket = self.timeouts[tick] = {}
            self.broker.want_scan(self)     # a new bucket: make sure the scanner looks here
        in_flight = self.in_flight
        journal = self.journal
        sample = c.sample_rate
        if sample:
            frames = [f for f in frames if _randint(0, 99) <= sample]   # the rest is lost
            if not frames:                     # for this channel, like upstream
                if not bucket:
                    del self.timeouts[tick]
                return
        for frame in frames:
            msg_id = frame[18:34]
            in_flight[msg_id] = bucket[msg_id] = (frame, now, c, tick)
        if journal is not None:
            for frame in frames:
                journal.delivered(frame[8:])   # the record with this delivery counted
        sent = len(frames)
        c.in_flight += sent
        c.message_count += sent
        c.send_frames(frames)
        if c.in_flight >= c.rdy:
            c.ready = False
            self.ready.pop(c, None)
            c.flush_soon()

    def pump(self) -> None:
        """Hand queued messages to ready consumers until one side runs out.  Memory and
        disk take turns (a run from each) when both hold messages."""
        memory = self.memory
        backend = self.backend
        while self.ready and not self.paused:
            c = self._pick()
            room = min(c.rdy - c.in_flight, DELIVER_RUN)
            if backend.depth and (self._from_backend or not memory):
                self._from_backend = False
                datas = backend.get_many(max(1, room))
                if not datas:                # the disk queue cannot read right now
                    if not memory:
                        return
                    frames = [memory.popleft() for _ in range(min(room, len(memory)))]
                else:
                    frames = []
                    for data in datas:
                        try:
                            frames.append(from_record(data))
                        except ValueError as e:
                            self.broker.log.error(
                                f"CHANNEL({self.name}): bad message on disk - {e}")
                    if not frames:
                        continue
            elif memory:
                self._from_backend = True
                frames = [memory.popleft() for _ in range(min(room, len(memory)))]
            else:
                return
            if room <= 0:                    # (not ready after all: keep them first)
                memory.extendleft(reversed(frames))
                c.ready = False
                self.ready.pop(c, None)
                continue
            self._deliver_run(c, frames)

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
    def _owned(self, c, msg_id: bytes) -> tuple:
        """The in-flight entry of ``msg_id`` if ``c`` holds it, else the reason it can't."""
        entry = self.in_flight.get(msg_id)
        if entry is None:
            raise ChannelError("ID not in flight")
        if entry[CONSUMER] is not c:
            raise ChannelError("client does not own message")
        return entry

    def _unschedule(self, msg_id: bytes, tick: int) -> None:
        bucket = self.timeouts[tick]
        del bucket[msg_id]
        if not bucket:
            del self.timeouts[tick]

    def _take(self, c, msg_id: bytes) -> tuple:
        entry = self.in_flight.get(msg_id)
        if entry is None or entry[CONSUMER] is not c:
            self._owned(c, msg_id)               # raises the reason
        del self.in_flight[msg_id]
        tick = entry[TICK]
        bucket = self.timeouts[tick]
        del bucket[msg_id]
        if not bucket:
            del self.timeouts[tick]
        return entry

    def finish(self, c, msg_id: bytes) -> None:
        entry = self._take(c, msg_id)
        if self.journal is not None:
            self.journal.done(msg_id)
        c.finish_count += 1
        c.in_flight -= 1
        if self.e2e is not None:
            self.e2e.add_sample(frame_timestamp(entry[FRAME]))
        if (c.in_flight < c.rdy and not c.ready and c.state == STATE_SUBSCRIBED
                and not c.output_blocked):
            # ready again; the connection calls pump() once after the whole read, so a
            # batch of FINs refills in one pass
            c.ready = True
            self.ready[c] = None

    def finish_many(self, c, ids) -> list:
        """FIN each id that ``c`` holds; returns the ids it could not (in order) for the
        caller to report one by one through :meth:`finish`."""
        in_flight = self.in_flight
        timeouts = self.timeouts
        e2e = self.e2e
        failed = None
        done = 0
        for msg_id in ids:
            entry = in_flight.get(msg_id)
            if entry is None or entry[2] is not c:
                if failed is None:
                    failed = []
                failed.append(msg_id)
                continue
            del in_flight[msg_id]
            tick = entry[3]
            bucket = timeouts[tick]
            del bucket[msg_id]
            if not bucket:
                del timeouts[tick]
            if e2e is not None:
                e2e.add_sample(frame_timestamp(entry[0]))
            if self.journal is not None:
                self.journal.done(msg_id)
            done += 1
        if done:
            c.finish_count += done
            c.in_flight -= done
            if (c.in_flight < c.rdy and not c.ready and c.state == STATE_SUBSCRIBED
                    and not c.output_blocked):
                c.ready = True
                self.ready[c] = None
        return failed or ()

    def requeue(self, c, msg_id: bytes, delay_ms: int) -> None:
        if self.exiting:
            raise ChannelError("exiting")
        frame = next_delivery(self._take(c, msg_id)[FRAME])
        self.requeue_count += 1
        c.requeue_count += 1
        c.in_flight -= 1
        if delay_ms > 0:
            self._defer(frame, delay_ms)
        else:
            self._put(frame)
            if self.journal is not None:
                self.journal.done(msg_id)
        c.update_ready()

    def touch(self, c, msg_id: bytes) -> None:
        frame, delivered, _, old_tick = self._owned(c, msg_id)
        now = monotonic()
        deadline = min(now + c.msg_timeout, delivered + self.max_msg_timeout)
        tick = max(int(deadline * TICKS_PER_SECOND) + 1, self.scan_tick)
        if tick != old_tick:
            self._unschedule(msg_id, old_tick)
            entry = (frame, delivered, c, tick)
            self.in_flight[msg_id] = entry
            self.timeouts.setdefault(tick, {})[msg_id] = entry
            self.broker.want_scan(self)

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
                    for msg_id, entry in bucket.items():
                        self._time_out(msg_id, entry)
        self.scan_tick = now_tick + 1
        deferred = self.deferred
        while deferred and deferred[0][0] <= now:
            frame = heapq.heappop(deferred)[2]
            worked = True
            self._put(frame)
            if self.journal is not None:
                self.journal.done(frame[18:34])
        return worked

    def _time_out(self, msg_id: bytes, entry: tuple) -> None:
        del self.in_flight[msg_id]
        c = entry[CONSUMER]
        self.timeout_count += 1
        self._put(next_delivery(entry[FRAME]))
        if self.journal is not None:
            self.journal.done(msg_id)
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
        if self.journal is not None:
            self.journal.clear()
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
            if self.journal is not None:
                self.broker.committer.close_journal(self)
            return
        try:
            self.flush_to_backend()
        except BackendError as e:
            log.error(f"CHANNEL({self.name}): failed to flush messages to backend - {e}")
        self.backend.close()
        if self.journal is not None:      # everything it held is in the (fsynced) queue now
            self.broker.committer.close_journal(self)

    def flush_to_backend(self) -> None:
        mem, inflight, deferred = len(self.memory), len(self.in_flight), len(self.deferred)
        if mem or inflight or deferred:
            self.broker.log.info(
                f"CHANNEL({self.name}): flushing {mem} memory {inflight} in-flight "
                f"{deferred} deferred messages to backend")
        records = [to_record(f) for f in self.memory]
        records += [entry[FRAME][8:] for entry in self.in_flight.values()]
        records += [to_record(entry[2]) for entry in sorted(self.deferred)]
        self.memory.clear()
        self.in_flight.clear()
        self.timeouts.clear()
        self.deferred.clear()
        if records:
            self.backend.put_many(records)
