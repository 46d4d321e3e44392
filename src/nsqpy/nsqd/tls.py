"""nsqd's TLS configuration (flags.md §1 ``--tls-*``, tcp-protocol.md §6.1.4) and the
``/stats`` TLS fields of a client (nsqd-http.md).

:func:`build_server_ssl_context` mirrors nsqd's ``buildTLSConfig``:

* no ``--tls-cert`` and no ``--tls-key`` → ``None`` (TLS disabled);
* the key pair, then ``--tls-root-ca-file``, are loaded; problems raise ``ValueError``
  with Go's error text (nsqd prints ``failed to build TLS config - <text>``);
* ``--tls-min-version`` (769..772) is the minimum protocol version; TLS 1.3 is allowed;
* ``--tls-client-auth-policy``: ``""`` (or anything else) = no client certificate
  requested; ``require-verify`` = a certificate is required and must verify against
  the root CA file, else the system roots; ``require`` = a certificate is required but
  *not* verified (Go's ``RequireAnyClientCert``).

``require`` cannot be expressed with the ``ssl`` module alone: OpenSSL requests a peer
certificate only together with verification, and Python exposes no verify callback.  We
therefore set ``SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT`` with a verify
callback that accepts every chain, installed through ``ctypes`` on the context's
``SSL_CTX`` (taken from the libssl the ``_ssl`` module is linked against, after
checking that the pointer really is this context's ``SSL_CTX``).  The handshake still
proves possession of the certificate's private key (CertificateVerify).  CPython keeps
a context's verify callback when it creates connections, so ``verify_mode`` reads
``CERT_REQUIRED`` and ``getpeercert()`` returns the decoded certificate.  If that
binding is unavailable (e.g. a statically linked OpenSSL) ``require`` falls back to
``require-verify`` semantics (stricter, never looser) and :data:`REQUIRE_ANY_CERT_EXACT`
is False.  The same binding sets the TLS 1.3 suite preference to Go's
(AES-128-GCM first) so ``tls_cipher_suite`` reads ``Unknown 4865`` as with nsqd.

TLS 1.2-and-below cipher suites are limited to Go's default suites in Go's preference
order (server preference), so a client negotiates what it would with nsqd.  OpenSSL 3
refuses TLS 1.0/1.1 above security level 0, so when ``--tls-min-version`` is below
TLS 1.2 (the upstream default ``tls1.0``) the security level is 0; the suite list
remains Go's.
"""
from __future__ import annotations

import ctypes
import ssl
import warnings

from ..configfile import go_os_error

__all__ = [
    "build_server_ssl_context", "build_client_ssl_context", "tls_stats", "non_tls_stats",
    "peer_common_name", "cipher_suite_name", "version_name", "TLS_VERSION_NAMES",
    "REQUIRE_ANY_CERT_EXACT",
]

_SSL_VERSIONS = {
    0x0301: ssl.TLSVersion.TLSv1,
    0x0302: ssl.TLSVersion.TLSv1_1,
    0x0303: ssl.TLSVersion.TLSv1_2,
    0x0304: ssl.TLSVersion.TLSv1_3,
}

# Python's SSLObject.version() -> (nsqd's name, protocol number)
TLS_VERSION_NAMES = {
    "TLSv1": ("TLS1.0", 0x0301),
    "TLSv1.1": ("TLS1.1", 0x0302),
    "TLSv1.2": ("TLS1.2", 0x0303),
    "TLSv1.3": ("TLS1.3", 0x0304),
    "SSLv3": ("SSL30", 0x0300),
}

# Go's default TLS 1.0-1.2 suites in Go's preference order (OpenSSL names).
_GO_TLS12_CIPHERS = [
    "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
    "ECDHE-ECDSA-AES128-SHA", "ECDHE-RSA-AES128-SHA",
    "ECDHE-ECDSA-AES256-SHA", "ECDHE-RSA-AES256-SHA",
    "AES128-GCM-SHA256", "AES256-GCM-SHA384",
    "AES128-SHA", "AES256-SHA",
    "ECDHE-RSA-DES-CBC3-SHA", "DES-CBC3-SHA",
]
_GO_TLS13_SUITES = b"TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"

# nsqd's prettyConnectionState.GetCipherSuite: the suites it names; others print
# "Unknown <id>" (so do all TLS 1.3 suites).
_NSQD_SUITE_NAMES = {
    0x0005: "TLS_RSA_WITH_RC4_128_SHA",
    0x000A: "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
    0x002F: "TLS_RSA_WITH_AES_128_CBC_SHA",
    0x0035: "TLS_RSA_WITH_AES_256_CBC_SHA",
    0xC007: "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA",
    0xC009: "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
    0xC00A: "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
    0xC011: "TLS_ECDHE_RSA_WITH_RC4_128_SHA",
    0xC012: "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA",
    0xC013: "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
    0xC014: "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
    0xC02F: "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    0xC02B: "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
}

