"""nsqpy.client Consumer/Producer against a real nsqd: message handling behaviours."""
import asyncio
import socket
import time

import pytest

from daemons import start_nsqd
from nsqpy.client import Consumer, Producer

pytestmark = pytest.mark.asyncio


def addr(d):
    return f"127.0.0.1:{d.tcp_port}"


async def wait_until(pred, timeout=10.0, interval=0.02):
    deadline = time.monotonic() + timeout
    while True:
        if pred():
            return
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(interval)


async def channel_stats(d, topic, channel):
    return await asyncio.to_thread(d.channel_stats, topic, channel)


async def test_publish_consume_round_trip(nsqd):
    async with Producer(addr(nsqd)) as p:
        for i in range(100):
            await p.publish("rt", b"msg-%d" % i)
    got = []
    c = Consumer("rt", "ch", lambda m: got.append((m.body, m.attempts)),
                 nsqd_tcp_addresses=[addr(nsqd)], max_in_flight=20)
    await c.start()
    await wait_until(lambda: len(got) == 100)
    await c.close()
    assert sorted(b for b, _ in got) == sorted(b"msg-%d" % i for i in range(100))
    assert all(a == 1 for _, a in got)
    st = await channel_stats(nsqd, "rt", "ch")
    assert st["depth"] == 0 and st["in_flight_count"] == 0


async def test_message_fields(nsqd):
    before = time.time_ns()
    async with Producer(addr(nsqd)) as p:
        await p.publish("fields", "text body")
    got = []
    async with Consumer("fields", "ch", got.append, nsqd_tcp_addresses=[addr(nsqd)]):
        await wait_until(lambda: got)
    m = got[0]
    assert m.body == b"text body" and len(m.id) == 16 and m.attempts == 1
    assert before - 10**9 <= m.timestamp <= time.time_ns()
    assert m.nsqd_address == addr(nsqd) and m.has_responded()


async def test_multi_publish(nsqd):
    async with Producer(addr(nsqd)) as p:
        await p.multi_publish("mp", [b"a", b"bb", bytearray(b"ccc"), "dddd"])
    got = []
    async with Consumer("mp", "ch", lambda m: got.append(m.body),
                        nsqd_tcp_addresses=[addr(nsqd)], max_in_flight=10):
        await wait_until(lambda: len(got) == 4)
    assert sorted(got) == [b"a", b"bb", b"ccc", b"dddd"]


async def test_deferred_publish(nsqd):
    got = []
    c = Consumer("dp", "ch", lambda m: got.append(time.monotonic()),
                 nsqd_tcp_addresses=[addr(nsqd)])
    await c.start()
    async with Producer(addr(nsqd)) as p:
        t0 = time.monotonic()
        await p.deferred_publish("dp", 1.0, b"later")
    st = await channel_stats(nsqd, "dp", "ch")
    assert st["deferred_count"] == 1
    await wait_until(lambda: got, timeout=5)
    await c.close()
    assert got[0] - t0 >= 0.9


async def test_requeue_with_backoff(nsqd):
    async with Producer(addr(nsqd)) as p:
        await p.publish("rq", b"x")
    seen = []
    levels = []

    def handler(m):
        seen.append(m.attempts)
        levels.append(c.backoff_level)
        if m.attempts == 1:
            raise RuntimeError("fail once")

    c = Consumer("rq", "ch", handler, nsqd_tcp_addresses=[addr(nsqd)],
                 default_requeue_delay=0, backoff_multiplier="50ms")
    await c.start()
    await wait_until(lambda: len(seen) == 2)
    await wait_until(lambda: c.backoff_level == 0 and not c.in_backoff())
    await c.close()
    assert seen == [1, 2]
    assert levels == [0, 1]                      # the failure raised the backoff level
    assert c.messages_requeued == 1 and c.messages_finished == 1
    st = await channel_stats(nsqd, "rq", "ch")
    assert st["requeue_count"] == 1


async def test_requeue_without_backoff(nsqd):
    async with Producer(addr(nsqd)) as p:
        await p.publish("rqn", b"x")
    seen = []

    def handler(m):
        seen.append((m.attempts, c.in_backoff()))
        if m.attempts == 1:
            m.requeue_without_backoff(0)

    c = Consumer("rqn", "ch", handler, nsqd_tcp_addresses=[addr(nsqd)])
    await c.start()
    await wait_until(lambda: len(seen) == 2)
    await c.close()
    assert seen == [(1, False), (2, False)]
    assert c.backoff_level == 0


