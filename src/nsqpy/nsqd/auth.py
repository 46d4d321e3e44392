"""Authorization of TCP clients against auth servers (tcp-protocol.md §6.2, §12).

Without ``--auth-http-address`` every command is allowed and AUTH answers
``E_AUTH_DISABLED``.  With it, AUTH queries the auth server(s) and caches the reply on
the client (``client.auth_state``) for its ``ttl``; SUB/PUB/MPUB/DPUB are checked
against the cached authorizations.

The connection runs commands synchronously, so the API is split:

* ``await authenticate(client, secret)`` — the AUTH command; returns the response body.
* ``check(client, name, topic, channel)`` — synchronous, cached data only.  Raises
  ``E_AUTH_FIRST`` / ``E_UNAUTHORIZED`` (:class:`ProtocolError`) or
  :class:`NeedsRefresh` when the cache expired: the caller pauses reading,
  ``await refresh_if_expired(client)`` (which raises ``E_AUTH_FAILED`` when the
  re-query fails) and runs the command again.
* ``check_before_body(client, name, params_or_topic)`` — MPUB's check before its body
  is read (nsqd checks MPUB auth before reading the body).  It never raises
  NeedsRefresh: with an expired cache it defers to the ``check`` after the body.

Auth server exchange (v1.3.0 ``internal/auth``): start at a random address and try the
others in order; ``://`` in the address → used as the URL, else
``http://<addr>/auth``; GET with the query ``common_name, remote_ip, secret, tls``
(sorted, ``url.Values.Encode`` escaping) and ``Accept: application/vnd.nsq;
version=1.0``; non-200 fails (a 403 over plain http retries over https at the
``https_port`` of the JSON body, like nsq's http_api client).  The reply is decoded
like Go's ``encoding/json`` into nsq's struct (case-insensitive keys, integers only
for ``ttl``, nulls ignored); an unknown permission, a regexp Go's RE2 would reject or
``ttl <= 0`` fails.  ``auth_http_request_method = "post"`` (post-1.3.0 flag) POSTs the
same values to the bare endpoint as the JSON encoding of Go's ``url.Values``
(``{"common_name":[""],...}``, ``Content-Type: application/json``), which is what
upstream's ``POSTV1`` sends.

Authorization regexps are Go RE2 syntax; :func:`compile_go_regexp` translates them to
Python ``re`` (rejecting Perl-only syntax RE2 refuses: lookaround, backreferences,
possessive/atomic groups, ``\\Z``; handling RE2-only syntax: ``\\z``, ``\\Q..\\E``,
POSIX classes, ``\\pX``, octal escapes, mid-pattern flags, literal ``{``).  The
subjects are validated topic/channel names (ASCII), which the translation relies on.
"""
from __future__ import annotations

import json
import random
import time
from urllib.parse import quote_plus, urlsplit, urlunsplit

from ..gostrconv import go_json_string
from ..goregexp import GoRegexpError, compile_go_regexp  # noqa: F401 (re-exported)
from ..protocol.errors import ProtocolError
from ..protocol.goquote import go_quote

__all__ = [
    "Authorizer", "AuthState", "Authorization", "NeedsRefresh", "AuthQueryError",
    "GoRegexpError", "compile_go_regexp", "decode_auth_reply", "ACCEPT_V1",
]

ACCEPT_V1 = "application/vnd.nsq; version=1.0"
_GO_USER_AGENT = "Go-http-client/1.1"


from .noauth import NeedsRefresh  # noqa: E402,F401 (raised here, caught by the protocol)


class AuthQueryError(Exception):
    """Querying or validating the auth server's reply failed (text is only logged)."""


