"""nsqadmin's HTTP client for nsqd / nsqlookupd / graphite / notifications
(Go ``internal/http_api.Client``: ``GETV1``/``POSTV1`` with the NSQ Accept header, a
``got response <status> "<body>"`` error for non-200 answers, and a retry over HTTPS
when an nsqd answers ``403 TLS_REQUIRED``).

aiohttp's client is imported on first use so the daemon starts quickly.
"""
from __future__ import annotations

import asyncio
import json
import socket
import ssl
from urllib.parse import urlsplit, urlunsplit

from .. import NSQ_VERSION
from ..protocol.goquote import go_quote

__all__ = ["UpstreamError", "Client", "ACCEPT"]

ACCEPT = "application/vnd.nsq; version=1.0"
USER_AGENT = f"nsqadmin/v{NSQ_VERSION}"


class UpstreamError(Exception):
    """One failed upstream request; ``str(e)`` is Go's error text."""


def _verb(method: str) -> str:
    return method[:1] + method[1:].lower()


class Client:
    def __init__(self, opts):
        self.opts = opts
        self._session = None
        self._ssl = None

    # -- setup ---------------------------------------------------------------------------------
    def _ssl_context(self):
        if self._ssl is None:
            o = self.opts
            ctx = ssl.create_default_context()
            if o.http_client_tls_root_ca_file:
                ctx.load_verify_locations(o.http_client_tls_root_ca_file)
            if o.http_client_tls_insecure_skip_verify:
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            if o.http_client_tls_cert and o.http_client_tls_key:
                ctx.load_cert_chain(o.http_client_tls_cert, o.http_client_tls_key)
            self._ssl = ctx
        return self._ssl

    def session(self):
        if self._session is None or self._session.closed:
            import aiohttp  # lazily: keep startup fast
            o = self.opts
            timeout = aiohttp.ClientTimeout(
                total=(o.http_client_connect_timeout + o.http_client_request_timeout) / 1e9,
                sock_connect=o.http_client_connect_timeout / 1e9)
            connector = aiohttp.TCPConnector(limit=64, ssl=self._ssl_context(),
                                             enable_cleanup_closed=True)
            self._session = aiohttp.ClientSession(timeout=timeout, connector=connector,
                                                  auto_decompress=True,
                                                  skip_auto_headers=("User-Agent",))
        return self._session

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    # -- requests ------------------------------------------------------------------------------
    async def request(self, method: str, url: str, *, data: bytes | None = None,
                      headers: dict | None = None, accept: bool = True):
        """(status, reason, headers, body); raises UpstreamError on transport failures."""
        import aiohttp
        hdrs = {"User-Agent": USER_AGENT}
        if accept:
            hdrs["Accept"] = ACCEPT
        if headers:
            hdrs.update(headers)
        from yarl import URL
        try:
            target = URL(url, encoded=True)
        except (ValueError, TypeError) as e:
            raise UpstreamError(f'parse {go_quote(url)}: {e}') from None
        try:
            async with self.session().request(method, target, data=data, headers=hdrs,
                                              allow_redirects=True) as resp:
                body = await resp.read()
                return resp.status, resp.reason or "", resp.headers, body
        except asyncio.TimeoutError:
            raise UpstreamError(f'{_verb(method)} {go_quote(url)}: '
                                f'net/http: timeout awaiting response headers') from None
        except aiohttp.ClientConnectorError as e:
            raise UpstreamError(f'{_verb(method)} {go_quote(url)}: '
                                f'{_dial_error(url, e)}') from None
        except (aiohttp.ClientError, OSError, ValueError) as e:
            raise UpstreamError(f'{_verb(method)} {go_quote(url)}: {_plain(e)}') from None

    async def _v1(self, method: str, endpoint: str):
        for _ in range(2):
            status, reason, _hdrs, body = await self.request(method, endpoint)
            if status == 200:
                return body
            if status == 403 and not endpoint.startswith("https"):
                endpoint = _https_endpoint(endpoint, body)
                continue
            raise UpstreamError(f"got response {status} {reason} {go_quote(body)}")
        raise UpstreamError(f"got response {status} {reason} {go_quote(body)}")

    async def get_v1(self, endpoint: str):
        """GET and decode the JSON answer (None for an empty body)."""
        body = await self._v1("GET", endpoint)
        try:
            return json.loads(body) if body else None
        except ValueError as e:
            raise UpstreamError(str(e)) from None

    async def post_v1(self, endpoint: str) -> None:
        await self._v1("POST", endpoint)


def _https_endpoint(endpoint: str, body: bytes) -> str:
    try:
        port = int(json.loads(body)["https_port"])
    except (ValueError, KeyError, TypeError):
        raise UpstreamError(f"got response 403 Forbidden {go_quote(body)}") from None
    u = urlsplit(endpoint)
    host = u.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    return urlunsplit(("https", f"{host}:{port}", u.path, u.query, u.fragment))


def _plain(e: BaseException) -> str:
    text = str(e) or e.__class__.__name__
    return text


def _dial_error(url: str, e) -> str:
    u = urlsplit(url)
    host = u.hostname or ""
    port = u.port or (443 if u.scheme == "https" else 80)
    addr = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    os_err = getattr(e, "os_error", None)
    errno = getattr(os_err, "errno", None)
    if isinstance(os_err, socket.gaierror) or errno in (socket.EAI_NONAME, -2, -3, -5):
        return f"dial tcp: lookup {host}: no such host"
    if errno == 111 or "refused" in str(e).lower():
        return f"dial tcp {addr}: connect: connection refused"
    if errno == 113:
        return f"dial tcp {addr}: connect: no route to host"
    if errno == 101:
        return f"dial tcp {addr}: connect: network is unreachable"
    if isinstance(os_err, (asyncio.TimeoutError, TimeoutError)):
        return f"dial tcp {addr}: i/o timeout"
    return f"dial tcp {addr}: {_plain(os_err or e)}"
