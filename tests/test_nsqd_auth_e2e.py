"""AUTH through a real nsqd against a real HTTP auth server the test starts (tcp-protocol §6.2, §12)."""
import json
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from nsqpy.protocol import commands as cmds

GRANTS = {
    b"pub-only": {"ttl": 3600, "identity": "p", "identity_url": "http://id/p",
                  "authorizations": [{"topic": "^allowed$", "channels": [".*"],
                                      "permissions": ["publish"]}]},
    b"sub-only": {"ttl": 3600, "identity": "s", "identity_url": "",
                  "authorizations": [{"topic": "allowed", "channels": ["^ch$"],
                                      "permissions": ["subscribe"]}]},
    b"short": {"ttl": 1, "identity": "short", "identity_url": "",
               "authorizations": [{"topic": ".*", "channels": [".*"],
                                   "permissions": ["publish", "subscribe"]}]},
    b"none": {"ttl": 60, "identity": "n", "identity_url": "", "authorizations": []},
}


class AuthServer:
    def __init__(self):
        self.requests = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                url = urllib.parse.urlsplit(self.path)
                outer.requests.append(url.query)
                secret = urllib.parse.parse_qs(url.query).get("secret", [""])[0].encode()
                grant = GRANTS.get(secret)
                if grant is None:
                    self.send_response(403)
                    self.end_headers()
                    return
                body = json.dumps(grant).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()


@pytest.fixture
def auth_server():
    s = AuthServer()
    yield s
    s.close()


@pytest.fixture
def auth_nsqd(nsqd_factory, auth_server):
    return nsqd_factory(f"--auth-http-address={auth_server.address}")


def auth(conn, secret: bytes):
    conn.send(cmds.encode_auth(secret))
    return conn.read_frame()


def test_auth_without_auth_server_is_disabled(nsqd, conn_factory):
    c = conn_factory(nsqd)
    assert auth(c, b"x") == (1, b"E_AUTH_DISABLED AUTH disabled")
    c.expect_closed()


def test_identify_says_auth_required(auth_nsqd, conn_factory):
    assert conn_factory(auth_nsqd).identify(feature_negotiation=True)["auth_required"] is True


def test_pub_before_auth_is_auth_first(auth_nsqd, conn_factory):
    c = conn_factory(auth_nsqd)
    c.send(cmds.encode_pub("allowed", b"x"))
    c.expect_error(b"E_AUTH_FIRST AUTH required before PUB")
    c.expect_closed()


def test_mpub_before_auth_fails_before_the_body(auth_nsqd, conn_factory):
    c = conn_factory(auth_nsqd)
    c.send(b"MPUB allowed\n")           # no body sent at all
    c.expect_error(b"E_AUTH_FIRST AUTH required before MPUB")


def test_auth_success_reply_and_query(auth_nsqd, auth_server, conn_factory):
    c = conn_factory(auth_nsqd)
    assert auth(c, b"pub-only") == (
        0, b'{"identity":"p","identity_url":"http://id/p","permission_count":1}')
    assert auth_server.requests == ["common_name=&remote_ip=127.0.0.1&secret=pub-only&tls=false"]
    c.pub("allowed", b"x")


def test_pub_outside_the_grant_is_unauthorized(auth_nsqd, conn_factory):
    c = conn_factory(auth_nsqd)
    auth(c, b"pub-only")
    c.send(cmds.encode_pub("other", b"x"))
    c.expect_error(b'E_UNAUTHORIZED AUTH failed for PUB on "other" ""')


def test_sub_needs_subscribe_permission_on_the_channel(auth_nsqd, conn_factory):
    ok = conn_factory(auth_nsqd)
    auth(ok, b"sub-only")
    ok.subscribe("allowed", "ch")
    bad = conn_factory(auth_nsqd)
    auth(bad, b"sub-only")
    bad.send(cmds.encode_sub("allowed", "other"))
    bad.expect_error(b'E_UNAUTHORIZED AUTH failed for SUB on "allowed" "other"')


def test_no_authorizations_is_unauthorized(auth_nsqd, conn_factory):
    c = conn_factory(auth_nsqd)
    assert auth(c, b"none") == (1, b"E_UNAUTHORIZED AUTH no authorizations found")


def test_rejected_secret_is_auth_failed(auth_nsqd, conn_factory):
    c = conn_factory(auth_nsqd)
    assert auth(c, b"wrong") == (1, b"E_AUTH_FAILED AUTH failed")
    c.expect_closed()


def test_auth_twice_is_already_set(auth_nsqd, conn_factory):
    c = conn_factory(auth_nsqd)
    auth(c, b"pub-only")
    assert auth(c, b"pub-only") == (1, b"E_INVALID AUTH already set")


def test_expired_grant_is_queried_again(auth_nsqd, auth_server, conn_factory):
    c = conn_factory(auth_nsqd)
    auth(c, b"short")
    c.pub("any", b"1")
    assert len(auth_server.requests) == 1
    time.sleep(1.2)
    c.pub("any", b"2")
    assert len(auth_server.requests) == 2


def test_unreachable_auth_server_is_auth_failed(nsqd_factory, conn_factory):
    d = nsqd_factory("--auth-http-address=127.0.0.1:1")
    c = conn_factory(d)
    assert auth(c, b"x") == (1, b"E_AUTH_FAILED AUTH failed")


def test_stats_show_auth_identity(auth_nsqd, conn_factory):
    c = conn_factory(auth_nsqd)
    auth(c, b"sub-only")
    c.subscribe("allowed", "ch")
    client = auth_nsqd.channel_stats("allowed", "ch")["clients"][0]
    assert (client["authed"], client["auth_identity"]) == (True, "s")
    assert "auth_identity_url" not in client
