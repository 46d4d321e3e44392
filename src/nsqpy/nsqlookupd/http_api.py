"""nsqlookupd HTTP API (spec nsqlookupd.md §3) on aiohttp's low-level server.

The router reproduces julienschmidt/httprouter as nsqlookupd configures it (same approach
as :mod:`nsqpy.nsqd.http_api`): exact routes, trailing-slash and case/clean-path redirects
(301 for GET, 307 otherwise), ``OPTIONS`` answered with ``Allow``, 405
``METHOD_NOT_ALLOWED`` with ``Allow``, 404 ``NOT_FOUND``. Handlers are wrapped like
upstream's ``http_api.V1`` / ``http_api.PlainText`` and logged like ``http_api.Log``
(every API route; not pprof).
"""
from __future__ import annotations

import asyncio
import gc
import html
import io
import logging
import re
import sys
import threading
import time
import traceback
from urllib.parse import quote as _urlquote, unquote_to_bytes

from aiohttp import web
from aiohttp.web_server import Server

from .. import NSQ_VERSION
from ..gotime import format_duration
from ..protocol.lookupd import go_json_str
from ..protocol.names import is_valid_channel_name, is_valid_topic_name
from .registration_db import filter_by_active

__all__ = ["start_http_server", "HTTPServerHandle", "LookupdHTTPAPI", "go_json",
           "parse_query", "Err"]

NSQ_CT_HEADER = "X-Nsq-Content-Type"
NSQ_CT_VALUE = "nsq; version=1.0"
JSON_CT = "application/json; charset=utf-8"
TEXT_CT = "text/plain; charset=utf-8"
HTML_CT = "text/html; charset=utf-8"

_quiet_logger = logging.getLogger("nsqpy.nsqlookupd.http.aiohttp")
_quiet_logger.addHandler(logging.NullHandler())
_quiet_logger.propagate = False

_perf_ns = time.perf_counter_ns


class Err(Exception):
    """An API error (http_api.Err): status code and message text."""

    def __init__(self, code: int, text: str):
        super().__init__(text)
        self.code = code
        self.text = text


class _Resp(web.Response):
    """A Response without aiohttp's ``Server`` header (Go sends none)."""

    async def _write_headers(self) -> None:
        self._headers.popall("Server", None)
        await super()._write_headers()


# -- JSON (Go encoding/json) ----------------------------------------------------------------
def _enc(v, out: list) -> None:
    if v is None:
        out.append("null")
    elif v is True:
        out.append("true")
    elif v is False:
        out.append("false")
    elif isinstance(v, str):
        out.append(go_json_str(v))
    elif isinstance(v, int):
        out.append(str(v))
    elif isinstance(v, dict):
        out.append("{")
        first = True
        for k, x in v.items():
            if not first:
                out.append(",")
            first = False
            out.append(go_json_str(k))
            out.append(":")
            _enc(x, out)
        out.append("}")
    elif isinstance(v, (list, tuple)):
        out.append("[")
        for i, x in enumerate(v):
            if i:
                out.append(",")
            _enc(x, out)
        out.append("]")
    else:
        raise TypeError(f"cannot encode {type(v).__name__}")


def go_json(v) -> bytes:
    """Compact JSON like Go's json.Marshal. Dicts keep their order: build Go maps with
    sorted keys and structs in field order."""
    out: list = []
    _enc(v, out)
    return "".join(out).encode("utf-8")


# -- query strings (Go's url.ParseQuery) -----------------------------------------------------
_BAD_PCT_RE = re.compile(r"%(?![0-9a-fA-F]{2})")


def _unescape(s: str) -> str:
    if "%" not in s and "+" not in s:
        return s
    s = s.replace("+", " ")
    if "%" in s:
        if _BAD_PCT_RE.search(s):
            raise ValueError("invalid URL escape")
        return unquote_to_bytes(s).decode("utf-8", "surrogateescape")
    return s


def parse_query(q: str) -> dict:
    """First value of each key; ValueError where Go's ParseQuery reports an error (a bad
    escape or a ``;`` separator)."""
    out: dict = {}
    err = None
    if not q:
        return out
    for part in q.split("&"):
        if not part:
            continue
        if ";" in part:
            err = err or ValueError("invalid semicolon separator in query")
            continue
        k, _, v = part.partition("=")
        try:
            k = _unescape(k)
            v = _unescape(v)
        except ValueError as e:
            err = err or e
            continue
        if k not in out:
            out[k] = v
    if err is not None:
        raise err
    return out


