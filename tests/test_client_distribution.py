"""nsqpy.client against several real nsqd: RDY spread, redistribution, backoff."""
import asyncio
import time

import pytest

from nsqpy.client import Consumer, Producer

pytestmark = pytest.mark.asyncio


def addr(d):
    return f"127.0.0.1:{d.tcp_port}"


async def wait_until(pred, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


async def start_many(factory, n):
    return [await asyncio.to_thread(factory, data_path=str(factory.tmp / f"nsqd{i}"))
            for i in range(n)]


@pytest.fixture
def nsqds(nsqd_factory, tmp_path):
    nsqd_factory.tmp = tmp_path
    return nsqd_factory


async def ready_counts(daemons, topic, channel):
    out = []
    for d in daemons:
        st = await asyncio.to_thread(d.channel_stats, topic, channel)
        out.append(st["clients"][0]["ready_count"] if st and st["clients"] else None)
    return out


async def test_rdy_spread_over_three_nsqd(nsqds):
    ds = await start_many(nsqds, 3)
    c = Consumer("spread", "ch", lambda m: None, nsqd_tcp_addresses=[addr(d) for d in ds],
                 max_in_flight=9)
    await c.start()
    assert sorted(conn.rdy for conn in c.connections.values()) == [3, 3, 3]
    await asyncio.sleep(0.1)                     # let the RDY writes reach nsqd
    assert await ready_counts(ds, "spread", "ch") == [3, 3, 3]
    c.change_max_in_flight(12)
    assert sorted(conn.rdy for conn in c.connections.values()) == [4, 4, 4]
    c.change_max_in_flight(0)                    # pause
    assert [conn.rdy for conn in c.connections.values()] == [0, 0, 0]
    await asyncio.sleep(0.1)
    assert await ready_counts(ds, "spread", "ch") == [0, 0, 0]
    await c.close()


async def test_rdy_uneven_budget_never_exceeds_max_in_flight(nsqds):
    ds = await start_many(nsqds, 3)
    c = Consumer("uneven", "ch", lambda m: None, nsqd_tcp_addresses=[addr(d) for d in ds],
                 max_in_flight=4)
    await c.start()
    rdys = sorted(conn.rdy for conn in c.connections.values())
    assert sum(rdys) <= 4 and rdys == [1, 1, 1]
    await c.close()


async def test_redistribution_when_max_in_flight_below_connections(nsqds):
    ds = await start_many(nsqds, 3)
    for i, d in enumerate(ds):
        async with Producer(addr(d)) as p:
            await p.multi_publish("redis", [b"%d-%d" % (i, j) for j in range(3)])
    got = []
    max_total = []

    def handler(m):
        got.append(m.body)
        max_total.append(sum(conn.rdy for conn in c.connections.values()))

    c = Consumer("redis", "ch", handler, nsqd_tcp_addresses=[addr(d) for d in ds],
                 max_in_flight=1, low_rdy_idle_timeout="1s", low_rdy_timeout="1s",
                 rdy_redistribute_interval="100ms")
    await c.start()
    assert sum(conn.rdy for conn in c.connections.values()) == 1
    await wait_until(lambda: len(got) == 9, timeout=30)   # no nsqd starves
    await c.close()
    assert sorted(got) == sorted(b"%d-%d" % (i, j) for i in range(3) for j in range(3))
    assert max(max_total) <= 1


async def test_connection_closing_returns_rdy_to_others(nsqds):
    ds = await start_many(nsqds, 2)
    c = Consumer("close", "ch", lambda m: None, nsqd_tcp_addresses=[addr(d) for d in ds],
                 max_in_flight=6)
    await c.start()
    assert sorted(conn.rdy for conn in c.connections.values()) == [3, 3]
    c.disconnect_from_nsqd(addr(ds[0]))
    await wait_until(lambda: len(c.connections) == 1)
    assert c.connections[addr(ds[1])].rdy == 6
    await c.close()


async def test_backoff_entering_and_leaving(nsqd):
    async with Producer(addr(nsqd)) as p:
        await p.publish("bo", b"flaky")
    seen = []                                    # (body, attempts, level, rdy) at entry

    def handler(m):
        conn = c.connections[addr(nsqd)]
        seen.append((m.body, m.attempts, c.backoff_level, conn.rdy))
        if m.body == b"flaky" and m.attempts <= 2:
            raise RuntimeError("not yet")

    c = Consumer("bo", "ch", handler, nsqd_tcp_addresses=[addr(nsqd)], max_in_flight=5,
                 default_requeue_delay=0, backoff_multiplier="50ms")
    await c.start()
    await wait_until(lambda: len(seen) == 3)
    # two failures: level 1 then 2, each retry let through with RDY 1
    assert seen == [(b"flaky", 1, 0, 5), (b"flaky", 2, 1, 1), (b"flaky", 3, 2, 1)]
    await wait_until(lambda: c.in_backoff() and c.backoff_level == 1)
    async with Producer(addr(nsqd)) as p:
        await p.publish("bo", b"fine")           # the next success ends the backoff
    await wait_until(lambda: c.backoff_level == 0 and not c.in_backoff())
    assert seen[3] == (b"fine", 1, 1, 1)
    assert c.connections[addr(nsqd)].rdy == 5    # back to full speed
    await c.close()
