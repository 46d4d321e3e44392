"""nsqd HTTP(S) API (spec nsqd-http.md) on aiohttp's low-level server.

The router reproduces julienschmidt/httprouter as nsqd configures it: exact routes, a
``/config/:opt`` parameter route, trailing-slash and case/clean-path redirects (301 for
GET, 307 otherwise), ``OPTIONS`` answered with ``Allow``, 405 ``METHOD_NOT_ALLOWED`` with
``Allow``, 404 ``NOT_FOUND``.  Handlers are wrapped like nsqd's ``http_api.V1`` (JSON or
raw-text bodies, ``X-Nsq-Content-Type``) or ``http_api.PlainText``, and logged like
``http_api.Log`` (all but /pub, /mpub and pprof).
"""
from __future__ import annotations

import asyncio
import gc
import html
import io
import logging
import re
import struct
import sys
import threading
import time
import traceback
from urllib.parse import quote as _urlquote, unquote_to_bytes

from aiohttp import web
from aiohttp.http import HttpVersion11
from aiohttp.web_server import Server

from .. import NSQ_VERSION
from ..engine.backend import BackendError
from ..engine.topic import TopicError
from ..protocol.names import is_valid_channel_name, is_valid_topic_name
from . import memstats
from ..gotime import format_duration as go_duration
from .stats import go_json, render_text, collect
from .statsd import statsd_prefix

try:
    from ..protocol.goquote import go_quote
except ImportError:  # pragma: no cover
    def go_quote(s):
        return '"' + str(s).replace("\\", "\\\\").replace('"', '\\"') + '"'

__all__ = ["start_http_server", "HTTPServerHandle"]

_perf_ns = time.perf_counter_ns

NSQ_CT_HEADER = "X-Nsq-Content-Type"
NSQ_CT_VALUE = "nsq; version=1.0"
JSON_CT = "application/json; charset=utf-8"
TEXT_CT = "text/plain; charset=utf-8"
HTML_CT = "text/html; charset=utf-8"

_BOOL_PARAMS = {"true": True, "1": True, "false": False, "0": False}
_INT64_MIN = -(1 << 63)
_INT64_MAX = (1 << 63) - 1
_INT_RE = re.compile(r"[+-]?[0-9]+")
_BAD_PCT_RE = re.compile(r"%(?![0-9a-fA-F]{2})")
_MPUB_HDR = struct.Struct(">i")

# aiohttp's own diagnostics (malformed requests etc.) must not leak onto nsqd's stderr.
_quiet_logger = logging.getLogger("nsqpy.nsqd.http.aiohttp")
_quiet_logger.addHandler(logging.NullHandler())
_quiet_logger.propagate = False


class Err(Exception):
    """An API error: HTTP status code and message text (http_api.Err)."""

    def __init__(self, code: int, text: str):
        super().__init__(text)
        self.code = code
        self.text = text


class _Resp(web.Response):
    """A Response without aiohttp's ``Server`` header (Go sends none)."""

    async def _write_headers(self) -> None:
        self._headers.popall("Server", None)
        await super()._write_headers()


# -- query strings (Go's url.ParseQuery) -------------------------------------------------------
def _unescape(s: str) -> str:
    if "%" not in s and "+" not in s:
        return s
    s = s.replace("+", " ")
    if "%" in s:
        if _BAD_PCT_RE.search(s):
            raise ValueError("invalid URL escape")
        return unquote_to_bytes(s).decode("utf-8", "surrogateescape")
    return s


_QUERY_CACHE: dict = {}


def parse_query_cached(q: str) -> dict:
    """parse_query(q) for handlers that only read the result (publishers repeat queries)."""
    d = _QUERY_CACHE.get(q)
    if d is None:
        d = parse_query(q)
        if len(_QUERY_CACHE) >= 1024:
            _QUERY_CACHE.clear()
        _QUERY_CACHE[q] = d
    return d


def parse_query(q: str, strict: bool = True) -> dict:
    """First value of each key. ``strict``: raise ValueError where Go's ParseQuery returns an
    error (bad escape, ``;`` separator); otherwise skip the bad pairs like Go's Form."""
    out = {}
    if not q:
        return out
    for part in q.split("&"):
        if not part:
            continue
        if ";" in part:
            if strict:
                raise ValueError("invalid semicolon separator in query")
            continue
        k, _, v = part.partition("=")
        try:
            k = _unescape(k)
            v = _unescape(v)
        except ValueError:
            if strict:
                raise
            continue
        if k not in out:
            out[k] = v
    return out


def _parse_int64(s: str):
    """strconv.ParseInt(s, 10, 64): None on syntax error, 'range' when out of range."""
    if not _INT_RE.fullmatch(s):
        return None
    v = int(s)
    if v < _INT64_MIN or v > _INT64_MAX:
        return "range"
    return v


def _wrap_int64(v: int) -> int:
    v &= (1 << 64) - 1
    return v - (1 << 64) if v >= (1 << 63) else v


