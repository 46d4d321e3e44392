"""Listening sockets for the daemons.

``loop.create_server(factory, "127.0.0.1", port)`` makes uvloop encode the host with the
``idna`` codec, which imports ``encodings.idna``, ``stringprep`` and ``unicodedata``
(~0.4 MiB of RSS in every daemon).  An IP literal needs no name resolution, so it is
bound here directly; a host name or the wildcard goes through ``create_server`` as
before (same options: SO_REUSEADDR, backlog 1024).
"""
from __future__ import annotations

import socket

BACKLOG = 1024


def _ip_family(host: str) -> int:
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, host)
            return family
        except OSError:
            continue
    return 0


async def create_tcp_server(loop, factory, host: str | None, port: int, ssl=None):
    """``loop.create_server`` for ``host:port`` (``host`` empty/None: every address)."""
    family = _ip_family(host) if host else 0
    if not family:
        return await loop.create_server(factory, host or None, port, ssl=ssl,
                                        reuse_address=True, backlog=BACKLOG)
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((host, port))
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return await loop.create_server(factory, sock=sock, ssl=ssl, backlog=BACKLOG)
