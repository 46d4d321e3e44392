"""The nsqd daemon: broker + TCP listener + HTTP listener + lifecycle.

``NSQD(opts, log)``; ``await start()`` locks the data path, restores ``nsqd.dat`` and
opens the listeners; ``await stop()`` is the clean stop of storage.md §6.
"""
import asyncio
import errno
import fcntl
import gc
import os
import socket
import time

from .. import version_string
from ..engine.broker import Broker
from ..busypoll import busy_poll
from ..listen import create_tcp_server
from ..protocol.commands import Limits
from ..protocol.identify import IdentifyConfig, ServerFeatures
from .noauth import new_authorizer
from .protocol_v2 import ClientV2


class StartupError(Exception):
    """Fatal at startup; main() logs ``FATAL: <text>`` and exits 1."""


def split_host_port(addr: str):
    host, sep, port = addr.rpartition(":")
    if not sep:
        raise StartupError(f"address {addr}: missing port in address")
    host = host.strip("[]")
    try:
        return host, int(port)
    except ValueError:
        raise StartupError(f"address {addr}: invalid port") from None


def listen_error(addr: str, err: OSError) -> StartupError:
    return StartupError(f"failed to instantiate nsqd - listen ({addr}) failed - listen tcp "
                        f"{addr}: bind: {os.strerror(err.errno).lower()}")


def go_listen_address(host: str, port: int) -> str:
    """How Go prints a listener address: the wildcard is ``[::]``."""
    if host in ("", "0.0.0.0", "::"):
        return f"[::]:{port}"
    if ":" in host:
        return f"[{host}]:{port}"
    return f"{host}:{port}"


