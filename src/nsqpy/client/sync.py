"""Blocking publishing for scripts: :class:`SyncProducer` and :func:`publish`.

A :class:`SyncProducer` runs its own event loop in a daemon thread and forwards each
call to an asyncio :class:`~nsqpy.client.producer.Producer` there, so it works from
plain code and from inside another running event loop alike::

    with SyncProducer("127.0.0.1:4150") as p:
        p.publish("topic", b"hello")
        p.multi_publish("topic", [b"a", b"b"])

    publish("127.0.0.1:4150", "topic", b"one-off")
"""

from __future__ import annotations

import asyncio
import datetime
import threading
from typing import Any, Coroutine, Iterable, Sequence, TypeVar

from .config import Config
from .producer import Body, Producer

__all__ = ["SyncProducer", "publish"]

T = TypeVar("T")


class SyncProducer:
    """Thread-backed blocking wrapper around :class:`Producer`.  ``timeout`` (seconds,
    None = wait forever) bounds each call."""

    def __init__(self, nsqd_tcp_addresses: str | Iterable[str], *,
                 config: Config | None = None, timeout: float | None = 30.0,
                 **options: Any) -> None:
        self.timeout = timeout
        self.producer = Producer(nsqd_tcp_addresses, config=config, **options)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever,
                                        name="nsqpy-sync-producer", daemon=True)
        self._thread.start()
        self._closed = False

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        if self._closed:
            coro.close()
            raise RuntimeError("SyncProducer is closed")
        fut = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return fut.result(self.timeout)
        except TimeoutError:
            fut.cancel()
            raise

    def ping(self) -> None:
        self._call(self.producer.ping())

    def publish(self, topic: str, body: Body) -> None:
        self._call(self.producer.publish(topic, body))

    def multi_publish(self, topic: str, bodies: Sequence[Body]) -> None:
        self._call(self.producer.multi_publish(topic, bodies))

    def deferred_publish(self, topic: str, delay: float | datetime.timedelta,
                         body: Body) -> None:
        self._call(self.producer.deferred_publish(topic, delay, body))

    pub = publish
    mpub = multi_publish
    dpub = deferred_publish

    def close(self) -> None:
        """Close the connection and stop the background loop."""
        if self._closed:
            return
        try:
            self._call(self.producer.close())
        finally:
            self._closed = True
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
            if not self._thread.is_alive():
                self._loop.close()

    stop = close

    def __enter__(self) -> "SyncProducer":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def publish(nsqd_tcp_addresses: str | Iterable[str], topic: str,
            body: Body | Sequence[Body], *, defer: float | None = None,
            **options: Any) -> None:
    """Publish and return: one message (``bytes``/``str``; ``defer`` seconds → DPUB) or,
    given a list/tuple, all of them in one MPUB."""
    with SyncProducer(nsqd_tcp_addresses, **options) as p:
        if isinstance(body, (list, tuple)):
            p.multi_publish(topic, body)
        elif defer is not None:
            p.deferred_publish(topic, defer, body)  # type: ignore[arg-type]
        else:
            p.publish(topic, body)  # type: ignore[arg-type]
