"""nsqadmin's HTTP server (spec nsqadmin.md §1-§5, §8) on the shared Go HTTP layer
(:mod:`nsqpy.httpapi`): httprouter routing under ``--base-path``, ``http_api.V1`` /
``PlainText`` wrapping and ``http_api.Log`` lines; every response is gzip/deflate-compressed
when the request accepts it (Go's ``CompressHandler``).
"""
from __future__ import annotations

import asyncio
import base64
import gzip
import ipaddress
import os
import posixpath
import zlib
from urllib.parse import unquote, urlsplit

from .. import NSQ_VERSION
from ..gojson import GoJSONError, decode_struct_body, integral_floats
from ..httpapi import (PLAIN, RAW, TEXT_CT, V1, Err, RawJSON, Resp, Router, parse_query,
                       read_limited, remote_addr, serve)
from ..protocol.names import is_valid_channel_name, is_valid_topic_name
from .clusterinfo import AllFailed
from .options import OPTION_KINDS, config_value, parse_cidr

__all__ = ["HTTPAPI", "start_http_server"]

PKG_DIR = os.path.dirname(os.path.abspath(__file__))
STATIC_DIR = os.path.join(PKG_DIR, "static")
TEMPLATE_DIR = os.path.join(PKG_DIR, "templates")

_MIME = {
    ".avif": "image/avif", ".css": "text/css; charset=utf-8", ".gif": "image/gif",
    ".htm": "text/html; charset=utf-8", ".html": "text/html; charset=utf-8",
    ".jpeg": "image/jpeg", ".jpg": "image/jpeg", ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8", ".json": "application/json",
    ".pdf": "application/pdf", ".png": "image/png", ".svg": "image/svg+xml",
    ".wasm": "application/wasm", ".webp": "image/webp", ".xml": "text/xml; charset=utf-8",
    ".map": "application/json", ".woff": "application/font-woff",
    ".woff2": "application/font-woff2", ".ttf": "application/font-sfnt",
    ".eot": "application/vnd.ms-fontobject", ".ico": "image/x-icon",
    ".txt": "text/plain; charset=utf-8",
}


INDEX = PROXY = RAW  # the index page and the graphite proxy build their own responses


def maybe_warn(messages: list[str]) -> str:
    return "WARNING: " + "; ".join(messages) if messages else ""


