"""Busy polling: after dense socket activity, keep the event loop polling instead of
letting it sleep in ``epoll_wait`` for a short window.

A client that waits for each answer before it sends the next request (HTTP keep-alive
``/pub``, ``PUB`` one message at a time) makes the daemon sleep between requests, and
being woken costs a context switch and an inter-processor interrupt on both sides —
in a VM that is about a third of the daemon's CPU per request. While the loop polls
with a zero timeout (a callback is always ready), the next request is found without
a wake-up: a round trip takes about half as long. Go's scheduler does the same: an
idle thread spins a while looking for work before it parks.

The cost is bounded. Polling starts only when two socket reads come less than
:data:`BUSY_POLL_WINDOW` apart, and stops once the loop has been idle that long, so a
daemon with sparse or no traffic never polls (idle CPU stays 0) and a burst that ends
wastes one window of CPU. Steady traffic with reads closer together than the window
keeps one core busy polling: the daemon then shows 100 % CPU in ``top`` at a rate that
would otherwise use a fraction of it, and answers each request without a wake-up.

Protocols call :meth:`BusyPoll.poke` from ``data_received``; one :class:`BusyPoll`
serves every protocol of a loop (:func:`busy_poll`).
"""
from __future__ import annotations

import time

__all__ = ["BUSY_POLL_WINDOW", "BusyPoll", "busy_poll"]

BUSY_POLL_WINDOW = 150e-6   # seconds without a read before the loop may sleep again

_clock = time.perf_counter


class BusyPoll:
    """The polling state of one event loop."""
    __slots__ = ("loop", "window", "polling", "active", "last")

    def __init__(self, loop, window: float = BUSY_POLL_WINDOW):
        self.loop = loop
        self.window = window
        self.polling = False    # a _poll callback is scheduled
        self.active = False     # a read happened since the last _poll
        self.last = -1.0        # when the last read was seen

    def poke(self) -> None:
        """A socket read happened (called from ``data_received``)."""
        if self.polling:
            self.active = True
            return
        now = _clock()
        if now - self.last < self.window:
            self.polling = True
            self.active = False
            self.loop.call_soon(self._poll)
        self.last = now

    def _poll(self) -> None:
        now = _clock()
        if self.active:
            self.active = False
            self.last = now
        elif now - self.last >= self.window:
            self.polling = False
            return
        self.loop.call_soon(self._poll)


_current: BusyPoll | None = None


def busy_poll(loop) -> BusyPoll:
    """The :class:`BusyPoll` of ``loop`` (one per loop; the last one is cached)."""
    global _current
    bp = _current
    if bp is None or bp.loop is not loop:
        bp = _current = BusyPoll(loop)
    return bp