# -- paths (httprouter CleanPath) -----------------------------------------------------------
def clean_path(p: str) -> str:
    if not p:
        return "/"
    if p[0] != "/":
        p = "/" + p
    trailing = len(p) > 1 and (p.endswith("/") or p.endswith("/.") or p.endswith("/.."))
    parts: list = []
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


def _remote(request) -> str:
    transport = request.transport
    peer = transport.get_extra_info("peername") if transport is not None else None
    if isinstance(peer, (tuple, list)) and len(peer) >= 2:
        host = peer[0]
        if host.startswith("::ffff:") and "." in host:
            host = host[7:]
        return f"[{host}]:{peer[1]}" if ":" in host else f"{host}:{peer[1]}"
    return "@" if peer is not None or transport is not None else ""


# -- responses ---------------------------------------------------------------------------------
_V1_HEADERS = {NSQ_CT_HEADER: NSQ_CT_VALUE}
_V1_JSON_HEADERS = {"Content-Type": JSON_CT, NSQ_CT_HEADER: NSQ_CT_VALUE}
_V1_TEXT_HEADERS = {NSQ_CT_HEADER: NSQ_CT_VALUE, "Content-Type": TEXT_CT}
_TEXT_HEADERS = {"Content-Type": TEXT_CT}
_NOSNIFF_TEXT = {"Content-Type": TEXT_CT, "X-Content-Type-Options": "nosniff"}


def _v1_ok(result):
    if result is None:
        return _Resp(status=200, body=b"", headers=_V1_HEADERS)
    if isinstance(result, str):
        body = result.encode("utf-8", "surrogateescape")
        return _Resp(status=200, body=body, headers=_V1_TEXT_HEADERS if body else _V1_HEADERS)
    return _Resp(status=200, body=go_json(result), headers=_V1_JSON_HEADERS)


def _v1_err(code: int, text: str):
    return _Resp(status=code, body=go_json({"message": text}), headers=_V1_JSON_HEADERS)


def _plain(code: int, text: str):
    body = text.encode("utf-8", "surrogateescape")
    return _Resp(status=code, body=body, headers=_TEXT_HEADERS if body else None)


V1, PLAIN, RAW = 0, 1, 2


