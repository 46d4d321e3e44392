"""RDY distribution, redistribution and backoff for one consumer (semantics §6.4, §6.5).

:class:`RdyController` holds no sockets: it reads and writes a few attributes of the
connection objects it manages (``rdy``, ``max_rdy``, ``last_rdy_time``,
``last_msg_time``, ``in_flight``, ``closing``, ``rdy_retry``) and calls their
``send_rdy(count)``; timers go through an injected ``call_later(delay, fn, *args)``
(``loop.call_later`` in production, a fake clock in tests) and randomness through an
injected :class:`random.Random`.

Rules:

* ``per_conn = min(max(1, max_in_flight // num_conns), max_in_flight)``;
* a connection's RDY never exceeds its ``max_rdy`` and the sum over all connections
  never exceeds ``max_in_flight`` (an increase is truncated to what is left; if nothing
  is left it is refused, and retried after ``rdy_retry_delay`` when the connection
  sits at RDY 0 so that it cannot starve); unchanged values are not re-sent;
* RDY is only sent when the wanted count changes, never re-sent as messages arrive:
  nsqd keeps the count and delivers while ``in_flight < RDY`` (go-nsq relies on the
  same);
* every connection is updated to ``per_conn`` when one is added or removed and when
  ``max_in_flight`` changes, unless backing off; decreases are sent before increases
  so that freed budget can be handed out in the same pass;
* :meth:`RdyController.redistribute` (run every ``rdy_redistribute_interval``) is what
  serves more connections than ``max_in_flight`` (and several connections during
  backoff): it takes RDY away from connections idle for ``low_rdy_idle_timeout`` or
  holding it for ``low_rdy_timeout`` and gives the free budget, one RDY each, to
  randomly chosen connections at RDY 0 (those that just gave theirs up last);
* backoff: a failed message (requeue with backoff) raises the level, a finished one
  lowers it; at level > 0 every connection goes to RDY 0 for
  ``min(strategy(level), max_backoff_duration)``, then one random connection gets
  RDY 1 and the result of that message decides what's next; signals arriving while the
  backoff timer runs are ignored; back at level 0 every connection returns to
  ``per_conn``.
"""

from __future__ import annotations

import logging
import random
from typing import Any, Callable, Protocol

__all__ = ["RdyController", "RdyConn", "exponential_strategy", "full_jitter_strategy",
           "RESUME", "BACKOFF", "CONTINUE"]

log = logging.getLogger("nsqpy.client")

RESUME = "resume"        # message finished
BACKOFF = "backoff"      # message requeued with backoff
CONTINUE = "continue"    # message requeued without backoff


class RdyConn(Protocol):
    """The connection attributes :class:`RdyController` uses."""

    address: str
    rdy: int
    max_rdy: int
    last_rdy_time: float
    last_msg_time: float
    in_flight: int
    closing: bool
    rdy_retry: Any

    def send_rdy(self, count: int) -> None: ...


def exponential_strategy(multiplier: float) -> Callable[[int], float]:
    """go-nsq's exponential strategy: ``multiplier × 2^level`` seconds."""
    def strategy(level: int) -> float:
        return multiplier * float(1 << level)
    return strategy


def full_jitter_strategy(multiplier: float, rng: random.Random | None = None
                         ) -> Callable[[int], float]:
    """go-nsq's full-jitter strategy: uniform in ``[0, multiplier × 2^level)``."""
    r = rng or random.Random()

    def strategy(level: int) -> float:
        return r.random() * multiplier * float(1 << level)
    return strategy


