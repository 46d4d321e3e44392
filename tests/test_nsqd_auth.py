"""Authorization against an auth server (tcp-protocol.md §6.2, §12), at the Authorizer
level with a real aiohttp auth server on 127.0.0.1 and a fake client object."""
import asyncio
import json
import socket
import ssl
from types import SimpleNamespace

import pytest
from aiohttp import web

from nsqpy.nsqd.auth import (AuthQueryError, Authorizer, GoRegexpError, NeedsRefresh,
                             compile_go_regexp, decode_auth_reply, encode_query)
from nsqpy.nsqd.options import default_options
from nsqpy.protocol.errors import ProtocolError

ALLOW_ALL = {"ttl": 3600, "identity": "ident", "identity_url": "http://example.com/u",
             "authorizations": [{"topic": ".*", "channels": [".*"],
                                 "permissions": ["subscribe", "publish"]}]}


class FakeLog:
    def __init__(self):
        self.lines = []

    def warn(self, msg, *args):
        self.lines.append(msg % args if args else msg)

    warning = error = info = debug = warn


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def make_client(**kw):
    base = dict(remote_ip="127.0.0.1", remote_address="127.0.0.1:40000", tls=False,
                tls_common_name="", authed=False, auth_identity="", auth_identity_url="",
                auth_state=None)
    base.update(kw)
    return SimpleNamespace(**base)


class AuthServer:
    """Records requests; replies with ``self.reply`` (dict → JSON 200, or
    (status, body-bytes), or a callable(request) → (status, body))."""

    def __init__(self, ssl_context=None):
        self.requests = []
        self.reply = ALLOW_ALL
        self.ssl_context = ssl_context
        self.release = asyncio.Event()

    async def handle(self, request):
        body = await request.read()
        self.requests.append(SimpleNamespace(
            method=request.method, path=request.path, raw_path=request.raw_path,
            query_string=request.query_string, headers=dict(request.headers), body=body))
        reply = self.reply
        if callable(reply):
            reply = await reply(request)
        if isinstance(reply, tuple):
            status, data = reply
        else:
            status, data = 200, json.dumps(reply).encode()
        return web.Response(status=status, body=data, content_type="application/json")

    async def start(self):
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self.runner = web.AppRunner(app, shutdown_timeout=1)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0, ssl_context=self.ssl_context)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        self.addr = f"127.0.0.1:{self.port}"
        return self

    async def stop(self):
        self.release.set()
        await self.runner.cleanup()


@pytest.fixture
async def server():
    s = await AuthServer().start()
    yield s
    await s.stop()


@pytest.fixture
async def server2():
    s = await AuthServer().start()
    yield s
    await s.stop()


def make_opts(*addresses, **kw):
    base = dict(auth_http_addresses=list(addresses), http_client_connect_timeout=2_000_000_000,
                http_client_request_timeout=5_000_000_000, tls_root_ca_file="",
                tls_min_version=0x0301)
    base.update(kw)
    return SimpleNamespace(**base)


async def _perr(coro_or_fn, code, desc):
    with pytest.raises(ProtocolError) as ei:
        r = coro_or_fn()
        if asyncio.iscoroutine(r):
            await r
    assert (ei.value.code, ei.value.desc) == (code, desc)
    assert ei.value.fatal


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# -- disabled ------------------------------------------------------------------------------------
async def test_disabled():
    a = Authorizer(make_opts(), FakeLog())
    assert not a.enabled
    c = make_client()
    await _perr(lambda: a.authenticate(c, b"x"), "E_AUTH_DISABLED", "AUTH disabled")
    a.check(c, b"SUB", "t", "c")
    a.check(c, b"PUB", "t", "")
    a.check_before_body(c, b"MPUB", [b"t"])
    await a.refresh_if_expired(c)
    await a.close()


def test_real_options_object():
    o = default_options("h")
    a = Authorizer(o, FakeLog())
    assert not a.enabled
    assert a.connect_timeout == 2.0 and a.request_timeout == 5.0
    assert a.method == "get"
    o.auth_http_addresses = ["127.0.0.1:1"]
    assert Authorizer(o, FakeLog()).enabled


