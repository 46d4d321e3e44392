"""julienschmidt/httprouter as NSQ configures it, dispatching requests from :mod:`.server`.

* exact routes, plus routes with ``:name`` segments (``/config/:opt``);
* a miss with a route at the other trailing-slash form, or at the case-insensitive /
  cleaned path, redirects there: 301 for GET (with Go's ``<a href=…>Moved
  Permanently</a>.`` body), 307 otherwise;
* ``OPTIONS`` is answered ``200`` with ``Allow``; a path served for other methods gets
  ``405 METHOD_NOT_ALLOWED`` with ``Allow`` (sorted, ``OPTIONS`` included); else ``404
  NOT_FOUND`` (both logged);
* handlers are wrapped like ``http_api.V1`` (:data:`V1`), ``http_api.PlainText``
  (:data:`PLAIN`; a returned :class:`Resp` is sent as is) or return their own response
  (:data:`RAW`); an :class:`Err` becomes the error response (plain text on PLAIN routes,
  else V1 JSON), any other exception a logged panic answered ``500 INTERNAL_ERROR``;
* ``logged`` routes get ``http_api.Log``'s line: ``<status> <method> <uri> (<remote>)
  <duration>`` at INFO.
"""
from __future__ import annotations

import re
import time
from .pct import quote as _urlquote
from .pct import unquote_to_bytes

from ..gotime import format_duration
from .request import remote_addr
from .responses import HTML_CT, Err, Resp, plain, v1_err, v1_ok

__all__ = ["PLAIN", "RAW", "V1", "Router", "clean_path"]

V1, PLAIN, RAW = 0, 1, 2
"""How a route's result becomes the response: RespondV1, PlainText, or as returned."""

_perf_ns = time.perf_counter_ns
_ABS_URI_RE = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://[^/?#]*")


def clean_path(p: str) -> str:
    """httprouter's CleanPath."""
    if not p:
        return "/"
    if p[0] != "/":
        p = "/" + p
    trailing = len(p) > 1 and (p.endswith("/") or p.endswith("/.") or p.endswith("/.."))
    parts = []
    for seg in p.split("/"):
        if seg == "" or seg == ".":
            continue
        if seg == "..":
            if parts:
                parts.pop()
            continue
        parts.append(seg)
    out = "/" + "/".join(parts)
    if trailing and out != "/":
        out += "/"
    return out


_SAFE = "/:@!$&'()*+,;=-._~"
_SAFE_GO = "/:@$&+,;=-._~"  # Go's escape(path, encodePath): ``!'()*`` escaped too


def _escape_path(p: str, safe: str = _SAFE) -> str:
    return _urlquote(p.encode("utf-8", "surrogateescape"), safe=safe)


def _origin_form(raw: str) -> str:
    """The path of an absolute-form request target (``http://host/path?q``)."""
    if raw == "*":
        return raw
    m = _ABS_URI_RE.match(raw)
    if m:
        rest = raw[m.end():]
        return rest if rest.startswith("/") else "/" + rest
    return raw


class _ParamRoute:
    """A pattern with ``:name`` segments, each matching one non-empty segment."""
    __slots__ = ("methods", "names", "segs")

    def __init__(self, pattern: str):
        self.segs = pattern.split("/")
        self.names = [(i, s[1:]) for i, s in enumerate(self.segs) if s.startswith(":")]
        self.methods: dict = {}

    def match(self, path: str, fold: bool = False):
        """The params dict (``fold``: the case-fixed path) or None."""
        segs = path.split("/")
        if len(segs) != len(self.segs):
            return None
        out = []
        for want, got in zip(self.segs, segs):
            if want.startswith(":"):
                if not got:
                    return None
                out.append(got)
            elif want == got or (fold and want.lower() == got.lower()):
                out.append(want)
            else:
                return None
        if fold:
            return "/".join(out)
        return {name: out[i] for i, name in self.names}