# OpenSSL name -> IANA id for the suites a server may negotiate (fallback when the
# linked OpenSSL cannot list a suite itself).
_OPENSSL_SUITE_IDS = {
    "RC4-SHA": 0x0005, "DES-CBC3-SHA": 0x000A, "AES128-SHA": 0x002F, "AES256-SHA": 0x0035,
    "AES128-SHA256": 0x003C, "AES256-SHA256": 0x003D,
    "AES128-GCM-SHA256": 0x009C, "AES256-GCM-SHA384": 0x009D,
    "DHE-RSA-AES128-SHA": 0x0033, "DHE-RSA-AES256-SHA": 0x0039,
    "DHE-RSA-AES128-GCM-SHA256": 0x009E, "DHE-RSA-AES256-GCM-SHA384": 0x009F,
    "ECDHE-ECDSA-RC4-SHA": 0xC007, "ECDHE-ECDSA-AES128-SHA": 0xC009,
    "ECDHE-ECDSA-AES256-SHA": 0xC00A, "ECDHE-RSA-RC4-SHA": 0xC011,
    "ECDHE-RSA-DES-CBC3-SHA": 0xC012, "ECDHE-RSA-AES128-SHA": 0xC013,
    "ECDHE-RSA-AES256-SHA": 0xC014, "ECDHE-ECDSA-AES128-SHA256": 0xC023,
    "ECDHE-ECDSA-AES256-SHA384": 0xC024, "ECDHE-RSA-AES128-SHA256": 0xC027,
    "ECDHE-RSA-AES256-SHA384": 0xC028, "ECDHE-ECDSA-AES128-GCM-SHA256": 0xC02B,
    "ECDHE-ECDSA-AES256-GCM-SHA384": 0xC02C, "ECDHE-RSA-AES128-GCM-SHA256": 0xC02F,
    "ECDHE-RSA-AES256-GCM-SHA384": 0xC030, "ECDHE-RSA-CHACHA20-POLY1305": 0xCCA8,
    "ECDHE-ECDSA-CHACHA20-POLY1305": 0xCCA9, "DHE-RSA-CHACHA20-POLY1305": 0xCCAA,
    "TLS_AES_128_GCM_SHA256": 0x1301, "TLS_AES_256_GCM_SHA384": 0x1302,
    "TLS_CHACHA20_POLY1305_SHA256": 0x1303, "TLS_AES_128_CCM_SHA256": 0x1304,
    "TLS_AES_128_CCM_8_SHA256": 0x1305,
}
_suite_ids: dict[str, int] | None = None


def _all_suite_ids() -> dict[str, int]:
    """OpenSSL name -> IANA id for every suite the linked OpenSSL knows."""
    global _suite_ids
    if _suite_ids is None:
        ids = dict(_OPENSSL_SUITE_IDS)
        try:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.set_ciphers("ALL:COMPLEMENTOFALL:@SECLEVEL=0")
            for c in ctx.get_ciphers():
                ids[c["name"]] = c["id"] & 0xFFFF
        except (ssl.SSLError, KeyError, TypeError):    # pragma: no cover
            pass
        _suite_ids = ids
    return _suite_ids


def cipher_suite_name(openssl_name: str | None) -> str:
    """nsqd's ``tls_cipher_suite`` text for a negotiated suite (OpenSSL name)."""
    if not openssl_name:
        return ""
    suite_id = _all_suite_ids().get(openssl_name)
    if suite_id is None:
        return "Unknown 0"
    return _NSQD_SUITE_NAMES.get(suite_id, f"Unknown {suite_id}")


def version_name(python_version: str | None) -> str:
    """nsqd's ``tls_version`` text (``TLS1.0`` .. ``TLS1.3``)."""
    if not python_version:
        return ""
    entry = TLS_VERSION_NAMES.get(python_version)
    return entry[0] if entry is not None else f"Unknown {python_version}"


def non_tls_stats() -> dict:
    return {"tls": False, "tls_cipher_suite": "", "tls_version": "",
            "tls_negotiated_protocol": "", "tls_negotiated_protocol_is_mutual": False}


def tls_stats(ssl_object) -> dict:
    """The ``/stats`` TLS fields of a client, in nsqd's order.  ``ssl_object`` is the
    connection's ``ssl.SSLObject``/``SSLSocket`` (``None`` = plain connection).
    Go always reports ``NegotiatedProtocolIsMutual`` true since NPN was removed."""
    if ssl_object is None:
        return non_tls_stats()
    cipher = ssl_object.cipher()
    return {
        "tls": True,
        "tls_cipher_suite": cipher_suite_name(cipher[0] if cipher else None),
        "tls_version": version_name(ssl_object.version()),
        "tls_negotiated_protocol": ssl_object.selected_alpn_protocol() or "",
        "tls_negotiated_protocol_is_mutual": True,
    }