# -- the request ---------------------------------------------------------------------------------
async def test_success_request_and_response(server):
    a = Authorizer(make_opts(server.addr), FakeLog())
    c = make_client()
    body = await a.authenticate(c, b"good")
    assert body == (b'{"identity":"ident","identity_url":"http://example.com/u",'
                    b'"permission_count":1}')
    assert c.authed is True
    assert c.auth_identity == "ident"
    assert c.auth_identity_url == "http://example.com/u"
    assert c.auth_state.secret == b"good"
    (req,) = server.requests
    assert req.method == "GET"
    assert req.path == "/auth"
    assert req.query_string == "common_name=&remote_ip=127.0.0.1&secret=good&tls=false"
    assert req.headers["Accept"] == "application/vnd.nsq; version=1.0"
    assert req.body == b""
    await a.close()


async def test_query_escaping(server):
    a = Authorizer(make_opts(server.addr), FakeLog())
    c = make_client(remote_ip="::1", tls=True, tls_common_name="client one/ü")
    await a.authenticate(c, b"a b&c=d/\xc3\xa9\xff+~._-")
    (req,) = server.requests
    assert req.raw_path == ("/auth?common_name=client+one%2F%C3%BC&remote_ip=%3A%3A1"
                            "&secret=a+b%26c%3Dd%2F%C3%A9%FF%2B~._-&tls=true")
    await a.close()


def test_encode_query_like_go():
    assert encode_query([("k", b"!*'();:@&=+$,/?#[] ")]) == \
        "k=%21%2A%27%28%29%3B%3A%40%26%3D%2B%24%2C%2F%3F%23%5B%5D+"


async def test_common_name_only_with_tls(server):
    a = Authorizer(make_opts(server.addr), FakeLog())
    await a.authenticate(make_client(tls=False, tls_common_name="leaked"), b"s")
    await a.authenticate(make_client(remote_ip=""), b"s")     # unix socket: no remote ip
    assert server.requests[0].query_string == "common_name=&remote_ip=127.0.0.1&secret=s&tls=false"
    assert server.requests[1].query_string == "common_name=&remote_ip=&secret=s&tls=false"
    await a.close()


async def test_full_url_address(server):
    a = Authorizer(make_opts(f"http://127.0.0.1:{server.port}/v2/check"), FakeLog())
    await a.authenticate(make_client(), b"good")
    assert server.requests[0].path == "/v2/check"
    assert server.requests[0].query_string == \
        "common_name=&remote_ip=127.0.0.1&secret=good&tls=false"
    await a.close()


async def test_post_mode(server):
    a = Authorizer(make_opts(server.addr, auth_http_request_method="post"), FakeLog())
    await a.authenticate(make_client(), b"go\"od")
    (req,) = server.requests
    assert req.method == "POST"
    assert req.path == "/auth" and req.query_string == ""
    assert req.headers["Content-Type"] == "application/json"
    assert req.headers["Accept"] == "application/vnd.nsq; version=1.0"
    assert req.body == (b'{"common_name":[""],"remote_ip":["127.0.0.1"],'
                        b'"secret":["go\\"od"],"tls":["false"]}')
    await a.close()


# -- permissions ---------------------------------------------------------------------------------
PERMS = {"ttl": 60, "identity": "x", "identity_url": "", "authorizations": [
    {"topic": "^foo$", "channels": [".*"], "permissions": ["subscribe", "publish"]},
    {"topic": "bar", "channels": ["^ch$", "^other"], "permissions": ["subscribe"]},
    {"topic": "^pubonly$", "channels": ["x"], "permissions": ["publish"]},
    {"topic": "^pubok$", "channels": ["^$"], "permissions": ["publish"]},
    {"topic": "^nothing$", "channels": [], "permissions": ["subscribe", "publish"]},
]}