async def test_requeue_default_delay_grows_with_attempts(nsqd):
    async with Producer(addr(nsqd)) as p:
        await p.publish("rqd", b"x")
    seen = []

    def handler(m):
        seen.append(time.monotonic())
        if m.attempts == 1:
            m.requeue(backoff=False)             # default: 500ms × attempts

    c = Consumer("rqd", "ch", handler, nsqd_tcp_addresses=[addr(nsqd)],
                 default_requeue_delay="500ms")
    await c.start()
    await wait_until(lambda: len(seen) == 2)
    await c.close()
    assert seen[1] - seen[0] >= 0.4


async def test_touch_keeps_message_in_flight(nsqd):
    async with Producer(addr(nsqd)) as p:
        await p.publish("touch", b"slow")
    seen = []

    async def handler(m):
        seen.append(m.attempts)
        for _ in range(6):                       # 2.4 s > msg_timeout 1 s
            await asyncio.sleep(0.4)
            m.touch()

    c = Consumer("touch", "ch", handler, nsqd_tcp_addresses=[addr(nsqd)], msg_timeout="1s")
    await c.start()
    await wait_until(lambda: c.messages_finished == 1, timeout=10)
    await c.close()
    assert seen == [1]
    st = await channel_stats(nsqd, "touch", "ch")
    assert st["timeout_count"] == 0 and st["requeue_count"] == 0


async def test_auto_finish_off_requires_explicit_finish(nsqd):
    async with Producer(addr(nsqd)) as p:
        await p.publish("af", b"x")
    held = []
    c = Consumer("af", "ch", held.append, nsqd_tcp_addresses=[addr(nsqd)], auto_finish=False)
    await c.start()
    await wait_until(lambda: held)
    await asyncio.sleep(0.2)
    st = await channel_stats(nsqd, "af", "ch")
    assert st["in_flight_count"] == 1            # nothing was sent for it
    held[0].finish()
    await wait_until(lambda: c.messages_finished == 1)
    await asyncio.sleep(0.1)
    st = await channel_stats(nsqd, "af", "ch")
    assert st["in_flight_count"] == 0 and st["clients"][0]["finish_count"] == 1
    await c.close()


async def test_auto_finish_and_handler_return_false(nsqd):
    async with Producer(addr(nsqd)) as p:
        await p.multi_publish("af2", [b"ok", b"no"])
    seen = []

    def handler(m):
        seen.append((m.body, m.attempts))
        return m.body != b"no" or m.attempts > 1     # False → requeue

    c = Consumer("af2", "ch", handler, nsqd_tcp_addresses=[addr(nsqd)], max_in_flight=2,
                 default_requeue_delay=0, backoff_multiplier="10ms")
    await c.start()
    await wait_until(lambda: len(seen) == 3)
    await c.close()
    assert sorted(seen) == [(b"no", 1), (b"no", 2), (b"ok", 1)]


async def test_max_attempts_gives_up_without_calling_handler(nsqd):
    async with Producer(addr(nsqd)) as p:
        await p.publish("ma", b"poison")
    calls = []
    given_up = []

    def handler(m):
        calls.append(m.attempts)
        raise ValueError("always fails")

    c = Consumer("ma", "ch", handler, nsqd_tcp_addresses=[addr(nsqd)], max_attempts=2,
                 default_requeue_delay=0, backoff_multiplier="10ms", on_giveup=given_up.append)
    await c.start()
    await wait_until(lambda: given_up, timeout=10)
    await asyncio.sleep(0.1)
    await c.close()
    assert calls == [1, 2]
    assert [m.attempts for m in given_up] == [3]
    assert c.messages_given_up == 1
    st = await channel_stats(nsqd, "ma", "ch")
    assert st["depth"] == 0 and st["in_flight_count"] == 0 and st["deferred_count"] == 0


