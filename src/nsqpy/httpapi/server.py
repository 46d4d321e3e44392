"""Listening: a lean HTTP/1.1 server on ``asyncio.Protocol`` (uvloop), behaving like NSQ's
Go ``http.Server`` where clients can see it, on a host/port, a bound socket or a unix
socket, with or without TLS.

* keep-alive by default for HTTP/1.1, ``Connection: close`` and HTTP/1.0 semantics
  (``Connection: keep-alive`` echoed), pipelined requests answered in order;
* bodies by Content-Length or chunked, ``Expect: 100-continue`` answered on the first
  body read; a body the handler leaves unread is discarded (the router asks for a close,
  as Go does, when it is large, unsized or never continued — then the connection
  half-closes and lingers 0.5 s so the client sees the answer);
* responses carry ``Date`` and ``Content-Length`` (none for HEAD bodies, 1xx/204/304);
* a malformed request gets Go's plain ``400 Bad Request`` (``431`` past the 1 MiB header
  limit, ``501``/``505``) and the connection closes;
* bounded memory per connection: at most ~1 MiB of head and 256 KiB of buffered body or
  pipelined input (reading pauses beyond that, and while the client reads no responses);
* the hot path (a keep-alive ``/pub``) parses every complete request of one read, runs
  each handler coroutine synchronously while it does not suspend (``coro.send(None)``;
  one that suspends goes on in a Task) and answers all of them with one ``write``.

Handlers get a :class:`Request` (:mod:`.body` has its body stream).
"""
from __future__ import annotations

import asyncio
import socket
import time
import types

from ..busypoll import busy_poll as _busy_poll
from .body import Body
from .h1 import (MAX_HEADER_BYTES, ChunkedDecoder, Headers, ParseError, body_framing,
                 error_response, find_head_end, parse_head, response_head)
from .request import parse_query

__all__ = ["HTTPServerHandle", "Request", "serve"]

HIGH_WATER = 256 << 10
LINGER = 0.5           # Go's rstAvoidanceDelay before closing with unread input
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_CLOSE = b"Connection: close\r\n"
_KEEP_ALIVE = b"Connection: keep-alive\r\n"
_EMPTY_BODY = Body(None, b"")
_INTERNAL = (b'{"message":"INTERNAL_ERROR"}',
             {"Content-Type": "application/json; charset=utf-8",
              "X-Nsq-Content-Type": "nsq; version=1.0"})


def _has_token(value: str, token: str) -> bool:
    return any(p.strip().lower() == token for p in value.split(","))


_RESPONSES: dict = {}
"""Small responses' bytes for the current second (they carry its Date)."""
_cache_sec = [0]
_time = time.time

_HEADS: dict = {}
"""Parsed heads by their bytes: keep-alive clients repeat theirs (the headers object is
shared, so handlers must not modify request headers)."""


def _parse(head: bytes) -> tuple:
    """``(method, target, version, headers, chunked, length, keep_alive)`` of a head."""
    method, target, version, headers = parse_head(head)
    chunked, length = body_framing(version, headers)
    conn = headers._first.get("connection")
    if version >= (1, 1):
        keep_alive = conn is None or not _has_token(conn, "close")
    else:
        keep_alive = conn is not None and _has_token(conn, "keep-alive")
    ent = (method, target, version, headers, chunked, length, keep_alive)
    if len(head) <= 1024:
        if len(_HEADS) >= 256:
            _HEADS.clear()
        _HEADS[head] = ent
    return ent