async def test_permission_rules(server):
    server.reply = PERMS
    a = Authorizer(make_opts(server.addr), FakeLog())
    c = make_client()
    body = await a.authenticate(c, b"s")
    assert json.loads(body)["permission_count"] == 5
    ok = [(b"SUB", "foo", "any"), (b"PUB", "foo", ""), (b"MPUB", "foo", ""),
          (b"DPUB", "foo", ""), (b"SUB", "xbarx", "ch"), (b"SUB", "bar", "other2"),
          (b"SUB", "bar#ephemeral", "ch"), (b"PUB", "pubok", "")]
    for name, topic, channel in ok:
        a.check(c, name, topic, channel)
    bad = [(b"SUB", "foox", "ch"), (b"SUB", "bar", "chx"), (b"PUB", "bar", ""),
           (b"PUB", "pubonly", ""), (b"SUB", "pubonly", "x"), (b"SUB", "pubok", "c"),
           (b"MPUB", "nothing", ""), (b"SUB", "nothing", "c"), (b"DPUB", "zzz", "")]
    for name, topic, channel in bad:
        with pytest.raises(ProtocolError) as ei:
            a.check(c, name, topic, channel)
        assert ei.value.code == "E_UNAUTHORIZED"
        assert ei.value.desc == f'AUTH failed for {name.decode()} on "{topic}" "{channel}"'
    # MPUB before its body
    a.check_before_body(c, b"MPUB", [b"foo"])
    a.check_before_body(c, b"MPUB", "foo")
    with pytest.raises(ProtocolError) as ei:
        a.check_before_body(c, b"MPUB", [b"bar"])
    assert ei.value.desc == 'AUTH failed for MPUB on "bar" ""'
    await a.close()


async def test_auth_first(server):
    a = Authorizer(make_opts(server.addr), FakeLog())
    c = make_client()
    for name in (b"SUB", b"PUB", b"MPUB", b"DPUB"):
        with pytest.raises(ProtocolError) as ei:
            a.check(c, name, "t", "c" if name == b"SUB" else "")
        assert (ei.value.code, ei.value.desc) == ("E_AUTH_FIRST",
                                                  f"AUTH required before {name.decode()}")
    with pytest.raises(ProtocolError) as ei:
        a.check_before_body(c, b"MPUB", [b"t"])
    assert ei.value.code == "E_AUTH_FIRST"
    assert server.requests == []
    await a.close()


async def test_already_set(server):
    a = Authorizer(make_opts(server.addr), FakeLog())
    c = make_client()
    await a.authenticate(c, b"s")
    await _perr(lambda: a.authenticate(c, b"s"), "E_INVALID", "AUTH already set")
    assert len(server.requests) == 1
    await a.close()


async def test_no_authorizations(server):
    server.reply = {"ttl": 10, "identity": "who", "identity_url": "u", "authorizations": []}
    a = Authorizer(make_opts(server.addr), FakeLog())
    c = make_client()
    await _perr(lambda: a.authenticate(c, b"s"), "E_UNAUTHORIZED", "AUTH no authorizations found")
    assert c.authed is False
    # an empty reply doesn't count as "already set": AUTH may be retried
    server.reply = ALLOW_ALL
    await a.authenticate(c, b"s")
    assert c.authed
    await a.close()


async def test_response_json_escaping(server):
    server.reply = dict(ALLOW_ALL, identity="<a&b>\u2028é", identity_url="x\"y")
    a = Authorizer(make_opts(server.addr), FakeLog())
    body = await a.authenticate(make_client(), b"s")
    assert body == ('{"identity":"\\u003ca\\u0026b\\u003e\\u2028é","identity_url":"x\\"y",'
                    '"permission_count":1}').encode()
    await a.close()


# -- failures ------------------------------------------------------------------------------------
@pytest.mark.parametrize("reply,logged", [
    ((500, b"oops"), 'got response 500 Internal Server Error "oops"'),
    ((404, b""), "got response 404 Not Found"),
    ((200, b"not json"), ""),
    ((200, b""), ""),
    ((200, b'{"ttl": 0, "authorizations": []}'), "invalid TTL 0 (must be >0)"),
    ((200, b'{"ttl": -5}'), "invalid TTL -5"),
    ((200, b"null"), "invalid TTL 0"),
    ((200, b"[]"), "cannot unmarshal array"),
    ((200, b'{"ttl": 3.5}'), "cannot unmarshal number 3.5"),
    ((200, b'{"ttl": 1e3}'), "cannot unmarshal number 1e3"),
    ((200, b'{"ttl": "60"}'), "cannot unmarshal string"),
    ((200, b'{"ttl": 60, "identity": 5}'), "cannot unmarshal number"),
    ((200, b'{"ttl": 60, "authorizations": {}}'), "cannot unmarshal object"),
    ((200, b'{"ttl": 60, "authorizations": [{"topic": ".*", "channels": [".*"], '
           b'"permissions": ["subscribe", "admin"]}]}'), "unknown permission admin"),
    ((200, b'{"ttl": 60, "authorizations": [{"topic": "(", "channels": [".*"], '
           b'"permissions": ["subscribe"]}]}'), 'unable to compile topic "("'),
    ((200, b'{"ttl": 60, "authorizations": [{"topic": ".*", "channels": ["a(?=b)"], '
           b'"permissions": ["subscribe"]}]}'), 'unable to compile channel "a(?=b)"'),
    ((200, b'{"ttl": 60, "authorizations": [{"topic": ".*", "channels": ["[z-a]"], '
           b'"permissions": ["subscribe"]}]}'), "unable to compile channel"),
    ((200, b'{"ttl": NaN}'), ""),
])
async def test_query_failures(server, reply, logged):
    server.reply = reply
    log = FakeLog()
    a = Authorizer(make_opts(server.addr), log)
    c = make_client()
    await _perr(lambda: a.authenticate(c, b"s"), "E_AUTH_FAILED", "AUTH failed")
    assert c.auth_state is None and not c.authed
    (line,) = log.lines
    assert line.startswith(f"PROTOCOL(V2): [127.0.0.1:40000] AUTH failed failed to auth "
                           f"against {server.addr} - ")
    assert logged in line
    await a.close()


