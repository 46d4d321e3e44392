"""Test certificates made with the ``openssl`` CLI.

* :func:`make_test_cert` — a self-signed server certificate for 127.0.0.1/localhost.
* :func:`make_test_ca` — a CA, a server certificate and a client certificate signed by
  it, plus a self-signed client certificate the CA did not sign.
"""
from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass

_SAN = "subjectAltName=IP:127.0.0.1,DNS:localhost"


def _openssl(*args: str, cwd: str | None = None) -> None:
    subprocess.run(["openssl", *args], check=True, cwd=cwd,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _key(path: str, kind: str) -> None:
    if kind == "rsa":
        _openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", path)
    elif kind == "ec":
        _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                 "-out", path)
    else:
        raise ValueError(kind)


def _self_signed(cert: str, key: str, cn: str, *extra: str) -> None:
    _openssl("req", "-x509", "-new", "-key", key, "-out", cert, "-days", "3650",
             "-subj", f"/CN={cn}", *extra)


def make_test_cert(tmpdir, cn: str = "127.0.0.1", key_type: str = "rsa",
                   name: str = "server") -> tuple[str, str]:
    """Self-signed certificate + key for 127.0.0.1 (and localhost). Returns paths."""
    d = str(tmpdir)
    cert, key = os.path.join(d, f"{name}.crt"), os.path.join(d, f"{name}.key")
    _key(key, key_type)
    _self_signed(cert, key, cn, "-addext", _SAN)
    return cert, key


def _signed_by(ca_cert: str, ca_key: str, cert: str, key: str, cn: str, ext: str,
               d: str) -> None:
    csr = cert + ".csr"
    extfile = cert + ".ext"
    with open(extfile, "w") as fh:
        fh.write(ext + "\n")
    _openssl("req", "-new", "-key", key, "-out", csr, "-subj", f"/CN={cn}")
    _openssl("x509", "-req", "-in", csr, "-CA", ca_cert, "-CAkey", ca_key, "-CAcreateserial",
             "-out", cert, "-days", "3650", "-extfile", extfile, cwd=d)


@dataclass
class TestCA:
    __test__ = False
    ca_cert: str
    ca_key: str
    server_cert: str
    server_key: str
    client_cert: str
    client_key: str
    rogue_cert: str        # self-signed client certificate, not from the CA
    rogue_key: str


def make_test_ca(tmpdir, key_type: str = "rsa", client_cn: str = "test-client") -> TestCA:
    d = str(tmpdir)
    p = lambda n: os.path.join(d, n)  # noqa: E731
    _key(p("ca.key"), key_type)
    _self_signed(p("ca.crt"), p("ca.key"), "nsqpy test CA",
                 "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    _key(p("server.key"), key_type)
    _signed_by(p("ca.crt"), p("ca.key"), p("server.crt"), p("server.key"), "127.0.0.1",
               _SAN + "\nextendedKeyUsage=serverAuth", d)
    _key(p("client.key"), key_type)
    _signed_by(p("ca.crt"), p("ca.key"), p("client.crt"), p("client.key"), client_cn,
               "extendedKeyUsage=clientAuth", d)
    _key(p("rogue.key"), key_type)
    _self_signed(p("rogue.crt"), p("rogue.key"), "rogue-client")
    return TestCA(p("ca.crt"), p("ca.key"), p("server.crt"), p("server.key"),
                  p("client.crt"), p("client.key"), p("rogue.crt"), p("rogue.key"))
