"""TLS client-certificate policies, minimum versions and TLS start-up errors, end to end
against a real nsqd (flags.md §1 --tls-*, tcp-protocol.md §6.1.4 and §7, nsqd-http.md §1).

* ``--tls-client-auth-policy=require``: a certificate must be presented, any certificate
  (even self-signed and unknown) is accepted.
* ``require-verify``: the certificate must verify against ``--tls-root-ca-file``.
* Either policy forces ``--tls-required`` to ``true`` when it was false.
"""
import http.client
import json
import os
import ssl
import subprocess
import urllib.request
import warnings
from types import SimpleNamespace

import pytest

from daemons import BIN, Conn, start_nsqd
from nsqpy.protocol import commands as cmds
from tlsutil import make_test_ca, make_test_cert

REFUSED = (ssl.SSLError, ConnectionError, OSError)


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    d = tmp_path_factory.mktemp("tlspol")
    ca_dir = d / "ca"
    ca_dir.mkdir()
    ca = make_test_ca(ca_dir)
    cert, key = make_test_cert(d)
    junk = d / "junk.pem"
    junk.write_text("this is not PEM\n")
    return SimpleNamespace(ca=ca, cert=cert, key=key, junk=str(junk), dir=d)


def _daemon(tmp_path_factory, name, *flags):
    d = start_nsqd(tmp_path_factory.mktemp(name), "--https-address=127.0.0.1:0", *flags)
    d.wait_for_log(r"HTTPS: listening on")
    return d


@pytest.fixture(scope="module")
def require_nsqd(tmp_path_factory, certs):
    d = _daemon(tmp_path_factory, "require", f"--tls-cert={certs.ca.server_cert}",
                f"--tls-key={certs.ca.server_key}", "--tls-client-auth-policy=require")
    yield d
    d.stop()


@pytest.fixture(scope="module")
def verify_nsqd(tmp_path_factory, certs):
    d = _daemon(tmp_path_factory, "verify", f"--tls-cert={certs.ca.server_cert}",
                f"--tls-key={certs.ca.server_key}", "--tls-client-auth-policy=require-verify",
                f"--tls-root-ca-file={certs.ca.ca_cert}")
    yield d
    d.stop()


def ctx(certs, client=None, max_v=None, min_v=None, seclevel0=False):
    """Client context verifying the server against the test CA; ``client`` is
    ``"ca"`` (CA-signed), ``"rogue"`` (self-signed, unknown) or None (no certificate)."""
    c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    c.load_verify_locations(certs.ca.ca_cert)
    c.check_hostname = False        # Conn.upgrade passes no server_hostname; chain still verified
    if client == "ca":
        c.load_cert_chain(certs.ca.client_cert, certs.ca.client_key)
    elif client == "rogue":
        c.load_cert_chain(certs.ca.rogue_cert, certs.ca.rogue_key)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        if min_v:
            c.minimum_version = min_v
        if max_v:
            c.maximum_version = max_v
    if seclevel0:
        c.set_ciphers("DEFAULT:@SECLEVEL=0")
    return c


def insecure_ctx(max_v=None, min_v=None, seclevel0=False):
    c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    c.check_hostname = False
    c.verify_mode = ssl.CERT_NONE
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        if min_v:
            c.minimum_version = min_v
        if max_v:
            c.maximum_version = max_v
    if seclevel0:
        c.set_ciphers("DEFAULT:@SECLEVEL=0")
    return c


def tls_conn(d, context, **identify):
    """IDENTIFY with tls_v1, upgrade, read the OK. Raises if the server refuses."""
    c = Conn(d.tcp_address, timeout=10)
    try:
        resp = c.identify(feature_negotiation=True, tls_v1=True, **identify)
        assert resp["tls_v1"] is True, resp
        c.upgrade(resp, context)
        return c
    except BaseException:
        c.close()
        raise


def assert_tcp_refused(d, context):
    """The TLS upgrade fails (at the handshake, or — TLS 1.3, where the server checks the
    client certificate after the client finished — at the first read), and the
    connection is closed: no OK ever arrives."""
    with pytest.raises(REFUSED) as ei:
        c = tls_conn(d, context)
        try:
            c.pub("refused", b"x")          # must not get here; if it did, it must fail
        finally:
            c.close()
    assert not isinstance(ei.value, TimeoutError), "no refusal, the server hung"


def https_get(d, path, context):
    with urllib.request.urlopen(f"https://127.0.0.1:{d.ports['HTTPS']}{path}",
                                context=context, timeout=10) as r:
        return r.status, r.read()


def assert_https_refused(d, context):
    with pytest.raises((OSError, http.client.HTTPException)) as ei:
        https_get(d, "/ping", context)
    assert not isinstance(ei.value, TimeoutError), "no refusal, the server hung"
    assert "timed out" not in str(ei.value)


