"""One nsqd TCP connection: an :class:`asyncio.Protocol` speaking protocol V2.

Bootstrap (semantics §6.1): TCP connect (``dial_timeout``), magic ``"  V2"``, IDENTIFY
with feature negotiation, then TLS → snappy → deflate upgrades each ending with ``OK``,
then AUTH when nsqd requires it.  Until :meth:`Conn.start` the connection reads frames
one at a time from a raw buffer so that a compression switch can re-decode bytes that
arrived together with the IDENTIFY reply; afterwards every read goes through the
(optional) decompressor and a :class:`~nsqpy.protocol.frames.FrameDecoder` and all
frames of one read are dispatched in a loop.

Writes are collected in a list and flushed once per read (everything a synchronous
handler answers while one read is dispatched goes out in one ``write``) or, for writes
made elsewhere, once per event-loop iteration (``call_soon``); a negotiated compressor
encodes each flush as one block.

Frames (§6.2): ``_heartbeat_`` → ``NOP`` at once; ``CLOSE_WAIT`` → close when nothing is
in flight; other responses and error frames resolve the oldest command waiting for a
reply (FIFO), except the non-fatal ``E_FIN_FAILED``/``E_REQ_FAILED``/``E_TOUCH_FAILED``
which are only reported; messages become :class:`~nsqpy.client.message.Message` objects
handed to the delegate.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import struct
from typing import Any

from ..protocol import encoders as enc
from ..protocol.compression import (CompressionError, DeflateDecoder, DeflateEncoder,
                                    SnappyDecoder, SnappyEncoder)
from ..protocol.errors import ProtocolError
from ..protocol.frames import FrameDecoder, HTTP_FRAME_SIZE
from .config import Config
from .errors import AuthRequiredError, ConnectionClosedError, IdentifyError, ResponseError
from .message import Message

__all__ = ["Conn", "ConnDelegate", "split_address"]

log = logging.getLogger("nsqpy.client")

_NOP = b"NOP\n"
_HEARTBEAT = b"_heartbeat_"
_CLOSE_WAIT = b"CLOSE_WAIT"
_NON_FATAL = (b"E_FIN_FAILED", b"E_REQ_FAILED", b"E_TOUCH_FAILED")
_MAX_FRAME = (1 << 30) - 1
_unpack_msg_hdr = struct.Struct(">qH").unpack_from
_unpack_i32 = struct.Struct(">i").unpack_from


def split_address(address: str) -> tuple[str, int]:
    """``"host:port"`` / ``"[::1]:4150"`` → ``(host, port)``; the port is mandatory."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"invalid nsqd address {address!r} (want host:port)")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port)


class ConnDelegate:
    """Callbacks a :class:`Conn` makes; the defaults do nothing."""

    def _conn_message(self, conn: "Conn", msg: Message) -> None:
        msg.finish()

    def _conn_finished(self, conn: "Conn") -> None:
        pass

    def _conn_requeued(self, conn: "Conn", backoff: bool) -> None:
        pass

    def _conn_error(self, conn: "Conn", err: ResponseError) -> None:
        log.error("(%s) %s", conn.address, err)

    def _conn_response(self, conn: "Conn", data: bytes) -> None:
        log.warning("(%s) unexpected response %r", conn.address, data[:100])

    def _conn_closed(self, conn: "Conn", exc: BaseException | None) -> None:
        pass