# ------------------------------------------------------------------------------------------------
# Go RE2 syntax -> Python re (ASCII subjects)
# ------------------------------------------------------------------------------------------------
# ------------------------------------------------------------------------------------------------
# auth state
# ------------------------------------------------------------------------------------------------
class Authorization:
    __slots__ = ("topic", "channels", "permissions", "_topic_re", "_channel_res")

    def __init__(self, topic: str = "", channels=None, permissions=None) -> None:
        self.topic = topic
        self.channels = list(channels or [])
        self.permissions = list(permissions or [])
        self._topic_re = None
        self._channel_res = None

    def validate(self) -> None:
        """nsq's checks, in its order; raises AuthQueryError."""
        for perm in self.permissions:
            if perm not in ("subscribe", "publish"):
                raise AuthQueryError(f"unknown permission {perm}")
        try:
            self._topic_re = compile_go_regexp(self.topic)
        except GoRegexpError as e:
            raise AuthQueryError(f"unable to compile topic {go_quote(self.topic)} {e}") from None
        res = []
        for ch in self.channels:
            try:
                res.append(compile_go_regexp(ch))
            except GoRegexpError as e:
                raise AuthQueryError(f"unable to compile channel {go_quote(ch)} {e}") from None
        self._channel_res = res

    def has_permission(self, permission: str) -> bool:
        return permission in self.permissions

    def is_allowed(self, topic: str, channel: str) -> bool:
        if not self.has_permission("subscribe" if channel != "" else "publish"):
            return False
        if self._topic_re is None:
            self.validate()
        if self._topic_re.search(topic) is None:
            return False
        return any(r.search(channel) is not None for r in self._channel_res)

    def __repr__(self) -> str:
        return (f"Authorization(topic={self.topic!r}, channels={self.channels!r}, "
                f"permissions={self.permissions!r})")


class AuthState:
    """One auth server reply, cached on the client (``client.auth_state``)."""

    __slots__ = ("secret", "ttl", "identity", "identity_url", "authorizations", "expires")

    def __init__(self, secret: bytes = b"", ttl: int = 0, identity: str = "",
                 identity_url: str = "", authorizations=None, expires: float = 0.0) -> None:
        self.secret = secret
        self.ttl = ttl
        self.identity = identity
        self.identity_url = identity_url
        self.authorizations = list(authorizations or [])
        self.expires = expires

    def is_expired(self, now: float) -> bool:
        return self.expires < now

    def is_allowed(self, topic: str, channel: str) -> bool:
        return any(a.is_allowed(topic, channel) for a in self.authorizations)

    def response_body(self) -> bytes:
        """The AUTH response: Go's json.Marshal of identity / identity_url / count."""
        return ('{"identity":' + go_json_string(self.identity)
                + ',"identity_url":' + go_json_string(self.identity_url)
                + ',"permission_count":' + str(len(self.authorizations)) + "}").encode("utf-8")


# ------------------------------------------------------------------------------------------------
# decoding the reply like Go's encoding/json into nsq's State struct
# ------------------------------------------------------------------------------------------------
class _JSONFloat(str):
    """A JSON number with a fraction/exponent (Go refuses it for an int field)."""


def _reject_constant(name: str):
    raise ValueError(f"invalid character '{name[0]}' looking for beginning of value")


_MAX_INT = (1 << 63) - 1


def _fold(key: str) -> str:
    return key.casefold()


def _go_string(value, field: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or isinstance(value, _JSONFloat):
        raise AuthQueryError(f"json: cannot unmarshal {_json_kind(value)} into Go struct field "
                             f"{field} of type string")
    return value


def _go_string_list(value, field: str) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        raise AuthQueryError(f"json: cannot unmarshal {_json_kind(value)} into Go struct field "
                             f"{field} of type []string")
    return [_go_string(v, field) for v in value]


def _json_kind(value) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float, _JSONFloat)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list) and not isinstance(value, _Object):
        return "array"
    return "object"


def _decode_authorization(value) -> Authorization:
    a = Authorization()
    if value is None:
        return a
    for key, v in value:
        k = _fold(key)
        if k == "topic":
            a.topic = _go_string(v, "Authorization.authorizations.topic")
        elif k == "channels":
            a.channels = _go_string_list(v, "Authorization.authorizations.channels")
        elif k == "permissions":
            a.permissions = _go_string_list(v, "Authorization.authorizations.permissions")
    return a


