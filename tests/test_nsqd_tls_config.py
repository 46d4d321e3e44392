"""nsqd TLS configuration (--tls-*), client-certificate policies and /stats TLS fields."""
import asyncio
import os
import ssl
import subprocess
import warnings
from types import SimpleNamespace

import pytest

from nsqpy.nsqd import tls as nsqtls
from nsqpy.nsqd.options import default_options
from nsqpy.nsqd.tls import (build_client_ssl_context, build_server_ssl_context,
                            cipher_suite_name, non_tls_stats, peer_common_name, tls_stats)
from tlsutil import make_test_ca, make_test_cert

STATS_KEYS = ["tls", "tls_cipher_suite", "tls_version", "tls_negotiated_protocol",
              "tls_negotiated_protocol_is_mutual"]


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    d = tmp_path_factory.mktemp("certs")
    cert, key = make_test_cert(d)
    ec_cert, ec_key = make_test_cert(d, key_type="ec", name="ecserver")
    ca_dir = d / "ca"
    ca_dir.mkdir()
    ca = make_test_ca(ca_dir)
    return SimpleNamespace(cert=cert, key=key, ec_cert=ec_cert, ec_key=ec_key, ca=ca, dir=d)


def opts(**kw):
    base = dict(tls_cert="", tls_key="", tls_client_auth_policy="", tls_root_ca_file="",
                tls_min_version=0x0301)
    base.update(kw)
    return SimpleNamespace(**base)


def client_ctx(cert=None, key=None, cafile=None, min_v=None, max_v=None, ciphers=None,
               seclevel0=False, alpn=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if cafile:
        ctx.load_verify_locations(cafile)
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if cert:
        ctx.load_cert_chain(cert, key)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)   # TLSv1 / TLSv1_1 names
        if min_v:
            ctx.minimum_version = min_v
        if max_v:
            ctx.maximum_version = max_v
    if ciphers or seclevel0:
        ctx.set_ciphers((ciphers or "DEFAULT") + (":@SECLEVEL=0" if seclevel0 else ""))
    if alpn:
        ctx.set_alpn_protocols(alpn)
    return ctx


def handshake(server_ctx, cctx, hostname="127.0.0.1"):
    """In-memory TLS handshake plus one round trip of application data (which surfaces
    TLS 1.3 post-handshake client-certificate rejections). Returns (server, client)."""
    s_in, s_out, c_in, c_out = (ssl.MemoryBIO() for _ in range(4))
    server = server_ctx.wrap_bio(s_in, s_out, server_side=True)
    client = cctx.wrap_bio(c_in, c_out, server_side=False, server_hostname=hostname)

    def pump():
        moved = False
        data = c_out.read()
        if data:
            s_in.write(data)
            moved = True
        data = s_out.read()
        if data:
            c_in.write(data)
            moved = True
        return moved

    done = {"c": False, "s": False}
    for _ in range(100):
        for name, obj in (("c", client), ("s", server)):
            if not done[name]:
                try:
                    obj.do_handshake()
                    done[name] = True
                except ssl.SSLWantReadError:
                    pass
        moved = pump()
        if done["c"] and done["s"] and not moved:
            break
    else:
        raise AssertionError("handshake stalled")
    client.write(b"ping")
    pump()
    assert server.read(4) == b"ping"
    server.write(b"pong")
    pump()
    assert client.read(4) == b"pong"
    return server, client


# -- building ------------------------------------------------------------------------------------
def test_no_cert_no_key_is_none():
    assert build_server_ssl_context(opts()) is None
    assert build_server_ssl_context(default_options("h")) is None


def test_real_options_object(certs):
    o = default_options("h")
    o.tls_cert, o.tls_key = certs.cert, certs.key
    ctx = build_server_ssl_context(o)
    assert isinstance(ctx, ssl.SSLContext)
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1      # default --tls-min-version tls1.0
    assert ctx.verify_mode == ssl.CERT_NONE