class Conn(asyncio.Protocol):
    """A connection to one nsqd.

    ``rdy``, ``max_rdy``, ``last_rdy_time``, ``last_msg_time`` and ``in_flight`` are the
    per-connection state the RDY controller reads; ``identify_response`` and
    ``auth_response`` hold the parsed JSON replies.
    """

    def __init__(self, address: str, config: Config, delegate: ConnDelegate | None = None) -> None:
        self.address = address
        self.host, self.port = split_address(address)
        self.config = config
        self.delegate = delegate if delegate is not None else ConnDelegate()
        self.identify_response: dict[str, Any] = {}
        self.auth_response: dict[str, Any] | None = None
        # RDY bookkeeping (read/written by the RDY controller)
        self.rdy = 0
        self.max_rdy = 2500
        self.last_rdy_time = 0.0
        self.last_msg_time = 0.0
        self.in_flight = 0
        self.rdy_retry: asyncio.TimerHandle | None = None
        # state
        self.closing = False              # CLS sent / stop requested
        self.close_wait = False           # nsqd acknowledged CLS
        self.connected = False
        self.lost = False
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._closed_fut: asyncio.Future[None] = self._loop.create_future()
        self._pending: collections.deque[asyncio.Future[bytes]] = collections.deque()
        self._hs = True
        self._hs_buf = bytearray()
        self._decoder = FrameDecoder(_MAX_FRAME)
        self._decomp: SnappyDecoder | DeflateDecoder | None = None
        self._comp: SnappyEncoder | DeflateEncoder | None = None
        self._wbuf: list[bytes] = []
        self._flush_scheduled = False
        self._last_recv = 0.0
        self._read_timer: asyncio.TimerHandle | None = None
        self._write_timer: asyncio.TimerHandle | None = None
        self._force_close_timer: asyncio.TimerHandle | None = None
        self._on_message = self.delegate._conn_message
        self._exc: BaseException | None = None

    def __repr__(self) -> str:
        return f"<Conn {self.address} rdy={self.rdy} in_flight={self.in_flight}>"

    # -- bootstrap -------------------------------------------------------------------------
    async def connect(self) -> dict[str, Any]:
        """Open the connection, IDENTIFY, upgrade and AUTH.  Returns the IDENTIFY reply.

        Raises ``OSError``/``TimeoutError`` (connect), :class:`ResponseError`,
        :class:`IdentifyError`, :class:`AuthRequiredError` or
        :class:`ConnectionClosedError`; the socket is closed on failure."""
        cfg = self.config
        local = None
        if cfg.local_addr:
            lhost, lport = split_address(cfg.local_addr) if ":" in cfg.local_addr \
                else (cfg.local_addr, 0)
            local = (lhost, lport)
        try:
            async with asyncio.timeout(cfg.dial_timeout):
                await self._loop.create_connection(lambda: self, self.host, self.port,
                                                   local_addr=local)
        except BaseException:
            self._closed_fut.cancel()
            raise
        try:
            async with asyncio.timeout(cfg.read_timeout):
                await self._bootstrap()
        except BaseException as e:
            self.abort(e if isinstance(e, Exception) else None)
            raise
        return self.identify_response

    async def _bootstrap(self) -> None:
        cfg = self.config
        assert self._transport is not None
        self._transport.write(enc.MAGIC_V2 + enc.encode_identify(cfg.identify_body()))
        data = await self._expect()
        resp: dict[str, Any] = {}
        if data.startswith(b"{"):
            try:
                resp = json.loads(data)
            except ValueError as e:
                raise IdentifyError(f"invalid IDENTIFY response {data[:200]!r}") from e
        self.identify_response = resp
        self.max_rdy = int(resp.get("max_rdy_count", 2500))
        if resp.get("tls_v1"):
            await self._upgrade_tls()
        if resp.get("snappy"):
            self._switch_compression(SnappyEncoder(), SnappyDecoder())
            await self._expect_ok("snappy")
        if resp.get("deflate"):
            level = int(resp.get("deflate_level", cfg.deflate_level))
            self._switch_compression(DeflateEncoder(level), DeflateDecoder())
            await self._expect_ok("deflate")
        if resp.get("auth_required"):
            if not cfg.auth_secret:
                raise AuthRequiredError("Auth Required")
            auth = await self.command(enc.encode_auth(cfg.auth_secret))
            try:
                self.auth_response = json.loads(auth)
            except ValueError as e:
                raise IdentifyError(f"invalid AUTH response {auth[:200]!r}") from e
            log.info("(%s) Auth accepted. Identity %r %s Permissions: %s", self.address,
                     self.auth_response.get("identity"),
                     self.auth_response.get("identity_url"),
                     self.auth_response.get("permission_count"))
        self.connected = True

    async def _upgrade_tls(self) -> None:
        assert self._transport is not None
        ctx = self.config.ssl_context()
        try:
            tr = await self._loop.start_tls(self._transport, self, ctx,
                                            server_hostname=self.host)
        except (OSError, ValueError) as e:
            raise IdentifyError(f"TLS handshake failed: {e}") from e
        if tr is None:
            raise ConnectionClosedError("connection closed during TLS handshake")
        self._transport = tr
        await self._expect_ok("TLS")

    def _switch_compression(self, comp: SnappyEncoder | DeflateEncoder,
                            decomp: SnappyDecoder | DeflateDecoder) -> None:
        # bytes after the last frame taken were produced by the new encoder already
        rest = bytes(self._hs_buf)
        self._hs_buf.clear()
        self._comp, self._decomp = comp, decomp
        if rest:
            self._hs_buf += decomp.decode(rest)

    async def _expect(self) -> bytes:
        fut: asyncio.Future[bytes] = self._loop.create_future()
        self._pending.append(fut)
        self._hs_process()
        return await fut

    async def _expect_ok(self, what: str) -> None:
        data = await self._expect()
        if data != b"OK":
            raise IdentifyError(f"{what} upgrade: expected OK, got {data[:100]!r}")

    async def subscribe(self, topic: str, channel: str) -> None:
        """``SUB topic channel`` and wait for ``OK`` (raises :class:`ResponseError`)."""
        await self.command(enc.encode_sub(topic, channel))

    def start(self) -> None:
        """End the bootstrap: from now on reads are decoded in bulk and dispatched."""
        if not self._hs:
            return
        self._hs = False
        rest = bytes(self._hs_buf)
        self._hs_buf = bytearray()
        self._arm_read_timer()
        if rest:
            self._dispatch(rest)

    # -- commands --------------------------------------------------------------------------
    def command(self, data: bytes) -> "asyncio.Future[bytes]":
        """Write a command that nsqd answers (PUB, MPUB, DPUB, SUB, AUTH …); the future
        gets the response data, or :class:`ResponseError` for an error frame."""
        fut: asyncio.Future[bytes] = self._loop.create_future()
        if self.lost:
            fut.set_exception(ConnectionClosedError(f"connection to {self.address} closed"))
            return fut
        self._pending.append(fut)
        if self._hs:
            self._write_now(data)
            self._hs_process()
        else:
            self._write(data)
        return fut

    def send(self, data: bytes) -> None:
        """Queue a command without a reply (FIN, REQ, TOUCH, RDY, NOP, CLS)."""
        if self._hs:
            self._write_now(data)
        else:
            self._write(data)

    def send_rdy(self, count: int) -> None:
        """Write ``RDY count`` and record it (the controller decides the count)."""
        self.rdy = count
        self.last_rdy_time = self._loop.time()
        self._write(b"RDY %d\n" % count)

    def start_close(self, timeout: float = 30.0) -> None:
        """Graceful close: send ``CLS``; after ``CLOSE_WAIT`` the socket closes as soon
        as no message is in flight; after ``timeout`` seconds it closes regardless."""
        if self.closing or self.lost:
            return
        self.closing = True
        if self.connected and not self._hs:
            self._write(b"CLS\n")
        else:
            self.close()
            return
        self._force_close_timer = self._loop.call_later(timeout, self._force_close)

    def _force_close(self) -> None:
        if not self.lost:
            log.warning("(%s) closing with %d message(s) still in flight", self.address,
                        self.in_flight)
            self.close()

    def close(self) -> None:
        """Flush pending writes and close the socket."""
        self.closing = True
        if self._transport is not None and not self.lost:
            self._flush()
            self._transport.close()

    def abort(self, exc: BaseException | None = None) -> None:
        """Close at once, dropping unwritten data."""
        if exc is not None and self._exc is None:
            self._exc = exc
        self.closing = True
        if self._transport is not None and not self.lost:
            self._transport.abort()

    async def wait_closed(self) -> None:
        """Wait until the socket is closed."""
        if not self._closed_fut.done():
            await asyncio.shield(self._closed_fut)

    # -- message responses (called through Message) ----------------------------------------
    def _msg_finish(self, msg: Message) -> None:
        self._write(b"FIN " + msg.id + b"\n")
        self.in_flight -= 1
        self.delegate._conn_finished(self)
        if self.close_wait and self.in_flight <= 0:
            self.close()

    def _msg_requeue(self, msg: Message, delay: float | None, backoff: bool) -> None:
        if delay is None or delay < 0:
            cfg = self.config
            delay = min(cfg.default_requeue_delay * msg.attempts, cfg.max_requeue_delay)
        self.in_flight -= 1
        # backoff first (like go-nsq): RDY 0 must reach nsqd before the REQ, or nsqd
        # could redeliver the message at once
        self.delegate._conn_requeued(self, backoff)
        self._write(b"REQ %s %d\n" % (msg.id, int(delay * 1000)))
        if self.close_wait and self.in_flight <= 0:
            self.close()

    def _msg_touch(self, msg: Message) -> None:
        self._write(b"TOUCH " + msg.id + b"\n")

    # -- writing ---------------------------------------------------------------------------
    def _write_now(self, data: bytes) -> None:
        self._wbuf.append(data)
        self._flush()

    def _write(self, data: bytes) -> None:
        self._wbuf.append(data)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._scheduled_flush)

    def _scheduled_flush(self) -> None:
        self._flush_scheduled = False
        self._flush()

    def _flush(self) -> None:
        wbuf = self._wbuf
        if not wbuf:
            return
        data = wbuf[0] if len(wbuf) == 1 else b"".join(wbuf)
        wbuf.clear()
        tr = self._transport
        if tr is None or self.lost:
            return
        if self._comp is not None:
            data = self._comp.encode(data)
        tr.write(data)

    # -- asyncio.Protocol ------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        self._last_recv = self._loop.time()

    def pause_writing(self) -> None:
        if self._write_timer is None:
            self._write_timer = self._loop.call_later(self.config.write_timeout,
                                                      self._write_timed_out)

    def resume_writing(self) -> None:
        if self._write_timer is not None:
            self._write_timer.cancel()
            self._write_timer = None

    def _write_timed_out(self) -> None:
        self._write_timer = None
        log.error("(%s) write timeout (%gs)", self.address, self.config.write_timeout)
        self.abort(TimeoutError("write timeout"))

    def _arm_read_timer(self) -> None:
        self._read_timer = self._loop.call_at(self._last_recv + self.config.read_timeout,
                                              self._check_read)

    def _check_read(self) -> None:
        self._read_timer = None
        if self.lost:
            return
        if self._loop.time() - self._last_recv >= self.config.read_timeout:
            log.error("(%s) read timeout (%gs)", self.address, self.config.read_timeout)
            self.abort(TimeoutError("read timeout"))
        else:
            self._arm_read_timer()

    def data_received(self, data: bytes) -> None:
        self._last_recv = self._loop.time()
        if self._hs:
            try:
                if self._decomp is not None:
                    data = self._decomp.decode(data)
                self._hs_buf += data
                self._hs_process()
            except (CompressionError, ProtocolError) as e:
                self._fail(e)
            return
        self._dispatch(data)

    def _dispatch(self, data: bytes) -> None:
        decoder = self._decoder
        prev_scheduled = self._flush_scheduled
        self._flush_scheduled = True        # writes made meanwhile go out in one flush
        try:
            if self._decomp is not None:
                data = self._decomp.decode(data)
            decoder.feed(data)
            next_frame = decoder.next_frame
            on_message = self._on_message
            got_msg = False
            while True:
                frame = next_frame()
                if frame is None:
                    break
                ftype, fdata = frame
                if ftype == 2:
                    if not got_msg:
                        got_msg = True
                        self.last_msg_time = self._last_recv
                    ts, attempts = _unpack_msg_hdr(fdata)
                    self.in_flight += 1
                    on_message(self, Message(fdata[10:26], fdata[26:], ts, attempts, self))
                elif ftype == 0:
                    self._on_response(fdata)
                elif ftype == 1:
                    self._on_error(fdata)
                else:
                    raise ProtocolError("E_BAD_FRAME", f"unknown frame type {ftype}")
        except (CompressionError, ProtocolError) as e:
            self._fail(e)
        finally:
            self._flush_scheduled = prev_scheduled
            if self._wbuf:
                self._flush()

    def _hs_process(self) -> None:
        buf = self._hs_buf
        while self._pending and len(buf) >= 8:
            size = _unpack_i32(buf, 0)[0]
            if size < 4 or size > _MAX_FRAME:
                hint = " (tried connecting to an HTTP port?)" if size == HTTP_FRAME_SIZE else ""
                raise ProtocolError("E_BAD_FRAME", f"invalid frame size {size}{hint}")
            if len(buf) < 4 + size:
                return
            ftype = _unpack_i32(buf, 4)[0]
            fdata = bytes(buf[8:4 + size])
            del buf[:4 + size]
            if ftype == 0 and fdata == _HEARTBEAT:
                continue
            fut = self._pending.popleft()
            if fut.done():
                continue
            if ftype == 1:
                fut.set_exception(ResponseError(fdata))
            elif ftype == 0:
                fut.set_result(fdata)
            else:
                fut.set_exception(ProtocolError("E_BAD_FRAME", f"unexpected frame type {ftype}"))

    def _on_response(self, data: bytes) -> None:
        if data == _HEARTBEAT:
            self._write(_NOP)
        elif data == _CLOSE_WAIT and self.closing:
            log.info("(%s) received CLOSE_WAIT from nsqd", self.address)
            self.close_wait = True
            if self.in_flight <= 0:
                self.close()
        elif self._pending:
            fut = self._pending.popleft()
            if not fut.done():
                fut.set_result(data)
        else:
            self.delegate._conn_response(self, data)

    def _on_error(self, data: bytes) -> None:
        err = ResponseError(data)
        if data.startswith(_NON_FATAL):
            log.warning("(%s) %s", self.address, err)
            self.delegate._conn_error(self, err)
            return
        if self._pending:
            fut = self._pending.popleft()
            if not fut.done():
                fut.set_exception(err)
                return
        log.error("(%s) error from nsqd: %s", self.address, err)
        self.delegate._conn_error(self, err)

    def _fail(self, exc: BaseException) -> None:
        log.error("(%s) %s", self.address, exc)
        self.abort(exc)

    def eof_received(self) -> bool | None:
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if self.lost:
            return
        self.lost = True
        self.closing = True
        self.connected = False
        if exc is None:
            exc = self._exc  # type: ignore[assignment]
        for timer in (self._read_timer, self._write_timer, self._force_close_timer,
                      self.rdy_retry):
            if timer is not None:
                timer.cancel()
        self._read_timer = self._write_timer = self._force_close_timer = self.rdy_retry = None
        pending, self._pending = self._pending, collections.deque()
        for fut in pending:
            if not fut.done():
                err = ConnectionClosedError(f"connection to {self.address} closed"
                                            + (f": {exc}" if exc else ""))
                fut.set_exception(err)
                fut.exception()             # mark retrieved: callers may be gone
        self._wbuf.clear()
        if not self._closed_fut.done():
            self._closed_fut.set_result(None)
        self.delegate._conn_closed(self, exc)