class LookupdHTTPAPI:
    def __init__(self, lookupd):
        self.lookupd = lookupd
        self.log = lookupd.log
        routes: dict = {}

        def add(method, path, fn, kind=V1, logged=True):
            routes.setdefault(path, {})[method] = (fn, kind, logged)

        add("GET", "/ping", self.ping, PLAIN)
        add("GET", "/info", self.info)
        add("GET", "/debug", self.debug)
        add("GET", "/lookup", self.lookup)
        add("GET", "/topics", self.topics)
        add("GET", "/channels", self.channels)
        add("GET", "/nodes", self.nodes)
        add("POST", "/topic/create", self.topic_create)
        add("POST", "/topic/delete", self.topic_delete)
        add("POST", "/channel/create", self.channel_create)
        add("POST", "/channel/delete", self.channel_delete)
        add("POST", "/topic/tombstone", self.topic_tombstone)
        add("GET", "/debug/pprof", self.pprof_index, RAW, False)
        add("GET", "/debug/pprof/cmdline", self.pprof_cmdline, RAW, False)
        add("GET", "/debug/pprof/symbol", self.pprof_symbol, RAW, False)
        add("POST", "/debug/pprof/symbol", self.pprof_symbol, RAW, False)
        add("GET", "/debug/pprof/profile", self.pprof_profile, RAW, False)
        add("GET", "/debug/pprof/heap", self.pprof_heap, RAW, False)
        add("GET", "/debug/pprof/goroutine", self.pprof_goroutine, RAW, False)
        add("GET", "/debug/pprof/block", self.pprof_block, RAW, False)
        add("GET", "/debug/pprof/threadcreate", self.pprof_threadcreate, RAW, False)
        self.routes = routes
        self.tree_methods = sorted({m for r in routes.values() for m in r})
        self.lower = {p.lower(): p for p in routes}

    # -- routing (httprouter) ---------------------------------------------------------------
    def _has_route(self, method: str, path: str) -> bool:
        r = self.routes.get(path)
        return r is not None and method in r

    def _ci_fix(self, method: str, path: str):
        cands = [path]
        if len(path) > 1:
            cands.append(path[:-1] if path.endswith("/") else path + "/")
        for cand in cands:
            real = self.lower.get(cand.lower())
            if real is not None and method in self.routes[real]:
                return real
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
        raw = request.raw_path
        if raw[:1] != "/" and raw != "*":
            m = re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://[^/?#]*", raw)
            if m:
                raw = raw[m.end():] or "/"
                if raw[:1] != "/":
                    raw = "/" + raw
        path, sep, query = raw.partition("?")
        if "#" in query:
            query = query.partition("#")[0]
        if "%" in path:
            path = unquote_to_bytes(path).decode("utf-8", "surrogateescape")
        method = request.method
        r = self.routes.get(path)
        if r is not None:
            entry = r.get(method)
            if entry is not None:
                return await self._dispatch(request, entry, query, raw)
        return self._fallback(request, method, path, query, sep, raw)

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
                return self._redirect(method, target, query, sep)
        if method == "OPTIONS":
            allow = self._allowed(path, "OPTIONS")
            if allow:
                return _Resp(status=200, body=b"", headers={"Allow": allow})
        else:
            allow = self._allowed(path, method)
            if allow:
                resp = _v1_err(405, "METHOD_NOT_ALLOWED")
                resp.headers["Allow"] = allow
                self._log_request(request, raw, 405, start)
                return resp
        self._log_request(request, raw, 404, start)
        return _v1_err(404, "NOT_FOUND")

    def _log_request(self, request, raw, status, start) -> None:
        self.log.info(f"{status} {request.method} {raw} ({_remote(request)}) "
                      f"{format_duration(_perf_ns() - start)}")

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
                    f'Moved Permanently</a>.\n\n').encode()
        return _Resp(status=code, body=body, headers=headers)

    async def _dispatch(self, request, entry, query, raw):
        fn, kind, logged = entry
        start = _perf_ns()
        status = 200
        try:
            result = await fn(request, query)
        except Err as e:
            status = e.code
            resp = _plain(e.code, e.text) if kind == PLAIN else _v1_err(e.code, e.text)
        except Exception as e:  # noqa: BLE001 - a handler panic
            self.log.error(f"panic in HTTP handler - {e!r}")
            status = 500
            resp = _v1_err(500, "INTERNAL_ERROR")
        else:
            if kind == V1:
                resp = _v1_ok(result)
            elif kind == PLAIN:
                resp = _plain(200, result)
            else:
                resp = result
        if logged:
            self._log_request(request, raw, status, start)
        return resp

    # -- request helpers ------------------------------------------------------------------------
    @staticmethod
    async def _params(request, query: str) -> dict:
        """http_api.NewReqParams: the query string (the body is read and ignored)."""
        try:
            params = parse_query(query)
        except ValueError:
            raise Err(400, "INVALID_REQUEST") from None
        content = request.content
        if not content.at_eof():
            try:
                while await content.read(1 << 16):
                    pass
            except Exception:  # noqa: BLE001
                raise Err(400, "INVALID_REQUEST") from None
        return params

    @staticmethod
    def _topic_channel(params: dict) -> tuple[str, str]:
        """http_api.GetTopicChannelArgs."""
        topic = params.get("topic")
        if topic is None:
            raise Err(400, "MISSING_ARG_TOPIC")
        if not is_valid_topic_name(topic):
            raise Err(400, "INVALID_ARG_TOPIC")
        channel = params.get("channel")
        if channel is None:
            raise Err(400, "MISSING_ARG_CHANNEL")
        if not is_valid_channel_name(channel):
            raise Err(400, "INVALID_ARG_CHANNEL")
        return topic, channel

    # -- handlers --------------------------------------------------------------------------------
    async def ping(self, request, query):
        return "OK"

    async def info(self, request, query):
        return {"version": NSQ_VERSION}

    async def topics(self, request, query):
        regs = self.lookupd.db.find_registrations("topic", "*", "")
        return {"topics": [k for _c, k, _s in regs]}

    async def channels(self, request, query):
        params = await self._params(request, query)
        topic = params.get("topic")
        if topic is None:
            raise Err(400, "MISSING_ARG_TOPIC")
        regs = self.lookupd.db.find_registrations("channel", topic, "*")
        return {"channels": [s for _c, _k, s in regs]}

    async def lookup(self, request, query):
        params = await self._params(request, query)
        topic = params.get("topic")
        if topic is None:
            raise Err(400, "MISSING_ARG_TOPIC")
        db = self.lookupd.db
        if not db.find_registrations("topic", topic, ""):
            raise Err(404, "TOPIC_NOT_FOUND")
        opts = self.lookupd.opts
        channels = [s for _c, _k, s in db.find_registrations("channel", topic, "*")]
        producers = filter_by_active(db.find_producers("topic", topic, ""),
                                     opts.inactive_producer_timeout, opts.tombstone_lifetime)
        return {"channels": channels,
                "producers": [p.peer_info.to_json_dict() for p in producers]}

    async def topic_create(self, request, query):
        params = await self._params(request, query)
        topic = params.get("topic")
        if topic is None:
            raise Err(400, "MISSING_ARG_TOPIC")
        if not is_valid_topic_name(topic):
            raise Err(400, "INVALID_ARG_TOPIC")
        self.log.info(f"DB: adding topic({topic})")
        self.lookupd.db.add_registration(("topic", topic, ""))
        return None

    async def topic_delete(self, request, query):
        params = await self._params(request, query)
        topic = params.get("topic")
        if topic is None:
            raise Err(400, "MISSING_ARG_TOPIC")
        db = self.lookupd.db
        for r in db.find_registrations("channel", topic, "*"):
            self.log.info(f"DB: removing channel({r[2]}) from topic({topic})")
            db.remove_registration(r)
        for r in db.find_registrations("topic", topic, ""):
            self.log.info(f"DB: removing topic({topic})")
            db.remove_registration(r)
        return None

    async def topic_tombstone(self, request, query):
        params = await self._params(request, query)
        topic = params.get("topic")
        if topic is None:
            raise Err(400, "MISSING_ARG_TOPIC")
        node = params.get("node")
        if node is None:
            raise Err(400, "MISSING_ARG_NODE")
        self.log.info(f"DB: setting tombstone for producer@{node} of topic({topic})")
        for p in self.lookupd.db.find_producers("topic", topic, ""):
            pi = p.peer_info
            if f"{pi.broadcast_address}:{pi.http_port}" == node:
                p.tombstone()
        return None

    async def channel_create(self, request, query):
        params = await self._params(request, query)
        topic, channel = self._topic_channel(params)
        db = self.lookupd.db
        self.log.info(f"DB: adding channel({channel}) in topic({topic})")
        db.add_registration(("channel", topic, channel))
        self.log.info(f"DB: adding topic({topic})")
        db.add_registration(("topic", topic, ""))
        return None

    async def channel_delete(self, request, query):
        params = await self._params(request, query)
        topic, channel = self._topic_channel(params)
        db = self.lookupd.db
        regs = db.find_registrations("channel", topic, channel)
        if not regs:
            raise Err(404, "CHANNEL_NOT_FOUND")
        self.log.info(f"DB: removing channel({channel}) from topic({topic})")
        for r in regs:
            db.remove_registration(r)
        return None

    async def nodes(self, request, query):
        lookupd = self.lookupd
        db = lookupd.db
        opts = lookupd.opts
        # tombstoned nodes are not filtered out here
        producers = filter_by_active(db.find_producers("client", "", ""),
                                     opts.inactive_producer_timeout, 0)
        lifetime = opts.tombstone_lifetime
        out = []
        for p in producers:
            pi = p.peer_info
            topics = [k for c, k, _s in db.lookup_registrations(pi.id) if c == "topic"]
            tombstones = []
            for t in topics:
                tp = db.producer(("topic", t, ""), pi.id)
                tombstones.append(bool(tp is not None and tp.peer_info is pi
                                       and tp.is_tombstoned(lifetime)))
            node = pi.to_json_dict()
            node["tombstones"] = tombstones
            node["topics"] = topics
            out.append(node)
        return {"producers": out}

    async def debug(self, request, query):
        data = {}
        for (cat, key, sub), producers in self.lookupd.db.items():
            if not producers:
                continue
            entries = []
            for p in producers.values():
                pi = p.peer_info
                entries.append({
                    "broadcast_address": pi.broadcast_address,
                    "hostname": pi.hostname,
                    "http_port": pi.http_port,
                    "id": pi.id,
                    "last_update": pi.last_update,
                    "tcp_port": pi.tcp_port,
                    "tombstoned": p.tombstoned,
                    "tombstoned_at": p.tombstoned_at_unix_nano,
                    "version": pi.version,
                })
            data[f"{cat}:{key}:{sub}"] = entries
        return {k: data[k] for k in sorted(data)}

    # -- pprof equivalents ----------------------------------------------------------------------
    async def pprof_index(self, request, query):
        profiles = [("block", "Stack traces that led to blocking on synchronization primitives"),
                    ("cmdline", "The command line invocation of the current program"),
                    ("goroutine", "Stack traces of all current tasks and threads"),
                    ("heap", "A sampling of memory allocations of live objects"),
                    ("profile", "CPU profile (?seconds=N, default 30)"),
                    ("symbol", "Symbol lookup"),
                    ("threadcreate", "Stack traces that led to the creation of new OS threads")]
        rows = "".join(f'<tr><td><a href="{n}?debug=1">{n}</a></td></tr>\n' for n, _ in profiles)
        descs = "".join(f"<li><div class=profile-name>{n}: </div> {d}</li>\n"
                        for n, d in profiles)
        body = ("<html>\n<head>\n<title>/debug/pprof/</title>\n</head>\n<body>\n"
                "/debug/pprof/\n<br>\n<p>Set debug=1 as a query parameter to export in "
                "legacy text format</p>\n<br>\nTypes of profiles available:\n<table>\n"
                f"{rows}</table>\n<br>\n<p>\nProfile Descriptions:\n<ul>\n{descs}</ul>\n"
                "</p>\n</body>\n</html>\n")
        return _Resp(status=200, body=body.encode(),
                     headers={"Content-Type": HTML_CT, "X-Content-Type-Options": "nosniff"})

    async def pprof_cmdline(self, request, query):
        body = "\x00".join([sys.executable] + sys.argv).encode("utf-8", "surrogateescape")
        return _Resp(status=200, body=body, headers=_NOSNIFF_TEXT)

    async def pprof_symbol(self, request, query):
        data = query.encode()
        if request.method == "POST":
            data = await request.content.read(1 << 20)
        lines = ["num_symbols: 1\n"]
        for word in re.split(rb"[+&]", data):
            word = word.strip()
            if word.startswith(b"0x"):
                lines.append(f"{word.decode('ascii', 'replace')} ??\n")
        return _Resp(status=200, body="".join(lines).encode(), headers=_NOSNIFF_TEXT)

    async def pprof_profile(self, request, query):
        import cProfile
        import pstats
        try:
            seconds = int(parse_query(query).get("seconds", "30"))
        except ValueError:
            seconds = 30
        if seconds <= 0:
            seconds = 30
        prof = cProfile.Profile()
        prof.enable()
        try:
            await asyncio.sleep(seconds)
        finally:
            prof.disable()
        out = io.StringIO()
        pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(100)
        return _Resp(status=200, body=out.getvalue().encode(), headers=_NOSNIFF_TEXT)

    async def pprof_heap(self, request, query):
        counts: dict = {}
        for obj in gc.get_objects():
            t = type(obj).__name__
            counts[t] = counts.get(t, 0) + 1
        top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:50]
        lines = ["heap profile: python\n", "# gc-tracked objects by type\n"]
        lines += [f"{n:>10} {t}\n" for t, n in top]
        return _Resp(status=200, body="".join(lines).encode(), headers=_NOSNIFF_TEXT)

    async def pprof_goroutine(self, request, query):
        tasks = asyncio.all_tasks()
        out = [f"goroutine profile: total {len(tasks) + threading.active_count()}\n"]
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
        return _Resp(status=200, body="".join(out).encode("utf-8", "replace"),
                     headers=_NOSNIFF_TEXT)

    async def pprof_block(self, request, query):
        body = "--- contention:\ncycles/second=1000000000\nsampling period=0\n"
        return _Resp(status=200, body=body.encode(), headers=_NOSNIFF_TEXT)

    async def pprof_threadcreate(self, request, query):
        threads = threading.enumerate()
        out = [f"threadcreate profile: total {len(threads)}\n"]
        out += [f"# {th.name} daemon={th.daemon} ident={th.ident}\n" for th in threads]
        return _Resp(status=200, body="".join(out).encode(), headers=_NOSNIFF_TEXT)


class HTTPServerHandle:
    """What :func:`start_http_server` returns; ``await handle.close()`` stops it."""

    def __init__(self, server, web_server, api):
        self.server = server
        self.web_server = web_server
        self.api = api

    async def close(self) -> None:
        self.server.close()
        try:
            await self.web_server.shutdown(1.0)
        except Exception:  # noqa: BLE001
            pass
        try:
            await asyncio.wait_for(self.server.wait_closed(), 2.0)
        except Exception:  # noqa: BLE001
            pass


async def start_http_server(lookupd, sock=None, path: str | None = None) -> HTTPServerHandle:
    """Serve the API on an already-bound listening socket ``sock`` (or a unix socket
    ``path``)."""
    api = LookupdHTTPAPI(lookupd)
    web_server = Server(api.handle, access_log=None, logger=_quiet_logger,
                        keepalive_timeout=24 * 3600.0, max_line_size=1 << 20,
                        max_field_size=1 << 20)
    loop = asyncio.get_running_loop()
    if path is not None:
        server = await loop.create_unix_server(web_server, path=path, backlog=1024)
    else:
        server = await loop.create_server(web_server, sock=sock, backlog=1024)
    return HTTPServerHandle(server, web_server, api)