def peer_common_name(ssl_object) -> str:
    """Subject CN of the client's certificate ("" if none), as Go's
    ``PeerCertificates[0].Subject.CommonName`` (the last CN attribute wins)."""
    if ssl_object is None:
        return ""
    try:
        cert = ssl_object.getpeercert()
    except (ValueError, ssl.SSLError):
        return ""
    cn = ""
    for rdn in (cert or {}).get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                cn = value
    return cn


# -- libssl binding for what the ssl module does not expose ---------------------------------------
_SSL_VERIFY_PEER = 0x01
_SSL_VERIFY_FAIL_IF_NO_PEER_CERT = 0x02
_VERIFY_CB = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_void_p)


def _accept_any_certificate(preverify_ok: int, store_ctx: int) -> int:
    return 1


_ACCEPT_ANY = _VERIFY_CB(_accept_any_certificate)      # must stay referenced
_libssl = None
_libssl_loaded = False


def _load_libssl():
    global _libssl, _libssl_loaded
    if _libssl_loaded:
        return _libssl
    _libssl_loaded = True
    try:
        import _ssl
        lib = ctypes.CDLL(_ssl.__file__)
        lib.SSL_CTX_get_options.restype = ctypes.c_uint64
        lib.SSL_CTX_get_options.argtypes = [ctypes.c_void_p]
        lib.SSL_CTX_get_verify_mode.restype = ctypes.c_int
        lib.SSL_CTX_get_verify_mode.argtypes = [ctypes.c_void_p]
        lib.SSL_CTX_set_verify.restype = None
        lib.SSL_CTX_set_verify.argtypes = [ctypes.c_void_p, ctypes.c_int, _VERIFY_CB]
        lib.SSL_CTX_set_ciphersuites.restype = ctypes.c_int
        lib.SSL_CTX_set_ciphersuites.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        _libssl = lib
    except (ImportError, OSError, AttributeError):      # pragma: no cover
        _libssl = None
    return _libssl


def _ssl_ctx_pointer(ctx: ssl.SSLContext):
    """The ``SSL_CTX *`` behind ``ctx`` (first field after PyObject_HEAD), or None if
    it cannot be confirmed to be this context's."""
    lib = _load_libssl()
    if lib is None:
        return None, None
    try:
        ptr = ctypes.c_void_p.from_address(id(ctx) + object.__basicsize__).value
        if not ptr:
            return None, None
        # confirm: options and verify mode read through libssl must equal Python's view
        if lib.SSL_CTX_get_options(ptr) != ctx.options:
            return None, None
        saved = ctx.verify_mode
        ctx.verify_mode = ssl.CERT_OPTIONAL
        ok = lib.SSL_CTX_get_verify_mode(ptr) == _SSL_VERIFY_PEER
        ctx.verify_mode = saved
        if not ok:
            return None, None
        return lib, ptr
    except (ValueError, OSError, AttributeError):        # pragma: no cover
        return None, None


def _require_any_client_cert(ctx: ssl.SSLContext) -> bool:
    lib, ptr = _ssl_ctx_pointer(ctx)
    if lib is None:
        return False
    lib.SSL_CTX_set_verify(ptr, _SSL_VERIFY_PEER | _SSL_VERIFY_FAIL_IF_NO_PEER_CERT, _ACCEPT_ANY)
    return ctx.verify_mode == ssl.CERT_REQUIRED


def _prefer_go_tls13_suites(ctx: ssl.SSLContext) -> bool:
    lib, ptr = _ssl_ctx_pointer(ctx)
    if lib is None:
        return False
    return lib.SSL_CTX_set_ciphersuites(ptr, _GO_TLS13_SUITES) == 1


def _probe_require_any() -> bool:
    try:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        return _require_any_client_cert(ctx)
    except Exception:                                     # pragma: no cover
        return False


REQUIRE_ANY_CERT_EXACT = _probe_require_any()
"""True when ``--tls-client-auth-policy=require`` is implemented exactly (any client
certificate accepted without verification); False → it behaves as require-verify."""