async def test_async_for_style(nsqd):
    async with Producer(addr(nsqd)) as p:
        await p.multi_publish("it", [b"1", b"2", b"3"])
    bodies = []
    async with Consumer("it", "ch", nsqd_tcp_addresses=[addr(nsqd)], max_in_flight=3) as c:
        async for msg in c:
            bodies.append(msg.body)
            msg.finish()
            if len(bodies) == 3:
                break
    assert sorted(bodies) == [b"1", b"2", b"3"]
    st = await channel_stats(nsqd, "it", "ch")
    assert st["depth"] == 0 and st["in_flight_count"] == 0 and st["requeue_count"] == 0


async def test_async_for_auto_finish_and_stop_requeues_queued(nsqd):
    async with Producer(addr(nsqd)) as p:
        await p.multi_publish("it2", [b"%d" % i for i in range(5)])
    c = Consumer("it2", "ch", nsqd_tcp_addresses=[addr(nsqd)], max_in_flight=5,
                 auto_finish=True)
    await c.start()
    first = await c.get_message(timeout=5)
    second = await c.get_message(timeout=5)      # auto-finishes the first
    assert first.has_responded() and not second.has_responded()
    second.finish()
    await wait_until(lambda: len(c._queue) == 3)
    await c.close()                              # the 3 queued ones go back to nsqd
    st = await channel_stats(nsqd, "it2", "ch")
    assert st["depth"] == 3 and st["in_flight_count"] == 0 and st["requeue_count"] == 3


async def test_graceful_close_lets_in_flight_messages_finish(nsqd):
    async with Producer(addr(nsqd)) as p:
        await p.multi_publish("gc", [b"%d" % i for i in range(10)])
    started = []
    done = []

    async def handler(m):
        started.append(m.body)
        await asyncio.sleep(0.5)
        done.append(m.body)

    c = Consumer("gc", "ch", handler, nsqd_tcp_addresses=[addr(nsqd)], max_in_flight=4)
    await c.start()
    await wait_until(lambda: len(started) == 4)
    t0 = time.monotonic()
    await c.close()
    assert time.monotonic() - t0 >= 0.3
    assert sorted(done) == sorted(started) and len(done) == 4
    assert c.messages_finished == 4
    for _ in range(40):                  # nsqd notices the closed socket a moment later
        st = await channel_stats(nsqd, "gc", "ch")
        if not st["clients"]:
            break
        await asyncio.sleep(0.05)
    assert st["in_flight_count"] == 0 and st["depth"] == 6 and st["clients"] == []
    assert st["requeue_count"] == 0 and st["timeout_count"] == 0


async def test_heartbeats_answered_connection_survives(nsqd):
    got = []
    c = Consumer("hb", "ch", lambda m: got.append(m.body), nsqd_tcp_addresses=[addr(nsqd)],
                 heartbeat_interval="1s")
    await c.start()
    conn = c.connections[addr(nsqd)]
    await asyncio.sleep(3.5)                     # nsqd drops silent clients after 2 s
    assert not conn.lost and c.connections[addr(nsqd)] is conn
    async with Producer(addr(nsqd), heartbeat_interval="1s") as p:
        await p.ping()
        await asyncio.sleep(2.5)                 # idle producer survives as well
        assert p.conn is not None
        await p.publish("hb", b"still here")
    await wait_until(lambda: got)
    await c.close()
    assert got == [b"still here"]


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


async def test_reconnect_after_nsqd_restarts(tmp_path):
    port = free_port()
    flags = (f"--tcp-address=127.0.0.1:{port}",)
    d = await asyncio.to_thread(start_nsqd, tmp_path, *flags)
    got = []
    c = Consumer("rc", "ch", lambda m: got.append(m.body), nsqd_tcp_addresses=[addr(d)],
                 lookupd_poll_interval="100ms")
    p = Producer(addr(d))
    try:
        await c.start()
        await p.publish("rc", b"before")
        await wait_until(lambda: got == [b"before"])
        await asyncio.to_thread(d.stop)
        await wait_until(lambda: not c.connections)
        d = await asyncio.to_thread(start_nsqd, tmp_path, *flags)
        await wait_until(lambda: c.connections, timeout=10)
        await p.publish("rc", b"after")          # the producer reconnects as well
        await wait_until(lambda: got == [b"before", b"after"])
    finally:
        await c.close()
        await p.close()
        await asyncio.to_thread(d.stop)
