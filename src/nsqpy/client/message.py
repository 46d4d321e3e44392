"""A message received by a consumer, with its responses (FIN / REQ / TOUCH)."""

from __future__ import annotations

import datetime
from typing import Protocol

__all__ = ["Message", "Responder"]


class Responder(Protocol):
    """What a :class:`Message` answers through (the connection it arrived on)."""

    def _msg_finish(self, msg: "Message") -> None: ...
    def _msg_requeue(self, msg: "Message", delay: float | None, backoff: bool) -> None: ...
    def _msg_touch(self, msg: "Message") -> None: ...


class Message:
    """One delivery of a message.

    * ``id`` — the 16-byte ASCII-hex id (``bytes``), ``body`` — the payload (``bytes``),
    * ``timestamp`` — publish time in nanoseconds since the epoch,
    * ``attempts`` — deliveries so far including this one (first delivery = 1),
    * ``nsqd_address`` — ``host:port`` of the nsqd it came from.

    Respond at most once: :meth:`finish`, :meth:`requeue` (optionally without
    backoff); :meth:`touch` may be called any number of times before that.  With the
    consumer's auto-response on, a handler that returns normally finishes the message
    and one that raises requeues it; call :meth:`disable_auto_response` to answer later
    (e.g. from another task).
    """

    __slots__ = ("id", "body", "timestamp", "attempts", "_conn", "_responded", "_manual")

    def __init__(self, msg_id: bytes, body: bytes, timestamp: int, attempts: int,
                 conn: Responder) -> None:
        self.id = msg_id
        self.body = body
        self.timestamp = timestamp
        self.attempts = attempts
        self._conn = conn
        self._responded = False
        self._manual = False

    @property
    def nsqd_address(self) -> str:
        return getattr(self._conn, "address", "")

    def finish(self) -> None:
        """Send ``FIN``: the message is done.  A second response is ignored."""
        if not self._responded:
            self._responded = True
            self._conn._msg_finish(self)

    def requeue(self, delay: float | datetime.timedelta | None = None,
                backoff: bool = True) -> None:
        """Send ``REQ``: deliver the message again after ``delay`` seconds (``None``:
        ``default_requeue_delay × attempts`` capped at ``max_requeue_delay``).
        ``backoff=True`` also signals the consumer to back off."""
        if not self._responded:
            self._responded = True
            if isinstance(delay, datetime.timedelta):
                delay = delay.total_seconds()
            self._conn._msg_requeue(self, delay, backoff)

    def requeue_without_backoff(self, delay: float | datetime.timedelta | None = None) -> None:
        """:meth:`requeue` without the backoff signal."""
        self.requeue(delay, backoff=False)

    def touch(self) -> None:
        """Send ``TOUCH``: reset the server-side in-flight timeout.  Never automatic."""
        if not self._responded:
            self._conn._msg_touch(self)

    def disable_auto_response(self) -> None:
        """Don't FIN/REQ this message when the handler returns; the code that took it
        over must call :meth:`finish` or :meth:`requeue`."""
        self._manual = True

    def enable_async(self) -> None:
        """pynsq's name for :meth:`disable_auto_response`."""
        self._manual = True

    def is_auto_response_disabled(self) -> bool:
        return self._manual

    def has_responded(self) -> bool:
        """True once FIN or REQ was sent for this delivery."""
        return self._responded

    def __repr__(self) -> str:
        return (f"<Message id={self.id.decode('ascii', 'replace')} attempts={self.attempts} "
                f"body={self.body[:32]!r}{'…' if len(self.body) > 32 else ''}>")
