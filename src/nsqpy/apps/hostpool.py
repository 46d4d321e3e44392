"""Destination selection and request timing for the relay tools (nsq_to_http, nsq_to_nsq).

* :class:`HostPool` — go-hostpool's standard pool: round-robin over healthy hosts; a host
  marked failed is skipped for 30 s, the delay doubling on every retry up to 900 s; a dead
  host whose retry time has come is tried once more; when every host is dead they are all
  revived.
* :class:`EpsilonGreedyHostPool` — go-hostpool's epsilon-greedy pool: mostly picks hosts
  weighted by the inverse of their recent (decaying) response time, and explores with
  round-robin with probability ε (0.3, decaying ×0.9 per exploration down to 0.01).
* :class:`RoundRobin` — plain rotation (``--mode=round-robin``).
* :class:`TimerMetrics` — bitly/timer_metrics: every ``status_every`` timings logs
  ``<prefix> finished <N> - 99th: %.02fms - 95th: %.02fms - avg: %.02fms``.

Every ``get`` returns a :class:`HostPoolResponse`; call :meth:`HostPoolResponse.mark`
with ``None`` (success) or an error once the request is done.
"""

from __future__ import annotations

import math
import random
import time
from typing import Callable, Sequence

from .common import std_log

__all__ = ["HostPool", "EpsilonGreedyHostPool", "RoundRobin", "HostPoolResponse",
           "TimerMetrics", "new_pool"]

INITIAL_RETRY_DELAY = 30.0
MAX_RETRY_INTERVAL = 900.0

# epsilon-greedy constants (go-hostpool)
EPSILON_BUCKETS = 120
EPSILON_DECAY = 0.90
MIN_EPSILON = 0.01
INITIAL_EPSILON = 0.3
DEFAULT_DECAY_DURATION = 300.0


class _Host:
    __slots__ = ("host", "dead", "next_retry", "retry_count", "retry_delay",
                 "counts", "values", "epsilon_value", "epsilon_percentage")

    def __init__(self, host: str) -> None:
        self.host = host
        self.dead = False
        self.next_retry = 0.0
        self.retry_count = 0
        self.retry_delay = 0.0
        self.counts = [0] * EPSILON_BUCKETS
        self.values = [0.0] * EPSILON_BUCKETS
        self.epsilon_value = 0.0
        self.epsilon_percentage = 0.0

    def can_try(self, now: float) -> bool:
        return not self.dead or self.next_retry < now

    def will_retry(self, max_retry_interval: float, now: float) -> None:
        self.retry_count += 1
        self.retry_delay = min(self.retry_delay * 2, max_retry_interval)
        self.next_retry = now + self.retry_delay

    def weighted_average_response_time(self, index: int) -> float:
        value = 0.0
        last_value = 0.0
        # start at the next (oldest) bucket, the newest weighs the most
        for i in range(1, EPSILON_BUCKETS + 1):
            pos = (index + i) % EPSILON_BUCKETS
            count = self.counts[pos]
            weight = i / EPSILON_BUCKETS
            if count > 0:
                cur = self.values[pos] / count
                value += cur * weight
                last_value = cur
            else:
                value += last_value * weight
        return value


class HostPoolResponse:
    """The host chosen by a pool; :meth:`mark` reports how the request went."""

    __slots__ = ("host", "_pool", "_started", "_marked")

    def __init__(self, host: str, pool: "HostPool | None") -> None:
        self.host = host
        self._pool = pool
        self._started = time.monotonic()
        self._marked = False

    def mark(self, err: object | None) -> None:
        """``None`` = the request succeeded; anything else marks the host failed."""
        if self._marked or self._pool is None:
            return
        self._marked = True
        self._pool._mark(self, err)