class Request:
    """One request as handlers see it: ``method``, ``raw_path`` (the request target, e.g.
    ``/pub?topic=t``), ``path`` (decoded, no query), ``query_string``, ``query`` (a dict,
    lenient parse), ``version`` ((1, 1)), ``headers`` (case-insensitive), ``content_length``
    (None when absent or chunked), ``content`` (the body stream), ``transport``,
    ``protocol`` and ``peername``; ``continued`` once ``100 Continue`` was sent."""
    __slots__ = ("content", "content_length", "continued", "headers", "keep_alive", "method",
                 "protocol", "raw_path", "version")

    def __init__(self, protocol, method: str, raw_path: str, version: tuple, headers: Headers,
                 content_length, content: Body):
        self.protocol = protocol
        self.method = method
        self.raw_path = raw_path
        self.version = version
        self.headers = headers
        self.content_length = content_length
        self.content = content
        self.continued = False
        self.keep_alive = True
        if content._proto is not None:
            content.req = self

    @property
    def transport(self):
        return self.protocol.transport

    @property
    def peername(self):
        return self.protocol.peername

    @property
    def path(self) -> str:
        from .pct import unquote_to_bytes
        raw = self.raw_path
        if raw[:1] != "/":
            i = raw.find("://")
            if i >= 0:
                j = raw.find("/", i + 3)
                raw = raw[j:] if j >= 0 else "/"
        p = raw.partition("?")[0]
        if "%" in p:
            p = unquote_to_bytes(p).decode("utf-8", "surrogateescape")
        return p

    @property
    def query_string(self) -> str:
        return self.raw_path.partition("?")[2].partition("#")[0]

    @property
    def query(self) -> dict:
        return parse_query(self.query_string, strict=False)

    def send_continue(self) -> None:
        """Answer ``Expect: 100-continue`` (once, HTTP/1.1, while the body is unread)."""
        if self.continued:
            return
        self.continued = True
        expect = self.headers.get("Expect")
        if (expect is not None and self.version >= (1, 1)
                and expect.lower() == "100-continue" and not self.content.complete):
            self.protocol.write_now(_CONTINUE)

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.raw_path}>"


@types.coroutine
def _continue(coro, yielded):
    """Drive ``coro`` on from its first suspension (it yielded ``yielded``) inside a Task."""
    while True:
        try:
            sent = yield yielded
        except BaseException as e:  # noqa: BLE001 - forwarded into the handler
            try:
                yielded = coro.throw(e)
            except StopIteration as s:
                return s.value
        else:
            try:
                yielded = coro.send(sent)
            except StopIteration as s:
                return s.value


async def _resume(coro, yielded):
    return await _continue(coro, yielded)