def roundtrip(d, context, topic):
    pub = tls_conn(d, context)
    sub = tls_conn(d, context)
    try:
        sub.subscribe(topic, "c", rdy=1)
        pub.pub(topic, b"secret")
        assert sub.read_message(timeout=10)[2] == b"secret"
    finally:
        pub.close()
        sub.close()


def run_nsqd(tmp_path, *flags):
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    return subprocess.run([os.path.join(BIN, "nsqd"), "--tcp-address=127.0.0.1:0",
                           "--http-address=127.0.0.1:0", "--https-address=127.0.0.1:0",
                           f"--data-path={data}", *flags],
                          capture_output=True, text=True, timeout=15, stdin=subprocess.DEVNULL)


TLS_VERSIONS = [pytest.param(ssl.TLSVersion.TLSv1_2, id="tls1.2"),
                pytest.param(ssl.TLSVersion.TLSv1_3, id="tls1.3")]


# ------------------------------------------------------------------ require (any certificate)


@pytest.mark.parametrize("max_v", TLS_VERSIONS)
def test_require_policy_refuses_a_client_without_certificate(require_nsqd, certs, max_v):
    assert_tcp_refused(require_nsqd, ctx(certs, None, max_v=max_v))


@pytest.mark.parametrize("max_v", TLS_VERSIONS)
def test_require_policy_accepts_an_unknown_self_signed_certificate(require_nsqd, certs, max_v):
    roundtrip(require_nsqd, ctx(certs, "rogue", max_v=max_v), f"req_rogue_{max_v.name}")


def test_require_policy_accepts_a_ca_signed_certificate(require_nsqd, certs):
    roundtrip(require_nsqd, ctx(certs, "ca"), "req_ca")


def test_require_policy_refusal_does_not_disturb_the_daemon(require_nsqd, certs):
    for _ in range(3):
        assert_tcp_refused(require_nsqd, ctx(certs, None))
    roundtrip(require_nsqd, ctx(certs, "rogue"), "req_after")


# -------------------------------------------------------------- require-verify with a root CA


@pytest.mark.parametrize("max_v", TLS_VERSIONS)
def test_require_verify_accepts_a_ca_signed_certificate(verify_nsqd, certs, max_v):
    roundtrip(verify_nsqd, ctx(certs, "ca", max_v=max_v), f"ver_ca_{max_v.name}")


@pytest.mark.parametrize("max_v", TLS_VERSIONS)
def test_require_verify_refuses_a_rogue_self_signed_certificate(verify_nsqd, certs, max_v):
    assert_tcp_refused(verify_nsqd, ctx(certs, "rogue", max_v=max_v))


@pytest.mark.parametrize("max_v", TLS_VERSIONS)
def test_require_verify_refuses_a_client_without_certificate(verify_nsqd, certs, max_v):
    assert_tcp_refused(verify_nsqd, ctx(certs, None, max_v=max_v))


def test_require_verify_without_root_ca_uses_system_roots(nsqd_factory, certs):
    d = nsqd_factory(f"--tls-cert={certs.ca.server_cert}", f"--tls-key={certs.ca.server_key}",
                     "--tls-client-auth-policy=require-verify")
    assert_tcp_refused(d, ctx(certs, "ca"))      # the test CA is not a system root


# ------------------------------------------------------------- a policy forces TLS required


@pytest.mark.parametrize("policy", ["require", "require-verify"])
def test_client_auth_policy_forces_tls_required_over_tcp(nsqd_factory, certs, policy):
    d = nsqd_factory(f"--tls-cert={certs.ca.server_cert}", f"--tls-key={certs.ca.server_key}",
                     f"--tls-client-auth-policy={policy}",
                     f"--tls-root-ca-file={certs.ca.ca_cert}")
    c = Conn(d.tcp_address)
    try:
        c.send(cmds.encode_pub("plain", b"x"))
        c.expect_error(b"E_INVALID cannot PUB in current state (TLS required)")
        c.expect_closed()
    finally:
        c.close()


def test_client_auth_policy_forces_tls_required_over_plain_http(require_nsqd):
    status, headers, body = require_nsqd.http("GET", "/stats")
    assert status == 403
    assert body == (b'{"message": "TLS_REQUIRED", "https_port": %d}'
                    % require_nsqd.ports["HTTPS"])


def test_client_auth_policy_keeps_explicit_tcp_https(nsqd_factory, certs):
    d = nsqd_factory(f"--tls-cert={certs.ca.server_cert}", f"--tls-key={certs.ca.server_key}",
                     "--tls-client-auth-policy=require", "--tls-required=tcp-https")
    assert d.http("GET", "/ping")[:3:2] == (200, b"OK")     # HTTP stays open
    c = Conn(d.tcp_address)
    try:
        c.send(cmds.encode_pub("plain", b"x"))
        c.expect_error(b"E_INVALID cannot PUB in current state (TLS required)")
    finally:
        c.close()