class HostPool:
    """go-hostpool's standard pool (see module docstring)."""

    def __init__(self, hosts: Sequence[str], *,
                 initial_retry_delay: float = INITIAL_RETRY_DELAY,
                 max_retry_interval: float = MAX_RETRY_INTERVAL,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not hosts:
            raise ValueError("no hosts")
        self._list = [_Host(h) for h in hosts]
        self._by_host = {h.host: h for h in self._list}
        self._next = 0
        self.initial_retry_delay = initial_retry_delay
        self.max_retry_interval = max_retry_interval
        self._clock = clock

    @property
    def hosts(self) -> list[str]:
        return [h.host for h in self._list]

    def is_dead(self, host: str) -> bool:
        return self._by_host[host].dead

    def get(self) -> HostPoolResponse:
        return HostPoolResponse(self._round_robin(), self)

    def _round_robin(self) -> str:
        now = self._clock()
        n = len(self._list)
        for i in range(n):
            idx = (i + self._next) % n
            h = self._list[idx]
            if not h.dead:
                self._next = idx + 1
                return h.host
            if h.next_retry < now:
                h.will_retry(self.max_retry_interval, now)
                self._next = idx + 1
                return h.host
        # every host is down: revive them all
        self.reset_all()
        self._next = 0
        return self._list[0].host

    def reset_all(self) -> None:
        for h in self._list:
            h.dead = False

    def _mark(self, resp: HostPoolResponse, err: object | None) -> None:
        h = self._by_host.get(resp.host)
        if h is None:
            return
        if err is None:
            h.dead = False
            return
        if not h.dead:
            h.dead = True
            h.retry_count = 0
            h.retry_delay = self.initial_retry_delay
            h.next_retry = self._clock() + h.retry_delay


class EpsilonGreedyHostPool(HostPool):
    """go-hostpool's epsilon-greedy pool with the linear value calculator (1/avg)."""

    def __init__(self, hosts: Sequence[str], decay_duration: float = 0.0, *,
                 rng: random.Random | None = None, **kw: object) -> None:
        super().__init__(hosts, **kw)  # type: ignore[arg-type]
        self.epsilon = INITIAL_EPSILON
        self.decay_duration = decay_duration if decay_duration > 0 else DEFAULT_DECAY_DURATION
        self._rng = rng or random.Random()
        self._index = 0
        self._bucket_started = self._clock()

    def _advance(self) -> None:
        """Rotate the response-time buckets (decay_duration / 120 each)."""
        step = self.decay_duration / EPSILON_BUCKETS
        now = self._clock()
        while now - self._bucket_started >= step:
            self._bucket_started += step
            self._index = (self._index + 1) % EPSILON_BUCKETS
            for h in self._list:
                h.counts[self._index] = 0
                h.values[self._index] = 0.0

    def get(self) -> HostPoolResponse:
        self._advance()
        return HostPoolResponse(self._epsilon_greedy(), self)

    def _epsilon_greedy(self) -> str:
        rng = self._rng
        if rng.random() < self.epsilon:          # exploration
            self.epsilon = max(self.epsilon * EPSILON_DECAY, MIN_EPSILON)
            return self._round_robin()
        now = self._clock()
        possible: list[_Host] = []
        total = 0.0
        for h in self._list:
            if h.can_try(now):
                v = h.weighted_average_response_time(self._index)
                if v > 0:
                    h.epsilon_value = 1.0 / v
                    total += h.epsilon_value
                    possible.append(h)
        chosen: _Host | None = None
        if possible:
            pick = rng.random()
            ceiling = 0.0
            for h in possible:
                h.epsilon_percentage = h.epsilon_value / total
                ceiling += h.epsilon_percentage
                if pick <= ceiling:
                    chosen = h
                    break
        if chosen is None:
            return self._round_robin()
        if chosen.dead:
            chosen.will_retry(self.max_retry_interval, now)
        return chosen.host

    def _mark(self, resp: HostPoolResponse, err: object | None) -> None:
        super()._mark(resp, err)
        if err is None:
            self._advance()
            h = self._by_host.get(resp.host)
            if h is not None:
                ms = (time.monotonic() - resp._started) * 1000.0
                h.counts[self._index] += 1
                h.values[self._index] += ms


class RoundRobin:
    """Plain rotation; ``mark`` is a no-op.  Starts at the second host like Go's
    ``atomic.AddUint64(&counter, 1) % len``."""

    def __init__(self, hosts: Sequence[str]) -> None:
        if not hosts:
            raise ValueError("no hosts")
        self._hosts = list(hosts)
        self._counter = 0

    @property
    def hosts(self) -> list[str]:
        return list(self._hosts)

    def get(self) -> HostPoolResponse:
        self._counter += 1
        return HostPoolResponse(self._hosts[self._counter % len(self._hosts)], None)


def new_pool(mode: str, hosts: Sequence[str]) -> HostPool | RoundRobin:
    """``round-robin`` → :class:`RoundRobin`; ``epsilon-greedy`` →
    :class:`EpsilonGreedyHostPool`; anything else → :class:`HostPool`."""
    if mode == "round-robin":
        return RoundRobin(hosts)
    if mode == "epsilon-greedy":
        return EpsilonGreedyHostPool(hosts)
    return HostPool(hosts)


def _percentile(perc: float, arr: list[float]) -> float:
    n = len(arr)
    if n == 0:
        return 0.0
    idx = int(math.ceil((perc / 100.0) * n + 0.5))
    if idx >= n:
        idx = n - 1
    return arr[idx]


class TimerMetrics:
    """bitly/timer_metrics: a ring of the last ``status_every`` durations; each time the
    ring wraps (the ``status_every + 1``-th sample, then every ``status_every``) logs
    ``<prefix> finished <N> - 99th: …ms - 95th: …ms - avg: …ms``.  ``status_every`` 0
    disables it; below 100 a warning is logged at creation (as Go does)."""

    def __init__(self, status_every: int, prefix: str,
                 log: Callable[[str], None] = std_log) -> None:
        self.status_every = status_every
        self.prefix = prefix
        self._log = log
        self._timings: list[float] = []
        self._position = 0
        if status_every > 0 and status_every < 100:
            log("Warning: use more than 100 status values for accurate percentiles "
                f"(configured with {status_every})")

    def status(self, started: float) -> None:
        """Record ``time.monotonic() - started``."""
        if self.status_every <= 0:
            return
        self.status_duration(time.monotonic() - started)

    def status_duration(self, seconds: float) -> None:
        if self.status_every <= 0:
            return
        self._position += 1
        looped = False
        if self._position > self.status_every:
            looped = True
            self._position = 1
        if self._position > len(self._timings):
            self._timings.append(seconds)
        else:
            self._timings[self._position - 1] = seconds
        if looped:
            self._log(self.stats_line())

    def stats_line(self) -> str:
        timings = sorted(self._timings)
        n = len(timings)
        avg = (sum(self._timings) / n) if n else 0.0
        p95 = _percentile(95.0, timings)
        p99 = _percentile(99.0, timings)
        return (f"{self.prefix} finished {n} - 99th: {p99 * 1000:.2f}ms - "
                f"95th: {p95 * 1000:.2f}ms - avg: {avg * 1000:.2f}ms")
