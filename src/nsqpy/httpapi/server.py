"""Listening: aiohttp's low-level ``Server`` set up as NSQ's Go ``http.Server`` behaves
(no access log, long keep-alive, 1 MiB request lines and header fields, aiohttp's own
diagnostics silenced), on a host/port, an already-bound socket or a unix socket."""
from __future__ import annotations

import asyncio
import logging

from aiohttp.web_server import Server

__all__ = ["HTTPServerHandle", "serve"]

# aiohttp's own diagnostics (malformed requests etc.) must not leak onto a daemon's stderr.
_quiet_logger = logging.getLogger("nsqpy.httpapi.aiohttp")
_quiet_logger.addHandler(logging.NullHandler())
_quiet_logger.propagate = False


class HTTPServerHandle:
    """A running listener: ``await handle.close()`` stops it. ``api`` is the object that
    was passed to :func:`serve` (the daemon's API, for tests and introspection)."""

    def __init__(self, server, web_server, api=None):
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
        except (TimeoutError, Exception):  # noqa: BLE001
            pass


async def serve(handler, *, host: str | None = None, port: int | None = None, ssl=None,
                sock=None, path: str | None = None, api=None) -> HTTPServerHandle:
    """Serve ``await handler(request)`` on ``host:port`` (``ssl``: an SSLContext for
    HTTPS), on the bound listening socket ``sock``, or on the unix socket ``path``."""
    web_server = Server(handler, access_log=None, logger=_quiet_logger,
                        keepalive_timeout=24 * 3600.0, max_line_size=1 << 20,
                        max_field_size=1 << 20, lingering_time=10.0)
    loop = asyncio.get_running_loop()
    if path is not None:
        server = await loop.create_unix_server(web_server, path=path, backlog=1024)
    elif sock is not None:
        server = await loop.create_server(web_server, sock=sock, ssl=ssl, backlog=1024)
    else:
        server = await loop.create_server(web_server, host or None, port, ssl=ssl,
                                          reuse_address=True, backlog=1024)
    return HTTPServerHandle(server, web_server, api)