def test_error_texts(certs, tmp_path):
    junk = tmp_path / "junk.pem"
    junk.write_text("not pem at all\n")
    missing = str(tmp_path / "missing.pem")
    cases = [
        (opts(tls_cert=missing, tls_key=certs.key),
         f"open {missing}: no such file or directory"),
        (opts(tls_cert=certs.cert, tls_key=missing),
         f"open {missing}: no such file or directory"),
        (opts(tls_cert=certs.cert), "open : no such file or directory"),
        (opts(tls_key=certs.key), "open : no such file or directory"),
        (opts(tls_cert=str(junk), tls_key=certs.key),
         "tls: failed to find any PEM data in certificate input"),
        (opts(tls_cert=certs.cert, tls_key=str(junk)),
         "tls: failed to find any PEM data in key input"),
        (opts(tls_cert=certs.cert, tls_key=certs.ec_key),
         "tls: private key type does not match public key type"),
        (opts(tls_cert=certs.cert, tls_key=certs.ca.server_key),
         "tls: private key does not match public key"),
        (opts(tls_cert=certs.cert, tls_key=certs.key, tls_root_ca_file=missing),
         f"open {missing}: no such file or directory"),
        (opts(tls_cert=certs.cert, tls_key=certs.key, tls_root_ca_file=str(junk)),
         "failed to append certificate to pool"),
        (opts(tls_cert=str(tmp_path), tls_key=certs.key),
         f"read {tmp_path}: is a directory"),
    ]
    for o, text in cases:
        with pytest.raises(ValueError) as ei:
            build_server_ssl_context(o)
        assert str(ei.value) == text


def test_encrypted_key_fails_without_prompting(certs, tmp_path):
    enc = str(tmp_path / "enc.key")
    subprocess.run(["openssl", "pkey", "-in", certs.key, "-out", enc, "-aes256",
                    "-passout", "pass:secret"], check=True)
    with pytest.raises(ValueError):
        build_server_ssl_context(opts(tls_cert=certs.cert, tls_key=enc))


# -- client certificate policies ------------------------------------------------------------------
def test_policy_none_requests_no_certificate(certs):
    ctx = build_server_ssl_context(opts(tls_cert=certs.cert, tls_key=certs.key))
    server, _ = handshake(ctx, client_ctx())
    assert server.getpeercert() is None
    assert peer_common_name(server) == ""
    # a client offering a certificate is not asked for it
    server, _ = handshake(ctx, client_ctx(certs.ca.client_cert, certs.ca.client_key))
    assert server.getpeercert() is None


def test_policy_require_any_certificate(certs):
    assert nsqtls.REQUIRE_ANY_CERT_EXACT
    ctx = build_server_ssl_context(opts(tls_cert=certs.cert, tls_key=certs.key,
                                        tls_client_auth_policy="require"))
    assert ctx.verify_mode == ssl.CERT_REQUIRED
    for max_v in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        with pytest.raises(ssl.SSLError):
            handshake(ctx, client_ctx(max_v=max_v))
        # self-signed, unknown to any CA: accepted, CN available
        server, _ = handshake(ctx, client_ctx(certs.ca.rogue_cert, certs.ca.rogue_key,
                                              max_v=max_v))
        assert peer_common_name(server) == "rogue-client"
        server, _ = handshake(ctx, client_ctx(certs.ca.client_cert, certs.ca.client_key,
                                              max_v=max_v))
        assert peer_common_name(server) == "test-client"


def test_policy_require_with_root_ca_still_accepts_unverified(certs):
    ctx = build_server_ssl_context(opts(tls_cert=certs.cert, tls_key=certs.key,
                                        tls_client_auth_policy="require",
                                        tls_root_ca_file=certs.ca.ca_cert))
    server, _ = handshake(ctx, client_ctx(certs.ca.rogue_cert, certs.ca.rogue_key))
    assert peer_common_name(server) == "rogue-client"


def test_policy_require_verify_with_root_ca(certs):
    ctx = build_server_ssl_context(opts(tls_cert=certs.cert, tls_key=certs.key,
                                        tls_client_auth_policy="require-verify",
                                        tls_root_ca_file=certs.ca.ca_cert))
    assert ctx.verify_mode == ssl.CERT_REQUIRED
    for max_v in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        server, _ = handshake(ctx, client_ctx(certs.ca.client_cert, certs.ca.client_key,
                                              max_v=max_v))
        assert peer_common_name(server) == "test-client"
        with pytest.raises(ssl.SSLError):
            handshake(ctx, client_ctx(certs.ca.rogue_cert, certs.ca.rogue_key, max_v=max_v))
        with pytest.raises(ssl.SSLError):
            handshake(ctx, client_ctx(max_v=max_v))


def test_policy_require_verify_system_roots(certs):
    ctx = build_server_ssl_context(opts(tls_cert=certs.cert, tls_key=certs.key,
                                        tls_client_auth_policy="require-verify"))
    with pytest.raises(ssl.SSLError):      # our test CA is not a system root
        handshake(ctx, client_ctx(certs.ca.client_cert, certs.ca.client_key))


def test_server_cert_from_ca_verifies(certs):
    ctx = build_server_ssl_context(opts(tls_cert=certs.ca.server_cert,
                                        tls_key=certs.ca.server_key))
    handshake(ctx, client_ctx(cafile=certs.ca.ca_cert))
    handshake(ctx, client_ctx(cafile=certs.ca.ca_cert), hostname="localhost")


