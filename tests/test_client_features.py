"""nsqpy.client feature negotiation against a real nsqd: TLS, snappy, deflate, AUTH."""
import asyncio
import json
import time

import pytest
from aiohttp import web

from nsqpy.client import AuthRequiredError, Consumer, Producer, ResponseError
from tlsutil import make_test_cert

pytestmark = pytest.mark.asyncio


def addr(d):
    return f"127.0.0.1:{d.tcp_port}"


async def wait_until(pred, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


async def round_trip(d, topic, bodies, stats=True, **options):
    """Publish ``bodies`` and consume them with the same options; return both conns and
    the consumer's client entry from nsqd's /stats (None with ``stats=False``)."""
    got = []
    async with Producer(addr(d), **options) as p:
        await p.multi_publish(topic, bodies[: len(bodies) // 2])
        for b in bodies[len(bodies) // 2:]:
            await p.publish(topic, b)
        pconn = p.conn
    c = Consumer(topic, "ch", lambda m: got.append(m.body), nsqd_tcp_addresses=[addr(d)],
                 max_in_flight=50, **options)
    await c.start()
    cconn = c.connections[addr(d)]
    await wait_until(lambda: len(got) == len(bodies))
    client = None
    if stats:
        client = (await asyncio.to_thread(d.channel_stats, topic, "ch"))["clients"][0]
    await c.close()
    assert sorted(got) == sorted(bodies)
    return pconn, cconn, client


def bodies(n=200, size=3000):
    # compressible and incompressible parts, enough to span several snappy chunks
    return [(b"%06d-" % i) * (size // 7) + bytes(range(256)) for i in range(n)]


async def test_tls(nsqd_factory, tmp_path):
    cert, key = make_test_cert(tmp_path)
    d = nsqd_factory(f"--tls-cert={cert}", f"--tls-key={key}", "--tls-required=true")
    pconn, cconn, _ = await round_trip(d, "tls", bodies(50), stats=False, tls_v1=True,
                                       tls_root_ca_file=cert)
    assert pconn.identify_response["tls_v1"] is True
    assert cconn.identify_response["tls_v1"] is True     # and nsqd requires TLS


async def test_tls_verification_failure(nsqd_factory, tmp_path):
    cert, key = make_test_cert(tmp_path)
    d = nsqd_factory(f"--tls-cert={cert}", f"--tls-key={key}")
    p = Producer(addr(d), tls_v1=True)           # system roots don't know the test cert
    with pytest.raises(Exception):
        await p.publish("tls", b"x")
    await p.close()
    p = Producer(addr(d), tls_v1=True, tls_insecure_skip_verify=True)
    await p.publish("tls", b"x")
    await p.close()


async def test_snappy(nsqd):
    pconn, cconn, client = await round_trip(nsqd, "snappy", bodies(), snappy=True)
    assert pconn.identify_response["snappy"] is True
    assert cconn.identify_response["snappy"] is True
    assert client["snappy"] is True


async def test_deflate(nsqd):
    pconn, cconn, client = await round_trip(nsqd, "deflate", bodies(), deflate=True,
                                            deflate_level=3)
    assert cconn.identify_response["deflate"] is True
    assert client["deflate"] is True
    assert cconn.identify_response["deflate_level"] == 3


async def test_tls_with_snappy(nsqd_factory, tmp_path):
    cert, key = make_test_cert(tmp_path)
    d = nsqd_factory(f"--tls-cert={cert}", f"--tls-key={key}")
    pconn, cconn, client = await round_trip(d, "tls_snappy", bodies(50), tls_v1=True,
                                            snappy=True, tls_root_ca_file=cert)
    assert cconn.identify_response["tls_v1"] and cconn.identify_response["snappy"]
    assert client["tls"] is True and client["snappy"] is True


async def test_compression_not_offered_falls_back_to_plain(nsqd_factory):
    d = nsqd_factory("--snappy=false")
    pconn, cconn, client = await round_trip(d, "nosnappy", [b"a", b"b"], snappy=True)
    assert cconn.identify_response["snappy"] is False and client["snappy"] is False


@pytest.fixture
async def auth_server():
    """A tiny auth server: secret "good" may publish/subscribe anything, "sub" only
    subscribe; anything else is refused with 403."""
    queries = []

    async def auth(request):
        queries.append(dict(request.query))
        secret = request.query.get("secret")
        perms = {"good": ["subscribe", "publish"], "sub": ["subscribe"]}.get(secret)
        if perms is None:
            return web.Response(status=403, text=json.dumps({"message": "NOT_AUTHORIZED"}))
        return web.json_response({"ttl": 3600, "identity": f"user-{secret}",
                                  "identity_url": "http://example/u",
                                  "authorizations": [{"topic": ".*", "channels": [".*"],
                                                      "permissions": perms}]})

    app = web.Application()
    app.router.add_get("/auth", auth)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    yield f"127.0.0.1:{port}", queries
    await runner.cleanup()


async def test_auth(nsqd_factory, auth_server):
    auth_addr, queries = auth_server
    d = await asyncio.to_thread(nsqd_factory, f"--auth-http-address={auth_addr}")
    pconn, cconn, client = await round_trip(d, "authed", [b"a", b"b", b"c"],
                                            auth_secret="good")
    assert client["authed"] is True and client["auth_identity"] == "user-good"
    assert cconn.auth_response == {"identity": "user-good", "identity_url": "http://example/u",
                                   "permission_count": 1}
    assert any(q.get("secret") == "good" for q in queries)


async def test_auth_required_without_secret(nsqd_factory, auth_server):
    auth_addr, _ = auth_server
    d = await asyncio.to_thread(nsqd_factory, f"--auth-http-address={auth_addr}")
    c = Consumer("authed", "ch", lambda m: None)
    with pytest.raises(AuthRequiredError):
        await c.connect_to_nsqd(addr(d))
    await c.close()


async def test_auth_rejected_secret_and_missing_permission(nsqd_factory, auth_server):
    auth_addr, _ = auth_server
    d = await asyncio.to_thread(nsqd_factory, f"--auth-http-address={auth_addr}")
    c = Consumer("authed", "ch", lambda m: None, auth_secret="bad")
    with pytest.raises(ResponseError) as ei:
        await c.connect_to_nsqd(addr(d))
    assert ei.value.code == "E_AUTH_FAILED"
    await c.close()
    p = Producer(addr(d), auth_secret="sub")     # may subscribe, not publish
    with pytest.raises(ResponseError) as ei:
        await p.publish("authed", b"x")
    assert ei.value.code == "E_UNAUTHORIZED"
    await p.close()