class HTTPProtocol(asyncio.Protocol):
    """One connection (see the module docstring)."""

    def __init__(self, server: "HTTPServerHandle"):
        self.server = server
        self.handler = server.handler
        self.loop = server.loop
        self._poke = server.poke   # BusyPoll.poke, or None
        self.transport = None
        self.peername = None
        self._buf = bytearray()    # unparsed input (a partial head, or pipelined requests)
        self._scan = 0             # where the next head-end search may start in _buf
        self._out: list = []
        self._in_process = False
        self._busy = None          # the Request whose handler is running asynchronously
        self._body = None          # the Body still arriving from the socket
        self._decoder = None       # its ChunkedDecoder (None: Content-Length)
        self._left = 0             # its Content-Length bytes still to come
        self._discard = False      # drop the rest of an unread body
        self._closing = False
        self._read_paused = False
        self._write_paused = False
        self._last_post = False
        self._linger = None
        self._eof = False

    # -- asyncio callbacks --------------------------------------------------------------------
    def connection_made(self, transport) -> None:
        self.transport = transport
        self.peername = transport.get_extra_info("peername")
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family != socket.AF_UNIX:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        self.server.conns.add(self)

    def connection_lost(self, exc) -> None:
        self._closing = True
        self.server.conns.discard(self)
        if self._linger is not None:
            self._linger.cancel()
        body = self._body
        if body is not None:
            body.set_exception(ConnectionResetError("connection lost"))
        self._buf = bytearray()

    def pause_writing(self) -> None:
        self._write_paused = True
        self._update_reading()

    def resume_writing(self) -> None:
        self._write_paused = False
        self._kick()

    def eof_received(self):
        self._eof = True
        if self._body is not None:
            self._body.set_exception(ConnectionResetError("unexpected EOF in request body"))
            self._body = None
        if self._busy is None and not self._closing:
            self._close_now()
        return True  # keep the transport open to write a running handler's answer

    def data_received(self, data: bytes) -> None:
        if self._closing:
            return
        if self._poke is not None:
            self._poke()
        if self._body is not None:
            data = self._feed_body(data)
            if not data:
                return
        buf = self._buf
        if self._busy is not None or self._write_paused or self._body is not None:
            buf += data
            self._update_reading()
            return
        if buf:
            buf += data
            if find_head_end(buf, self._scan) is None:
                if len(buf) > MAX_HEADER_BYTES:
                    self._fail(ParseError(431))
                else:
                    self._scan = max(0, len(buf) - 2)
                return
            data = bytes(buf)
            buf.clear()
            self._scan = 0
        self._process(data)

    # -- requests -----------------------------------------------------------------------------
    def _process(self, data: bytes) -> None:
        """Serve every complete request in ``data``; keep the rest for later."""
        self._in_process = True
        out = self._out
        sync = self.server.sync_handler
        pos = 0
        n = len(data)
        try:
            while pos < n:
                if self._last_post and data[pos] in b"\r\n":
                    # Go skips up to 4 stray CR/LF after a POST (old buggy clients)
                    k = 0
                    while pos < n and k < 4 and data[pos] in b"\r\n":
                        pos += 1
                        k += 1
                    if pos >= n:
                        break
                he = find_head_end(data, pos)
                if he is None:
                    if n - pos > MAX_HEADER_BYTES:
                        raise ParseError(431)
                    break
                hend, bstart = he
                if hend - pos > MAX_HEADER_BYTES:
                    raise ParseError(431)
                head = data[pos:hend]
                ent = _HEADS.get(head)
                if ent is None:
                    ent = _parse(head)
                method, target, version, headers, chunked, length, keep_alive = ent
                self._last_post = method == "POST"
                if chunked:
                    body = Body(self)
                    self._decoder = ChunkedDecoder()
                    self._body = body
                    pos = self._chunks(data, bstart)
                    cl = None
                elif length == 0:
                    body = _EMPTY_BODY
                    pos = bstart
                    cl = 0 if "content-length" in headers._first else None
                else:
                    end = bstart + length
                    cl = length
                    if end <= n:
                        body = Body(None, data[bstart:end])
                        pos = end
                    else:
                        body = Body(self, data[bstart:])
                        self._body = body
                        self._left = end - n
                        pos = n
                req = Request(self, method, target, version, headers, cl, body)
                req.keep_alive = keep_alive
                resp = sync(req) if sync is not None else None
                if resp is None:
                    resp = self._run(req)
                if resp is None:  # the handler suspended: go on when it is done
                    if pos < n:
                        self._buf += data[pos:]
                    return
                if not self._respond(req, resp):
                    return
                if self._write_paused or self._body is not None:
                    self._buf += data[pos:]
                    pos = n
                    self._scan = 0
                    self._update_reading()
                    break
            if pos < n:
                rest = data[pos:]
                self._buf += rest
                self._scan = max(0, len(rest) - 2)
                self._update_reading()
        except ParseError as e:
            self._fail(e)
        finally:
            self._in_process = False
            if out and not self._closing:
                if len(self.server.conns) > 1:
                    self.server.flush_soon(self)    # with the other responses of this turn
                else:
                    self._flush()

    def _run(self, req: Request):
        """The handler's response, or None once it continues in a Task."""
        coro = self.handler(req)
        if self.server.eager:
            try:
                yielded = coro.send(None)
            except StopIteration as e:
                return e.value
            except Exception:  # noqa: BLE001 - the router catches handler errors itself
                return _internal_error()
            task = self.loop.create_task(_resume(coro, yielded))
        else:
            task = self.loop.create_task(coro)
        self._busy = req
        self.server.tasks.add(task)
        task.add_done_callback(lambda t, req=req: self._handler_done(req, t))
        return None

    def _handler_done(self, req: Request, task) -> None:
        self.server.tasks.discard(task)
        self._busy = None
        if self._closing or self.transport is None or self.transport.is_closing():
            return
        if task.cancelled() or task.exception() is not None:
            resp = _internal_error()
        else:
            resp = task.result()
        if self._respond(req, resp):
            self._flush()
            self._kick()

    def _respond(self, req: Request, resp) -> bool:
        """Queue ``resp``; False when the connection is closing now."""
        body_left = req.content is self._body and self._body is not None
        if not hasattr(resp, "fields"):
            resp = _internal_error()
        close = resp.close or not req.keep_alive
        if body_left and not close:
            self._discard = True  # drop the rest of the unread body, keep the connection
            self._body.clear()
        status = resp.status
        body = resp.body
        version = req.version
        if close:
            conn = _CLOSE if version >= (1, 1) else b""
        else:
            conn = _KEEP_ALIVE if version < (1, 1) else b""
        fields = resp.fields()
        head = req.method == "HEAD"
        cacheable = resp.reason is None and type(body) is bytes and len(body) <= 512
        if cacheable:
            now = int(_time())
            if now != _cache_sec[0]:
                _cache_sec[0] = now
                _RESPONSES.clear()
            key = (status, body, fields, version, conn, head)
            wire = _RESPONSES.get(key)
        else:
            wire = None
        if wire is None:
            if status < 200 or status == 204 or status == 304:
                length = None
                body = b""
            else:
                length = len(body)
                if head:
                    body = b""
            wire = response_head(version, status, resp.reason, fields, length, conn)
            if body:
                wire += body
            if cacheable and len(_RESPONSES) < 256:
                _RESPONSES[key] = wire
        self._out.append(wire)
        if close:
            self._flush()
            if body_left or self._buf:
                self._linger_close()
            else:
                self._close_now()
            return False
        return True

    def _kick(self) -> None:
        """Go on with buffered input once nothing blocks it."""
        if self._closing or self._busy is not None or self._write_paused or self._body:
            self._update_reading()
            return
        buf = self._buf
        self._scan = 0
        if buf and find_head_end(buf, 0) is not None:
            data = bytes(buf)
            buf.clear()
            self._process(data)
        if self._eof and self._busy is None and self._body is None and not self._closing:
            self._close_now()
            return
        self._update_reading()

    # -- bodies -------------------------------------------------------------------------------
    def _chunks(self, data, pos: int) -> int:
        """Feed chunked framing from ``data[pos:]`` to the current body; returns where the
        body ended (len(data) when it goes on)."""
        dec = self._decoder
        chunk, pos = dec.feed(data, pos)
        body = self._body
        if chunk and not self._discard:
            body.feed(chunk)
        if dec.done:
            self._end_body()
        return pos

    def _feed_body(self, data: bytes) -> bytes:
        """Give the arriving body its bytes; returns what follows the body."""
        if self._decoder is not None:
            try:
                end = self._chunks(data, 0)
            except ParseError as e:
                self._body.set_exception(e)
                self._body = None
                self._fail(e, respond=self._busy is None)
                return b""
            return data[end:]
        left = self._left
        if len(data) < left:
            self._left = left - len(data)
            if not self._discard:
                self._body.feed(data)
                self._update_reading()
            return b""
        if not self._discard:
            self._body.feed(data[:left] if left < len(data) else data)
        self._left = 0
        self._end_body()
        return data[left:]

    def _end_body(self) -> None:
        body = self._body
        self._body = None
        self._decoder = None
        if body is not None:
            body.feed_eof()
        if self._discard:
            self._discard = False
            self.loop.call_soon(self._kick)

    def body_consumed(self) -> None:
        """A handler read from the arriving body (reading may resume)."""
        self._update_reading()

    def _update_reading(self) -> None:
        transport = self.transport
        if transport is None or self._closing:
            return
        body = self._body
        pause = (self._write_paused or len(self._buf) > HIGH_WATER
                 or (body is not None and body.buffered() > HIGH_WATER))
        if pause != self._read_paused:
            self._read_paused = pause
            try:
                if pause:
                    transport.pause_reading()
                else:
                    transport.resume_reading()
            except (RuntimeError, AttributeError):  # closing / not supported
                pass

    # -- writing / closing --------------------------------------------------------------------
    def write_now(self, data: bytes) -> None:
        """Write ``data`` after any responses already queued (100 Continue)."""
        self._out.append(data)
        if not self._in_process:
            self._flush()

    def _flush(self) -> None:
        out = self._out
        if not out or self.transport is None:
            return
        data = out[0] if len(out) == 1 else b"".join(out)
        out.clear()
        if not self.transport.is_closing():
            self.transport.write(data)

    def _fail(self, err: ParseError, respond: bool = True) -> None:
        """Go's answer to an unreadable request, then close."""
        if self._closing:
            return
        if respond:
            self._out.append(error_response(err.status, err.text))
            self._flush()
        self._linger_close()

    def _close_now(self) -> None:
        self._closing = True
        self._out.clear()
        if self.transport is not None:
            self.transport.close()

    def _linger_close(self) -> None:
        """Half-close, drop input for a while, then close (so the client reads the
        answer instead of a reset)."""
        self._closing = True
        self._buf = bytearray()
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        try:
            if transport.can_write_eof():
                transport.write_eof()
        except (OSError, RuntimeError, NotImplementedError):
            pass
        if self._read_paused:
            self._read_paused = False
            try:
                transport.resume_reading()
            except (RuntimeError, AttributeError):
                pass
        self._linger = self.loop.call_later(LINGER, transport.close)

    def close_idle(self) -> bool:
        """Close if no handler is running (server shutdown); True when it did."""
        if self._busy is None:
            self._close_now()
            return True
        return False

    def abort(self) -> None:
        self._closing = True
        if self.transport is not None:
            self.transport.abort()