def test_identify_is_allowed_before_tls_under_a_policy(require_nsqd, certs):
    c = Conn(require_nsqd.tcp_address)
    try:
        resp = c.identify(feature_negotiation=True, tls_v1=False)
        assert resp["tls_v1"] is False
        c.send(cmds.encode_sub("t", "c"))
        c.expect_error(b"E_INVALID cannot SUB in current state (TLS required)")
        c.expect_closed()
    finally:
        c.close()


# ------------------------------------------------------------------------- HTTPS + policies


def test_https_require_policy_refuses_a_client_without_certificate(require_nsqd, certs):
    assert_https_refused(require_nsqd, ctx(certs, None))


def test_https_require_policy_accepts_a_rogue_certificate(require_nsqd, certs):
    assert https_get(require_nsqd, "/ping", ctx(certs, "rogue")) == (200, b"OK")


def test_https_require_verify_accepts_a_ca_signed_certificate(verify_nsqd, certs):
    status, body = https_get(verify_nsqd, "/stats?format=json", ctx(certs, "ca"))
    assert status == 200 and json.loads(body)["version"] == "1.3.0"


def test_https_require_verify_refuses_a_rogue_certificate(verify_nsqd, certs):
    assert_https_refused(verify_nsqd, ctx(certs, "rogue"))


def test_https_require_verify_refuses_a_client_without_certificate(verify_nsqd, certs):
    assert_https_refused(verify_nsqd, ctx(certs, None))


def test_verified_consumer_shows_tls_in_stats_over_https(verify_nsqd, certs):
    sub = tls_conn(verify_nsqd, ctx(certs, "ca"), client_id="verified")
    try:
        sub.subscribe("ver_stats", "c")
        status, body = https_get(verify_nsqd, "/stats?format=json&topic=ver_stats",
                                 ctx(certs, "ca"))
        client = json.loads(body)["topics"][0]["channels"][0]["clients"][0]
        assert (client["client_id"], client["tls"]) == ("verified", True)
        assert client["tls_version"] == "TLS1.3"
    finally:
        sub.close()


def test_https_publish_visible_to_a_tls_consumer(verify_nsqd, certs):
    req = urllib.request.Request(
        f"https://127.0.0.1:{verify_nsqd.ports['HTTPS']}/pub?topic=https_pub", data=b"via-https",
        method="POST")
    sub = tls_conn(verify_nsqd, ctx(certs, "ca"))
    try:
        sub.subscribe("https_pub", "c", rdy=1)
        with urllib.request.urlopen(req, context=ctx(certs, "ca"), timeout=10) as r:
            assert r.read() == b"OK"
        assert sub.read_message(timeout=10)[2] == b"via-https"
    finally:
        sub.close()


# ---------------------------------------------------------------------------- --tls-min-version


def openssl_can_speak(cert, version) -> bool:
    """Whether the local OpenSSL completes an in-memory handshake at exactly ``version``
    (TLS 1.0/1.1 need security level 0 in OpenSSL 3, and may be compiled out)."""
    try:
        srv = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        srv.load_cert_chain(*cert)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            srv.minimum_version = srv.maximum_version = version
        srv.set_ciphers("DEFAULT:@SECLEVEL=0")
        cli = insecure_ctx(min_v=version, max_v=version, seclevel0=True)
        bios = [ssl.MemoryBIO() for _ in range(4)]
        s = srv.wrap_bio(bios[0], bios[1], server_side=True)
        c = cli.wrap_bio(bios[2], bios[3])
        for _ in range(20):
            done = 0
            for side in (c, s):
                try:
                    side.do_handshake()
                    done += 1
                except ssl.SSLWantReadError:
                    pass
            bios[0].write(bios[3].read())
            bios[2].write(bios[1].read())
            if done == 2:
                return c.version() is not None
        return False
    except (ssl.SSLError, ValueError):
        return False


def old_tls_client(version):
    return insecure_ctx(min_v=ssl.TLSVersion.MINIMUM_SUPPORTED, max_v=version, seclevel0=True)


def test_tls_min_version_tls12_refuses_a_tls11_client(nsqd_factory, certs):
    cert = (certs.cert, certs.key)
    if not openssl_can_speak(cert, ssl.TLSVersion.TLSv1_1):
        pytest.skip("the local OpenSSL cannot build a TLS 1.1 client")
    d = nsqd_factory(f"--tls-cert={cert[0]}", f"--tls-key={cert[1]}", "--tls-min-version=tls1.2")
    assert_tcp_refused(d, old_tls_client(ssl.TLSVersion.TLSv1_1))
    c = tls_conn(d, insecure_ctx(max_v=ssl.TLSVersion.TLSv1_2))
    try:
        assert c.sock.version() == "TLSv1.2"
        c.pub("min12", b"x")
    finally:
        c.close()