class Router:
    """Routes and the server's request handler (:meth:`handle`).

    ``log``: the daemon's logger (``.info``/``.error``). ``no_peer``: the remote address
    logged for a connection without one (``"@"`` where unix sockets are served).
    ``close_unread_body``: close the connection, as Go does, when a handler leaves a large
    (> 256 KiB), unsized or never-continued body unread, instead of draining it.
    ``escape_sub_delims``: percent-escape ``!'()*`` in redirect ``Location``s too, as Go's
    ``URL.EscapedPath`` does (nsqadmin).
    """

    def __init__(self, log, *, no_peer: str = "", close_unread_body: bool = True,
                 escape_sub_delims: bool = False):
        self.log = log
        self.no_peer = no_peer
        self.close_unread_body = close_unread_body
        self._redirect_safe = _SAFE_GO if escape_sub_delims else _SAFE
        self.routes: dict = {}        # path -> {method: (handler, kind, logged)}
        self.param_routes: list = []  # [_ParamRoute]
        self.tree_methods: list = []
        self._lower: dict = {}

    def add(self, method: str, path: str, handler, kind: int = V1, logged: bool = True,
            sync=None):
        """Route ``method path`` to ``await handler(request, query)`` — with a third
        argument, the dict of ``:name`` values, when ``path`` has ``:name`` segments.
        ``query`` is the raw query string (see :func:`.request.parse_query`). ``sync``: a
        plain function tried first by :meth:`handle_sync` (same arguments and result;
        ``NotImplemented`` when it cannot answer without awaiting)."""
        entry = (handler, kind, logged, sync)
        if ":" in path:
            for r in self.param_routes:
                if r.segs == path.split("/"):
                    break
            else:
                r = _ParamRoute(path)
                self.param_routes.append(r)
            r.methods[method] = entry
        else:
            self.routes.setdefault(path, {})[method] = entry
            self._lower[path.lower()] = path
        methods = {m for r in self.routes.values() for m in r}
        methods.update(m for r in self.param_routes for m in r.methods)
        self.tree_methods = sorted(methods)

    # -- matching ---------------------------------------------------------------------------
    def _lookup(self, method: str, path: str):
        """(entry, params) — params None for an exact route; (None, None) on a miss."""
        r = self.routes.get(path)
        if r is not None:
            return r.get(method), None
        for pr in self.param_routes:
            e = pr.methods.get(method)
            if e is not None:
                params = pr.match(path)
                if params is not None:
                    return e, params
        return None, None

    def _has_route(self, method: str, path: str) -> bool:
        return self._lookup(method, path)[0] is not None

    def _ci_fix(self, method: str, path: str):
        """findCaseInsensitivePath with trailing-slash fixing."""
        candidates = [path]
        if len(path) > 1:
            candidates.append(path[:-1] if path.endswith("/") else path + "/")
        for cand in candidates:
            real = self._lower.get(cand.lower())
            if real is not None and method in self.routes[real]:
                return real
            for pr in self.param_routes:
                if method in pr.methods:
                    fixed = pr.match(cand, fold=True)
                    if fixed is not None:
                        return fixed
        return None

    def _allowed(self, path: str, req_method: str) -> str:
        if path == "*":
            methods = list(self.tree_methods)
        else:
            methods = [m for m in self.tree_methods
                       if m != req_method and m != "OPTIONS" and self._has_route(m, path)]
        if not methods:
            return ""
        methods.append("OPTIONS")
        return ", ".join(sorted(methods))

    # -- serving ------------------------------------------------------------------------------
    async def handle(self, request):
        """The handler for :func:`.server.serve`."""
        raw = request.raw_path
        if raw[:1] != "/":
            raw = _origin_form(raw)
        path, sep, query = raw.partition("?")
        if "#" in query:
            query = query.partition("#")[0]
        if "%" in path:
            path = unquote_to_bytes(path).decode("utf-8", "surrogateescape")
        method = request.method
        r = self.routes.get(path)
        if r is not None:
            entry = r.get(method)
            params = None
        else:
            entry, params = self._lookup(method, path)
        if entry is None:
            return self._fallback(request, method, path, query, sep, raw)
        # the dispatch, inlined (one coroutine less per request)
        fn, kind, logged, _ = entry
        start = _perf_ns() if logged else 0
        try:
            if params is None:
                result = await fn(request, query)
            else:
                result = await fn(request, query, params)
        except Exception as e:  # noqa: BLE001 - Err, or a handler panic
            return self._answer(request, raw, kind, logged, start, None, e)
        return self._answer(request, raw, kind, logged, start, result, None)

    def handle_sync(self, request):
        """The response of an exact route's ``sync`` function, or None (then
        :meth:`handle` serves the request). For :func:`.server.serve`'s ``sync_handler``."""
        raw = request.raw_path
        if raw[:1] != "/":
            return None
        path, sep, query = raw.partition("?")
        if "%" in path or "#" in query:
            return None
        r = self.routes.get(path)
        if r is None:
            return None
        entry = r.get(request.method)
        if entry is None:
            return None
        _, kind, logged, fn = entry
        if fn is None:
            return None
        start = _perf_ns() if logged else 0
        try:
            result = fn(request, query)
            if result is NotImplemented:
                return None
        except Exception as e:  # noqa: BLE001 - Err, or a handler panic
            return self._answer(request, raw, kind, logged, start, None, e)
        return self._answer(request, raw, kind, logged, start, result, None)

    def _answer(self, request, raw, kind, logged, start, result, err):
        """The response for a handler's result, or for its exception ``err`` (``Err``: its
        answer; anything else: ``panic in HTTP handler`` and 500), logged like Go's
        ``http_api.Log`` for logged routes."""
        status = 200
        if err is None:
            if kind == V1:
                resp = v1_ok(result)
            elif kind == PLAIN:
                # a PLAIN handler may build its own 200 (a static file) and still have
                # its Err answered as plain text
                resp = result if isinstance(result, Resp) else plain(200, result)
            else:
                resp = result
        elif isinstance(err, Err):
            status = err.code
            resp = plain(err.code, err.text) if kind == PLAIN else v1_err(err.code, err.text)
        else:
            self.log.error(f"panic in HTTP handler - {err!r}")
            status = 500
            resp = v1_err(500, "INTERNAL_ERROR")
        if logged:
            self.log_request(request, raw, status, start)
        if self.close_unread_body and not request.content.at_eof():
            _maybe_close(request, resp)
        return resp

    def _fallback(self, request, method, path, query, sep, raw):
        start = _perf_ns()
        if method in self.tree_methods and path != "/":
            target = None
            if len(path) > 1:
                alt = path[:-1] if path.endswith("/") else path + "/"
                if self._has_route(method, alt):
                    target = alt
            if target is None:
                target = self._ci_fix(method, clean_path(path))
            if target is not None:
                return _redirect(method, target, query, sep, self._redirect_safe)
        if method == "OPTIONS":
            allow = self._allowed(path, "OPTIONS")
            if allow:
                return Resp(status=200, body=b"", headers={"Allow": allow})
        else:
            allow = self._allowed(path, method)
            if allow:
                resp = v1_err(405, "METHOD_NOT_ALLOWED")
                resp.headers["Allow"] = allow
                self.log_request(request, raw, 405, start)
                return resp
        resp = v1_err(404, "NOT_FOUND")
        self.log_request(request, raw, 404, start)
        return resp

    def log_request(self, request, raw: str, status: int, start: int) -> None:
        """http_api.Log's line for a request that began at ``start`` (perf_counter_ns)."""
        self.log.info(f"{status} {request.method} {raw} "
                      f"({remote_addr(request, self.no_peer)}) "
                      f"{format_duration(_perf_ns() - start)}")


def _redirect(method, target, query, sep, safe=_SAFE):
    code = 301 if method == "GET" else 307
    url = _escape_path(target, safe)
    if query or sep:
        url += "?" + query
    headers = {"Location": url}
    body = b""
    if method == "GET":
        headers["Content-Type"] = HTML_CT
        import html     # (redirects only)
        body = (f'<a href="{html.escape(url, quote=True).replace("&#x27;", "&#39;")}">'
                f'Moved Permanently</a>.\n\n').encode()
    return Resp(status=code, body=body, headers=headers)


def _maybe_close(request, resp) -> None:
    """Go closes the connection rather than drain a big or never-sent body."""
    close = False
    if not request.continued:
        expect = request.headers.get("Expect")
        if expect is not None and expect.lower() == "100-continue":
            close = True
    if not close:
        cl = request.content_length
        close = cl is None or cl > 256 << 10
    if close:
        resp.force_close()
