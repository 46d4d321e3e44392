"""The nsqlookupd daemon: registration DB + TCP (protocol V1) + HTTP API.

``NSQLookupd(opts, log)``; ``await start()`` binds both listeners (``listen (<addr>)
failed - …`` as StartupError) and logs ``HTTP: listening on …`` / ``TCP: listening on …``;
``await stop()`` closes listeners and client connections.
"""
from __future__ import annotations

import asyncio
import errno
import os
import socket

from .. import version_string
from .http_api import start_http_server
from .registration_db import RegistrationDB
from .tcp import LookupProtocolV1

__all__ = ["NSQLookupd", "StartupError", "bind_tcp", "split_host_port", "listen_address"]


class StartupError(Exception):
    """Fatal at startup; ``str(e)`` is the upstream error text (``listen (...) failed - ...``)."""


def split_host_port(addr: str) -> tuple[str, str]:
    """Go's net.SplitHostPort; ValueError if ``addr`` is not ``host:port``."""
    if addr.startswith("["):
        end = addr.find("]")
        if end < 0:
            raise ValueError("missing ']' in address")
        host = addr[1:end]
        rest = addr[end + 1:]
        if not rest.startswith(":"):
            raise ValueError("missing port in address")
        port = rest[1:]
        if "[" in port or "]" in port:
            raise ValueError("unexpected ']' in address")
        return host, port
    i = addr.rfind(":")
    if i < 0:
        raise ValueError("missing port in address")
    host, port = addr[:i], addr[i + 1:]
    if ":" in host:
        raise ValueError("too many colons in address")
    if "[" in host or "]" in host:
        raise ValueError("unexpected '[' in address")
    return host, port


def _os_err(e: OSError) -> str:
    if e.errno is not None:
        return os.strerror(e.errno).lower()
    return str(e)


def listen_address(sock: socket.socket) -> str:
    """A bound listener as Go prints ``Listener.Addr()``: the wildcard is ``[::]``."""
    name = sock.getsockname()
    if sock.family == socket.AF_UNIX:
        return name if isinstance(name, str) else name.decode("utf-8", "surrogateescape")
    host, port = name[0], name[1]
    if sock.family == socket.AF_INET6:
        if host.startswith("::ffff:") and "." in host:
            host = host[7:]
        else:
            return f"[{host}]:{port}"
    if host == "0.0.0.0":
        return f"[::]:{port}"
    return f"{host}:{port}"


def bind_tcp(address: str) -> socket.socket:
    """Bind one listening TCP socket like Go's ``net.Listen("tcp", address)``: an empty or
    wildcard host gets a single dual-stack socket (so port 0 is one port), a name resolves
    to its first address (IPv4 preferred). Raises StartupError with Go's text."""
    host, port_text = split_host_port(address)
    try:
        port = int(port_text, 10) if port_text else 0
        if not 0 <= port <= 65535:
            raise StartupError(f"listen tcp: address {port_text}: invalid port")
    except ValueError:
        try:
            port = socket.getservbyname(port_text, "tcp")
        except OSError:
            raise StartupError(f"listen tcp: lookup tcp/{port_text}: unknown port") from None
    if host in ("", "0.0.0.0", "::"):
        candidates = []
        if socket.has_ipv6:
            candidates.append((socket.AF_INET6, ("::", port), True))
        if host != "::":
            candidates.append((socket.AF_INET, ("0.0.0.0", port), False))
    else:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                       proto=socket.IPPROTO_TCP)
        except socket.gaierror as e:
            raise StartupError(f"listen tcp: lookup {host}: {e.strerror or e}") from None
        infos.sort(key=lambda i: 0 if i[0] == socket.AF_INET else 1)
        candidates = [(infos[0][0], infos[0][4], False)]
    last: OSError | None = None
    for family, sockaddr, dual in candidates:
        try:
            sock = socket.socket(family, socket.SOCK_STREAM)
        except OSError as e:
            last = e
            continue
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if dual:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            sock.bind(sockaddr)
            sock.listen(1024)
            sock.setblocking(False)
            return sock
        except OSError as e:
            sock.close()
            last = e
            if e.errno in (errno.EAFNOSUPPORT, errno.EADDRNOTAVAIL) and dual:
                continue
            break
    assert last is not None
    raise StartupError(f"listen tcp {address}: bind: {_os_err(last)}")


def _is_unix(address: str) -> bool:
    """internal/util.TypeOfAddr: anything that isn't host:port is a unix socket path."""
    try:
        split_host_port(address)
        return False
    except ValueError:
        return True


class NSQLookupd:
    def __init__(self, opts, log):
        self.opts = opts
        self.log = log
        self.hostname = opts.hostname or socket.gethostname()
        self.db = RegistrationDB()
        self.clients: set = set()
        self.tcp_server = None
        self.http_server = None
        self.tcp_port = 0
        self.http_port = 0
        self.tcp_listen_address = ""
        self.http_listen_address = ""
        self._tcp_sock = None
        self._http_sock = None
        self.stopped = False

    def _listen(self, address: str):
        """(socket or None, unix path or None)."""
        try:
            if _is_unix(address):
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    sock.bind(address)
                    sock.listen(1024)
                    sock.setblocking(False)
                except OSError as e:
                    sock.close()
                    raise StartupError(f"listen unix {address}: bind: {_os_err(e)}") from None
                return sock
            return bind_tcp(address)
        except StartupError as e:
            raise StartupError(f"listen ({address}) failed - {e}") from None

    async def start(self) -> None:
        opts = self.opts
        log = self.log
        log.info(version_string("nsqlookupd"))
        self._tcp_sock = self._listen(opts.tcp_address)
        try:
            self._http_sock = self._listen(opts.http_address)
        except StartupError:
            self._tcp_sock.close()
            self._tcp_sock = None
            raise
        loop = asyncio.get_running_loop()
        tcp_sock, http_sock = self._tcp_sock, self._http_sock
        if tcp_sock.family != socket.AF_UNIX:
            self.tcp_port = tcp_sock.getsockname()[1]
        if http_sock.family != socket.AF_UNIX:
            self.http_port = http_sock.getsockname()[1]
        self.tcp_listen_address = listen_address(tcp_sock)
        self.http_listen_address = listen_address(http_sock)
        if tcp_sock.family == socket.AF_UNIX:
            self.tcp_server = await loop.create_unix_server(
                lambda: LookupProtocolV1(self), sock=tcp_sock)
        else:
            self.tcp_server = await loop.create_server(
                lambda: LookupProtocolV1(self), sock=tcp_sock)
        self.http_server = await start_http_server(self, sock=http_sock)
        log.info(f"HTTP: listening on {self.http_listen_address}")
        log.info(f"TCP: listening on {self.tcp_listen_address}")

    async def stop(self) -> None:
        if self.stopped:
            return
        self.stopped = True
        log = self.log
        if self.tcp_server is not None:
            self.tcp_server.close()
            log.info(f"TCP: closing {self.tcp_listen_address}")
        elif self._tcp_sock is not None:
            self._tcp_sock.close()
        for client in list(self.clients):
            t = client.transport
            if t is not None:
                t.close()
        if self.http_server is not None:
            await self.http_server.close()
            log.info(f"HTTP: closing {self.http_listen_address}")
        elif self._http_sock is not None:
            self._http_sock.close()
        for sock in (self._tcp_sock, self._http_sock):
            if sock is not None and sock.family == socket.AF_UNIX:
                try:
                    os.unlink(sock.getsockname())
                except (OSError, TypeError):
                    pass
        await asyncio.sleep(0)