# -- paths (httprouter CleanPath) ---------------------------------------------------------------
def clean_path(p: str) -> str:
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


def _escape_path(p: str) -> str:
    return _urlquote(p.encode("utf-8", "surrogateescape"), safe="/:@!$&'()*+,;=-._~")


# -- responses --------------------------------------------------------------------------------------
_V1_HEADERS = {NSQ_CT_HEADER: NSQ_CT_VALUE}
_V1_JSON_HEADERS = {"Content-Type": JSON_CT, NSQ_CT_HEADER: NSQ_CT_VALUE}
_V1_TEXT_HEADERS = {NSQ_CT_HEADER: NSQ_CT_VALUE, "Content-Type": TEXT_CT}
_TEXT_HEADERS = {"Content-Type": TEXT_CT}


class RawJSON:
    """A handler result that is already JSON text."""
    __slots__ = ("body",)

    def __init__(self, body):
        self.body = body.encode() if isinstance(body, str) else bytes(body)


def _v1_ok(result):
    """RespondV1(200, result): str/bytes raw, None empty, anything else JSON."""
    if result is None:
        return _Resp(status=200, body=b"", headers=_V1_HEADERS)
    if isinstance(result, str):
        result = result.encode("utf-8", "surrogateescape")
    if isinstance(result, (bytes, bytearray)):
        return _Resp(status=200, body=result,
                     headers=_V1_TEXT_HEADERS if result else _V1_HEADERS)
    if isinstance(result, RawJSON):
        return _Resp(status=200, body=result.body, headers=_V1_JSON_HEADERS)
    return _Resp(status=200, body=go_json(result), headers=_V1_JSON_HEADERS)


_ERR_BODIES: dict = {}


def _v1_err(code: int, text: str):
    body = _ERR_BODIES.get(text)
    if body is None:
        body = go_json({"message": text})
        if len(_ERR_BODIES) < 256:
            _ERR_BODIES[text] = body
    return _Resp(status=code, body=body, headers=_V1_JSON_HEADERS)


def _plain(code: int, text):
    if isinstance(text, str):
        text = text.encode("utf-8", "surrogateescape")
    return _Resp(status=code, body=text, headers=_TEXT_HEADERS if text else None)


# -- request helpers ----------------------------------------------------------------------------------
def _expect_continue(request) -> None:
    """Answer ``Expect: 100-continue`` the first time the body is read (as Go does)."""
    expect = request.headers.get("Expect")
    if expect is None or request.get("_nsq_continued"):
        return
    request["_nsq_continued"] = True
    if request.version == HttpVersion11 and expect.lower() == "100-continue":
        transport = request.transport
        if transport is not None:
            transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")


async def read_limited(request, limit: int) -> bytes:
    """Up to ``limit`` bytes of the body (io.LimitReader + io.ReadAll)."""
    content = request.content
    if content.at_eof():
        return b""
    if request.headers.get("Expect") is not None:
        _expect_continue(request)
    # fast path: the whole body is usually buffered already
    data = content.read_nowait(limit)
    total = len(data)
    if total >= limit or content.at_eof():
        return data
    chunks = [data]
    while total < limit:
        chunk = await content.read(limit - total)
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
        if content.at_eof():
            break
    return b"".join(chunks)


def _remote(request) -> str:
    transport = request.transport
    peer = transport.get_extra_info("peername") if transport is not None else None
    if not peer:
        return ""
    if isinstance(peer, (tuple, list)) and len(peer) >= 2:
        host = peer[0]
        if ":" in host:
            return f"[{host}]:{peer[1]}"
        return f"{host}:{peer[1]}"
    return str(peer)


def _topic_from_query(nsqd, query: str):
    """getTopicFromQuery: (params, topic) — creates the topic."""
    try:
        params = parse_query_cached(query)
    except ValueError as e:
        nsqd.log.error(f"failed to parse request params - {e}")
        raise Err(400, "INVALID_REQUEST") from None
    name = params.get("topic")
    if name is None:
        raise Err(400, "MISSING_ARG_TOPIC")
    if not is_valid_topic_name(name):
        raise Err(400, "INVALID_TOPIC")
    return params, nsqd.broker.get_topic(name)


def _req_params(nsqd, query: str) -> dict:
    try:
        return parse_query(query)
    except ValueError as e:
        nsqd.log.error(f"failed to parse request params - {e}")
        raise Err(400, "INVALID_REQUEST") from None


def _existing_topic_from_query(nsqd, query: str):
    """getExistingTopicFromQuery: (params, topic, channel name)."""
    params = _req_params(nsqd, query)
    tname = params.get("topic")
    if tname is None:
        raise Err(400, "MISSING_ARG_TOPIC")
    if not is_valid_topic_name(tname):
        raise Err(400, "INVALID_ARG_TOPIC")
    cname = params.get("channel")
    if cname is None:
        raise Err(400, "MISSING_ARG_CHANNEL")
    if not is_valid_channel_name(cname):
        raise Err(400, "INVALID_ARG_CHANNEL")
    topic = nsqd.broker.get_existing_topic(tname)
    if topic is None:
        raise Err(404, "TOPIC_NOT_FOUND")
    return params, topic, cname