# -- versions ------------------------------------------------------------------------------------
@pytest.mark.parametrize("min_version,client_max,ok,want", [
    (0x0301, ssl.TLSVersion.TLSv1, True, "TLS1.0"),
    (0x0301, ssl.TLSVersion.TLSv1_1, True, "TLS1.1"),
    (0x0301, ssl.TLSVersion.TLSv1_2, True, "TLS1.2"),
    (0x0301, ssl.TLSVersion.TLSv1_3, True, "TLS1.3"),
    (0x0302, ssl.TLSVersion.TLSv1, False, None),
    (0x0303, ssl.TLSVersion.TLSv1_1, False, None),
    (0x0303, ssl.TLSVersion.TLSv1_2, True, "TLS1.2"),
    (0x0304, ssl.TLSVersion.TLSv1_2, False, None),
    (0x0304, ssl.TLSVersion.TLSv1_3, True, "TLS1.3"),
])
def test_min_version(certs, min_version, client_max, ok, want):
    ctx = build_server_ssl_context(opts(tls_cert=certs.cert, tls_key=certs.key,
                                        tls_min_version=min_version))
    cctx = client_ctx(min_v=ssl.TLSVersion.MINIMUM_SUPPORTED, max_v=client_max, seclevel0=True)
    if not ok:
        with pytest.raises(ssl.SSLError):
            handshake(ctx, cctx)
        return
    server, client = handshake(ctx, cctx)
    assert tls_stats(server)["tls_version"] == want
    assert tls_stats(client)["tls_version"] == want


# -- /stats fields -------------------------------------------------------------------------------
def test_non_tls_stats():
    assert tls_stats(None) == non_tls_stats() == {
        "tls": False, "tls_cipher_suite": "", "tls_version": "",
        "tls_negotiated_protocol": "", "tls_negotiated_protocol_is_mutual": False}
    assert list(tls_stats(None)) == STATS_KEYS


def test_stats_tls13_default_client(certs):
    ctx = build_server_ssl_context(opts(tls_cert=certs.cert, tls_key=certs.key))
    server, _ = handshake(ctx, client_ctx())
    st = tls_stats(server)
    assert list(st) == STATS_KEYS
    # nsqd names no TLS 1.3 suite; Go prefers AES-128-GCM (4865)
    assert st == {"tls": True, "tls_cipher_suite": "Unknown 4865", "tls_version": "TLS1.3",
                  "tls_negotiated_protocol": "", "tls_negotiated_protocol_is_mutual": True}


@pytest.mark.parametrize("client_ciphers,ec,want", [
    (None, False, "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"),
    (None, True, "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"),
    ("ECDHE-RSA-AES256-GCM-SHA384", False, "Unknown 49200"),
    ("ECDHE-RSA-CHACHA20-POLY1305", False, "Unknown 52392"),
    ("ECDHE-RSA-AES128-SHA", False, "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"),
    ("ECDHE-RSA-AES256-SHA", False, "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA"),
    ("ECDHE-ECDSA-AES256-SHA", True, "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA"),
    ("AES128-SHA", False, "TLS_RSA_WITH_AES_128_CBC_SHA"),
    ("AES256-SHA", False, "TLS_RSA_WITH_AES_256_CBC_SHA"),
    ("AES128-GCM-SHA256", False, "Unknown 156"),
])
def test_stats_tls12_cipher_names(certs, client_ciphers, ec, want):
    cert, key = (certs.ec_cert, certs.ec_key) if ec else (certs.cert, certs.key)
    ctx = build_server_ssl_context(opts(tls_cert=cert, tls_key=key))
    server, _ = handshake(ctx, client_ctx(max_v=ssl.TLSVersion.TLSv1_2, ciphers=client_ciphers))
    st = tls_stats(server)
    assert st["tls_cipher_suite"] == want
    assert st["tls_version"] == "TLS1.2"


def test_stats_tls13_suites(certs):
    ctx = build_server_ssl_context(opts(tls_cert=certs.cert, tls_key=certs.key))
    server, client = handshake(ctx, client_ctx())
    assert client.cipher()[0] == "TLS_AES_128_GCM_SHA256"


def test_stats_alpn_not_negotiated(certs):
    ctx = build_server_ssl_context(opts(tls_cert=certs.cert, tls_key=certs.key))
    server, _ = handshake(ctx, client_ctx(alpn=["h2", "nsq"]))
    assert tls_stats(server)["tls_negotiated_protocol"] == ""