# -- building contexts ------------------------------------------------------------------------------
def _read_file(path: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except IsADirectoryError as e:
        raise ValueError(go_os_error("read", path, e)) from None
    except OSError as e:
        raise ValueError(go_os_error("open", path, e)) from None


def _raise_no_password(*_args):
    raise ValueError("encrypted private key")


def _load_root_cas(ctx: ssl.SSLContext, path: str) -> None:
    pem = _read_file(path)
    if b"-----BEGIN CERTIFICATE-----" not in pem:
        raise ValueError("failed to append certificate to pool")
    try:
        ctx.load_verify_locations(cadata=pem.decode("latin-1"))
    except (ssl.SSLError, ValueError):
        raise ValueError("failed to append certificate to pool") from None


def _min_version(opts) -> int:
    v = getattr(opts, "tls_min_version", 0x0301) or 0x0301
    if v not in _SSL_VERSIONS:
        raise ValueError(f"invalid tls_min_version {v}")
    return v


def _set_minimum_version(ctx: ssl.SSLContext, min_version: int) -> None:
    with warnings.catch_warnings():      # TLSv1/TLSv1_1 are deprecated names in 3.10+
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = _SSL_VERSIONS[min_version]


def _apply_versions_and_ciphers(ctx: ssl.SSLContext, min_version: int) -> None:
    _set_minimum_version(ctx, min_version)
    ctx.maximum_version = ssl.TLSVersion.MAXIMUM_SUPPORTED
    level = 0 if min_version < 0x0303 else 1
    available = {c["name"] for c in _ciphers_known()}
    suites = [c for c in _GO_TLS12_CIPHERS if c in available] or ["DEFAULT"]
    ctx.set_ciphers(":".join(suites) + f":@SECLEVEL={level}")


_known_ciphers = None


def _ciphers_known():
    global _known_ciphers
    if _known_ciphers is None:
        c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        c.set_ciphers("ALL:COMPLEMENTOFALL:@SECLEVEL=0")
        _known_ciphers = c.get_ciphers()
    return _known_ciphers


def build_server_ssl_context(opts) -> ssl.SSLContext | None:
    """nsqd's server TLS config (TCP upgrade and the HTTPS listener), or None when
    neither ``tls_cert`` nor ``tls_key`` is set.  ``ValueError`` carries Go's text."""
    cert_path = opts.tls_cert or ""
    key_path = opts.tls_key or ""
    if not cert_path and not key_path:
        return None
    # tls.LoadX509KeyPair: read the cert, then the key, then parse both
    cert_pem = _read_file(cert_path)
    key_pem = _read_file(key_path)
    if b"-----BEGIN" not in cert_pem or b"CERTIFICATE-----" not in cert_pem:
        raise ValueError("tls: failed to find any PEM data in certificate input")
    if b"-----BEGIN" not in key_pem or b"PRIVATE KEY-----" not in key_pem:
        raise ValueError("tls: failed to find any PEM data in key input")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    min_version = _min_version(opts)
    _apply_versions_and_ciphers(ctx, min_version)
    _prefer_go_tls13_suites(ctx)
    try:
        ctx.load_cert_chain(cert_path, key_path, password=_raise_no_password)
    except ssl.SSLError as e:
        text = f"{e.reason or ''} {e}"
        if "KEY_VALUES_MISMATCH" in text or "values mismatch" in text:
            raise ValueError("tls: private key does not match public key") from None
        if "NO_CERTIFICATE_ASSIGNED" in text or "KEY_TYPE_MISMATCH" in text:
            raise ValueError("tls: private key type does not match public key type") from None
        if "key too small" in text.lower() or "EE_KEY_TOO_SMALL" in text:
            raise ValueError(f"tls: failed to load key pair: {e.reason or e}") from None
        raise ValueError(f"tls: failed to parse key pair: {e.reason or e}") from None
    except ValueError:
        raise ValueError("tls: failed to parse private key") from None
    except OSError as e:
        raise ValueError(go_os_error("open", cert_path, e)) from None
    policy = opts.tls_client_auth_policy or ""
    root_ca = getattr(opts, "tls_root_ca_file", "") or ""
    if root_ca:
        _load_root_cas(ctx, root_ca)
    if policy == "require":
        if not _require_any_client_cert(ctx):
            # fallback: require and verify (never accept less than asked for)
            ctx.verify_mode = ssl.CERT_REQUIRED
            if not root_ca:
                ctx.load_default_certs(ssl.Purpose.CLIENT_AUTH)
    elif policy == "require-verify":
        ctx.verify_mode = ssl.CERT_REQUIRED
        if not root_ca:
            ctx.load_default_certs(ssl.Purpose.CLIENT_AUTH)
    else:
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def build_client_ssl_context(opts) -> ssl.SSLContext:
    """nsqd's ``buildClientTLSConfig`` for outbound HTTPS (auth server): minimum
    version ``tls_min_version``; with ``tls_root_ca_file`` only that CA is trusted,
    else the system roots.  Host names are verified."""
    root_ca = getattr(opts, "tls_root_ca_file", "") or ""
    if root_ca:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        _load_root_cas(ctx, root_ca)
    else:
        ctx = ssl.create_default_context()
    min_version = _min_version(opts)
    _set_minimum_version(ctx, min_version)
    if min_version < 0x0303:
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    return ctx
