"""Busy polling (nsqpy.busypoll): the loop polls only between dense reads, and stops."""
import asyncio
import os
import time

import uvloop

from nsqpy.busypoll import BUSY_POLL_WINDOW, BusyPoll, busy_poll

WINDOW = 0.002      # a wide window so the test does not depend on scheduling jitter


def _run(coro):
    return uvloop.run(coro)


def test_a_single_read_does_not_start_polling():
    async def main():
        bp = BusyPoll(asyncio.get_running_loop(), WINDOW)
        bp.poke()
        assert not bp.polling
    _run(main())


def test_two_close_reads_start_polling_and_it_stops_after_the_window(monkeypatch):
    polls = 0
    real = BusyPoll._poll

    def counting(self):
        nonlocal polls
        polls += 1
        real(self)
    monkeypatch.setattr(BusyPoll, "_poll", counting)

    async def main():
        loop = asyncio.get_running_loop()
        bp = BusyPoll(loop, WINDOW)
        bp.poke()
        bp.poke()
        assert bp.polling
        await asyncio.sleep(WINDOW * 10)   # nothing else to do: the loop would sleep
        assert not bp.polling
        stopped_polls = polls
        assert stopped_polls > 10          # it polled instead of sleeping...
        await asyncio.sleep(WINDOW * 10)
        assert polls == stopped_polls      # ...and stopped after the window
    _run(main())


def test_reads_while_polling_keep_it_going():
    async def main():
        loop = asyncio.get_running_loop()
        bp = BusyPoll(loop, WINDOW)
        bp.poke()
        bp.poke()
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < WINDOW * 5:
            bp.poke()              # a read every loop turn: still polling
            await asyncio.sleep(0)
            assert bp.polling
        while bp.polling:
            await asyncio.sleep(0)
        assert time.perf_counter() - t0 >= WINDOW * 5
    _run(main())


def test_sparse_reads_never_poll():
    async def main():
        bp = BusyPoll(asyncio.get_running_loop(), WINDOW)
        for _ in range(5):
            bp.poke()
            assert not bp.polling
            await asyncio.sleep(WINDOW * 3)
    _run(main())


def test_one_poller_per_loop():
    async def main():
        loop = asyncio.get_running_loop()
        assert busy_poll(loop) is busy_poll(loop)
        assert busy_poll(loop).window == BUSY_POLL_WINDOW
        return busy_poll(loop)
    first = _run(main())
    second = _run(main())
    assert first is not second       # a new loop gets its own


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_nsqd_stops_polling_once_publishers_are_quiet(nsqd):
    """After a burst of keep-alive /pub round trips nsqd goes back to sleeping: its CPU
    use over the next second is ~0."""
    import http.client
    d = nsqd
    if True:
        conn = http.client.HTTPConnection("127.0.0.1", d.http_port)
        for _ in range(2000):
            conn.request("POST", "/pub?topic=busy", body=b"x" * 100)
            resp = conn.getresponse()
            assert resp.read() == b"OK"
        time.sleep(0.2)
        c0 = _cpu_seconds(d.proc.pid)
        time.sleep(1.0)
        used = _cpu_seconds(d.proc.pid) - c0
        conn.close()
        assert used < 0.05, f"nsqd used {used:.3f} s of CPU in 1 s after the burst"
