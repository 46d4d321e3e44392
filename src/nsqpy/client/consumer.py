"""The consumer: subscribe to one topic/channel on many nsqd (semantics §6.3-§6.8).

Two styles::

    async def handle(msg):             # or a plain function
        ...                            # return → FIN, raise → REQ with backoff

    consumer = Consumer("topic", "channel", handle, max_in_flight=100,
                        lookupd_http_addresses=["127.0.0.1:4161"])
    await consumer.start()
    ...
    await consumer.close()             # CLS, wait for in-flight messages, close

    async with Consumer("topic", "channel", nsqd_tcp_addresses=["127.0.0.1:4150"]) as c:
        async for msg in c:
            ...
            msg.finish()

A synchronous handler runs directly inside the connection's read loop (no task per
message) and the FINs of one read go out in one write.  A coroutine handler runs as a
task per message.  Without a handler, messages are queued for ``async for``.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
from collections import deque
from typing import Any, Awaitable, Callable, Iterable, Union

from ..protocol.names import is_valid_channel_name, is_valid_topic_name
from .config import Config
from .conn import Conn, ConnDelegate
from .errors import NSQError, ResponseError
from .lookup import LookupdPoller
from .message import Message
from .rdy import BACKOFF, CONTINUE, RESUME, RdyController, exponential_strategy, \
    full_jitter_strategy

__all__ = ["Consumer", "Handler", "AlreadyConnectedError"]

log = logging.getLogger("nsqpy.client")

Handler = Callable[[Message], Union[None, bool, Awaitable[Any]]]


class AlreadyConnectedError(NSQError):
    """``connect_to_nsqd`` for an address that is connected or connecting."""


def _as_list(v: str | Iterable[str] | None) -> list[str]:
    if v is None:
        return []
    if isinstance(v, str):
        return [v]
    return list(v)


class Consumer(ConnDelegate):
    """Consume ``topic``/``channel`` from nsqd instances found directly or via lookupd.

    :param handler: called with each :class:`Message`; plain function or coroutine
        function.  ``None``: iterate with ``async for``.
    :param config: a :class:`Config` (copied); extra keyword ``options`` are applied on
        top with :meth:`Config.set` (``max_in_flight=10``, ``heartbeat_interval="5s"``…).
    :param nsqd_tcp_addresses / lookupd_http_addresses: where to connect on :meth:`start`.
    :param auto_finish: FIN when the handler returns (REQ when it raises or returns
        ``False``).  Default: on with a handler; with ``async for`` off (when on, a
        message not answered by the time the next one is requested is finished).
    :param on_giveup: called with a message whose ``attempts`` exceed ``max_attempts``
        before it is finished without the handler seeing it.
    :param stop_timeout: how long :meth:`stop` waits for in-flight messages.
    """

    def __init__(self, topic: str, channel: str, handler: Handler | None = None, *,
                 config: Config | None = None,
                 nsqd_tcp_addresses: str | Iterable[str] | None = None,
                 lookupd_http_addresses: str | Iterable[str] | None = None,
                 auto_finish: bool | None = None,
                 on_giveup: Callable[[Message], Any] | None = None,
                 stop_timeout: float = 30.0, **options: Any) -> None:
        if not is_valid_topic_name(topic):
            raise ValueError(f"invalid topic name {topic!r}")
        if not is_valid_channel_name(channel):
            raise ValueError(f"invalid channel name {channel!r}")
        cfg = config.copy() if config is not None else Config()
        for k, v in options.items():
            cfg.set(k, v)
        cfg.validate()
        self.topic = topic
        self.channel = channel
        self.config = cfg
        self._handler = handler
        self._async_handler = handler is not None and (
            inspect.iscoroutinefunction(handler)
            or inspect.iscoroutinefunction(getattr(handler, "__call__", None)))
        self.auto_finish = (handler is not None) if auto_finish is None else auto_finish
        self._on_giveup = on_giveup
        self.stop_timeout = stop_timeout
        self._nsqd_addresses = _as_list(nsqd_tcp_addresses)
        self._initial_lookupds = _as_list(lookupd_http_addresses)
        self._conns: dict[str, Conn] = {}
        self._pending: dict[str, Conn] = {}
        self._reconnects: dict[str, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._queue: deque[Message] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._last_yielded: Message | None = None
        self._rdy: RdyController | None = None
        self._lookup: LookupdPoller | None = None
        self._lookup_close: asyncio.Task[None] | None = None
        self._redistribute_timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._started = False
        self._stopping = False
        self._stopped: asyncio.Event | None = None
        self._rng = random.Random()
        # counters
        self.messages_received = 0
        self.messages_finished = 0
        self.messages_requeued = 0
        self.messages_given_up = 0

    # -- setup -----------------------------------------------------------------------------
    def _ensure_loop(self) -> None:
        if self._loop is not None:
            return
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._stopped = asyncio.Event()
        cfg = self.config
        if cfg.backoff_strategy == "full_jitter":
            strategy = full_jitter_strategy(cfg.backoff_multiplier, self._rng)
        else:
            strategy = exponential_strategy(cfg.backoff_multiplier)
        self._rdy = RdyController(
            cfg.max_in_flight, call_later=loop.call_later, clock=loop.time,
            strategy=strategy, max_backoff_duration=cfg.max_backoff_duration,
            low_rdy_idle_timeout=cfg.low_rdy_idle_timeout, low_rdy_timeout=cfg.low_rdy_timeout,
            rng=self._rng, name=f"[{self.topic}/{self.channel}] ")
        self._redistribute_timer = loop.call_later(cfg.rdy_redistribute_interval,
                                                   self._redistribute_tick)

    def _redistribute_tick(self) -> None:
        if self._stopping or self._rdy is None or self._loop is None:
            return
        self._rdy.redistribute()
        self._redistribute_timer = self._loop.call_later(self.config.rdy_redistribute_interval,
                                                         self._redistribute_tick)

    async def start(self) -> "Consumer":
        """Connect to the configured nsqd addresses and start lookupd polling.  A failed
        nsqd connection is logged and retried every ``lookupd_poll_interval``."""
        self._ensure_loop()
        if self._started:
            return self
        self._started = True
        for addr in self._nsqd_addresses:
            try:
                await self.connect_to_nsqd(addr)
            except AlreadyConnectedError:
                pass
            except Exception as e:
                log.error("(%s) connection failed: %s", addr, e)
                self._schedule_reconnect(addr)
        if self._initial_lookupds:
            await self.connect_to_nsqlookupds(self._initial_lookupds)
        return self

    async def __aenter__(self) -> "Consumer":
        return await self.start()

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def connect_to_nsqd(self, address: str) -> Conn:
        """Connect, IDENTIFY, SUB and add the connection to the RDY distribution.
        Raises on failure (no retry for this call); once connected, the address is
        reconnected to whenever the connection drops, until :meth:`stop` or
        :meth:`disconnect_from_nsqd`."""
        return await self._connect(address, direct=True)

    async def _connect(self, address: str, direct: bool) -> Conn:
        self._ensure_loop()
        if self._stopping:
            raise NSQError("consumer is stopping")
        if address in self._conns or address in self._pending:
            raise AlreadyConnectedError(address)
        if direct and address not in self._nsqd_addresses:
            self._nsqd_addresses.append(address)
        conn = Conn(address, self.config, self)
        self._pending[address] = conn
        try:
            await conn.connect()
            await conn.subscribe(self.topic, self.channel)
        except BaseException:
            conn.abort()
            raise
        finally:
            self._pending.pop(address, None)
        if self._stopping or conn.lost:
            conn.close()
            raise NSQError(f"connection to {address} closed during setup")
        log.info("(%s) subscribed to %s/%s", address, self.topic, self.channel)
        self._conns[address] = conn
        conn.start()
        assert self._rdy is not None
        self._rdy.add_conn(conn)
        return conn

    async def connect_to_nsqds(self, addresses: Iterable[str]) -> None:
        for a in addresses:
            await self.connect_to_nsqd(a)

    async def connect_to_nsqlookupd(self, address: str) -> None:
        """Add a lookupd HTTP address; the first one starts polling (one query at once)."""
        await self.connect_to_nsqlookupds([address])

    async def connect_to_nsqlookupds(self, addresses: Iterable[str]) -> None:
        self._ensure_loop()
        if self._lookup is None:
            self._lookup = LookupdPoller(self.topic, self.config, self._on_producers,
                                         rng=self._rng)
        if self._lookup.add(addresses):
            await self._lookup.query()
            self._lookup.start()

    async def _on_producers(self, addresses: list[str]) -> None:
        new = [a for a in addresses if a not in self._conns and a not in self._pending]
        if not new or self._stopping:
            return
        results = await asyncio.gather(*(self._connect(a, direct=False) for a in new),
                                       return_exceptions=True)
        for addr, res in zip(new, results):
            if isinstance(res, BaseException) and not isinstance(res, AlreadyConnectedError):
                log.error("(%s) connection from lookupd failed: %s", addr, res)

    def disconnect_from_nsqd(self, address: str) -> None:
        """Close the connection to ``address`` gracefully and don't reconnect to it."""
        if address in self._nsqd_addresses:
            self._nsqd_addresses.remove(address)
        task = self._reconnects.pop(address, None)
        if task is not None:
            task.cancel()
        conn = self._conns.get(address)
        if conn is not None:
            conn.start_close(self.stop_timeout)

    # -- queries and knobs -----------------------------------------------------------------
    @property
    def connections(self) -> dict[str, Conn]:
        """Connected nsqd, by address."""
        return dict(self._conns)

    @property
    def max_in_flight(self) -> int:
        return self._rdy.max_in_flight if self._rdy else self.config.max_in_flight

    def change_max_in_flight(self, max_in_flight: int) -> None:
        """Change the in-flight budget at runtime (0 pauses consumption)."""
        self.config.max_in_flight = max_in_flight
        if self._rdy is not None:
            self._rdy.set_max_in_flight(max_in_flight)

    def is_starved(self) -> bool:
        """True if a connection is (nearly) at its RDY limit: time to flush batches."""
        return self._rdy.is_starved() if self._rdy else False

    @property
    def backoff_level(self) -> int:
        return self._rdy.backoff_level if self._rdy else 0

    def in_backoff(self) -> bool:
        return self._rdy.in_backoff() if self._rdy else False

    # -- ConnDelegate ----------------------------------------------------------------------
    def _conn_message(self, conn: Conn, msg: Message) -> None:
        self.messages_received += 1
        max_attempts = self.config.max_attempts
        if max_attempts and msg.attempts > max_attempts:
            self._give_up(msg)
            return
        handler = self._handler
        if handler is None:
            self._enqueue(msg)
            return
        if self._async_handler:
            task = asyncio.ensure_future(self._run_async(msg))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return
        try:
            result = handler(msg)
        except Exception:
            log.exception("[%s/%s] handler failed for message %s", self.topic, self.channel,
                          msg.id.decode("ascii", "replace"))
            if self.auto_finish and not msg._manual:
                msg.requeue()
            return
        if self.auto_finish and not msg._responded and not msg._manual:
            if result is False:
                msg.requeue()
            else:
                msg._responded = True
                conn._msg_finish(msg)

    async def _run_async(self, msg: Message) -> None:
        try:
            result = await self._handler(msg)  # type: ignore[misc]
        except Exception:
            log.exception("[%s/%s] handler failed for message %s", self.topic, self.channel,
                          msg.id.decode("ascii", "replace"))
            if self.auto_finish and not msg._manual:
                msg.requeue()
            return
        if self.auto_finish and not msg._manual:
            if result is False:
                msg.requeue()
            else:
                msg.finish()

    def _give_up(self, msg: Message) -> None:
        self.messages_given_up += 1
        log.warning("[%s/%s] msg %s attempted %d times, giving up", self.topic, self.channel,
                    msg.id.decode("ascii", "replace"), msg.attempts)
        if self._on_giveup is not None:
            try:
                self._on_giveup(msg)
            except Exception:
                log.exception("on_giveup callback failed")
        msg.finish()

    def _enqueue(self, msg: Message) -> None:
        if self._stopping:
            msg.requeue(0, backoff=False)
            return
        self._queue.append(msg)
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    def _conn_finished(self, conn: Conn) -> None:
        self.messages_finished += 1
        rdy = self._rdy
        if rdy is not None and (rdy.backoff_level or rdy.in_backoff_timeout):
            rdy.signal(RESUME)

    def _conn_requeued(self, conn: Conn, backoff: bool) -> None:
        self.messages_requeued += 1
        if self._rdy is not None:
            self._rdy.signal(BACKOFF if backoff else CONTINUE)

    def _conn_error(self, conn: Conn, err: ResponseError) -> None:
        if err.fatal:
            log.error("(%s) protocol error: %s", conn.address, err)

    def _conn_response(self, conn: Conn, data: bytes) -> None:
        log.warning("(%s) unexpected response %r", conn.address, data[:100])

    def _conn_closed(self, conn: Conn, exc: BaseException | None) -> None:
        if self._conns.get(conn.address) is not conn:
            return
        del self._conns[conn.address]
        if self._rdy is not None:
            self._rdy.remove_conn(conn)
        log.info("(%s) connection closed%s", conn.address, f": {exc}" if exc else "")
        if self._stopping:
            if not self._conns:
                self._finish_stop()
            return
        if conn.address in self._nsqd_addresses:
            self._schedule_reconnect(conn.address)      # configured directly
        elif self._lookup is not None:
            self._lookup.trigger()                      # reconnect if still listed

    def _schedule_reconnect(self, address: str) -> None:
        if self._stopping or address in self._reconnects or self._loop is None:
            return
        self._reconnects[address] = self._loop.create_task(self._reconnect(address))

    async def _reconnect(self, address: str) -> None:
        try:
            while not self._stopping and address in self._nsqd_addresses:
                await asyncio.sleep(self.config.lookupd_poll_interval)
                if self._stopping or address not in self._nsqd_addresses:
                    return
                log.info("(%s) trying to reconnect", address)
                try:
                    await self._connect(address, direct=True)
                    return
                except AlreadyConnectedError:
                    return
                except Exception as e:
                    log.error("(%s) reconnect failed: %s", address, e)
        finally:
            if self._reconnects.get(address) is asyncio.current_task():
                del self._reconnects[address]

    # -- async iteration -------------------------------------------------------------------
    def __aiter__(self) -> "Consumer":
        return self

    async def __anext__(self) -> Message:
        last = self._last_yielded
        if last is not None:
            self._last_yielded = None
            if self.auto_finish and not last._responded and not last._manual:
                last.finish()
        while True:
            if self._queue:
                msg = self._queue.popleft()
                self._last_yielded = msg
                return msg
            if self._stopping:
                raise StopAsyncIteration
            if not self._started:
                await self.start()
            assert self._loop is not None
            self._waiter = self._loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    async def get_message(self, timeout: float | None = None) -> Message | None:
        """The next queued message (``async for`` style), or None on timeout/stop."""
        try:
            return await asyncio.wait_for(self.__anext__(), timeout)
        except (StopAsyncIteration, asyncio.TimeoutError):
            return None

    # -- stopping --------------------------------------------------------------------------
    def stop(self) -> None:
        """Begin a graceful stop: ``CLS`` to every connection, requeue messages still
        waiting in the ``async for`` queue, close each connection once its in-flight
        messages are answered (at most ``stop_timeout`` seconds)."""
        if self._stopping:
            return
        self._stopping = True
        log.info("[%s/%s] stopping", self.topic, self.channel)
        if self._redistribute_timer is not None:
            self._redistribute_timer.cancel()
        for task in self._reconnects.values():
            task.cancel()
        self._reconnects.clear()
        if self._lookup is not None and self._loop is not None:
            self._lookup_close = self._loop.create_task(self._lookup.close())
        for conn in list(self._pending.values()):
            conn.abort()
        if self._rdy is not None:
            self._rdy.stop()
        for conn in list(self._conns.values()):
            conn.start_close(self.stop_timeout)
        # after CLS (same write, so nsqd won't redeliver them to us)
        while self._queue:
            self._queue.popleft().requeue(0, backoff=False)
        if not self._conns:
            self._finish_stop()
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    def _finish_stop(self) -> None:
        if self._stopped is not None:
            self._stopped.set()
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    async def wait_closed(self) -> None:
        """Wait until every connection closed and handler tasks ended."""
        if self._stopped is not None:
            await self._stopped.wait()
        if self._lookup_close is not None:
            await self._lookup_close
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        """:meth:`stop` and :meth:`wait_closed`."""
        self.stop()
        await self.wait_closed()