def test_cipher_suite_name_table():
    assert cipher_suite_name("ECDHE-RSA-AES128-GCM-SHA256") == "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
    assert cipher_suite_name("ECDHE-ECDSA-AES128-GCM-SHA256") == "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"
    assert cipher_suite_name("DES-CBC3-SHA") == "TLS_RSA_WITH_3DES_EDE_CBC_SHA"
    assert cipher_suite_name("ECDHE-RSA-DES-CBC3-SHA") == "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA"
    assert cipher_suite_name("TLS_AES_256_GCM_SHA384") == "Unknown 4866"
    assert cipher_suite_name("TLS_CHACHA20_POLY1305_SHA256") == "Unknown 4867"
    assert cipher_suite_name("ECDHE-RSA-AES128-SHA256") == "Unknown 49191"
    assert cipher_suite_name("") == ""


# -- outbound (auth server) client context ----------------------------------------------------------
def test_client_context_root_ca(certs):
    server_ctx = build_server_ssl_context(opts(tls_cert=certs.ca.server_cert,
                                               tls_key=certs.ca.server_key))
    cctx = build_client_ssl_context(opts(tls_root_ca_file=certs.ca.ca_cert))
    handshake(server_ctx, cctx)
    # self-signed server unknown to that CA -> rejected; system roots don't know it either
    other = build_server_ssl_context(opts(tls_cert=certs.cert, tls_key=certs.key))
    with pytest.raises(ssl.SSLError):
        handshake(other, cctx)
    with pytest.raises(ssl.SSLError):
        handshake(other, build_client_ssl_context(opts()))


def test_client_context_errors(tmp_path):
    with pytest.raises(ValueError) as ei:
        build_client_ssl_context(opts(tls_root_ca_file=str(tmp_path / "nope")))
    assert "no such file or directory" in str(ei.value)


# -- through asyncio's start_tls, as the connection upgrade does it ---------------------------------
async def _upgrade_roundtrip(server_ctx, cctx):
    loop = asyncio.get_running_loop()
    result = {}
    done = loop.create_future()

    class Proto(asyncio.Protocol):
        def connection_made(self, transport):
            self.transport = transport

        def data_received(self, data):
            if data == b"UPGRADE" and "upgraded" not in result:
                result["upgraded"] = True
                self.transport.pause_reading()     # the ClientHello must reach the TLS layer
                self.transport.write(b"GO")        # (like the IDENTIFY JSON response)
                loop.create_task(self.upgrade())

        async def upgrade(self):
            try:
                tr = await loop.start_tls(self.transport, self, server_ctx, server_side=True)
            except Exception as e:   # noqa: BLE001
                done.set_result(e)
                return
            self.transport = tr
            result["peercert"] = tr.get_extra_info("peercert")
            result["stats"] = tls_stats(tr.get_extra_info("ssl_object"))
            result["cn"] = peer_common_name(tr.get_extra_info("ssl_object"))
            tr.write(b"OK")
            done.set_result(None)

    server = await loop.create_server(Proto, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"UPGRADE")
    await writer.drain()
    assert await reader.readexactly(2) == b"GO"
    try:
        await writer.start_tls(cctx)
        ok = await asyncio.wait_for(reader.readexactly(2), 5)
    except (ssl.SSLError, ConnectionError, asyncio.IncompleteReadError) as e:
        ok = e
    err = await asyncio.wait_for(done, 5)
    writer.close()
    server.close()
    return ok, err, result


@pytest.mark.parametrize("loop_kind", ["asyncio", "uvloop"])
def test_start_tls_require_policy(certs, loop_kind):
    uvloop = pytest.importorskip("uvloop") if loop_kind == "uvloop" else None
    factory = uvloop.new_event_loop if uvloop else None
    ctx = build_server_ssl_context(opts(tls_cert=certs.cert, tls_key=certs.key,
                                        tls_client_auth_policy="require"))
    with asyncio.Runner(loop_factory=factory) as runner:
        ok, err, result = runner.run(_upgrade_roundtrip(
            ctx, client_ctx(certs.ca.rogue_cert, certs.ca.rogue_key)))
        assert ok == b"OK" and err is None
        assert result["cn"] == "rogue-client"
        assert result["stats"]["tls"] is True
        assert result["stats"]["tls_version"] == "TLS1.3"
        ok, err, result = runner.run(_upgrade_roundtrip(ctx, client_ctx()))
        assert ok != b"OK"
        assert isinstance(err, Exception)


def test_tls_material_files_exist(certs):
    for p in (certs.cert, certs.key, certs.ca.ca_cert, certs.ca.client_cert):
        assert os.path.getsize(p) > 0
