"""nsqd HTTP(S) API (spec nsqd-http.md): routes and handlers for /ping, /info, /stats,
/pub, /mpub and the topic/channel actions, on the shared httprouter / ``http_api`` layer
of :mod:`nsqpy.httpapi` (logged like ``http_api.Log``: all but /pub, /mpub and pprof).
``/config/:opt`` lives in :mod:`.http_config`, the debug routes in :mod:`.http_debug`.
"""
from __future__ import annotations

import asyncio
import struct

from .. import NSQ_VERSION
from ..engine.backend import BackendError
from ..engine.topic import TopicError
from ..httpapi import (PLAIN, Err, HTTPServerHandle, Resp, Router, clean_path, parse_int64,
                       parse_query, parse_query_cached, read_limited, serve)
from ..httpapi.request import expect_continue
from ..httpapi.responses import V1_JSON_HEADERS
from ..protocol.names import is_valid_channel_name, is_valid_topic_name
from . import memstats
from .http_config import add_config_routes
from .http_debug import add_debug_routes
from .stats import collect, render_text

__all__ = ["start_http_server", "HTTPServerHandle", "HTTPAPI", "parse_query", "clean_path"]

_BOOL_PARAMS = {"true": True, "1": True, "false": False, "0": False}
_MPUB_HDR = struct.Struct(">i")


def _wrap_int64(v: int) -> int:
    v &= (1 << 64) - 1
    return v - (1 << 64) if v >= (1 << 63) else v


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
    return params, _existing_topic(nsqd, tname), cname


def _topic_name(nsqd, query: str) -> str:
    """The required ``topic`` argument (not validated)."""
    name = _req_params(nsqd, query).get("topic")
    if name is None:
        raise Err(400, "MISSING_ARG_TOPIC")
    return name


def _existing_topic(nsqd, name: str):
    topic = nsqd.broker.get_existing_topic(name)
    if topic is None:
        raise Err(404, "TOPIC_NOT_FOUND")
    return topic


def _existing_channel(nsqd, query: str):
    _, topic, cname = _existing_topic_from_query(nsqd, query)
    ch = topic.channels.get(cname)
    if ch is None:
        raise Err(404, "CHANNEL_NOT_FOUND")
    return ch


def _apply(nsqd, request, action) -> None:
    """Run a topic/channel action; its failure is logged and answered 500."""
    try:
        action()
    except Exception as e:  # noqa: BLE001
        nsqd.log.error(f"failure in {request.path} - {e}")
        raise Err(500, "INTERNAL_ERROR") from None


async def _durable_commit(nsqd) -> None:
    """--durable: answer a publish only once the group commit covering it has fsynced."""
    committer = nsqd.broker.committer
    if committer is not None and not await committer.wait():
        raise Err(500, "INTERNAL_ERROR")


async def _persist(nsqd) -> None:
    """Persist nsqd.dat before answering (Go calls PersistMetadata synchronously); the
    snapshot is taken on the loop, the write+fsync runs in a worker thread."""
    try:
        await nsqd.broker.persist_metadata_now()
    except Exception as e:  # noqa: BLE001
        nsqd.log.error(f"NSQ: failed to persist metadata - {e}")


