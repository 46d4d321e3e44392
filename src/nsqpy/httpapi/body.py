"""A request body as handlers read it (``request.content``): already complete (the usual
case — the whole body came with the head) or still arriving from the connection, which
feeds it (:mod:`.server`) and pauses reading while more than 256 KiB wait unread.

The first read of a body still to come sends ``100 Continue`` when the client expects it.
"""
from __future__ import annotations

import asyncio

__all__ = ["Body"]


class Body:
    """``read(n=-1)``, ``read_nowait(n=-1)``, ``readexactly(n)``, ``at_eof()`` — the subset
    of ``asyncio.StreamReader`` handlers use. ``complete``: every byte has arrived."""
    __slots__ = ("_buf", "_eof", "_exc", "_proto", "_waiter", "complete", "req")

    def __init__(self, proto, data=b""):
        self._proto = proto
        self._buf = data
        self.complete = proto is None
        self._eof = proto is None
        self._exc = None
        self._waiter = None
        self.req = None

    # -- the reading side (handlers) ----------------------------------------------------------
    def at_eof(self) -> bool:
        return self._eof and not self._buf

    is_eof = at_eof

    def buffered(self) -> int:
        return len(self._buf)

    def _take(self, n: int) -> bytes:
        buf = self._buf
        if n < 0 or n >= len(buf):
            data = bytes(buf) if type(buf) is not bytes else buf
            self._buf = b""
        else:
            data = bytes(buf[:n])
            if type(buf) is bytearray:
                del buf[:n]
            else:
                self._buf = buf[n:]
        if self._proto is not None:
            self._proto.body_consumed()
        return data

    def read_nowait(self, n: int = -1) -> bytes:
        if not self._buf and self._exc is not None:
            raise self._exc
        return self._take(n)

    async def _wait(self) -> None:
        req = self.req
        if req is not None and not req.continued:
            req.send_continue()
        if self._eof or self._buf:
            return
        fut = self._waiter = asyncio.get_running_loop().create_future()
        try:
            await fut
        finally:
            self._waiter = None

    async def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes (all of the rest for ``n < 0``); b"" at the end."""
        if n < 0:
            parts = []
            while True:
                chunk = await self.read(1 << 16)
                if not chunk:
                    return b"".join(parts)
                parts.append(chunk)
        if n == 0:
            return b""
        while not self._buf and not self._eof:
            await self._wait()
        if self._buf:
            return self._take(n)
        if self._exc is not None:
            raise self._exc
        return b""

    async def readexactly(self, n: int) -> bytes:
        parts = []
        got = 0
        while got < n:
            chunk = await self.read(n - got)
            if not chunk:
                raise asyncio.IncompleteReadError(b"".join(parts), n)
            parts.append(chunk)
            got += len(chunk)
        return b"".join(parts)

    # -- the feeding side (the connection) -------------------------------------------------------
    def _wake(self) -> None:
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    def feed(self, data: bytes) -> None:
        buf = self._buf
        if not buf:
            self._buf = data
        else:
            if type(buf) is not bytearray:
                buf = self._buf = bytearray(buf)
            buf += data
        self._wake()

    def feed_eof(self) -> None:
        self._eof = True
        self.complete = True
        self._wake()

    def set_exception(self, exc: BaseException) -> None:
        if not self._eof:
            self._exc = exc
            self._eof = True
        self._wake()

    def clear(self) -> None:
        self._buf = b""