async def _persist(nsqd) -> None:
    """Persist nsqd.dat before answering (Go calls PersistMetadata synchronously); the
    snapshot is taken on the loop, the write+fsync runs in a worker thread."""
    try:
        await nsqd.broker.persist_metadata_now()
    except Exception as e:  # noqa: BLE001
        nsqd.log.error(f"NSQ: failed to persist metadata - {e}")


# -- the API ------------------------------------------------------------------------------------------
V1, PLAIN, RAW = 0, 1, 2


class HTTPAPI:
    def __init__(self, nsqd, tls_enabled: bool):
        self.nsqd = nsqd
        self.tls_enabled = tls_enabled
        self.tls_block = not tls_enabled and nsqd.opts.tls_required == 2
        # path -> {method: (handler, wrapper, logged)}
        R = {}

        def add(method, path, fn, kind=V1, logged=True):
            R.setdefault(path, {})[method] = (fn, kind, logged)

        add("GET", "/ping", self.ping, PLAIN)
        add("GET", "/info", self.info)
        add("POST", "/pub", self.pub, V1, False)
        add("POST", "/mpub", self.mpub, V1, False)
        add("GET", "/stats", self.stats)
        add("POST", "/topic/create", self.topic_create)
        add("POST", "/topic/delete", self.topic_delete)
        add("POST", "/topic/empty", self.topic_empty)
        add("POST", "/topic/pause", self.topic_pause)
        add("POST", "/topic/unpause", self.topic_pause)
        add("POST", "/channel/create", self.channel_create)
        add("POST", "/channel/delete", self.channel_delete)
        add("POST", "/channel/empty", self.channel_empty)
        add("POST", "/channel/pause", self.channel_pause)
        add("POST", "/channel/unpause", self.channel_pause)
        add("GET", "/debug/pprof/", self.pprof_index, RAW, False)
        add("GET", "/debug/pprof/cmdline", self.pprof_cmdline, RAW, False)
        add("GET", "/debug/pprof/symbol", self.pprof_symbol, RAW, False)
        add("POST", "/debug/pprof/symbol", self.pprof_symbol, RAW, False)
        add("GET", "/debug/pprof/profile", self.pprof_profile, RAW, False)
        add("GET", "/debug/pprof/heap", self.pprof_heap, RAW, False)
        add("GET", "/debug/pprof/goroutine", self.pprof_goroutine, RAW, False)
        add("GET", "/debug/pprof/block", self.pprof_block, RAW, False)
        add("PUT", "/debug/setblockrate", self.set_block_rate, PLAIN)
        add("POST", "/debug/freememory", self.free_memory, PLAIN)
        add("GET", "/debug/pprof/threadcreate", self.pprof_threadcreate, RAW, False)
        self.routes = R
        self.param_prefix = "/config/"
        self.param_routes = {"GET": (self.config, V1, True), "PUT": (self.config, V1, True)}
        self.tree_methods = sorted({m for r in R.values() for m in r} | set(self.param_routes))
        self.static_lower = {p.lower(): p for p in R}

    # -- routing -------------------------------------------------------------------------------
    def _lookup(self, method: str, path: str):
        r = self.routes.get(path)
        if r is not None:
            e = r.get(method)
            if e is not None:
                return e, None
            return None, None
        pp = self.param_prefix
        if path.startswith(pp) and len(path) > len(pp) and "/" not in path[len(pp):]:
            e = self.param_routes.get(method)
            if e is not None:
                return e, path[len(pp):]
        return None, None

    def _has_route(self, method: str, path: str) -> bool:
        return self._lookup(method, path)[0] is not None

    def _ci_fix(self, method: str, path: str):
        """findCaseInsensitivePath with trailing-slash fixing."""
        candidates = [path]
        if len(path) > 1:
            candidates.append(path[:-1] if path.endswith("/") else path + "/")
        for cand in candidates:
            real = self.static_lower.get(cand.lower())
            if real is not None and method in self.routes[real]:
                return real
            pp = self.param_prefix
            if cand[:len(pp)].lower() == pp and method in self.param_routes:
                rest = cand[len(pp):]
                if rest and "/" not in rest:
                    return pp + rest
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

    async def handle(self, request):
        if self.tls_block:
            return self._tls_required()
        raw = request.raw_path
        if raw[:1] != "/":
            raw = self._origin_form(raw)
        path, sep, query = raw.partition("?")
        if "#" in query:
            query = query.partition("#")[0]
        if "%" in path:
            path = unquote_to_bytes(path).decode("utf-8", "surrogateescape")
        method = request.method
        entry, param = self._lookup(method, path)
        if entry is not None:
            return await self._dispatch(request, entry, query, param, raw)
        return await self._fallback(request, method, path, query, sep, raw)

    @staticmethod
    def _origin_form(raw: str) -> str:
        if raw == "*":
            return raw
        m = re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://[^/?#]*", raw)
        if m:
            rest = raw[m.end():]
            return rest if rest.startswith("/") else "/" + rest
        return raw

    async def _fallback(self, request, method, path, query, sep, raw):
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
                return self._redirect(method, target, query, sep)
        if method == "OPTIONS":
            allow = self._allowed(path, "OPTIONS")
            if allow:
                return _Resp(status=200, body=b"", headers={"Allow": allow})
        else:
            allow = self._allowed(path, method)
            if allow:
                return self._logged(request, raw, 405, "METHOD_NOT_ALLOWED",
                                    {"Allow": allow}, start)
        return self._logged(request, raw, 404, "NOT_FOUND", None, start)

    def _logged(self, request, raw, code, text, extra, start):
        resp = _v1_err(code, text)
        if extra:
            resp.headers.update(extra)
        self.nsqd.log.info(f"{code} {request.method} {raw} ({_remote(request)}) "
                           f"{go_duration(_perf_ns() - start)}")
        return resp

    @staticmethod
    def _redirect(method, target, query, sep):
        code = 301 if method == "GET" else 307
        url = _escape_path(target)
        if query or sep:
            url += "?" + query
        headers = {"Location": url}
        body = b""
        if method == "GET":
            headers["Content-Type"] = HTML_CT
            body = (f'<a href="{html.escape(url, quote=True).replace("&#x27;", "&#39;")}">'
                    f'{"Moved Permanently" if code == 301 else "Temporary Redirect"}'
                    f'</a>.\n\n').encode()
        return _Resp(status=code, body=body, headers=headers)

    def _tls_required(self):
        port = getattr(self.nsqd, "https_port", 0) or 0
        body = f'{{"message": "TLS_REQUIRED", "https_port": {port}}}'.encode()
        return _Resp(status=403, body=body, headers=_V1_JSON_HEADERS)

    async def _dispatch(self, request, entry, query, param, raw):
        fn, kind, logged = entry
        nsqd = self.nsqd
        start = _perf_ns() if logged else 0
        status = 200
        try:
            result = await fn(request, query, param)
        except Err as e:
            status = e.code
            if kind == PLAIN:
                resp = _plain(e.code, e.text)
            else:
                resp = _v1_err(e.code, e.text)
        except Exception as e:  # noqa: BLE001 - a handler panic
            nsqd.log.error(f"panic in HTTP handler - {e!r}")
            status = 500
            resp = _v1_err(500, "INTERNAL_ERROR")
        else:
            if kind == V1:
                resp = _v1_ok(result)
            elif kind == PLAIN:
                resp = _plain(200, result if result is not None else b"")
            else:
                resp = result
        if logged:
            elapsed = _perf_ns() - start
            nsqd.log.info(f"{status} {request.method} {raw} ({_remote(request)}) "
                          f"{go_duration(elapsed)}")
        if not request.content.is_eof():
            self._maybe_close(request, resp)
        return resp

    @staticmethod
    def _maybe_close(request, resp) -> None:
        """Go closes the connection rather than drain a big or never-sent body."""
        close = False
        if not request.get("_nsq_continued"):
            expect = request.headers.get("Expect")
            if expect is not None and expect.lower() == "100-continue":
                close = True
        if not close:
            cl = request.content_length
            close = cl is None or cl > 256 << 10
        if close:
            resp.force_close()
            # close right after the response instead of lingering to drain the body
            proto = request.protocol
            if proto is not None and hasattr(proto, "_lingering_time"):
                proto._lingering_time = 0.0

    # -- /ping /info ---------------------------------------------------------------------------
    async def ping(self, request, query, param):
        broker = self.nsqd.broker
        health = broker.health
        if not broker.is_healthy():
            raise Err(500, health)
        return health

    async def info(self, request, query, param):
        nsqd = self.nsqd
        opts = nsqd.opts
        tcp_port = nsqd.tcp_port if isinstance(nsqd.tcp_port, int) and nsqd.tcp_port > 0 else -1
        http_port = (nsqd.http_port if isinstance(nsqd.http_port, int) and nsqd.http_port > 0
                     else -1)
        return {
            "version": NSQ_VERSION,
            "broadcast_address": opts.broadcast_address or nsqd.hostname,
            "hostname": nsqd.hostname,
            "http_port": http_port,
            "tcp_port": tcp_port,
            "start_time": int(nsqd.start_time),
            "max_heartbeat_interval": int(opts.max_heartbeat_interval),
            "max_output_buffer_size": int(opts.max_output_buffer_size),
            "max_output_buffer_timeout": int(opts.max_output_buffer_timeout),
            "max_deflate_level": int(opts.max_deflate_level),
        }

    # -- publishing ------------------------------------------------------------------------------
    async def pub(self, request, query, param):
        opts = self.nsqd.opts
        max_size = opts.max_msg_size
        cl = request.content_length
        if cl is not None and cl > max_size:
            raise Err(413, "MSG_TOO_BIG")
        try:
            body = await read_limited(request, max_size + 1)
        except (asyncio.CancelledError, KeyboardInterrupt):
            raise
        except Exception:
            raise Err(500, "INTERNAL_ERROR") from None
        if len(body) > max_size:
            raise Err(413, "MSG_TOO_BIG")
        if not body:
            raise Err(400, "MSG_EMPTY")
        params, topic = _topic_from_query(self.nsqd, query)
        defer_ms = 0
        ds = params.get("defer")
        if ds is not None:
            di = _parse_int64(ds)
            if di is None or di == "range":
                raise Err(400, "INVALID_DEFER")
            ns = _wrap_int64(di * 1_000_000)
            if ns < 0 or ns > opts.max_req_timeout:
                raise Err(400, "INVALID_DEFER")
            defer_ms = ns // 1_000_000
        try:
            topic.put(body, defer_ms)
        except (TopicError, BackendError):
            raise Err(503, "EXITING") from None
        return b"OK"

    async def mpub(self, request, query, param):
        nsqd = self.nsqd
        opts = nsqd.opts
        max_body = opts.max_body_size
        max_msg = opts.max_msg_size
        cl = request.content_length
        if cl is not None and cl > max_body:
            raise Err(413, "BODY_TOO_BIG")
        params, topic = _topic_from_query(nsqd, query)
        binary = False
        bv = params.get("binary")
        if bv is not None:
            binary = _BOOL_PARAMS.get(bv)
            if binary is None:
                binary = True
                nsqd.log.warning(f"deprecated value '{bv}' used for /mpub binary param")
        if binary:
            if cl is not None:
                try:
                    data = await read_limited(request, cl)
                except (asyncio.CancelledError, KeyboardInterrupt):
                    raise
                except Exception:
                    raise Err(413, "BAD_BODY") from None
                msgs = _parse_mpub_bytes(data, max_msg, max_body)
            else:
                msgs = await _parse_mpub_stream(request, max_msg, max_body)
        else:
            read_max = max_body + 1
            try:
                data = await read_limited(request, read_max)
            except (asyncio.CancelledError, KeyboardInterrupt):
                raise
            except Exception:
                raise Err(500, "INTERNAL_ERROR") from None
            msgs = _split_text_mpub(data, read_max, max_msg)
        try:
            topic.put_many(msgs)
        except (TopicError, BackendError):
            raise Err(503, "EXITING") from None
        return b"OK"

    # -- /stats ------------------------------------------------------------------------------------
    async def stats(self, request, query, param):
        nsqd = self.nsqd
        params = _req_params(nsqd, query)
        json_format = params.get("format", "") == "json"
        topic = params.get("topic", "")
        channel = params.get("channel", "")
        include_clients = _BOOL_PARAMS.get(params.get("include_clients", ""), True)
        include_mem = _BOOL_PARAMS.get(params.get("include_mem", ""), True)
        topics, producers = collect(nsqd, topic, channel, include_clients)
        health = nsqd.broker.health
        memory = memstats.get_mem_stats() if include_mem else None
        if not json_format:
            return render_text(nsqd, topics, producers, memory, health).encode(
                "utf-8", "surrogateescape")
        d = {"version": NSQ_VERSION, "health": health, "start_time": int(nsqd.start_time),
             "topics": topics}
        if memory is not None:
            d["memory"] = memory
        d["producers"] = producers
        return d

    # -- topics -----------------------------------------------------------------------------------
    async def topic_create(self, request, query, param):
        _topic_from_query(self.nsqd, query)
        return None

    async def topic_delete(self, request, query, param):
        nsqd = self.nsqd
        params = _req_params(nsqd, query)
        name = params.get("topic")
        if name is None:
            raise Err(400, "MISSING_ARG_TOPIC")
        if not nsqd.broker.delete_topic(name):
            raise Err(404, "TOPIC_NOT_FOUND")
        return None

    async def topic_empty(self, request, query, param):
        nsqd = self.nsqd
        params = _req_params(nsqd, query)
        name = params.get("topic")
        if name is None:
            raise Err(400, "MISSING_ARG_TOPIC")
        if not is_valid_topic_name(name):
            raise Err(400, "INVALID_TOPIC")
        topic = nsqd.broker.get_existing_topic(name)
        if topic is None:
            raise Err(404, "TOPIC_NOT_FOUND")
        try:
            topic.empty()
        except Exception as e:  # noqa: BLE001
            nsqd.log.error(f"failure in {request.path} - {e}")
            raise Err(500, "INTERNAL_ERROR") from None
        return None

    async def topic_pause(self, request, query, param):
        nsqd = self.nsqd
        params = _req_params(nsqd, query)
        name = params.get("topic")
        if name is None:
            raise Err(400, "MISSING_ARG_TOPIC")
        topic = nsqd.broker.get_existing_topic(name)
        if topic is None:
            raise Err(404, "TOPIC_NOT_FOUND")
        try:
            if "unpause" in request.path:
                topic.unpause()
            else:
                topic.pause()
        except Exception as e:  # noqa: BLE001
            nsqd.log.error(f"failure in {request.path} - {e}")
            raise Err(500, "INTERNAL_ERROR") from None
        await _persist(nsqd)
        return None

    # -- channels ---------------------------------------------------------------------------------
    async def channel_create(self, request, query, param):
        _, topic, cname = _existing_topic_from_query(self.nsqd, query)
        topic.get_channel(cname)
        return None

    async def channel_delete(self, request, query, param):
        _, topic, cname = _existing_topic_from_query(self.nsqd, query)
        if not topic.delete_channel(cname):
            raise Err(404, "CHANNEL_NOT_FOUND")
        return None

    async def channel_empty(self, request, query, param):
        nsqd = self.nsqd
        _, topic, cname = _existing_topic_from_query(nsqd, query)
        ch = topic.channels.get(cname)
        if ch is None:
            raise Err(404, "CHANNEL_NOT_FOUND")
        try:
            ch.empty()
        except Exception as e:  # noqa: BLE001
            nsqd.log.error(f"failure in {request.path} - {e}")
            raise Err(500, "INTERNAL_ERROR") from None
        return None

    async def channel_pause(self, request, query, param):
        nsqd = self.nsqd
        _, topic, cname = _existing_topic_from_query(nsqd, query)
        ch = topic.channels.get(cname)
        if ch is None:
            raise Err(404, "CHANNEL_NOT_FOUND")
        try:
            if "unpause" in request.path:
                ch.unpause()
            else:
                ch.pause()
        except Exception as e:  # noqa: BLE001
            nsqd.log.error(f"failure in {request.path} - {e}")
            raise Err(500, "INTERNAL_ERROR") from None
        await _persist(nsqd)
        return None

    # -- /config ------------------------------------------------------------------------------------
    async def config(self, request, query, param):
        """GET/PUT /config/:opt (param = the option's config-file name)."""
        nsqd = self.nsqd
        opts = nsqd.opts
        name = param
        if request.method == "PUT":
            read_max = opts.max_msg_size + 1
            try:
                body = await read_limited(request, read_max)
            except (asyncio.CancelledError, KeyboardInterrupt):
                raise
            except Exception:
                raise Err(500, "INTERNAL_ERROR") from None
            if len(body) == read_max or not body:
                raise Err(413, "INVALID_VALUE")
            if name == "nsqlookupd_tcp_addresses":
                addrs = _parse_json_str_list(body)
                if addrs is None:
                    raise Err(400, "INVALID_VALUE")
                opts.nsqlookupd_tcp_addresses = addrs
                setter = getattr(nsqd, "set_lookupd_addresses", None)
                if setter is not None:
                    setter(list(addrs))
            elif name == "log_level":
                level = body.decode("utf-8", "surrogateescape").lower()
                if level not in ("debug", "info", "warn", "error", "fatal"):
                    raise Err(400, "INVALID_VALUE")
                try:
                    nsqd.log.set_level(level)
                except ValueError:
                    raise Err(400, "INVALID_VALUE") from None
                opts.log_level = level
            else:
                raise Err(400, "INVALID_OPTION")
        return self._config_value(name)

    def _config_value(self, name: str):
        nsqd = self.nsqd
        opts = nsqd.opts
        if name == "statsd_prefix":
            return statsd_prefix(nsqd)
        if name == "broadcast_http_port" and not opts.broadcast_http_port:
            return RawJSON(str(int(nsqd.http_port or 0)))
        if name == "broadcast_tcp_port" and not opts.broadcast_tcp_port:
            return RawJSON(str(int(nsqd.tcp_port or 0)))
        if name == "nsqlookupd_tcp_addresses" and opts.nsqlookupd_tcp_addresses is None:
            return RawJSON("null")
        try:
            from .options import config_value_json
            kind, body = config_value_json(opts, name)
        except (KeyError, AttributeError):
            raise Err(400, "INVALID_OPTION") from None
        if kind == "text":
            return body
        return RawJSON(body)

    # -- debug --------------------------------------------------------------------------------------
    async def set_block_rate(self, request, query, param):
        form = parse_query(query, strict=False)
        if request.method in ("POST", "PUT", "PATCH"):
            ctype = request.headers.get("Content-Type", "")
            if ctype.split(";", 1)[0].strip().lower() == "application/x-www-form-urlencoded":
                try:
                    body = await read_limited(request, 10 << 20)
                    post = parse_query(body.decode("utf-8", "surrogateescape"), strict=False)
                    form = {**form, **post}
                except Exception:  # noqa: BLE001
                    pass
        rate = form.get("rate", "")
        v = _parse_int64(rate)
        if v is None:
            raise Err(400, f"invalid block rate : strconv.Atoi: parsing {go_quote(rate)}: "
                           f"invalid syntax")
        if v == "range":
            raise Err(400, f"invalid block rate : strconv.Atoi: parsing {go_quote(rate)}: "
                           f"value out of range")
        self.block_rate = v
        return b""

    async def free_memory(self, request, query, param):
        gc.collect()
        try:
            import ctypes
            ctypes.CDLL(None).malloc_trim(0)
        except Exception:  # noqa: BLE001
            pass
        return b""

    async def pprof_index(self, request, query, param):
        profiles = [("block", "Stack traces that led to blocking on synchronization primitives"),
                    ("cmdline", "The command line invocation of the current program"),
                    ("goroutine", "Stack traces of all current tasks and threads"),
                    ("heap", "A sampling of memory allocations of live objects"),
                    ("profile", "CPU profile (?seconds=N, default 30)"),
                    ("symbol", "Symbol lookup"),
                    ("threadcreate", "Stack traces that led to the creation of new OS threads")]
        rows = "".join(f'<tr><td><a href="{n}?debug=1">{n}</a></td></tr>\n'
                       for n, _ in profiles)
        descs = "".join(f"<li><div class=profile-name>{n}: </div> {d}</li>\n"
                        for n, d in profiles)
        body = ("<html>\n<head>\n<title>/debug/pprof/</title>\n</head>\n<body>\n"
                "/debug/pprof/\n<br>\n<p>Set debug=1 as a query parameter to export in "
                "legacy text format</p>\n<br>\nTypes of profiles available:\n<table>\n"
                f"{rows}</table>\n<br>\n<p>\nProfile Descriptions:\n<ul>\n{descs}</ul>\n"
                "</p>\n</body>\n</html>\n")
        return _Resp(status=200, body=body.encode(), headers={
            "Content-Type": HTML_CT, "X-Content-Type-Options": "nosniff"})

    async def pprof_cmdline(self, request, query, param):
        body = "\x00".join([sys.executable] + sys.argv).encode("utf-8", "surrogateescape")
        return _Resp(status=200, body=body, headers={
            "Content-Type": TEXT_CT, "X-Content-Type-Options": "nosniff"})

    async def pprof_symbol(self, request, query, param):
        lines = ["num_symbols: 1\n"]
        data = b""
        if request.method == "POST":
            data = await read_limited(request, 1 << 20)
        else:
            data = query.encode()
        for word in re.split(rb"[+&]", data):
            word = word.strip()
            if word.startswith(b"0x"):
                lines.append(f"{word.decode('ascii', 'replace')} ??\n")
        return _Resp(status=200, body="".join(lines).encode(), headers={
            "Content-Type": TEXT_CT, "X-Content-Type-Options": "nosniff"})

    async def pprof_profile(self, request, query, param):
        import cProfile
        import pstats
        params = parse_query(query, strict=False)
        seconds = _parse_int64(params.get("seconds", "30"))
        if not isinstance(seconds, int) or seconds <= 0:
            seconds = 30
        prof = cProfile.Profile()
        prof.enable()
        try:
            await asyncio.sleep(seconds)
        finally:
            prof.disable()
        out = io.StringIO()
        pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(100)
        return _Resp(status=200, body=out.getvalue().encode(), headers={
            "Content-Type": TEXT_CT, "X-Content-Type-Options": "nosniff"})

    async def pprof_heap(self, request, query, param):
        ms = memstats.get_mem_stats()
        counts = {}
        for obj in gc.get_objects():
            t = type(obj).__name__
            counts[t] = counts.get(t, 0) + 1
        top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:50]
        lines = ["heap profile: python\n"]
        lines += [f"# {k} = {v}\n" for k, v in ms.items()]
        lines.append("# gc-tracked objects by type\n")
        lines += [f"{n:>10} {t}\n" for t, n in top]
        return _Resp(status=200, body="".join(lines).encode(), headers={
            "Content-Type": TEXT_CT, "X-Content-Type-Options": "nosniff"})

    async def pprof_goroutine(self, request, query, param):
        out = []
        tasks = asyncio.all_tasks()
        out.append(f"goroutine profile: total {len(tasks) + threading.active_count()}\n")
        for task in tasks:
            out.append(f"\n{task!r}\n")
            for frame in task.get_stack(limit=32):
                out.extend(traceback.format_stack(frame, limit=1))
        frames = sys._current_frames()
        for th in threading.enumerate():
            out.append(f"\nthread {th.name} (ident {th.ident})\n")
            frame = frames.get(th.ident)
            if frame is not None:
                out.extend(traceback.format_stack(frame))
        return _Resp(status=200, body="".join(out).encode("utf-8", "replace"), headers={
            "Content-Type": TEXT_CT, "X-Content-Type-Options": "nosniff"})

    async def pprof_block(self, request, query, param):
        rate = getattr(self, "block_rate", 0)
        body = f"--- contention:\ncycles/second=1000000000\nsampling period={rate}\n"
        return _Resp(status=200, body=body.encode(), headers={
            "Content-Type": TEXT_CT, "X-Content-Type-Options": "nosniff"})

    async def pprof_threadcreate(self, request, query, param):
        threads = threading.enumerate()
        out = [f"threadcreate profile: total {len(threads)}\n"]
        out += [f"# {th.name} daemon={th.daemon} ident={th.ident}\n" for th in threads]
        return _Resp(status=200, body="".join(out).encode(), headers={
            "Content-Type": TEXT_CT, "X-Content-Type-Options": "nosniff"})