def _is_object(value) -> bool:
    return isinstance(value, _Object)


class _Object(list):
    """A JSON object as its (key, value) pairs."""


def decode_auth_reply(body: bytes, secret: bytes = b"") -> AuthState:
    """Decode (not yet validate) an auth server reply like Go's ``json.Unmarshal`` into
    ``auth.State``.  Raises :class:`AuthQueryError`."""
    try:
        text = body.decode("utf-8", "replace")
        doc = json.loads(text, object_pairs_hook=_Object, parse_float=_JSONFloat,
                         parse_constant=_reject_constant)
    except (ValueError, RecursionError) as e:
        raise AuthQueryError(str(e)) from None
    state = AuthState(secret=secret)
    if doc is None:
        return state
    if not _is_object(doc):
        raise AuthQueryError(f"json: cannot unmarshal {_json_kind(doc)} into Go value of type auth.State")
    for key, v in doc:
        k = _fold(key)
        if k == "ttl":
            if v is None:
                continue
            if isinstance(v, bool) or not isinstance(v, int) or isinstance(v, _JSONFloat):
                kind = "number " + v if isinstance(v, _JSONFloat) else _json_kind(v)
                raise AuthQueryError(f"json: cannot unmarshal {kind} into Go struct field "
                                     "State.ttl of type int")
            if not -_MAX_INT - 1 <= v <= _MAX_INT:
                raise AuthQueryError(f"json: cannot unmarshal number {v} into Go struct field "
                                     "State.ttl of type int")
            state.ttl = v
        elif k == "identity":
            state.identity = _go_string(v, "State.identity")
        elif k == "identity_url":
            state.identity_url = _go_string(v, "State.identity_url")
        elif k == "authorizations":
            if v is None:
                state.authorizations = []
            elif isinstance(v, list) and not _is_object(v):
                items = []
                for item in v:
                    if item is not None and not _is_object(item):
                        raise AuthQueryError(
                            f"json: cannot unmarshal {_json_kind(item)} into Go struct field "
                            "State.authorizations of type auth.Authorization")
                    items.append(_decode_authorization(item))
                state.authorizations = items
            else:
                raise AuthQueryError(f"json: cannot unmarshal {_json_kind(v)} into Go struct "
                                     "field State.authorizations of type []auth.Authorization")
    return state


def _validate(state: AuthState) -> None:
    for a in state.authorizations:
        a.validate()
    if state.ttl <= 0:
        raise AuthQueryError(f"invalid TTL {state.ttl} (must be >0)")


# ------------------------------------------------------------------------------------------------
# the authorizer
# ------------------------------------------------------------------------------------------------
def _query_values(remote_ip: str, tls: bool, common_name: str, secret: bytes) -> list:
    # url.Values.Encode: sorted by key
    return [("common_name", common_name.encode("utf-8", "surrogateescape")),
            ("remote_ip", remote_ip.encode("utf-8", "surrogateescape")),
            ("secret", bytes(secret)),
            ("tls", b"true" if tls else b"false")]


def encode_query(values: list) -> str:
    """Go's ``url.Values.Encode`` (QueryEscape: space → ``+``, unreserved kept)."""
    return "&".join(f"{k}={quote_plus(v, safe='')}" for k, v in values)


def _post_body(values: list) -> bytes:
    """``json.Marshal(url.Values)``: keys sorted, each value a one-element list."""
    parts = []
    for k, v in values:
        s = v.decode("utf-8", "replace")
        parts.append(f"{go_json_string(k)}:[{go_json_string(s)}]")
    return ("{" + ",".join(parts) + "}").encode("utf-8")


