"""End-to-end processing latency percentiles (``--e2e-processing-latency-percentile``).

Each channel samples ``now - message timestamp`` on FIN into two half-window streams that
rotate every ``window/2``; a query merges both.  Each half keeps a bounded uniform
reservoir, so memory stays constant however many messages pass.
"""
import time

RESERVOIR_SIZE = 4096


class _Half:
    __slots__ = ("samples", "count", "started")

    def __init__(self, started: float):
        self.samples = []
        self.count = 0
        self.started = started

    def add(self, value: int) -> None:
        self.count += 1
        if len(self.samples) < RESERVOIR_SIZE:
            self.samples.append(value)
        else:
            import random
            i = random.randrange(self.count)
            if i < RESERVOIR_SIZE:
                self.samples[i] = value


class E2EStream:
    def __init__(self, percentiles, window_ns: int):
        self.percentiles = list(percentiles)
        self.half_window = window_ns / 2e9
        now = time.monotonic()
        self.current = _Half(now)
        self.previous = _Half(now)

    def _rotate(self, now: float) -> None:
        if now - self.current.started >= self.half_window:
            self.previous = self.current
            self.current = _Half(now)
            if now - self.previous.started >= 2 * self.half_window:
                self.previous = _Half(now)

    def add_sample(self, timestamp_ns: int) -> None:
        now = time.monotonic()
        if now - self.current.started >= self.half_window:
            self._rotate(now)
        self.current.add(time.time_ns() - timestamp_ns)

    def samples(self):
        self._rotate(time.monotonic())
        return self.previous.samples + self.current.samples

    @property
    def count(self) -> int:
        self._rotate(time.monotonic())
        return self.previous.count + self.current.count


def quantiles(percentiles, samples):
    """[{"quantile": q, "value": v}, ...] in the configured order, or None if unset."""
    if not percentiles:
        return None
    data = sorted(samples)
    out = []
    for q in percentiles:
        if data:
            idx = min(len(data) - 1, max(0, int(round(q * len(data))) - 1))
            value = float(data[idx])
        else:
            value = 0.0
        out.append({"quantile": q, "value": value})
    return out


def snapshot(percentiles, streams):
    """The /stats ``e2e_processing_latency`` object merging one or more channel streams."""
    if not percentiles:
        return {"count": 0, "percentiles": None}
    samples = []
    count = 0
    for s in streams:
        if s is not None:
            samples += s.samples()
            count += s.count
    return {"count": count, "percentiles": quantiles(percentiles, samples)}
