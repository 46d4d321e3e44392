"""Depth and message-count history kept by nsqadmin itself (not in upstream nsqadmin).

Every ``interval`` seconds the sampler asks every nsqd of the cluster for
``/stats?format=json&include_clients=false`` and appends, per topic and per channel
(summed over nodes), one point to a ring buffer holding the last ``window`` seconds.
The UI turns consecutive message counts into rates and draws its own graphs, so the
graphs work without graphite.
"""
from __future__ import annotations

import asyncio
import time
from collections import deque

__all__ = ["History"]


class History:
    def __init__(self, admin, interval: float = 10.0, window: float = 3600.0):
        self.admin = admin
        self.interval = max(0.05, float(interval))
        self.window = float(window)
        self.maxlen = max(2, int(self.window / self.interval) + 1)
        # key -> deque of points; topic points: [ts, depth, message_count]
        # channel points: [ts, depth, in_flight, deferred, message_count, clients]
        self.topics: dict[str, deque] = {}
        self.channels: dict[tuple[str, str], deque] = {}
        self.totals: deque = deque(maxlen=self.maxlen)
        self._task: asyncio.Task | None = None
        self._stopping = False
        self.samples = 0

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        self._stopping = True
        t, self._task = self._task, None
        if t is None:
            return
        # cancel until it is really done: a cancellation can be lost inside library code
        for _ in range(20):
            t.cancel()
            done, _pending = await asyncio.wait({t}, timeout=0.1)
            if done:
                break
        if t.done() and not t.cancelled():
            t.exception()

    async def _run(self) -> None:
        while not self._stopping:
            started = time.monotonic()
            try:
                async with asyncio.timeout(max(self.interval, 5.0) * 2):
                    await self.sample()
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - sampling must never stop
                self.admin.log.debug(f"HISTORY: sample failed - {e}")
            if self._stopping:
                return
            await asyncio.sleep(max(0.0, self.interval - (time.monotonic() - started)))

    async def sample(self) -> None:
        admin = self.admin
        opts = admin.opts
        ci = admin.ci
        try:
            producers, _errs = await ci.producers(opts.nsqlookupd_http_addresses,
                                                  opts.nsqd_http_addresses)
        except Exception:  # noqa: BLE001
            return
        topic_stats, _chans, _errs = await ci.nsqd_stats(producers, include_clients=False)
        self.record(time.time(), topic_stats)

    def record(self, ts: float, topic_stats: list[dict]) -> None:
        ts = round(ts, 3)
        topics: dict[str, list] = {}
        channels: dict[tuple[str, str], list] = {}
        for t in topic_stats:
            agg = topics.setdefault(t["topic_name"], [ts, 0, 0])
            agg[1] += t["depth"]
            agg[2] += t["message_count"]
            for c in t["channels"] or []:
                cagg = channels.setdefault((t["topic_name"], c["channel_name"]),
                                           [ts, 0, 0, 0, 0, 0])
                cagg[1] += c["depth"]
                cagg[2] += c["in_flight_count"]
                cagg[3] += c["deferred_count"]
                cagg[4] += c["message_count"]
                cagg[5] += c["client_count"]
        for name, point in topics.items():
            self.topics.setdefault(name, deque(maxlen=self.maxlen)).append(point)
        for key, point in channels.items():
            self.channels.setdefault(key, deque(maxlen=self.maxlen)).append(point)
        self.totals.append([ts, sum(p[1] for p in topics.values()),
                            sum(p[2] for p in topics.values()),
                            sum(p[4] for p in channels.values())])
        self.samples += 1
        self._expire(ts)

    def _expire(self, now: float) -> None:
        horizon = now - self.window
        for store in (self.topics, self.channels):
            for key in [k for k, d in store.items() if not d or d[-1][0] < horizon]:
                del store[key]

    # -- queries -----------------------------------------------------------------------------
    def _base(self) -> dict:
        return {"interval": self.interval, "window": self.window, "now": round(time.time(), 3)}

    def overview(self) -> dict:
        out = self._base()
        out["totals"] = list(self.totals)
        out["topics"] = {k: list(v) for k, v in sorted(self.topics.items())}
        return out

    def topic(self, name: str) -> dict:
        out = self._base()
        out["topic"] = list(self.topics.get(name, ()))
        out["channels"] = {c: list(v) for (t, c), v in sorted(self.channels.items())
                           if t == name}
        return out

    def channel(self, topic: str, channel: str) -> dict:
        out = self._base()
        out["channel"] = list(self.channels.get((topic, channel), ()))
        return out