def _internal_error():
    from .responses import Resp
    body, headers = _INTERNAL
    return Resp(status=500, body=body, headers=headers)


class HTTPServerHandle:
    """A running listener: ``await handle.close()`` stops it. ``api`` is the object that
    was passed to :func:`serve` (the daemon's API, for tests and introspection)."""

    def __init__(self, handler, loop, api=None, eager: bool = True, sync_handler=None,
                 busy_poll: bool = False):
        self.handler = handler
        self.poke = _busy_poll(loop).poke if busy_poll else None
        self.sync_handler = sync_handler
        self.loop = loop
        self.api = api
        self.eager = eager
        self.server = None
        self.conns: set = set()
        self.tasks: set = set()
        self.pending: list = []      # connections with responses to write this turn

    @property
    def sockets(self):
        return self.server.sockets

    def protocol(self) -> HTTPProtocol:
        return HTTPProtocol(self)

    def flush_soon(self, conn) -> None:
        """Write ``conn``'s responses once this loop turn's reads are all handled: the
        responses of one turn go out together, so a client woken by the first write is
        still running when the next ones arrive (a wake-up is most of a small write's
        cost)."""
        pending = self.pending
        if not pending:
            self.loop.call_soon(self._flush_pending)
        pending.append(conn)

    def _flush_pending(self) -> None:
        pending = self.pending
        self.pending = []
        for conn in pending:
            conn._flush()

    async def close(self, grace: float = 1.0) -> None:
        """Stop listening, close idle connections, give running handlers ``grace`` seconds,
        then drop the remaining connections."""
        self.server.close()
        for conn in list(self.conns):
            conn.close_idle()
        if self.tasks:
            await asyncio.wait(list(self.tasks), timeout=grace)
        for conn in list(self.conns):
            if not conn.close_idle():
                conn.abort()
        try:
            await asyncio.wait_for(self.server.wait_closed(), 2.0)
        except (TimeoutError, Exception):  # noqa: BLE001
            pass