async def test_connection_refused():
    port = free_port()
    log = FakeLog()
    a = Authorizer(make_opts(f"127.0.0.1:{port}"), log)
    await _perr(lambda: a.authenticate(make_client(), b"s"), "E_AUTH_FAILED", "AUTH failed")
    assert f'failed to auth against 127.0.0.1:{port} - Get "http://127.0.0.1:{port}/auth?' \
        in log.lines[0]
    await a.close()


async def test_request_timeout(server):
    async def slow(request):
        try:
            await asyncio.wait_for(server.release.wait(), 5)
        except asyncio.TimeoutError:
            pass
        return 200, json.dumps(ALLOW_ALL).encode()

    server.reply = slow
    log = FakeLog()
    a = Authorizer(make_opts(server.addr, http_client_request_timeout=200_000_000), log)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    await _perr(lambda: a.authenticate(make_client(), b"s"), "E_AUTH_FAILED", "AUTH failed")
    assert loop.time() - t0 < 2
    assert "deadline exceeded" in log.lines[0]
    await a.close()


async def test_invalid_address():
    a = Authorizer(make_opts("http://[::1"), FakeLog())
    await _perr(lambda: a.authenticate(make_client(), b"s"), "E_AUTH_FAILED", "AUTH failed")
    await a.close()


# -- several auth servers ----------------------------------------------------------------------------
async def test_multiple_addresses_fallback_and_random_start(server, server2):
    dead = f"127.0.0.1:{free_port()}"
    a = Authorizer(make_opts(dead, server.addr), FakeLog())
    for _ in range(10):
        await a.authenticate(make_client(), b"s")
    assert len(server.requests) == 10
    b = Authorizer(make_opts(server.addr, server2.addr), FakeLog())
    for _ in range(40):
        await b.authenticate(make_client(), b"s")
    assert len(server.requests) > 10 and len(server2.requests) > 0
    assert len(server.requests) - 10 + len(server2.requests) == 40
    await a.close()
    await b.close()


async def test_all_addresses_fail_error_accumulates(server, server2):
    server.reply = (500, b"one")
    server2.reply = (503, b"two")
    log = FakeLog()
    a = Authorizer(make_opts(server.addr, server2.addr), log)
    await _perr(lambda: a.authenticate(make_client(), b"s"), "E_AUTH_FAILED", "AUTH failed")
    line = log.lines[0]
    assert line.count("failed to auth against") == 2 and "; failed to auth against" in line
    assert '"one"' in line and '"two"' in line
    await a.close()