def _https_endpoint(endpoint: str, body: bytes) -> str:
    """nsq http_api ``httpsEndpoint``: same URL, scheme https, port from the 403 body."""
    try:
        doc = json.loads(body.decode("utf-8", "replace"), parse_float=_JSONFloat,
                         parse_constant=_reject_constant)
    except ValueError as e:
        raise AuthQueryError(str(e)) from None
    port = 0
    if isinstance(doc, dict):
        v = doc.get("https_port")
        if v is not None:
            if isinstance(v, bool) or not isinstance(v, int):
                raise AuthQueryError("json: cannot unmarshal into Go struct field .https_port of type int")
            port = v
    parts = urlsplit(endpoint)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    return urlunsplit(("https", f"{host}:{port}", parts.path, parts.query, parts.fragment))


def _client_label(client) -> str:
    addr = getattr(client, "remote_address", None)
    if addr:
        return addr
    return getattr(client, "remote_ip", "") or ""


class Authorizer:
    """Per-daemon auth-server client; state per connection lives on the client."""

    def __init__(self, opts, log, clock=time.monotonic):
        self.opts = opts
        self.addresses = list(getattr(opts, "auth_http_addresses", None) or [])
        self.log = log
        self.clock = clock
        self.method = (getattr(opts, "auth_http_request_method", "get") or "get").lower()
        self.connect_timeout = (getattr(opts, "http_client_connect_timeout", 2_000_000_000)
                                or 0) / 1e9
        self.request_timeout = (getattr(opts, "http_client_request_timeout", 5_000_000_000)
                                or 0) / 1e9
        self._session = None
        self._rand = random.Random()

    @property
    def enabled(self) -> bool:
        return bool(self.addresses)

    # -- commands ---------------------------------------------------------------------------------
    async def authenticate(self, client, secret: bytes) -> bytes:
        """The AUTH command after its body was read.  Sets ``client.auth_state``,
        ``authed``, ``auth_identity``, ``auth_identity_url``; returns the response body."""
        state = getattr(client, "auth_state", None)
        if state is not None and state.authorizations:
            raise ProtocolError("E_INVALID", "AUTH already set")
        if not self.enabled:
            raise ProtocolError("E_AUTH_DISABLED", "AUTH disabled")
        try:
            new = await self.query_any(client, bytes(secret))
        except AuthQueryError as e:
            self.log.warn(f"PROTOCOL(V2): [{_client_label(client)}] AUTH failed {e}")
            raise ProtocolError("E_AUTH_FAILED", "AUTH failed") from None
        self._apply(client, new)
        if not new.authorizations:
            raise ProtocolError("E_UNAUTHORIZED", "AUTH no authorizations found")
        return new.response_body()

    async def refresh_if_expired(self, client) -> None:
        """Re-query the auth server with the client's secret if its cache expired;
        ``E_AUTH_FAILED`` (fatal) when that fails."""
        state = getattr(client, "auth_state", None)
        if state is None or not state.is_expired(self.clock()):
            return
        try:
            new = await self.query_any(client, state.secret)
        except AuthQueryError as e:
            self.log.warn(f"PROTOCOL(V2): [{_client_label(client)}] AUTH failed - {e}")
            raise ProtocolError("E_AUTH_FAILED", "AUTH failed") from None
        self._apply(client, new)

    def check(self, client, name: bytes, topic: str, channel: str) -> None:
        """nsqd's CheckAuth for SUB (channel set) and PUB/MPUB/DPUB (channel "")."""
        if not self.addresses:
            return
        cmd = name.decode("latin-1") if isinstance(name, (bytes, bytearray)) else str(name)
        state = getattr(client, "auth_state", None)
        if state is None or not state.authorizations:
            raise ProtocolError("E_AUTH_FIRST", f"AUTH required before {cmd}")
        if state.is_expired(self.clock()):
            raise NeedsRefresh()
        if not state.is_allowed(topic, channel):
            raise ProtocolError("E_UNAUTHORIZED",
                                f"AUTH failed for {cmd} on {go_quote(topic)} {go_quote(channel)}")

    def check_before_body(self, client, name: bytes, params) -> None:
        """MPUB's check before its body is read.  ``params`` is the topic name (str) or
        the command's parameters after the name (``[topic, ...]``, bytes)."""
        if not self.addresses:
            return
        if isinstance(params, str):
            topic = params
        elif params:
            t = params[0]
            topic = t.decode("utf-8", "surrogateescape") if isinstance(t, (bytes, bytearray)) else str(t)
        else:
            topic = ""
        try:
            self.check(client, name, topic, "")
        except NeedsRefresh:
            pass        # re-checked (and refreshed) once the body has been read

    # -- queries ----------------------------------------------------------------------------------
    def _apply(self, client, state: AuthState) -> None:
        client.auth_state = state
        client.authed = bool(state.authorizations)
        client.auth_identity = state.identity
        client.auth_identity_url = state.identity_url

    async def query_any(self, client, secret: bytes) -> AuthState:
        """QueryAnyAuthd: random start, every address once; the accumulated error."""
        remote_ip = getattr(client, "remote_ip", "") or ""
        tls = bool(getattr(client, "tls", False))
        common_name = (getattr(client, "tls_common_name", "") or "") if tls else ""
        values = _query_values(remote_ip, tls, common_name, secret)
        n = len(self.addresses)
        start = self._rand.randrange(n) if n else 0
        errors = None
        for k in range(n):
            addr = self.addresses[(start + k) % n]
            try:
                state = await self.query_one(addr, values, secret)
            except AuthQueryError as e:
                msg = f"failed to auth against {addr} - {e}"
                errors = msg if errors is None else f"{errors}; {msg}"
                continue
            return state
        raise AuthQueryError(errors or "no auth server configured")

    async def query_one(self, addr: str, values: list, secret: bytes) -> AuthState:
        import aiohttp
        from yarl import URL
        endpoint = addr if "://" in addr else f"http://{addr}/auth"
        headers = {"Accept": ACCEPT_V1, "User-Agent": _GO_USER_AGENT,
                   "Accept-Encoding": "gzip"}
        if self.method == "post":
            method, url, data = "POST", endpoint, _post_body(values)
            headers["Content-Type"] = "application/json"
        else:
            method, url, data = "GET", f"{endpoint}?{encode_query(values)}", None
        session = self._get_session()
        for _ in range(2):
            label = "Get" if method == "GET" else "Post"
            try:
                async with session.request(method, URL(url, encoded=True), data=data,
                                           headers=headers) as resp:
                    body = await resp.read()
                    status, reason = resp.status, resp.reason or ""
            except aiohttp.ClientError as e:
                raise AuthQueryError(f'{label} "{url}": {e or type(e).__name__}') from None
            except TimeoutError:
                raise AuthQueryError(f'{label} "{url}": context deadline exceeded '
                                     "(Client.Timeout exceeded while awaiting headers)") from None
            except (OSError, ValueError) as e:
                raise AuthQueryError(f'{label} "{url}": {e}') from None
            if status == 200:
                break
            if status == 403 and not url.startswith("https"):
                url = _https_endpoint(url, body)
                continue
            raise AuthQueryError(f"got response {status} {reason} "
                                 f"{go_quote(body)}")
        else:               # pragma: no cover - the https retry is never retried again
            raise AuthQueryError(f"got response {status} {reason} {go_quote(body)}")
        state = decode_auth_reply(body, secret)
        _validate(state)
        state.expires = self.clock() + state.ttl
        return state

    def _get_session(self):
        import aiohttp
        if self._session is None or self._session.closed:
            from .tls import build_client_ssl_context
            try:
                ssl_ctx = build_client_ssl_context(self.opts)
            except (ValueError, OSError) as e:
                raise AuthQueryError(f"failed to build client TLS config - {e}") from None
            except AttributeError:
                ssl_ctx = None
            timeout = aiohttp.ClientTimeout(total=self.request_timeout or None,
                                            sock_connect=self.connect_timeout or None)
            connector = aiohttp.TCPConnector(ssl=ssl_ctx if ssl_ctx is not None else True,
                                             force_close=True)
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=timeout, trust_env=False,
                cookie_jar=aiohttp.DummyCookieJar(), auto_decompress=True)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()
