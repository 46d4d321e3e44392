"""pynsq (the official Python client, a real third-party implementation) against our nsqd."""
import asyncio
import time

import pytest

nsq = pytest.importorskip("nsq")


async def wait_for(pred, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


async def make_writer(nsqd):
    w = nsq.Writer([f"127.0.0.1:{nsqd.tcp_port}"])
    await wait_for(lambda: any(c.connected() if callable(getattr(c, "connected", None)) else True
                               for c in w.conns.values()) and w.conns)
    return w


def close_writer(w):
    for conn in list(w.conns.values()):
        conn.close()


async def publish(call, *args):
    fut = asyncio.get_running_loop().create_future()

    def done(conn, data):
        if not fut.done():
            fut.set_result(data)

    call(*args, callback=done)
    data = await asyncio.wait_for(fut, 10)
    assert data == b"OK", data


def reader(nsqd, topic, handler, **kw):
    return nsq.Reader(topic=topic, channel="pynsq", message_handler=handler,
                      nsqd_tcp_addresses=[f"127.0.0.1:{nsqd.tcp_port}"],
                      max_in_flight=kw.pop("max_in_flight", 100), **kw)


async def test_pynsq_pub_mpub_dpub_all_consumed(nsqd):
    w = await make_writer(nsqd)
    got = []

    def handler(msg):
        got.append(msg.body)
        return True

    r = reader(nsqd, "py_a", handler)
    try:
        for i in range(100):
            await publish(w.pub, "py_a", b"pub-%d" % i)
        await publish(w.mpub, "py_a", [b"mpub-%d" % i for i in range(50)])
        await publish(w.dpub, "py_a", 300, b"dpub")
        await wait_for(lambda: len(got) >= 151)
        assert sorted(got) == sorted([b"pub-%d" % i for i in range(100)]
                                     + [b"mpub-%d" % i for i in range(50)] + [b"dpub"])
        await wait_for(lambda: nsqd.channel_stats("py_a", "pynsq")["in_flight_count"] == 0)
    finally:
        r.close()
        close_writer(w)


async def test_pynsq_requeue_redelivers_same_id_with_attempts_two(nsqd):
    w = await make_writer(nsqd)
    seen = []

    def handler(msg):
        seen.append((msg.id, msg.attempts))
        if msg.attempts == 1:
            msg.requeue(delay=0, backoff=False)
            return None
        return True

    r = reader(nsqd, "py_req", handler)
    try:
        await publish(w.pub, "py_req", b"again")
        await wait_for(lambda: len(seen) >= 2)
        assert seen[0][0] == seen[1][0] and [a for _, a in seen[:2]] == [1, 2]
    finally:
        r.close()
        close_writer(w)


async def test_pynsq_msg_timeout_redelivers_unanswered_message(nsqd):
    w = await make_writer(nsqd)
    seen = []

    def handler(msg):
        seen.append((msg.id, msg.attempts, time.monotonic()))
        if msg.attempts == 1:
            msg.enable_async()          # never answer: the server must time it out
            return None
        return True

    r = reader(nsqd, "py_to", handler, msg_timeout=1)   # pynsq takes seconds
    try:
        await publish(w.pub, "py_to", b"slow")
        await wait_for(lambda: len(seen) >= 2, timeout=10)
        assert seen[0][0] == seen[1][0] and seen[1][1] == 2
        assert seen[1][2] - seen[0][2] >= 0.9
    finally:
        r.close()
        close_writer(w)
