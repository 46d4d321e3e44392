"""nsqpy.client Producer / SyncProducer / publish() against real nsqd."""
import asyncio
import threading

import pytest

from nsqpy.client import (Consumer, NotConnectedError, Producer, ResponseError, SyncProducer,
                          publish)


def addr(d):
    return f"127.0.0.1:{d.tcp_port}"


def depth(d, topic):
    for t in d.stats(topic=topic)["topics"] or []:
        if t["topic_name"] == topic:
            return t["depth"]
    return None


@pytest.mark.asyncio
async def test_producer_reuses_one_connection_and_pipelines(nsqd):
    p = Producer(addr(nsqd))
    await p.publish("reuse", b"first")
    conn = p.conn
    await asyncio.gather(*(p.publish("reuse", b"m%d" % i) for i in range(500)))
    assert p.conn is conn
    st = await asyncio.to_thread(nsqd.stats)
    assert len(st["producers"]) == 1
    assert st["producers"][0]["pub_counts"][0]["count"] == 501
    await p.close()
    assert await asyncio.to_thread(depth, nsqd, "reuse") == 501


@pytest.mark.asyncio
async def test_producer_connects_lazily_and_ping(nsqd):
    p = Producer(addr(nsqd))
    assert p.conn is None
    await p.ping()
    assert p.conn is not None
    assert p.conn.identify_response["max_rdy_count"] == 2500
    await p.close()


@pytest.mark.asyncio
async def test_producer_error_reply_then_reconnects(nsqd_factory):
    d = nsqd_factory("--max-msg-size=100")
    p = Producer(addr(d))
    with pytest.raises(ResponseError) as ei:
        await p.publish("errs", b"x" * 200)
    assert ei.value.code == "E_BAD_MESSAGE" and ei.value.fatal
    with pytest.raises(ValueError):
        await p.publish("bad topic!", b"x")       # checked before sending
    await p.publish("errs", b"ok")               # nsqd closed the connection; reopened
    with pytest.raises(ResponseError) as ei:
        await p.deferred_publish("errs", 7200, b"x")      # > --max-req-timeout
    assert ei.value.code == "E_INVALID"
    await p.close()
    assert await asyncio.to_thread(depth, d, "errs") == 1


@pytest.mark.asyncio
async def test_producer_pending_commands_fail_over_after_error(nsqd_factory):
    d = nsqd_factory("--max-msg-size=100")
    p = Producer(addr(d))
    await p.ping()
    # a fatal error closes the connection; the commands queued behind it are retried
    results = await asyncio.gather(p.publish("pf", b"a"), p.publish("pf", b"x" * 200),
                                   p.publish("pf", b"b"), return_exceptions=True)
    assert results[0] is None and isinstance(results[1], ResponseError)
    assert results[2] is None
    await p.close()


@pytest.mark.asyncio
async def test_producer_connection_refused():
    p = Producer("127.0.0.1:1")
    with pytest.raises(NotConnectedError):
        await p.publish("t", b"x")
    await p.close()


@pytest.mark.asyncio
async def test_producer_failover_between_two_nsqd(nsqd_factory, tmp_path):
    a = await asyncio.to_thread(nsqd_factory, data_path=str(tmp_path / "a"))
    b = await asyncio.to_thread(nsqd_factory, data_path=str(tmp_path / "b"))
    p = Producer([addr(a), addr(b)])
    await p.publish("fo", b"1")
    assert p.address == addr(a)
    await asyncio.to_thread(a.kill)
    await p.publish("fo", b"2")                  # lost connection → next nsqd
    assert p.address == addr(b)
    await p.publish("fo", b"3")
    await p.close()
    assert await asyncio.to_thread(depth, b, "fo") == 2
    # a fresh producer whose first address is down goes straight to the second one
    p2 = Producer([addr(a), addr(b)])
    await p2.multi_publish("fo", [b"4", b"5"])
    await p2.close()
    assert await asyncio.to_thread(depth, b, "fo") == 4


def test_sync_producer(nsqd):
    with SyncProducer(addr(nsqd)) as p:
        p.ping()
        p.publish("sync", b"a")
        p.multi_publish("sync", [b"b", "c"])
        p.deferred_publish("sync", 0.01, b"d")
    assert depth(nsqd, "sync") == 4              # no channel yet: DPUB waits in the topic


def test_publish_helper_and_works_inside_running_loop(nsqd):
    publish(addr(nsqd), "helper", b"one")
    publish(addr(nsqd), "helper", [b"two", b"three"])

    async def from_async():
        # a script calling the blocking helper from inside an event loop still works
        publish(addr(nsqd), "helper", "four")

    asyncio.run(from_async())
    assert depth(nsqd, "helper") == 4


def test_sync_producer_from_threads(nsqd):
    with SyncProducer(addr(nsqd)) as p:
        threads = [threading.Thread(target=lambda: [p.publish("thr", b"x") for _ in range(50)])
                   for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert depth(nsqd, "thr") == 200


@pytest.mark.asyncio
async def test_sync_publish_consumed_by_consumer(nsqd):
    await asyncio.to_thread(publish, addr(nsqd), "sc", b"hello")
    got = []
    async with Consumer("sc", "ch", lambda m: got.append(m.body),
                        nsqd_tcp_addresses=[addr(nsqd)]):
        for _ in range(200):
            if got:
                break
            await asyncio.sleep(0.02)
    assert got == [b"hello"]


@pytest.mark.asyncio
async def test_producer_pointed_at_http_port_fails_cleanly(nsqd):
    p = Producer(f"127.0.0.1:{nsqd.http_port}", read_timeout="1s", heartbeat_interval="1s")
    with pytest.raises(NotConnectedError):
        await p.publish("t", b"x")
    await p.close()