# -- TTL ----------------------------------------------------------------------------------------------
async def test_ttl_expiry_requery(server):
    clock = Clock()
    server.reply = dict(PERMS, ttl=10)
    a = Authorizer(make_opts(server.addr), FakeLog(), clock=clock)
    c = make_client()
    await a.authenticate(c, b"secret1")
    assert c.auth_state.expires == 1010.0
    clock.now = 1010.0                  # not yet: expired means Expires < now
    a.check(c, b"SUB", "foo", "c")
    await a.refresh_if_expired(c)
    assert len(server.requests) == 1
    clock.now = 1010.5
    with pytest.raises(NeedsRefresh):
        a.check(c, b"SUB", "foo", "c")
    with pytest.raises(NeedsRefresh):
        a.check(c, b"PUB", "foo", "")
    # unauthorized commands also wait for the refresh (the answer may change)
    with pytest.raises(NeedsRefresh):
        a.check(c, b"SUB", "nope", "c")
    a.check_before_body(c, b"MPUB", [b"foo"])         # deferred to the post-body check
    await a.refresh_if_expired(c)
    assert len(server.requests) == 2
    assert "secret=secret1" in server.requests[1].query_string
    assert c.auth_state.expires == 1020.5
    a.check(c, b"SUB", "foo", "c")
    await a.close()


async def test_ttl_requery_changes_permissions(server):
    clock = Clock()
    server.reply = dict(ALLOW_ALL, ttl=5)
    a = Authorizer(make_opts(server.addr), FakeLog(), clock=clock)
    c = make_client()
    await a.authenticate(c, b"s")
    a.check(c, b"SUB", "t", "c")
    server.reply = {"ttl": 5, "identity": "new-id", "identity_url": "",
                    "authorizations": [{"topic": "^other$", "channels": [".*"],
                                        "permissions": ["subscribe"]}]}
    clock.now += 6
    await a.refresh_if_expired(c)
    assert c.auth_identity == "new-id" and c.auth_identity_url == ""
    with pytest.raises(ProtocolError) as ei:
        a.check(c, b"SUB", "t", "c")
    assert ei.value.desc == 'AUTH failed for SUB on "t" "c"'
    # zero authorizations after a refresh: E_AUTH_FIRST like upstream (HasAuthorizations)
    server.reply = {"ttl": 5, "authorizations": []}
    clock.now += 6
    await a.refresh_if_expired(c)
    assert c.authed is False
    with pytest.raises(ProtocolError) as ei:
        a.check(c, b"SUB", "t", "c")
    assert ei.value.code == "E_AUTH_FIRST"
    await a.close()


async def test_ttl_requery_failure(server):
    clock = Clock()
    server.reply = dict(ALLOW_ALL, ttl=5)
    log = FakeLog()
    a = Authorizer(make_opts(server.addr), log, clock=clock)
    c = make_client()
    await a.authenticate(c, b"s")
    server.reply = (500, b"down")
    clock.now += 100
    await _perr(lambda: a.refresh_if_expired(c), "E_AUTH_FAILED", "AUTH failed")
    assert log.lines[0].startswith("PROTOCOL(V2): [127.0.0.1:40000] AUTH failed - failed to auth")
    await a.close()


# -- 403 → https retry (nsq http_api quirk) ------------------------------------------------------
async def test_403_retries_over_https(tmp_path, server):
    from tlsutil import make_test_ca
    ca = make_test_ca(tmp_path)
    sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    sctx.load_cert_chain(ca.server_cert, ca.server_key)
    https = await AuthServer(ssl_context=sctx).start()
    try:
        server.reply = (403, json.dumps({"message": "TLS_REQUIRED",
                                         "https_port": https.port}).encode())
        a = Authorizer(make_opts(server.addr, tls_root_ca_file=ca.ca_cert), FakeLog())
        await a.authenticate(make_client(), b"s")
        assert len(server.requests) == 1 and len(https.requests) == 1
        assert https.requests[0].query_string == server.requests[0].query_string
        await a.close()
        # without trusting the CA the https retry fails
        b = Authorizer(make_opts(server.addr), FakeLog())
        await _perr(lambda: b.authenticate(make_client(), b"s"), "E_AUTH_FAILED", "AUTH failed")
        await b.close()
    finally:
        await https.stop()


async def test_403_without_port_fails(server):
    server.reply = (403, b"forbidden")
    a = Authorizer(make_opts(server.addr), FakeLog())
    await _perr(lambda: a.authenticate(make_client(), b"s"), "E_AUTH_FAILED", "AUTH failed")
    assert len(server.requests) == 1
    await a.close()