class RdyController:
    """RDY state machine of one consumer (see the module docstring)."""

    def __init__(self, max_in_flight: int, *, call_later: Callable[..., Any],
                 clock: Callable[[], float],
                 strategy: Callable[[int], float] | None = None,
                 max_backoff_duration: float = 120.0,
                 low_rdy_idle_timeout: float = 10.0, low_rdy_timeout: float = 30.0,
                 rdy_retry_delay: float = 5.0, rng: random.Random | None = None,
                 name: str = "") -> None:
        self.max_in_flight = max_in_flight
        self.conns: list[RdyConn] = []
        self.backoff_level = 0
        self.in_backoff_timeout = False
        self.need_redistribute = False
        self.stopped = False
        self.strategy = strategy or exponential_strategy(1.0)
        self.max_backoff_duration = max_backoff_duration
        self.low_rdy_idle_timeout = low_rdy_idle_timeout
        self.low_rdy_timeout = low_rdy_timeout
        self.rdy_retry_delay = rdy_retry_delay
        self.name = name
        self._call_later = call_later
        self._clock = clock
        self._rng = rng or random.Random()
        self._backoff_timer: Any = None

    # -- queries ---------------------------------------------------------------------------
    @property
    def total_rdy(self) -> int:
        return sum(c.rdy for c in self.conns)

    def in_backoff(self) -> bool:
        """True while the backoff level is above 0 or a backoff timer runs."""
        return self.backoff_level > 0 or self.in_backoff_timeout

    def per_conn(self) -> int:
        n = len(self.conns)
        mif = self.max_in_flight
        if n == 0:
            return min(1, mif)
        return min(max(1, mif // n), mif)

    def is_starved(self) -> bool:
        """True if some open connection has ``0 < in_flight ≥ 0.85 × rdy``."""
        for c in self.conns:
            if c.in_flight > 0 and c.in_flight >= c.rdy * 0.85 and not c.closing:
                return True
        return False

    # -- RDY updates -----------------------------------------------------------------------
    def update_rdy(self, conn: RdyConn, count: int) -> bool:
        """Set ``conn`` to ``count`` within the limits; False if refused."""
        if conn.closing or self.stopped:
            return False
        if count > conn.max_rdy:
            count = conn.max_rdy
        self._cancel_retry(conn)
        cur = conn.rdy
        max_possible = self.max_in_flight - self.total_rdy + cur
        if 0 < max_possible < count:
            count = max_possible
        if max_possible <= 0 and count > 0:
            if cur == 0:
                conn.rdy_retry = self._call_later(self.rdy_retry_delay, self._retry, conn, count)
            return False
        if count != cur:
            conn.send_rdy(count)
        return True

    def _retry(self, conn: RdyConn, count: int) -> None:
        conn.rdy_retry = None
        if conn in self.conns:
            self.update_rdy(conn, count)

    @staticmethod
    def _cancel_retry(conn: RdyConn) -> None:
        if conn.rdy_retry is not None:
            conn.rdy_retry.cancel()
            conn.rdy_retry = None

    def _set_all(self, count: int) -> None:
        # decreases first so that the budget they free is available to the increases
        for c in sorted(self.conns, key=lambda c: count - c.rdy):
            self.update_rdy(c, count)

    def _rebalance(self) -> None:
        if not self.in_backoff() and self.conns:
            self._set_all(self.per_conn())

    # -- connections -----------------------------------------------------------------------
    def add_conn(self, conn: RdyConn) -> None:
        """A connection subscribed: give every connection its share (unless backing off)."""
        conn.rdy_retry = None
        if not conn.last_msg_time:
            conn.last_msg_time = self._clock()
        self.conns.append(conn)
        self._rebalance()

    def remove_conn(self, conn: RdyConn) -> None:
        """A connection closed: its RDY returns to the budget."""
        if conn not in self.conns:
            return
        self.conns.remove(conn)
        self._cancel_retry(conn)
        had = conn.rdy
        conn.rdy = 0
        if had > 0 and (len(self.conns) == self.max_in_flight or self.in_backoff()):
            self.need_redistribute = True
        if len(self.conns) <= self.max_in_flight:
            self._rebalance()

    def set_max_in_flight(self, max_in_flight: int) -> None:
        """Change ``max_in_flight`` (0 pauses); applied at once unless backing off."""
        if max_in_flight < 0:
            raise ValueError("max_in_flight must be >= 0")
        if max_in_flight == self.max_in_flight:
            return
        self.max_in_flight = max_in_flight
        self._rebalance()

    # -- redistribution --------------------------------------------------------------------
    def redistribute(self) -> None:
        """Periodic pass (every ``rdy_redistribute_interval``)."""
        if self.in_backoff_timeout or self.stopped or not self.conns:
            return
        conns = self.conns
        if len(conns) > self.max_in_flight:
            self.need_redistribute = True
        if self.in_backoff() and len(conns) > 1:
            self.need_redistribute = True
        if not self.need_redistribute:
            return
        self.need_redistribute = False
        now = self._clock()
        taken = []
        for c in conns:
            if c.rdy > 0:
                idle = now - max(c.last_msg_time, c.last_rdy_time)
                if idle > self.low_rdy_idle_timeout:
                    log.debug("(%s) idle connection, giving up RDY", c.address)
                    self.update_rdy(c, 0)
                    taken.append(c)
                elif now - c.last_rdy_time > self.low_rdy_timeout:
                    log.debug("(%s) RDY timeout, giving up RDY", c.address)
                    self.update_rdy(c, 0)
                    taken.append(c)
        limit = 1 if self.in_backoff() else self.max_in_flight
        available = limit - self.total_rdy
        # connections that just gave RDY up come last, so that the others get a turn
        waiting = [c for c in conns if c.rdy == 0 and not c.closing and c not in taken]
        candidates = waiting + [c for c in taken if c.rdy == 0 and not c.closing]
        while candidates and available > 0:
            n = len(waiting) if waiting else len(candidates)
            c = candidates.pop(self._rng.randrange(n))
            if waiting:
                waiting.remove(c)
            if self.update_rdy(c, 1):
                available -= 1

    # -- backoff ---------------------------------------------------------------------------
    def signal(self, kind: str) -> None:
        """Feed one message result: :data:`RESUME` (finished), :data:`BACKOFF`
        (requeued with backoff) or :data:`CONTINUE` (requeued without backoff)."""
        if self.in_backoff_timeout or self.stopped:
            return
        level = self.backoff_level
        updated = False
        if kind == RESUME:
            if level > 0:
                level -= 1
                updated = True
        elif kind == BACKOFF:
            if self.strategy(level + 1) <= self.max_backoff_duration:
                level += 1
                updated = True
        self.backoff_level = level
        if level == 0:
            if updated:
                count = self.per_conn()
                log.warning("%sexiting backoff, returning all to RDY %d", self.name, count)
                self._set_all(count)
        else:
            duration = min(self.strategy(level), self.max_backoff_duration)
            log.warning("%sbacking off for %.3fs (backoff level %d), setting all to RDY 0",
                        self.name, duration, level)
            self._set_all(0)
            self._start_backoff_timer(duration)

    def _start_backoff_timer(self, duration: float) -> None:
        self.in_backoff_timeout = True
        if self._backoff_timer is not None:
            self._backoff_timer.cancel()
        self._backoff_timer = self._call_later(duration, self._resume)

    def _resume(self) -> None:
        self._backoff_timer = None
        if self.stopped:
            self.in_backoff_timeout = False
            return
        conns = [c for c in self.conns if not c.closing]
        if not conns:
            self._start_backoff_timer(1.0)
            return
        choice = conns[self._rng.randrange(len(conns))]
        # the timer still counts as running while we pick, so that update_rdy's
        # budget check is the only gate
        self.in_backoff_timeout = False
        log.warning("%s(%s) backoff timeout expired, sending RDY 1", self.name, choice.address)
        if not self.update_rdy(choice, 1):
            self._start_backoff_timer(1.0)

    def stop(self) -> None:
        """No more RDY updates or timers."""
        self.stopped = True
        if self._backoff_timer is not None:
            self._backoff_timer.cancel()
            self._backoff_timer = None
        for c in self.conns:
            self._cancel_retry(c)