@pytest.mark.parametrize("version,name", [(ssl.TLSVersion.TLSv1, "TLSv1"),
                                          (ssl.TLSVersion.TLSv1_1, "TLSv1.1")])
def test_default_tls_min_version_accepts_old_clients(nsqd_factory, certs, version, name):
    cert = (certs.cert, certs.key)
    if not openssl_can_speak(cert, version):
        pytest.skip(f"the local OpenSSL cannot build a {name} client")
    d = nsqd_factory(f"--tls-cert={cert[0]}", f"--tls-key={cert[1]}")
    c = tls_conn(d, old_tls_client(version))
    try:
        assert c.sock.version() == name
        c.pub("min10", b"x")
    finally:
        c.close()


def test_tls_min_version_tls13_refuses_a_tls12_client(nsqd_factory, certs):
    d = nsqd_factory(f"--tls-cert={certs.cert}", f"--tls-key={certs.key}",
                     "--tls-min-version=tls1.3")
    assert_tcp_refused(d, insecure_ctx(max_v=ssl.TLSVersion.TLSv1_2))
    c = tls_conn(d, insecure_ctx(min_v=ssl.TLSVersion.TLSv1_3))
    try:
        assert c.sock.version() == "TLSv1.3"
        c.pub("min13", b"x")
    finally:
        c.close()


def test_tls_min_version_applies_to_https(nsqd_factory, certs):
    d = nsqd_factory(f"--tls-cert={certs.cert}", f"--tls-key={certs.key}",
                     "--tls-min-version=tls1.3", "--https-address=127.0.0.1:0")
    d.wait_for_log(r"HTTPS: listening on")
    assert_https_refused(d, insecure_ctx(max_v=ssl.TLSVersion.TLSv1_2))
    assert https_get(d, "/ping", insecure_ctx()) == (200, b"OK")


# ----------------------------------------------------------------- bad TLS files are fatal


def _fatal_tls(tmp_path, text, *flags):
    r = run_nsqd(tmp_path, *flags)
    assert r.returncode == 1, (r.returncode, r.stderr)
    want = f"FATAL: failed to instantiate nsqd - failed to build TLS config - {text}"
    assert want in r.stderr, r.stderr


def test_missing_tls_cert_file_is_fatal(tmp_path, certs):
    missing = str(tmp_path / "nope.crt")
    _fatal_tls(tmp_path, f"open {missing}: no such file or directory",
               f"--tls-cert={missing}", f"--tls-key={certs.key}")


def test_missing_tls_key_file_is_fatal(tmp_path, certs):
    missing = str(tmp_path / "nope.key")
    _fatal_tls(tmp_path, f"open {missing}: no such file or directory",
               f"--tls-cert={certs.cert}", f"--tls-key={missing}")


def test_tls_cert_without_key_is_fatal(tmp_path, certs):
    _fatal_tls(tmp_path, "open : no such file or directory", f"--tls-cert={certs.cert}")


def test_non_pem_tls_cert_is_fatal(tmp_path, certs):
    _fatal_tls(tmp_path, "tls: failed to find any PEM data in certificate input",
               f"--tls-cert={certs.junk}", f"--tls-key={certs.key}")


def test_mismatched_tls_key_is_fatal(tmp_path, certs):
    _fatal_tls(tmp_path, "tls: private key does not match public key",
               f"--tls-cert={certs.cert}", f"--tls-key={certs.ca.server_key}")


def test_missing_tls_root_ca_file_is_fatal(tmp_path, certs):
    missing = str(tmp_path / "nope-ca.crt")
    _fatal_tls(tmp_path, f"open {missing}: no such file or directory",
               f"--tls-cert={certs.cert}", f"--tls-key={certs.key}",
               "--tls-client-auth-policy=require-verify", f"--tls-root-ca-file={missing}")


def test_non_pem_tls_root_ca_file_is_fatal(tmp_path, certs):
    _fatal_tls(tmp_path, "failed to append certificate to pool",
               f"--tls-cert={certs.cert}", f"--tls-key={certs.key}",
               f"--tls-root-ca-file={certs.junk}")


def test_client_auth_policy_without_cert_is_fatal(tmp_path):
    r = run_nsqd(tmp_path, "--tls-client-auth-policy=require")
    assert r.returncode == 1
    assert ("FATAL: failed to instantiate nsqd - cannot require TLS client connections "
            "without TLS key and cert") in r.stderr