# -- decoding like encoding/json ----------------------------------------------------------------------
def test_decode_case_insensitive_and_nulls():
    st = decode_auth_reply(b'{"TTL": 5, "Identity": null, "IDENTITY_URL": "u", "extra": [1], '
                           b'"Authorizations": [null, {"Topic": "t", "CHANNELS": null, '
                           b'"permissions": ["publish", null]}]}')
    assert st.ttl == 5 and st.identity == "" and st.identity_url == "u"
    assert len(st.authorizations) == 2
    assert st.authorizations[0].topic == "" and st.authorizations[0].permissions == []
    assert st.authorizations[1].channels == [] and st.authorizations[1].permissions == ["publish", ""]


def test_decode_duplicate_keys_last_wins():
    assert decode_auth_reply(b'{"ttl": 5, "ttl": 7}').ttl == 7


@pytest.mark.parametrize("body", [b'{"ttl": 9223372036854775808}', b'{"ttl": true}',
                                  b'{"ttl": 1.0}', b'{"ttl": Infinity}', b'{"ttl": 1} x',
                                  b'{"authorizations": [1]}', b'{"authorizations": "x"}',
                                  b'{"authorizations": [{"channels": "x"}]}',
                                  b'{"authorizations": [{"topic": 1}]}'])
def test_decode_errors(body):
    with pytest.raises(AuthQueryError):
        decode_auth_reply(body)


# -- Go regexp syntax ----------------------------------------------------------------------------------
@pytest.mark.parametrize("pattern,subject,match", [
    (".*", "", True), ("", "", True), ("^t$", "t", True), ("^t$", "tt", False),
    ("oo", "foo", True),                                  # unanchored
    ("a(?i)b|c", "C", True), ("a(?i)b|c", "aB", True), ("a(?i)b|c", "B", False),
    ("(?i)T[a-c]", "tB", True), ("(?i:x)y", "XY", False), ("(?i)[^a]", "A", False),
    ("[[:alpha:]]+$", "abc", True), ("^[[:digit:][:upper:]]+$", "A1", True),
    ("[^[:alpha:]]", "abc", False), ("[[:^alpha:]]", "a1", True),
    (r"^\pL+$", "abc", True), (r"^\p{Nd}$", "5", True), (r"^\PL$", "5", True),
    (r"^\p{Greek}$", "a", False), (r"\p{Latin}", "a", True),
    ("^a{,3}$", "a{,3}", True), ("^a{2}$", "aa", True), ("^a{2,}$", "aaa", True),
    (r"^\Qa.b\E$", "a.b", True), (r"^\Qa.b\E$", "axb", False), (r"^\Q[x]", "[x]", True),
    (r"x\z", "x", True), (r"^\101$", "A", True), (r"^\x41\x{42}$", "AB", True),
    (r"^\12$", "\n", True), (r"^\0$", "\x00", True),
    ("^[]a]+$", "]a", True), ("(?U)a+", "a", True), ("(?)a", "a", True),
    (r"^[\d-]+$", "1-2", True), (r"^\w+$", "a_1", True), (r"^\W$", "-", True),
    (r"\bfoo\b", "a.foo.b", True), (r"^\d+$", "12x", False),
    ("(?s).", "x", True), ("t#ephemeral$", "t#ephemeral", True),
    ("(?P<1a>x)(?P<n>y)", "xy", True), ("(?m)^b$", "b", True), ("a|", "", True),
    (r"^\.$", ".", True), (r"^\-\_$", "-_", True), ("x*?y+?", "y", True),
])
def test_go_regexp_matching(pattern, subject, match):
    assert bool(compile_go_regexp(pattern).search(subject)) is match


@pytest.mark.parametrize("pattern", [
    "(?=a)", "(?!a)", "(?<=a)", "(?<!a)", "(?>a)", "(?#c)", "(?P=n)", "(?<n>a)", "(?x)a",
    "(?a)a", r"a\1", r"\8", "a*+", "a++", "a?+", "a**", "a{2}{3}", "a{2}*", "(abc", "abc)",
    "[abc", r"\Z", "a{1001}", "a{3,2}", "[a-\\d]", "[z-a]", "*a", "+", r"\e", "(?-)",
    "(?i-)", r"\p{Foo1}", "[[:foo:]]", "\\", r"[\b]", r"\x4", r"\x{110000}", r"\xZZ",
    "(?P<a-b>x)", "(?P<a>x)(?P<a>y)", "(?i)*",
])
def test_go_regexp_rejects(pattern):
    with pytest.raises(GoRegexpError):
        compile_go_regexp(pattern)