class HTTPAPI:
    def __init__(self, nsqd, tls_enabled: bool):
        self.nsqd = nsqd
        self.tls_enabled = tls_enabled
        self.tls_block = not tls_enabled and nsqd.opts.tls_required == 2
        self.router = router = Router(nsqd.log)
        add = router.add
        add("GET", "/ping", self.ping, PLAIN)
        add("GET", "/info", self.info)
        add("POST", "/pub", self.pub, logged=False, sync=self.pub_sync)
        add("POST", "/mpub", self.mpub, logged=False)
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
        add_config_routes(router, nsqd)
        self.pprof = add_debug_routes(router)
        # --tls-required=true: the plain-HTTP listener answers every request 403
        self.handle = self._tls_required if self.tls_block else router.handle
        self.handle_sync = None if self.tls_block else router.handle_sync

    async def _tls_required(self, request):
        port = getattr(self.nsqd, "https_port", 0) or 0
        body = f'{{"message": "TLS_REQUIRED", "https_port": {port}}}'.encode()
        return Resp(status=403, body=body, headers=V1_JSON_HEADERS)

    # -- /ping /info ---------------------------------------------------------------------------
    async def ping(self, request, query):
        broker = self.nsqd.broker
        health = broker.health
        if not broker.is_healthy():
            raise Err(500, health)
        return health

    async def info(self, request, query):
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
    def pub_sync(self, request, query):
        """/pub without a coroutine when the whole body came with the head (else
        NotImplemented: the router runs :meth:`pub`)."""
        if self.nsqd.broker.committer is not None:
            return NotImplemented          # --durable: the answer waits for a commit
        max_size = self.nsqd.opts.max_msg_size
        cl = request.content_length
        if cl is not None and cl > max_size:
            raise Err(413, "MSG_TOO_BIG")
        content = request.content
        if not content.complete:
            return NotImplemented
        return self._pub(content.read_nowait(max_size + 1), query)

    async def pub(self, request, query):
        max_size = self.nsqd.opts.max_msg_size
        cl = request.content_length
        if cl is not None and cl > max_size:
            raise Err(413, "MSG_TOO_BIG")
        try:
            body = await read_limited(request, max_size + 1)
        except (asyncio.CancelledError, KeyboardInterrupt):
            raise
        except Exception:
            raise Err(500, "INTERNAL_ERROR") from None
        result = self._pub(body, query)
        await _durable_commit(self.nsqd)
        return result

    def _pub(self, body: bytes, query: str):
        opts = self.nsqd.opts
        max_size = opts.max_msg_size
        if len(body) > max_size:
            raise Err(413, "MSG_TOO_BIG")
        if not body:
            raise Err(400, "MSG_EMPTY")
        params, topic = _topic_from_query(self.nsqd, query)
        defer_ms = 0
        ds = params.get("defer")
        if ds is not None:
            di = parse_int64(ds)
            if di is None or di == "range":
                raise Err(400, "INVALID_DEFER")
            ns = _wrap_int64(di * 1_000_000)
            if ns < 0 or ns > opts.max_req_timeout:
                raise Err(400, "INVALID_DEFER")
            defer_ms = ns // 1_000_000
        try:
            topic.put(body, defer_ms)
        except TopicError:
            raise Err(503, "EXITING") from None
        except BackendError:          # could not be stored (disk full, read-only): issue #8
            raise Err(500, "INTERNAL_ERROR") from None
        return b"OK"

    async def mpub(self, request, query):
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
        except TopicError:
            raise Err(503, "EXITING") from None
        except BackendError:          # could not be stored (disk full, read-only): issue #8
            raise Err(500, "INTERNAL_ERROR") from None
        await _durable_commit(self.nsqd)
        return b"OK"

    # -- /stats ------------------------------------------------------------------------------------
    async def stats(self, request, query):
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
        if nsqd.broker.committer is not None:      # --durable only (absent upstream)
            d["durable"] = dict(nsqd.broker.committer.stats)
        return d

    # -- topics -----------------------------------------------------------------------------------
    async def topic_create(self, request, query):
        _topic_from_query(self.nsqd, query)
        return None

    async def topic_delete(self, request, query):
        nsqd = self.nsqd
        if not nsqd.broker.delete_topic(_topic_name(nsqd, query)):
            raise Err(404, "TOPIC_NOT_FOUND")
        return None

    async def topic_empty(self, request, query):
        nsqd = self.nsqd
        name = _topic_name(nsqd, query)
        if not is_valid_topic_name(name):
            raise Err(400, "INVALID_TOPIC")
        topic = _existing_topic(nsqd, name)
        _apply(nsqd, request, topic.empty)
        return None

    async def topic_pause(self, request, query):
        nsqd = self.nsqd
        topic = _existing_topic(nsqd, _topic_name(nsqd, query))
        _apply(nsqd, request, topic.unpause if "unpause" in request.path else topic.pause)
        await _persist(nsqd)
        return None

    # -- channels ---------------------------------------------------------------------------------
    async def channel_create(self, request, query):
        _, topic, cname = _existing_topic_from_query(self.nsqd, query)
        topic.get_channel(cname)
        return None

    async def channel_delete(self, request, query):
        _, topic, cname = _existing_topic_from_query(self.nsqd, query)
        if not topic.delete_channel(cname):
            raise Err(404, "CHANNEL_NOT_FOUND")
        return None

    async def channel_empty(self, request, query):
        nsqd = self.nsqd
        ch = _existing_channel(nsqd, query)
        _apply(nsqd, request, ch.empty)
        return None

    async def channel_pause(self, request, query):
        nsqd = self.nsqd
        ch = _existing_channel(nsqd, query)
        _apply(nsqd, request, ch.unpause if "unpause" in request.path else ch.pause)
        await _persist(nsqd)
        return None


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
    expect_continue(request)

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


async def start_http_server(nsqd, host: str, port: int, ssl_context=None):
    """Serve the nsqd HTTP API on host:port (HTTPS when ``ssl_context`` is given).
    Returns ``(handle, bound port)``."""
    memstats.install()
    api = HTTPAPI(nsqd, tls_enabled=ssl_context is not None)
    handle = await serve(api.handle, host=host, port=port, ssl=ssl_context, api=api,
                         sync_handler=api.handle_sync, busy_poll=True)
    return handle, handle.sockets[0].getsockname()[1]
