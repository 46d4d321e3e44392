"""TLS, snappy and deflate upgrades after IDENTIFY, alone and combined (tcp-protocol §6.1.4)."""
import json
import ssl
import urllib.request

import pytest

from nsqpy.protocol import commands as cmds
from tlsutil import make_test_cert


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    return make_test_cert(tmp_path_factory.mktemp("certs"))


@pytest.fixture
def tls_nsqd(nsqd_factory, cert):
    return nsqd_factory(f"--tls-cert={cert[0]}", f"--tls-key={cert[1]}",
                        "--https-address=127.0.0.1:0")


def client_context(cert):
    ctx = ssl.create_default_context(cafile=cert[0])
    ctx.check_hostname = False
    return ctx


def negotiate(conn, **fields):
    resp = conn.identify(feature_negotiation=True, **fields)
    return resp


def roundtrip(d, conn_factory, sizes, cert=None, **fields):
    """Publish and consume over one upgraded connection each way."""
    ctx = client_context(cert) if cert else None
    sub = conn_factory(d)
    resp = negotiate(sub, **fields)
    sub.upgrade(resp, ctx, fields.get("deflate_level", 6))
    sub.subscribe("up", "c", rdy=len(sizes))
    pub = conn_factory(d)
    presp = negotiate(pub, **fields)
    pub.upgrade(presp, ctx, fields.get("deflate_level", 6))
    bodies = [bytes([65 + i % 26]) * n for i, n in enumerate(sizes)]
    for body in bodies:
        pub.pub("up", body)
    got = [sub.read_message(timeout=10)[2] for _ in bodies]
    assert sorted(got) == sorted(bodies)
    return resp


@pytest.mark.parametrize("sizes", [[1, 10, 200], [300_000, 1_000_000]], ids=["small", "large"])
def test_snappy_round_trip(nsqd, conn_factory, sizes):
    resp = roundtrip(nsqd, conn_factory, sizes, snappy=True)
    assert resp["snappy"] is True and resp["deflate"] is False


@pytest.mark.parametrize("sizes", [[1, 10, 200], [300_000, 1_000_000]], ids=["small", "large"])
def test_deflate_round_trip(nsqd, conn_factory, sizes):
    resp = roundtrip(nsqd, conn_factory, sizes, deflate=True, deflate_level=9)
    assert resp["deflate"] is True and resp["deflate_level"] == 6   # clamped to --max-deflate-level


def test_tls_round_trip(tls_nsqd, conn_factory, cert):
    resp = roundtrip(tls_nsqd, conn_factory, [5, 100_000], cert=cert, tls_v1=True)
    assert resp["tls_v1"] is True


@pytest.mark.parametrize("codec", ["snappy", "deflate"])
def test_tls_with_compression_round_trip(tls_nsqd, conn_factory, cert, codec):
    resp = roundtrip(tls_nsqd, conn_factory, [7, 500_000], cert=cert, tls_v1=True, **{codec: True})
    assert resp["tls_v1"] is True and resp[codec] is True


def test_snappy_upgrade_bytes_match_upstream(nsqd, conn_factory):
    c = conn_factory(nsqd)
    assert c.identify(feature_negotiation=True, snappy=True)["snappy"] is True
    raw = b""
    while len(raw) < 28:
        raw += c.sock.recv(100)
    assert raw.hex() == "ff060000734e61507059010e000026982bcf00000006000000004f4b"


def test_both_compressions_is_identify_failed(nsqd, conn_factory):
    c = conn_factory(nsqd)
    c.send(cmds.encode_identify({"feature_negotiation": True, "snappy": True, "deflate": True}))
    c.expect_error(b"E_IDENTIFY_FAILED cannot enable both deflate and snappy compression")
    c.expect_closed()


def test_snappy_disabled_by_flag_is_not_negotiated(nsqd_factory, conn_factory):
    d = nsqd_factory("--snappy=false")
    resp = negotiate(conn_factory(d), snappy=True)
    assert resp["snappy"] is False


def test_tls_not_offered_without_cert(nsqd, conn_factory):
    resp = negotiate(conn_factory(nsqd), tls_v1=True)
    assert resp["tls_v1"] is False


def test_tls_required_refuses_commands_before_upgrade(nsqd_factory, conn_factory, cert):
    d = nsqd_factory(f"--tls-cert={cert[0]}", f"--tls-key={cert[1]}", "--tls-required")
    c = conn_factory(d)
    c.send(cmds.encode_pub("t", b"x"))
    c.expect_error(b"E_INVALID cannot PUB in current state (TLS required)")
    c.expect_closed()
    ok = conn_factory(d)
    ok.upgrade(negotiate(ok, tls_v1=True), client_context(cert))
    ok.pub("t", b"x")


def test_tls_required_true_refuses_plain_http(nsqd_factory, cert):
    d = nsqd_factory(f"--tls-cert={cert[0]}", f"--tls-key={cert[1]}", "--tls-required",
                     "--https-address=127.0.0.1:0")
    status, _, body = d.http("GET", "/stats")
    assert status == 403
    assert json.loads(body)["message"] == "TLS_REQUIRED"


def test_tls_required_tcp_https_leaves_http_open(nsqd_factory, cert):
    d = nsqd_factory(f"--tls-cert={cert[0]}", f"--tls-key={cert[1]}", "--tls-required=tcp-https")
    assert d.http("GET", "/ping")[0] == 200


def test_https_listener_serves_the_api(tls_nsqd, cert):
    tls_nsqd.wait_for_log(r"HTTPS: listening on")
    port = tls_nsqd.ports["HTTPS"]
    with urllib.request.urlopen(f"https://127.0.0.1:{port}/ping",
                                context=client_context(cert), timeout=5) as r:
        assert r.read() == b"OK"


def test_stats_show_tls_fields(tls_nsqd, conn_factory, cert):
    c = conn_factory(tls_nsqd)
    c.upgrade(negotiate(c, tls_v1=True, client_id="tlsc"), client_context(cert))
    c.subscribe("tlst", "c")
    client = tls_nsqd.channel_stats("tlst", "c")["clients"][0]
    assert client["tls"] is True
    assert client["tls_version"].startswith("TLS1.")
    assert client["tls_cipher_suite"]


def test_deflate_bomb_is_refused_without_inflating_it_all(nsqd, conn_factory):
    import zlib
    c = conn_factory(nsqd)
    c.upgrade(negotiate(c, deflate=True), None)
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    # a PUB announcing 200 MB, followed by 200 MB of zeros that compress to ~200 KB
    bomb = comp.compress(b"PUB t\n" + (200_000_000).to_bytes(4, "big"))
    bomb += comp.compress(b"\0" * 200_000_000) + comp.flush(zlib.Z_SYNC_FLUSH)
    c.sock.sendall(bomb)
    c.expect_error(b"E_BAD_MESSAGE PUB message too big 200000000 > 1048576")
    assert nsqd.http("GET", "/ping")[0] == 200
    peak_kib = int(next(line.split()[1] for line in open(f"/proc/{nsqd.proc.pid}/status")
                        if line.startswith("VmHWM")))
    assert peak_kib < 150 * 1024          # it never held the 200 MB