def _parse_json_str_list(body: bytes):
    """json.Unmarshal into []string: a JSON array of strings (or null); else None."""
    import json
    try:
        v = json.loads(body.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return None
    if v is None:
        return []
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        return None
    return v


def _split_text_mpub(data: bytes, read_max: int, max_msg: int) -> list:
    """/mpub text mode over at most read_max bytes, checks in Go's reading order."""
    if not data:
        return []
    parts = data.split(b"\n")
    body_too_big = len(data) == read_max
    last_real = len(parts) - 2 if data.endswith(b"\n") else len(parts) - 1
    msgs = []
    for i, line in enumerate(parts):
        if body_too_big and i == last_real:
            raise Err(413, "BODY_TOO_BIG")
        if not line:
            continue
        if len(line) > max_msg:
            raise Err(413, "MSG_TOO_BIG")
        msgs.append(line)
    return msgs


def _parse_mpub_bytes(data: bytes, max_msg: int, max_body: int) -> list:
    """readMPUB over an in-memory body; errors are 413 with the TCP code minus ``E_``."""
    n = len(data)
    if n < 4:
        raise Err(413, "BAD_BODY")
    (num,) = _MPUB_HDR.unpack_from(data, 0)
    if num <= 0 or num > (max_body - 4) // 5:
        raise Err(413, "BAD_BODY")
    pos = 4
    msgs = []
    unpack = _MPUB_HDR.unpack_from
    for _ in range(num):
        if pos + 4 > n:
            raise Err(413, "BAD_MESSAGE")
        (size,) = unpack(data, pos)
        pos += 4
        if size <= 0 or size > max_msg:
            raise Err(413, "BAD_MESSAGE")
        end = pos + size
        if end > n:
            raise Err(413, "BAD_MESSAGE")
        msgs.append(data[pos:end])
        pos = end
    return msgs


async def _parse_mpub_stream(request, max_msg: int, max_body: int) -> list:
    """readMPUB over a body of unknown length (chunked): reads only what it needs."""
    content = request.content
    _expect_continue(request)

    async def exactly(k: int):
        try:
            return await content.readexactly(k)
        except (asyncio.CancelledError, KeyboardInterrupt):
            raise
        except Exception:
            return None

    hdr = await exactly(4)
    if hdr is None:
        raise Err(413, "BAD_BODY")
    (num,) = _MPUB_HDR.unpack(hdr)
    if num <= 0 or num > (max_body - 4) // 5:
        raise Err(413, "BAD_BODY")
    msgs = []
    for _ in range(num):
        hdr = await exactly(4)
        if hdr is None:
            raise Err(413, "BAD_MESSAGE")
        (size,) = _MPUB_HDR.unpack(hdr)
        if size <= 0 or size > max_msg:
            raise Err(413, "BAD_MESSAGE")
        body = await exactly(size)
        if body is None:
            raise Err(413, "BAD_MESSAGE")
        msgs.append(body)
    return msgs


class HTTPServerHandle:
    """What start_http_server returns: ``await handle.close()`` stops the listener."""

    def __init__(self, server, web_server, api):
        self.server = server
        self.web_server = web_server
        self.api = api

    @property
    def sockets(self):
        return self.server.sockets

    async def close(self) -> None:
        self.server.close()
        try:
            await self.web_server.shutdown(1.0)
        except Exception:  # noqa: BLE001
            pass
        try:
            await asyncio.wait_for(self.server.wait_closed(), 2.0)
        except (asyncio.TimeoutError, Exception):  # noqa: BLE001
            pass


async def start_http_server(nsqd, host: str, port: int, ssl_context=None):
    """Serve the nsqd HTTP API on host:port (HTTPS when ``ssl_context`` is given).
    Returns ``(handle, bound port)``."""
    memstats.install()
    api = HTTPAPI(nsqd, tls_enabled=ssl_context is not None)
    web_server = Server(api.handle, access_log=None, logger=_quiet_logger,
                        keepalive_timeout=24 * 3600.0, max_line_size=1 << 20,
                        max_field_size=1 << 20, lingering_time=10.0)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(web_server, host or None, port, ssl=ssl_context,
                                      reuse_address=True, backlog=1024)
    bound = server.sockets[0].getsockname()[1]
    return HTTPServerHandle(server, web_server, api), bound