class NSQD:
    def __init__(self, opts, log):
        self.opts = opts
        self.log = log
        self.hostname = socket.gethostname()
        self.start_time_ns = time.time_ns()
        self.start_time = self.start_time_ns // 1_000_000_000
        self.broker = Broker(opts, log)
        self.clients = set()
        self.busy_poll = None       # the loop's BusyPoll, set by start()
        self.auth = new_authorizer(opts, log)
        self.limits = Limits(max_msg_size=opts.max_msg_size, max_body_size=opts.max_body_size,
                             max_rdy_count=opts.max_rdy_count,
                             max_req_timeout_ms=opts.max_req_timeout // 1_000_000)
        self.identify_config = IdentifyConfig(
            max_heartbeat_interval_ms=opts.max_heartbeat_interval // 1_000_000,
            max_output_buffer_size=opts.max_output_buffer_size,
            min_output_buffer_timeout_ms=opts.min_output_buffer_timeout // 1_000_000,
            max_output_buffer_timeout_ms=opts.max_output_buffer_timeout // 1_000_000,
            default_output_buffer_timeout_ms=opts.output_buffer_timeout // 1_000_000,
            msg_timeout_ms=opts.msg_timeout // 1_000_000,
            max_msg_timeout_ms=opts.max_msg_timeout // 1_000_000,
            max_deflate_level=opts.max_deflate_level,
        )
        self.ssl_context = None
        if opts.tls_cert or opts.tls_key:
            from .tls import build_server_ssl_context
            try:
                self.ssl_context = build_server_ssl_context(opts)
            except (ValueError, OSError) as e:
                raise StartupError(
                    f"failed to instantiate nsqd - failed to build TLS config - {e}") from None
        if self.auth.enabled:
            from .tls import build_client_ssl_context
            try:
                build_client_ssl_context(opts)
            except (ValueError, OSError) as e:
                raise StartupError(
                    f"failed to instantiate nsqd - failed to build client TLS config - {e}") from None
        self.negotiation = ServerFeatures(
            max_rdy_count=opts.max_rdy_count,
            max_msg_timeout_ms=opts.max_msg_timeout // 1_000_000,
            tls_enabled=self.ssl_context is not None,
            deflate_enabled=bool(opts.deflate), snappy_enabled=bool(opts.snappy),
            max_deflate_level=opts.max_deflate_level,
            auth_required=self.auth.enabled,
        )
        self.tls_required_tcp = opts.tls_required != 0     # 1 tcp-https, 2 true
        self.tcp_server = None
        self.http_server = None
        self.https_server = None
        self.https_port = 0
        self.tcp_port = 0
        self.http_port = 0
        self.lookupd_addresses = list(opts.nsqlookupd_tcp_addresses or [])
        self._lock_fd = None
        self.lookup_peers = None
        self._serving = False          # listeners up (lookupd peers may connect)
        self._tasks = []
        self.stopped = asyncio.Event()

    # -- startup ---------------------------------------------------------------------------
    def lock_data_path(self) -> None:
        path = self.opts.data_path or "."
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError as e:
            raise StartupError(f"failed to instantiate nsqd - failed to lock data-path: open "
                               f"{path}: {os.strerror(e.errno).lower()}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(fd)
            reason = ("resource temporarily unavailable" if e.errno in (errno.EAGAIN, errno.EWOULDBLOCK)
                      else os.strerror(e.errno).lower())
            raise StartupError(
                f"failed to instantiate nsqd - failed to lock data-path: cannot flock "
                f"directory {path} - {reason} (possibly in use by another instance of nsqd)"
            ) from None
        self._lock_fd = fd

    async def start(self) -> None:
        opts = self.opts
        log = self.log
        log.info(version_string("nsqd"))
        log.info(f"ID: {opts.id}")
        self.lock_data_path()
        if self.lookupd_addresses:
            self._wire_lookup_peers()
        try:
            self.broker.load_metadata()
        except Exception as e:
            raise StartupError(f"failed to load metadata - {e}") from None
        try:
            self.broker.persist_metadata()
        except OSError as e:
            raise StartupError(f"failed to persist metadata - {e}") from None
        loop = asyncio.get_running_loop()
        self.busy_poll = busy_poll(loop)
        host, port = split_host_port(opts.tcp_address)
        try:
            self.tcp_server = await create_tcp_server(loop, lambda: ClientV2(self), host, port)
        except OSError as e:
            raise listen_error(opts.tcp_address, e) from None
        self.tcp_port = self.tcp_server.sockets[0].getsockname()[1]
        self.tcp_listen_address = go_listen_address(host, self.tcp_port)
        log.info(f"TCP: listening on {self.tcp_listen_address}")
        if opts.http_address:
            from .http_api import start_http_server
            hhost, hport = split_host_port(opts.http_address)
            try:
                self.http_server, self.http_port = await start_http_server(self, hhost, hport)
            except OSError as e:
                raise listen_error(opts.http_address, e) from None
            self.http_listen_address = go_listen_address(hhost, self.http_port)
            log.info(f"HTTP: listening on {self.http_listen_address}")
        if self.ssl_context is not None and opts.https_address:
            from .http_api import start_http_server
            shost, sport = split_host_port(opts.https_address)
            try:
                self.https_server, self.https_port = await start_http_server(
                    self, shost, sport, ssl_context=self.ssl_context)
            except OSError as e:
                raise listen_error(opts.https_address, e) from None
            self.https_listen_address = go_listen_address(shost, self.https_port)
            log.info(f"HTTPS: listening on {self.https_listen_address}")
        self.broker.start()
        self._serving = True
        if self.lookup_peers is not None:
            self.lookup_peers.start()
        if opts.statsd_address:
            from .statsd import statsd_loop
            self._tasks.append(loop.create_task(statsd_loop(self)))
        # start-up garbage (flag parsing, imports' temporaries) goes now, and what
        # survived start-up is exempt from later full collections
        gc.collect()
        gc.freeze()

    def _wire_lookup_peers(self) -> None:
        """nsqlookupd connections (imported only by an nsqd that has lookupds)."""
        from .lookup import LookupPeers
        self.lookup_peers = LookupPeers(self)
        self.broker.listeners.append(self.lookup_peers.notify)
        self.broker.topic_starter = self.lookup_peers.topic_starter

    def set_lookupd_addresses(self, addresses) -> None:
        self.lookupd_addresses = list(addresses)
        if self.lookup_peers is None:
            if not addresses:
                return
            self._wire_lookup_peers()
            if self._serving:
                self.lookup_peers.start()
        self.lookup_peers.set_addresses(list(addresses))

    # -- shutdown ----------------------------------------------------------------------------------
    async def stop(self) -> None:
        if self.stopped.is_set():
            return
        log = self.log
        if self.tcp_server is not None:
            log.info(f"TCP: closing {self.tcp_listen_address}")
            self.tcp_server.close()
        for client in list(self.clients):
            client.close_connection()
        if self.http_server is not None:
            log.info(f"HTTP: closing {self.http_listen_address}")
            await self.http_server.close()
        if self.https_server is not None:
            log.info(f"HTTPS: closing {self.https_listen_address}")
            await self.https_server.close()
        for task in self._tasks:
            task.cancel()
        await self.auth.close()
        self.broker.close()
        if self.lookup_peers is not None:
            await self.lookup_peers.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
        log.info("NSQ: bye")
        self.stopped.set()

