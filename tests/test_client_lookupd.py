"""nsqpy.client discovery: consumers finding nsqd through nsqlookupd's /lookup."""
import asyncio
import json
import socket
import struct
import time

import pytest
from aiohttp import web

from daemons import Daemon
from nsqpy.client import Consumer, Producer
from nsqpy.protocol import lookupd as v1

pytestmark = pytest.mark.asyncio


def addr(d):
    return f"127.0.0.1:{d.tcp_port}"


async def wait_until(pred, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


@pytest.fixture
def lookupd():
    d = Daemon("nsqlookupd", ["--tcp-address=127.0.0.1:0", "--http-address=127.0.0.1:0"])
    d.start()
    yield d
    d.stop()


class Registration:
    """Announce an nsqd to nsqlookupd over the V1 protocol, the way nsqd does, for nsqd
    builds that don't register by themselves; closing the socket unregisters."""

    def __init__(self, lookupd, nsqd, topic):
        self.sock = socket.create_connection(("127.0.0.1", lookupd.tcp_port), timeout=5)
        self.sock.sendall(v1.MAGIC_V1 + v1.encode_identify({
            "broadcast_address": "127.0.0.1", "hostname": "test", "tcp_port": nsqd.tcp_port,
            "http_port": nsqd.http_port, "version": "1.3.0"}))
        self._read()
        self.sock.sendall(v1.encode_register(topic))
        assert self._read() == b"OK"

    def _read(self):
        size = struct.unpack(">i", self._exact(4))[0]
        return self._exact(size)

    def _exact(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            assert chunk, "lookupd closed the connection"
            buf += chunk
        return buf

    def close(self):
        self.sock.close()


async def announce(lookupd, nsqd, topic, regs):
    """Make ``nsqd`` show up in ``/lookup?topic=``: publish (nsqd registers the topic
    itself when it talks to lookupd), else register it by hand."""
    async with Producer(addr(nsqd)) as p:
        await p.publish(topic, b"hello from %d" % nsqd.tcp_port)

    def listed():
        st, _, body = lookupd.http("GET", f"/lookup?topic={topic}")
        return st == 200 and any(p["tcp_port"] == nsqd.tcp_port
                                 for p in json.loads(body)["producers"])

    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        if await asyncio.to_thread(listed):
            return
        await asyncio.sleep(0.1)
    regs.append(await asyncio.to_thread(Registration, lookupd, nsqd, topic))
    assert await asyncio.to_thread(listed)


@pytest.fixture
def regs():
    out = []
    yield out
    for r in out:
        r.close()


async def test_lookupd_discovery(lookupd, nsqd_factory, tmp_path, regs):
    flags = (f"--lookupd-tcp-address=127.0.0.1:{lookupd.tcp_port}",)
    d1 = await asyncio.to_thread(nsqd_factory, *flags, data_path=str(tmp_path / "n1"))
    await announce(lookupd, d1, "disc", regs)
    got = []
    c = Consumer("disc", "ch", lambda m: got.append(m.body),
                 lookupd_http_addresses=[f"127.0.0.1:{lookupd.http_port}"],
                 lookupd_poll_interval="200ms", lookupd_poll_jitter=0, max_in_flight=10)
    await c.start()
    assert list(c.connections) == [addr(d1)]    # the first query runs before start returns
    await wait_until(lambda: got == [b"hello from %d" % d1.tcp_port])
    # a second nsqd appearing later is picked up by the periodic poll
    d2 = await asyncio.to_thread(nsqd_factory, *flags, data_path=str(tmp_path / "n2"))
    await announce(lookupd, d2, "disc", regs)
    await wait_until(lambda: len(c.connections) == 2, timeout=5)
    assert set(c.connections) == {addr(d1), addr(d2)}
    await wait_until(lambda: len(got) == 2)
    await c.close()


@pytest.fixture
async def fake_lookupd():
    """An aiohttp server answering /lookup like nsqlookupd; records the requests."""
    state = {"producers": [], "requests": []}

    async def lookup(request):
        state["requests"].append((request.path, dict(request.query), dict(request.headers)))
        return web.json_response({"channels": [], "producers": state["producers"]})

    app = web.Application()
    app.router.add_get("/lookup", lookup)
    app.router.add_get("/custom", lookup)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    state["addr"] = f"127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
    yield state
    await runner.cleanup()


async def test_lookupd_request_format_and_auth_header(fake_lookupd, nsqd):
    fake_lookupd["producers"] = [{"remote_address": "x", "hostname": "h",
                                  "broadcast_address": "127.0.0.1",
                                  "tcp_port": nsqd.tcp_port, "http_port": nsqd.http_port,
                                  "version": "1.3.0"}]
    c = Consumer("fmt", "ch", lambda m: None,
                 lookupd_http_addresses=[f"http://{fake_lookupd['addr']}/custom?x=1"],
                 auth_secret="s3cret")
    await c.start()
    assert list(c.connections) == [addr(nsqd)]
    await c.close()
    path, query, headers = fake_lookupd["requests"][0]
    assert path == "/custom" and query == {"x": "1", "topic": "fmt"}
    assert headers["Accept"] == "application/vnd.nsq; version=1.0"
    assert headers["Authorization"] == "Bearer s3cret"


async def test_lookupd_polls_rotate_and_reconnect_only_if_listed(fake_lookupd, nsqd_factory,
                                                                  tmp_path):
    d = await asyncio.to_thread(nsqd_factory, data_path=str(tmp_path / "n"))
    fake_lookupd["producers"] = [{"broadcast_address": "127.0.0.1", "tcp_port": d.tcp_port,
                                  "http_port": d.http_port}]
    c = Consumer("rot", "ch", lambda m: None,
                 lookupd_http_addresses=[fake_lookupd["addr"], "127.0.0.1:1"],
                 lookupd_poll_interval="100ms", lookupd_poll_jitter=0)
    await c.start()
    assert list(c.connections) == [addr(d)]
    n = len(fake_lookupd["requests"])
    await asyncio.sleep(0.6)                     # keeps polling; the dead lookupd is skipped
    assert len(fake_lookupd["requests"]) >= n + 2
    fake_lookupd["producers"] = []               # nsqd vanishes from lookupd: kept
    await asyncio.sleep(0.3)
    assert list(c.connections) == [addr(d)]
    await c.close()


async def test_lookupd_mode_reconnects_while_still_listed(fake_lookupd, tmp_path):
    from daemons import start_nsqd
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    flags = (f"--tcp-address=127.0.0.1:{port}",)
    d = await asyncio.to_thread(start_nsqd, tmp_path, *flags)
    fake_lookupd["producers"] = [{"broadcast_address": "127.0.0.1", "tcp_port": port,
                                  "http_port": d.http_port}]
    c = Consumer("relk", "ch", lambda m: None, lookupd_http_addresses=[fake_lookupd["addr"]],
                 lookupd_poll_interval="200ms", lookupd_poll_jitter=0)
    try:
        await c.start()
        first = c.connections[addr(d)]
        await asyncio.to_thread(d.stop)
        await wait_until(lambda: not c.connections)
        n = len(fake_lookupd["requests"])
        d = await asyncio.to_thread(start_nsqd, tmp_path, *flags)
        await wait_until(lambda: c.connections, timeout=10)
        assert c.connections[addr(d)] is not first
        assert len(fake_lookupd["requests"]) > n
    finally:
        await c.close()
        await asyncio.to_thread(d.stop)