class HTTPAPI:
    def __init__(self, admin):
        self.admin = admin
        self.opts = admin.opts
        self.log = admin.log
        self._jinja = None
        self._static_cache: dict[str, bytes] = {}
        self.router = Router(self.log, escape_sub_delims=True)
        bp = self.opts.base_path

        def add(method, p, fn, kind=V1, logged=True):
            path = posixpath.normpath(posixpath.join(bp, p.lstrip("/"))) if p != "/" else bp

            async def handler(request, query, params=None):
                result = await fn(request, params or {})
                return integral_floats(result) if kind == V1 else result

            self.router.add(method, path, handler, kind, logged)

        add("GET", "/ping", self.ping, PLAIN)
        for p in ("/", "/topics", "/topics/:topic", "/topics/:topic/:channel", "/nodes",
                  "/nodes/:node", "/counter", "/lookup"):
            add("GET", p, self.index, INDEX)
        add("GET", "/static/:asset", self.static_asset, PLAIN)
        add("GET", "/fonts/:asset", self.static_asset, PLAIN)
        if self.opts.proxy_graphite:
            add("GET", "/render", self.render_proxy, PROXY, logged=False)
        add("GET", "/api/topics", self.topics)
        add("GET", "/api/topics/:topic", self.topic)
        add("GET", "/api/topics/:topic/:channel", self.channel)
        add("GET", "/api/nodes", self.nodes)
        add("GET", "/api/nodes/:node", self.node)
        add("POST", "/api/topics", self.create_topic_channel)
        add("POST", "/api/topics/:topic", self.topic_action)
        add("POST", "/api/topics/:topic/:channel", self.channel_action)
        add("DELETE", "/api/nodes/:node", self.tombstone_node_for_topic)
        add("DELETE", "/api/topics/:topic", self.delete_topic)
        add("DELETE", "/api/topics/:topic/:channel", self.delete_channel)
        add("GET", "/api/counter", self.counter)
        add("GET", "/api/graphite", self.graphite)
        add("GET", "/api/history", self.history)  # nsqpy addition: nsqadmin's own graphs
        add("GET", "/config/:opt", self.config)
        add("PUT", "/config/:opt", self.config)

    async def handle(self, request):
        return self._compress(request, await self.router.handle(request))

    # -- compression (Go's CompressHandler) --------------------------------------------------
    @staticmethod
    def _compress(request, resp):
        if not isinstance(resp, Resp) or resp.status < 200 or resp.status in (204, 304):
            return resp
        if request.method == "HEAD":
            return resp
        enc = None
        for part in request.headers.get("Accept-Encoding", "").split(","):
            part = part.strip()
            if part in ("gzip", "deflate"):
                enc = part
                break
        if enc is None:
            return resp
        body = resp.body or b""
        if not isinstance(body, (bytes, bytearray)):
            return resp
        if enc == "gzip":
            data = gzip.compress(bytes(body), compresslevel=6, mtime=0)
        else:
            c = zlib.compressobj(6, zlib.DEFLATED, -15)
            data = c.compress(bytes(body)) + c.flush()
        resp.body = data
        resp.headers["Content-Encoding"] = enc
        resp.headers.add("Vary", "Accept-Encoding")
        return resp

    # -- helpers ------------------------------------------------------------------------------
    @property
    def lookupd(self) -> list[str]:
        return self.admin.opts.nsqlookupd_http_addresses

    @property
    def nsqd(self) -> list[str]:
        return self.admin.opts.nsqd_http_addresses

    def is_admin(self, request) -> bool:
        users = self.admin.opts.admin_users
        if not users:
            return True
        user = request.headers.get(self.admin.opts.acl_http_header, "")
        return user in users

    def _require_admin(self, request) -> None:
        if not self.is_admin(request):
            raise Err(403, "FORBIDDEN")

    async def _body(self, request) -> bytes:
        try:
            return await read_limited(request, 16 << 20)
        except Exception:  # noqa: BLE001
            return b""

    def _upstream(self, e: AllFailed, what: str) -> Err:
        self.log.error(f"{what} - {e}")
        return Err(502, f"UPSTREAM_ERROR: {e}")

    def _partial(self, errs: list, messages: list[str]) -> None:
        if errs:
            text = "; ".join(str(e) for e in errs)
            self.log.warning(text)
            messages.append(text)

    def notify(self, action: str, topic: str, channel: str, node: str, request) -> None:
        self.admin.notifier.notify(action, topic, channel, node, request)

    # -- simple routes ----------------------------------------------------------------------
    async def ping(self, request, params):
        return "OK"

    def _template(self):
        if self._jinja is None:
            import jinja2  # lazily: keep startup fast
            self._jinja = jinja2.Environment(
                loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
                autoescape=jinja2.select_autoescape(["html"]),
                trim_blocks=True, lstrip_blocks=True)
        return self._jinja.get_template("index.html")

    async def index(self, request, params):
        o = self.admin.opts
        bp = o.base_path
        ctx = {
            "version": NSQ_VERSION,
            "proxy_graphite": o.proxy_graphite,
            "graph_enabled": o.graphite_url != "",
            "graphite_url": "" if o.proxy_graphite else o.graphite_url,
            "statsd_interval": o.statsd_interval // 1_000_000_000,
            "statsd_counter_format": o.statsd_counter_format,
            "statsd_gauge_format": o.statsd_gauge_format,
            "statsd_prefix": o.statsd_prefix,
            "nsqlookupd": list(o.nsqlookupd_http_addresses),
            "nsqd": list(o.nsqd_http_addresses),
            "is_admin": self.is_admin(request),
            "base_path": bp,
            "static": bp.rstrip("/") + "/static/",
            "prefix": bp.rstrip("/"),
            "history_interval": self.admin.history.interval,
            "history_window": self.admin.history.window,
        }
        text = self._template().render(**ctx)
        return Resp(status=200, body=text.encode("utf-8"),
                     headers={"Content-Type": "text/html"})

    async def static_asset(self, request, params):
        name = params["asset"]
        dev_dir = self.admin.opts.dev_static_dir
        if name.startswith(".") or "/" in name or "\x00" in name:
            raise Err(404, "NOT_FOUND")
        data = None if dev_dir else self._static_cache.get(name)
        if data is None:
            path = os.path.join(dev_dir or STATIC_DIR, name)
            try:
                with open(path, "rb") as f:  # noqa: ASYNC230 - small local files
                    data = f.read()
            except OSError:
                raise Err(404, "NOT_FOUND") from None
            if not dev_dir:
                self._static_cache[name] = data
        ext = os.path.splitext(name)[1].lower()
        ct = _MIME.get(ext, TEXT_CT)
        return Resp(status=200, body=data, headers={"Content-Type": ct})

    async def render_proxy(self, request, params):
        """Reverse proxy to --graphite-url (scheme and host from the URL, basic auth too)."""
        o = self.admin.opts
        u = urlsplit(o.graphite_url)
        target = f"{u.scheme}://{u.hostname}{':' + str(u.port) if u.port else ''}{request.raw_path}"
        headers = {k: v for k, v in request.headers.items()
                   if k.lower() not in ("host", "connection", "accept-encoding",
                                        "keep-alive", "te", "trailer", "transfer-encoding",
                                        "upgrade", "proxy-authorization", "proxy-connection")}
        if u.username is not None:
            token = base64.b64encode(f"{unquote(u.username)}:{unquote(u.password or '')}"
                                     .encode()).decode()
            headers["Authorization"] = "Basic " + token
        try:
            status, reason, rhdrs, body = await self.admin.client.request(
                "GET", target, headers=headers, accept=False)
        except Exception as e:  # noqa: BLE001
            self.log.error(f"http: proxy error: {e}")
            return Resp(status=502, body=b"")
        out = {k: v for k, v in rhdrs.items()
               if k.lower() not in ("content-length", "content-encoding", "transfer-encoding",
                                    "connection", "keep-alive", "server", "date")}
        return Resp(status=status, reason=reason or None, body=body, headers=out)

    # -- read API --------------------------------------------------------------------------
    async def topics(self, request, params):
        messages: list[str] = []
        ci = self.admin.ci
        try:
            topics, errs = await ci.topics(self.lookupd, self.nsqd)
        except AllFailed as e:
            raise self._upstream(e, "failed to get topics") from None
        self._partial(errs, messages)
        if request.query.get("inactive") == "true":
            inactive: dict = {}
            if self.lookupd:
                async def check(name):
                    try:
                        producers, _ = await ci.lookupd_topic_producers(name, self.lookupd)
                    except AllFailed:
                        producers = []
                    if producers:
                        return
                    try:
                        chans, _ = await ci.lookupd_topic_channels(name, self.lookupd)
                    except AllFailed:
                        chans = None
                    inactive[name] = chans
                await asyncio.gather(*(check(name) for name in topics or []))
            return {"topics": dict(sorted(inactive.items())), "message": maybe_warn(messages)}
        return {"topics": topics, "message": maybe_warn(messages)}

    async def topic(self, request, params):
        messages: list[str] = []
        name = params["topic"]
        ci = self.admin.ci
        try:
            producers, errs = await ci.topic_producers(name, self.lookupd, self.nsqd)
        except AllFailed as e:
            raise self._upstream(e, "failed to get topic producers") from None
        self._partial(errs, messages)
        try:
            topic_stats, _chans, errs = await ci.nsqd_stats(producers, name, "", False)
        except AllFailed as e:
            raise self._upstream(e, "failed to get topic metadata") from None
        self._partial(errs, messages)
        from .clusterinfo import new_topic_agg, topic_add
        agg = new_topic_agg(name)
        for t in topic_stats:
            topic_add(agg, t)
        agg["message"] = maybe_warn(messages)
        return agg

    async def channel(self, request, params):
        messages: list[str] = []
        topic, channel = params["topic"], params["channel"]
        ci = self.admin.ci
        try:
            producers, errs = await ci.topic_producers(topic, self.lookupd, self.nsqd)
        except AllFailed as e:
            raise self._upstream(e, "failed to get topic producers") from None
        self._partial(errs, messages)
        try:
            _topics, chans, errs = await ci.nsqd_stats(producers, topic, channel, True)
        except AllFailed as e:
            raise self._upstream(e, "failed to get channel metadata") from None
        self._partial(errs, messages)
        agg = chans.get(channel)
        out = dict(agg) if agg is not None else {}
        out["message"] = maybe_warn(messages)
        return out

    async def nodes(self, request, params):
        messages: list[str] = []
        try:
            producers, errs = await self.admin.ci.producers(self.lookupd, self.nsqd)
        except AllFailed as e:
            raise self._upstream(e, "failed to get nodes") from None
        self._partial(errs, messages)
        return {"nodes": [p.to_json() for p in producers] if producers else None,
                "message": maybe_warn(messages)}

    async def node(self, request, params):
        messages: list[str] = []
        node = params["node"]
        ci = self.admin.ci
        try:
            producers, errs = await ci.producers(self.lookupd, self.nsqd)
        except AllFailed as e:
            raise self._upstream(e, "failed to get producers") from None
        self._partial(errs, messages)
        producer = next((p for p in producers if p.http_address == node), None)
        if producer is None:
            raise Err(404, "NODE_NOT_FOUND")
        try:
            topic_stats, _chans, errs = await ci.nsqd_stats([producer], "", "", True)
        except AllFailed as e:
            raise self._upstream(e, "failed to get nsqd stats") from None
        total_clients = 0
        total_messages = 0
        for t in topic_stats:
            for c in t["channels"] or []:
                total_clients += len(c["clients"] or [])
            total_messages += t["message_count"]
        return {"node": node, "topics": topic_stats or None, "total_messages": total_messages,
                "total_clients": total_clients, "message": maybe_warn(messages)}

    async def counter(self, request, params):
        messages: list[str] = []
        ci = self.admin.ci
        try:
            producers, errs = await ci.producers(self.lookupd, self.nsqd)
        except AllFailed as e:
            raise self._upstream(e, "failed to get counter producer list") from None
        self._partial(errs, messages)
        try:
            _topics, chans, errs = await ci.nsqd_stats(producers, "", "", False)
        except AllFailed as e:
            raise self._upstream(e, "failed to get nsqd stats") from None
        self._partial(errs, messages)
        stats: dict[str, dict] = {}
        for agg in chans.values():
            for n in agg["nodes"] or []:
                key = f"{agg['topic_name']}:{agg['channel_name']}:{n['node']}"
                s = stats.get(key)
                if s is None:
                    s = stats[key] = {"node": n["node"], "topic_name": agg["topic_name"],
                                      "channel_name": agg["channel_name"], "message_count": 0}
                s["message_count"] += n["message_count"]
        return {"stats": dict(sorted(stats.items())), "message": maybe_warn(messages)}

    async def graphite(self, request, params):
        try:
            query = parse_query(request.query_string)
        except ValueError:
            raise Err(400, "INVALID_REQUEST") from None
        if query.get("metric") != "rate":
            raise Err(400, "INVALID_ARG_METRIC")
        target = query.get("target")
        if target is None:
            raise Err(400, "INVALID_ARG_TARGET")
        o = self.admin.opts
        interval = o.statsd_interval // 1_000_000_000
        from urllib.parse import urlencode
        qs = urlencode([("format", "json"), ("from", f"-{interval * 2}sec"),
                        ("target", target), ("until", f"-{interval}sec")])
        url = f"{o.graphite_url}/render?{qs}"
        self.log.info(f"GRAPHITE: {url}")
        try:
            resp = await self.admin.client.get_v1(url)
            rate = resp[0]["datapoints"][0][0]
            rate = float(rate)
        except Exception as e:  # noqa: BLE001 - any failure is INTERNAL_ERROR
            self.log.error(f"graphite request failed - {e}")
            raise Err(500, "INTERNAL_ERROR") from None
        if rate < 0:
            rate_str = "N/A"
        else:
            rate_str = "%.2f" % (rate / interval) if interval else "+Inf"
        return {"rate": rate_str}

    async def history(self, request, params):
        h = self.admin.history
        topic = request.query.get("topic", "")
        channel = request.query.get("channel", "")
        if topic and channel:
            out = h.channel(topic, channel)
        elif topic:
            out = h.topic(topic)
        else:
            out = h.overview()
        out["message"] = ""
        return out

    # -- admin actions ----------------------------------------------------------------------
    async def create_topic_channel(self, request, params):
        self._require_admin(request)
        messages: list[str] = []
        try:
            body = decode_struct_body(await self._body(request), ("topic", "channel"))
        except GoJSONError as e:
            raise Err(400, str(e)) from None
        topic, channel = body["topic"], body["channel"]
        if not is_valid_topic_name(topic):
            raise Err(400, "INVALID_TOPIC")
        if channel and not is_valid_channel_name(channel):
            raise Err(400, "INVALID_CHANNEL")
        try:
            errs = await self.admin.ci.create_topic_channel(topic, channel, self.lookupd,
                                                            self.nsqd)
        except AllFailed as e:
            raise self._upstream(e, "failed to create topic/channel") from None
        self._partial(errs, messages)
        self.notify("create_topic", topic, "", "", request)
        if channel:
            self.notify("create_channel", topic, channel, "", request)
        return {"message": maybe_warn(messages)}

    async def _action(self, request, topic: str, channel: str):
        self._require_admin(request)
        messages: list[str] = []
        try:
            body = decode_struct_body(await self._body(request), ("action",))
        except GoJSONError as e:
            raise Err(400, str(e)) from None
        action = body["action"]
        if action not in ("pause", "unpause", "empty"):
            raise Err(400, "INVALID_ACTION")
        ci = self.admin.ci
        try:
            if channel:
                errs = await ci.channel_action(action, topic, channel, self.lookupd, self.nsqd)
                self.notify(f"{action}_channel", topic, channel, "", request)
            else:
                errs = await ci.topic_action(action, topic, self.lookupd, self.nsqd)
                self.notify(f"{action}_topic", topic, "", "", request)
        except AllFailed as e:
            self.notify(f"{action}_{'channel' if channel else 'topic'}", topic, channel, "",
                        request)
            raise self._upstream(e, f"failed to {action} topic/channel") from None
        self._partial(errs, messages)
        return {"message": maybe_warn(messages)}

    async def topic_action(self, request, params):
        return await self._action(request, params["topic"], "")

    async def channel_action(self, request, params):
        return await self._action(request, params["topic"], params["channel"])

    async def delete_topic(self, request, params):
        self._require_admin(request)
        messages: list[str] = []
        topic = params["topic"]
        try:
            errs = await self.admin.ci.delete_topic(topic, self.lookupd, self.nsqd)
        except AllFailed as e:
            raise self._upstream(e, "failed to delete topic") from None
        self._partial(errs, messages)
        self.notify("delete_topic", topic, "", "", request)
        return {"message": maybe_warn(messages)}

    async def delete_channel(self, request, params):
        self._require_admin(request)
        messages: list[str] = []
        topic, channel = params["topic"], params["channel"]
        try:
            errs = await self.admin.ci.delete_channel(topic, channel, self.lookupd, self.nsqd)
        except AllFailed as e:
            raise self._upstream(e, "failed to delete channel") from None
        self._partial(errs, messages)
        self.notify("delete_channel", topic, channel, "", request)
        return {"message": maybe_warn(messages)}

    async def tombstone_node_for_topic(self, request, params):
        self._require_admin(request)
        messages: list[str] = []
        node = params["node"]
        try:
            body = decode_struct_body(await self._body(request), ("topic",))
        except GoJSONError:
            raise Err(400, "INVALID_BODY") from None
        topic = body["topic"]
        if not is_valid_topic_name(topic):
            raise Err(400, "INVALID_TOPIC")
        try:
            errs = await self.admin.ci.tombstone_node_for_topic(topic, node, self.lookupd,
                                                                self.nsqd)
        except AllFailed as e:
            raise self._upstream(e, "failed to tombstone node for topic") from None
        self._partial(errs, messages)
        self.notify("tombstone_topic_producer", topic, "", node, request)
        return {"message": maybe_warn(messages)}

    # -- /config -----------------------------------------------------------------------------
    async def config(self, request, params):
        opt = params["opt"]
        admin = self.admin
        cidr = admin.opts.allow_config_from_cidr
        if cidr:
            network = parse_cidr(cidr)
            addr = remote_addr(request)
            host = addr.rsplit(":", 1)[0].strip("[]") if ":" in addr else ""
            try:
                ip = ipaddress.ip_address(host.split("%", 1)[0])
            except ValueError:
                self.log.error(f"failed to parse RemoteAddr {addr}")
                raise Err(400, "INVALID_REMOTE_ADDR") from None
            if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
                ip = ip.ipv4_mapped
            if ip.version != network.version or ip not in network:
                raise Err(403, "FORBIDDEN")
        if request.method == "PUT":
            read_max = 1024 * 1024 + 1
            try:
                body = await read_limited(request, read_max)
            except Exception:  # noqa: BLE001
                raise Err(500, "INTERNAL_ERROR") from None
            if len(body) == read_max or not body:
                raise Err(413, "INVALID_VALUE")
            if opt == "nsqlookupd_http_addresses":
                import json
                try:
                    value = json.loads(body)
                except ValueError:
                    raise Err(400, "INVALID_VALUE") from None
                if value is None:
                    value = []
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    raise Err(400, "INVALID_VALUE")
                admin.opts.nsqlookupd_http_addresses = value
            elif opt == "log_level":
                level = body.decode("utf-8", "replace").lower()
                if level not in ("debug", "info", "warn", "error", "fatal"):
                    raise Err(400, "INVALID_VALUE")
                admin.opts.log_level = level
                admin.log.set_level(level)
            else:
                raise Err(400, "INVALID_OPTION")
        if opt not in OPTION_KINDS:
            raise Err(400, "INVALID_OPTION")
        kind, body = config_value(admin.opts, opt)
        if kind == "text":
            return body
        return RawJSON(body)


async def start_http_server(admin, sock) -> object:
    api = HTTPAPI(admin)
    # eager=False: handlers use aiohttp's client, whose timeouts need a current task
    return await serve(api.handle, sock=sock, api=api, eager=False)
