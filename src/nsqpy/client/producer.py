"""The producer: PUB / MPUB / DPUB over one reused connection (semantics §6.7).

::

    producer = Producer("127.0.0.1:4150")            # or a list: failover in order
    await producer.publish("topic", b"body")
    await producer.multi_publish("topic", [b"a", b"b"])
    await producer.deferred_publish("topic", 1.5, b"later")   # delay in seconds
    await producer.close()

The connection is opened lazily (first publish or :meth:`Producer.ping`) and reused;
commands are pipelined and their replies matched in FIFO order.  When the connection is
lost every pending command fails with :class:`ConnectionClosedError` and is retried on a
new connection — to the next address when several are configured (failover), so a
message whose reply was lost may be published twice (NSQ is at-least-once anyway).
Error replies (``E_BAD_TOPIC`` …) raise :class:`ResponseError` and are not retried.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
from typing import Any, Iterable, Sequence

from ..protocol import encoders as enc
from ..protocol.names import is_valid_topic_name
from .config import Config
from .conn import Conn, ConnDelegate, split_address
from ..protocol.errors import ProtocolError
from .errors import ConnectionClosedError, NotConnectedError, NSQError

__all__ = ["Producer", "Body"]

log = logging.getLogger("nsqpy.client")

Body = bytes | bytearray | memoryview | str


def _body(b: Body) -> bytes:
    if isinstance(b, str):
        return b.encode("utf-8")
    if isinstance(b, bytes):
        return b
    return bytes(b)


class Producer(ConnDelegate):
    """Publish to nsqd.  ``nsqd_tcp_addresses``: one ``host:port`` or a list tried in
    order (the producer stays on an address until it fails).  ``config``/``options``
    as for :class:`~nsqpy.client.consumer.Consumer`."""

    def __init__(self, nsqd_tcp_addresses: str | Iterable[str], *,
                 config: Config | None = None, **options: Any) -> None:
        addrs = [nsqd_tcp_addresses] if isinstance(nsqd_tcp_addresses, str) \
            else list(nsqd_tcp_addresses)
        if not addrs:
            raise ValueError("no nsqd address")
        for a in addrs:
            split_address(a)
        cfg = config.copy() if config is not None else Config()
        for k, v in options.items():
            cfg.set(k, v)
        cfg.validate()
        self.config = cfg
        self.addresses = addrs
        self._index = 0
        self._conn: Conn | None = None
        self._connecting: asyncio.Future[Conn] | None = None
        self._closed = False

    @property
    def address(self) -> str:
        """The address in use (or next to be tried)."""
        return self.addresses[self._index % len(self.addresses)]

    @property
    def conn(self) -> Conn | None:
        """The live connection, if any."""
        c = self._conn
        return c if c is not None and not c.lost else None

    # -- connection ------------------------------------------------------------------------
    async def connect(self) -> Conn:
        """Return the live connection, opening one if needed (tries each address once,
        starting with the current one).  Raises :class:`NotConnectedError`."""
        c = self._conn
        if c is not None and not c.lost and not c.closing:
            return c
        if self._closed:
            raise NSQError("producer is closed")
        if self._connecting is not None:
            return await asyncio.shield(self._connecting)
        fut: asyncio.Future[Conn] = asyncio.get_running_loop().create_future()
        self._connecting = fut
        try:
            conn = await self._open()
        except BaseException as e:
            fut.set_exception(e)
            fut.exception()
            raise
        else:
            fut.set_result(conn)
            return conn
        finally:
            self._connecting = None

    async def _open(self) -> Conn:
        last: BaseException | None = None
        for _ in range(len(self.addresses)):
            addr = self.address
            conn = Conn(addr, self.config, self)
            try:
                await conn.connect()
            except (OSError, asyncio.TimeoutError, NSQError, ProtocolError) as e:
                log.error("(%s) producer connection failed: %s", addr, e)
                last = e
                self._failed(addr)
                continue
            conn.start()
            self._conn = conn
            log.info("(%s) producer connected", addr)
            return conn
        raise NotConnectedError(f"could not connect to any nsqd ({', '.join(self.addresses)})"
                                + (f": {last}" if last else "")) from last

    def _failed(self, address: str) -> None:
        if self.address == address and len(self.addresses) > 1:
            self._index = (self._index + 1) % len(self.addresses)
            log.warning("failing over from %s to %s", address, self.address)

    def _conn_closed(self, conn: Conn, exc: BaseException | None) -> None:
        if self._conn is conn:
            self._conn = None
            if exc is not None and not self._closed:
                log.warning("(%s) producer connection lost: %s", conn.address, exc)

    def _conn_response(self, conn: Conn, data: bytes) -> None:
        log.warning("(%s) unexpected response %r", conn.address, data[:100])

    # -- commands --------------------------------------------------------------------------
    async def _command(self, data: bytes) -> bytes:
        conn = self._conn
        if conn is not None and not conn.lost and not conn.closing:
            try:                                  # fast path: live connection
                return await conn.command(data)
            except ConnectionClosedError as e:
                last: BaseException | None = e
                self._failed(conn.address)
        else:
            last = None
        for _ in range(len(self.addresses)):
            conn = await self.connect()
            try:
                return await conn.command(data)
            except ConnectionClosedError as e:
                last = e
                self._failed(conn.address)
        raise NotConnectedError(str(last)) from last

    async def ping(self) -> None:
        """Connect if needed and send ``NOP``."""
        conn = await self.connect()
        conn.send(enc.encode_nop())

    async def publish(self, topic: str, body: Body) -> None:
        """``PUB``: publish one message and wait for ``OK``."""
        _check_topic(topic)
        await self._command(enc.encode_pub(topic, _body(body)))

    async def multi_publish(self, topic: str, bodies: Sequence[Body]) -> None:
        """``MPUB``: publish several messages atomically."""
        _check_topic(topic)
        if not bodies:
            raise ValueError("multi_publish needs at least one message")
        await self._command(enc.encode_mpub(topic, [_body(b) for b in bodies]))

    async def deferred_publish(self, topic: str, delay: float | datetime.timedelta,
                               body: Body) -> None:
        """``DPUB``: publish one message that channels deliver after ``delay`` seconds."""
        _check_topic(topic)
        if isinstance(delay, datetime.timedelta):
            delay = delay.total_seconds()
        if delay < 0:
            raise ValueError("delay must be >= 0")
        await self._command(enc.encode_dpub(topic, int(delay * 1000), _body(body)))

    # aliases (go-nsq / pynsq names)
    pub = publish
    mpub = multi_publish
    dpub = deferred_publish

    # -- closing ---------------------------------------------------------------------------
    async def close(self) -> None:
        """Close the connection after pending replies arrived (or it was lost)."""
        self._closed = True
        conn = self._conn
        if conn is None:
            return
        pending = list(conn._pending)
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        conn.close()
        await conn.wait_closed()

    stop = close

    async def __aenter__(self) -> "Producer":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()


def _check_topic(topic: str) -> None:
    if not is_valid_topic_name(topic):
        raise ValueError(f"invalid topic name {topic!r}")