async def serve(handler, *, host: str | None = None, port: int | None = None, ssl=None,
                sock=None, path: str | None = None, api=None, eager: bool = True,
                sync_handler=None, busy_poll: bool = False) -> HTTPServerHandle:
    """Serve ``await handler(request)`` on ``host:port`` (``ssl``: an SSLContext for
    HTTPS), on the bound listening socket ``sock``, or on the unix socket ``path``.
    ``eager``: start each handler synchronously (handlers that need ``current_task()``
    before their first suspension — aiohttp's client timeouts — need ``eager=False``).
    ``sync_handler(request)``: tried first; its response, or None to run ``handler``.
    ``busy_poll``: poll instead of sleeping between dense requests (:mod:`nsqpy.busypoll`)."""
    loop = asyncio.get_running_loop()
    handle = HTTPServerHandle(handler, loop, api, eager, sync_handler, busy_poll)
    factory = handle.protocol
    if path is not None:
        server = await loop.create_unix_server(factory, path=path, backlog=1024, ssl=ssl)
    elif sock is not None:
        server = await loop.create_server(factory, sock=sock, ssl=ssl, backlog=1024)
    else:
        from ..listen import create_tcp_server
        server = await create_tcp_server(loop, factory, host, port, ssl=ssl)
    handle.server = server
    return handle
