"""nsqd's side of nsqlookupd (spec nsqlookupd.md §5, semantics.md §4).

:class:`LookupPeers` keeps one long-lived V1 connection per ``--lookupd-tcp-address``.
Each connection: magic, IDENTIFY (our broadcast address/ports), then ``REGISTER`` of every
topic (without channels) and channel; afterwards topology changes are forwarded as
REGISTER/UNREGISTER and a PING goes out every 15 s. A lost connection is re-established
in the background with backoff (0.25 s doubling to 15 s), re-announcing everything.
Commands on one connection are strictly sequential (send, wait for the answer with a 1 s
deadline); any failure closes the connection.

Wiring (done by the daemon)::

    peers = LookupPeers(nsqd)
    nsqd.broker.listeners.append(peers.notify)   # topology events
    nsqd.broker.topic_starter = peers.topic_starter   # lookupd's channels, then start()
    peers.start()                                # after the listeners are up
    peers.set_addresses(addrs)                   # PUT /config/nsqlookupd_tcp_addresses
    await peers.close()                          # shutdown ("LOOKUP: closing")
"""
from __future__ import annotations

import asyncio
import socket
from collections import deque
from urllib.parse import quote

from .. import NSQ_VERSION
from ..protocol.lookupd import (MAGIC_V1, LookupdPeerInfo, ResponseDecoder, command_string,
                                encode_ping, encode_register, encode_unregister,
                                format_peer_info, identify_response, parse_peer_info)

__all__ = ["LookupPeers", "LookupPeer", "PING_INTERVAL", "COMMAND_TIMEOUT",
           "RECONNECT_MIN", "RECONNECT_MAX"]

PING_INTERVAL = 15.0        # upstream's lookupd heartbeat ticker
DIAL_TIMEOUT = 1.0
COMMAND_TIMEOUT = 1.0       # per read/write deadline
RECONNECT_MIN = 0.25
RECONNECT_MAX = 15.0

_EVENTS = {
    "topic_created": ("topic", "REGISTER"),
    "topic_deleted": ("topic", "UNREGISTER"),
    "channel_created": ("channel", "REGISTER"),
    "channel_deleted": ("channel", "UNREGISTER"),
}


def _split_host_port(addr: str) -> tuple[str, int]:
    if addr.startswith("["):
        end = addr.find("]")
        if end < 0 or addr[end + 1:end + 2] != ":":
            raise ValueError(f"address {addr}: missing port in address")
        host, port = addr[1:end], addr[end + 2:]
    else:
        host, sep, port = addr.rpartition(":")
        if not sep:
            raise ValueError(f"address {addr}: missing port in address")
        if ":" in host:
            raise ValueError(f"address {addr}: too many colons in address")
    try:
        return host, int(port)
    except ValueError:
        try:
            return host, socket.getservbyname(port, "tcp")
        except OSError:
            raise ValueError(f"lookup tcp/{port}: unknown port") from None


def _join_host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _err_text(e: BaseException) -> str:
    if isinstance(e, (asyncio.TimeoutError, TimeoutError)):
        return "i/o timeout"
    if isinstance(e, ConnectionRefusedError):
        return "connect: connection refused"
    if isinstance(e, OSError) and e.strerror:
        return e.strerror.lower()
    return str(e) or e.__class__.__name__


class _Closed(Exception):
    """The connection is gone (EOF, reset, or closed by us)."""


class _ClientProtocol(asyncio.Protocol):
    """The V1 client connection: size-prefixed answers matched FIFO to requests."""

    def __init__(self, max_size: int | None):
        self.transport = None
        self.decoder = ResponseDecoder(max_size)
        self.waiters: deque[asyncio.Future] = deque()
        self.lost = asyncio.get_running_loop().create_future()

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.decoder.feed(data)
        try:
            responses = self.decoder.responses()
        except Exception as e:  # noqa: BLE001 - oversized/garbage answer: drop the connection
            self._fail(e)
            self.transport.close()
            return
        for resp in responses:
            while self.waiters:
                fut = self.waiters.popleft()
                if not fut.done():
                    fut.set_result(resp)
                    break
            # an answer nobody waits for (a timed-out request's) is dropped

    def connection_lost(self, exc) -> None:
        self._fail(_Closed("EOF" if exc is None else _err_text(exc)))
        if not self.lost.done():
            self.lost.set_result(None)

    def _fail(self, exc: BaseException) -> None:
        while self.waiters:
            fut = self.waiters.popleft()
            if not fut.done():
                fut.set_exception(exc)

    async def request(self, data: bytes, timeout: float) -> bytes:
        t = self.transport
        if t is None or t.is_closing():
            raise _Closed("use of closed network connection")
        fut = asyncio.get_running_loop().create_future()
        self.waiters.append(fut)
        t.write(data)
        return await asyncio.wait_for(fut, timeout)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class LookupPeer:
    """One nsqlookupd: its connection task, command queue and the peer info it sent."""

    def __init__(self, peers: "LookupPeers", addr: str):
        self.peers = peers
        self.addr = addr
        self.info: LookupdPeerInfo | None = None
        self.connected = False        # identified, and the re-announce snapshot is taken
        self.queue: deque[tuple[bytes, str]] = deque()
        self._wakeup = asyncio.Event()
        self._proto: _ClientProtocol | None = None
        self._task: asyncio.Task | None = None
        self._closed = False
        self.ping_interval = peers.ping_interval

    def __repr__(self) -> str:
        return f"LookupPeer({self.addr}, connected={self.connected})"

    # -- control -----------------------------------------------------------------------------
    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    def enqueue(self, data: bytes, text: str) -> None:
        """Queue a command (dropped unless connected: a reconnect re-announces all)."""
        if self.connected and not self._closed:
            self.queue.append((data, text))
            self._wakeup.set()

    async def close(self) -> None:
        self._closed = True
        self.connected = False
        if self._proto is not None:
            self._proto.close()
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            try:
                await task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001
                pass

    # -- the connection loop ----------------------------------------------------------------
    async def _run(self) -> None:
        delay = RECONNECT_MIN
        while not self._closed:
            identified = False
            try:
                identified = await self._session()
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - never let a peer task die silently
                self.peers.log.error(f"LOOKUPD({self.addr}): {e!r}")
            finally:
                self.connected = False
                self.queue.clear()
                if self._proto is not None:
                    self._proto.close()
                    self._proto = None
            if self._closed:
                return
            if identified:
                delay = RECONNECT_MIN
            await asyncio.sleep(delay)
            delay = min(delay * 2, RECONNECT_MAX)

    async def _command(self, data: bytes, text: str) -> bytes | None:
        """Send one command and wait for its answer; None (logged) on failure, after
        which the connection is closed."""
        proto = self._proto
        try:
            return await proto.request(data, COMMAND_TIMEOUT)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001
            self.peers.log.error(f"LOOKUPD({self.addr}): {text} - {_err_text(e)}")
            proto.close()
            return None

    async def _session(self) -> bool:
        """Connect, identify, re-announce, then serve the queue until the connection ends.
        Returns True if IDENTIFY succeeded."""
        peers = self.peers
        log = peers.log
        log.info(f"LOOKUP connecting to {self.addr}")
        loop = asyncio.get_running_loop()
        try:
            host, port = _split_host_port(self.addr)
            _t, proto = await asyncio.wait_for(
                loop.create_connection(lambda: _ClientProtocol(peers.max_body_size), host, port),
                DIAL_TIMEOUT)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001
            log.error(f"LOOKUPD({self.addr}): IDENTIFY - dial tcp {self.addr}: {_err_text(e)}")
            return False
        self._proto = proto
        proto.transport.write(MAGIC_V1)
        resp = await self._command(peers.identify_command(), "IDENTIFY")
        if resp is None:
            return False
        if resp == b"E_INVALID":
            log.info(f"LOOKUPD({self.addr}): lookupd returned {resp.decode('utf-8', 'replace')}")
            return False
        try:
            info = parse_peer_info(resp)
        except Exception:  # noqa: BLE001
            log.error(f"LOOKUPD({self.addr}): parsing response - "
                      f"{resp.decode('utf-8', 'replace')}")
            return False
        self.info = info
        log.info(f"LOOKUPD({self.addr}): peer info {format_peer_info(info)}")
        if not info.broadcast_address:
            log.error(f"LOOKUPD({self.addr}): no broadcast address")
        # re-announce: snapshot and start accepting notifications in the same loop step
        self.queue.clear()
        snapshot = peers.registrations()
        self.connected = True
        for data, text in snapshot:
            if self._closed:
                return True
            log.info(f"LOOKUPD({self.addr}): {text}")
            if await self._command(data, text) is None:
                return True
        # serve commands, ping every ping_interval, notice the connection going away
        lost = proto.lost
        next_ping = loop.time() + self.ping_interval
        while not self._closed and not lost.done():
            if self.queue:
                data, text = self.queue.popleft()
                log.info(f"LOOKUPD({self.addr}): {text}")
                if await self._command(data, text) is None:
                    return True
                continue
            timeout = next_ping - loop.time()
            if timeout <= 0:
                log.debug(f"LOOKUPD({self.addr}): sending heartbeat")
                if await self._command(encode_ping(), "PING") is None:
                    return True
                next_ping = loop.time() + self.ping_interval
                continue
            self._wakeup.clear()
            wake = loop.create_task(self._wakeup.wait())
            try:
                await asyncio.wait({wake, lost}, timeout=timeout,
                                   return_when=asyncio.FIRST_COMPLETED)
            finally:
                wake.cancel()
        if lost.done() and not self._closed:
            log.error(f"LOOKUPD({self.addr}): connection closed")
        return True


class LookupPeers:
    """Every nsqlookupd this nsqd announces itself to (see the module docstring)."""

    def __init__(self, nsqd):
        self.nsqd = nsqd
        self.opts = nsqd.opts
        self.log = nsqd.log
        self.peers: dict[str, LookupPeer] = {}
        self.ping_interval = PING_INTERVAL
        self.max_body_size = getattr(self.opts, "max_body_size", None)
        self.hostname = getattr(nsqd, "hostname", None) or socket.gethostname()
        self._started = False
        self._session = None   # aiohttp.ClientSession, created on first use

    # -- what we announce ----------------------------------------------------------------------
    def broadcast_ports(self) -> tuple[int, int]:
        opts = self.opts
        tcp = opts.broadcast_tcp_port or getattr(self.nsqd, "tcp_port", 0) or 0
        http = opts.broadcast_http_port or getattr(self.nsqd, "http_port", 0) or 0
        return tcp, http

    def identify_command(self) -> bytes:
        tcp, http = self.broadcast_ports()
        body = identify_response(self.opts.broadcast_address, self.hostname, http, tcp,
                                 NSQ_VERSION)
        return b"IDENTIFY\n" + len(body).to_bytes(4, "big") + body

    def registrations(self) -> list[tuple[bytes, str]]:
        """REGISTER for each topic without channels and each channel (ephemeral included)."""
        out = []
        for topic in list(self.nsqd.broker.topics.values()):
            channels = list(topic.channels.values())
            if not channels:
                out.append((encode_register(topic.name),
                            command_string("REGISTER", topic.name)))
            for ch in channels:
                out.append((encode_register(topic.name, ch.name),
                            command_string("REGISTER", topic.name, ch.name)))
        return out

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        """Connect to every configured lookupd (call after the listeners are up)."""
        self._started = True
        for addr in list(self.opts.nsqlookupd_tcp_addresses or []):
            self._add(addr)

    def _add(self, addr: str) -> None:
        if addr in self.peers:
            return
        self.log.info(f"LOOKUP({addr}): adding peer")
        peer = LookupPeer(self, addr)
        self.peers[addr] = peer
        peer.start()

    def set_addresses(self, addresses: list[str]) -> None:
        """Drop peers not in ``addresses``, connect new ones (keeps existing connections)."""
        wanted = list(dict.fromkeys(addresses or []))
        loop = asyncio.get_running_loop()
        for addr, peer in list(self.peers.items()):
            if addr not in wanted:
                self.log.info(f"LOOKUP({addr}): removing peer")
                del self.peers[addr]
                loop.create_task(peer.close())
        if self._started:
            for addr in wanted:
                self._add(addr)

    async def close(self) -> None:
        """Stop every connection; no UNREGISTER (lookupd drops us on disconnect)."""
        self.log.info("LOOKUP: closing")
        self._started = False
        peers = list(self.peers.values())
        self.peers.clear()
        await asyncio.gather(*(p.close() for p in peers), return_exceptions=True)
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    # -- topology events -----------------------------------------------------------------------
    def notify(self, event: str, topic, channel) -> None:
        """Broker listener: forward a topology change to every connected lookupd."""
        spec = _EVENTS.get(event)
        if spec is None:
            return
        branch, cmd = spec
        tname = topic.name
        cname = channel.name if (branch == "channel" and channel is not None) else None
        if cmd == "REGISTER":
            data = encode_register(tname, cname)
        else:
            data = encode_unregister(tname, cname)
        text = f"{branch} {command_string(cmd, tname, cname)}"
        for peer in self.peers.values():
            peer.enqueue(data, text)

    # -- channel pre-creation ------------------------------------------------------------------
    def http_addresses(self) -> list[str]:
        """``broadcast_address:http_port`` of every lookupd that identified itself."""
        out = []
        for peer in self.peers.values():
            info = peer.info
            if info is not None and info.broadcast_address:
                out.append(_join_host_port(info.broadcast_address, info.http_port))
        return out

    def _client(self):
        if self._session is None:
            import aiohttp
            opts = self.opts
            timeout = aiohttp.ClientTimeout(
                total=(opts.http_client_request_timeout or 0) / 1e9 or None,
                sock_connect=(opts.http_client_connect_timeout or 0) / 1e9 or None)
            self._session = aiohttp.ClientSession(timeout=timeout)
        return self._session

    async def _get_channels(self, addr: str, topic: str) -> list[str]:
        url = f"http://{addr}/channels?topic={quote(topic, safe='')}"
        session = self._client()
        async with session.get(url, headers={"Accept": "application/vnd.nsq; version=1.0"},
                               allow_redirects=True) as resp:
            body = await resp.read()
            if resp.status != 200:
                raise RuntimeError(f"got response {resp.status} {resp.reason} "
                                   f"{body.decode('utf-8', 'replace')!r}")
        import json
        doc = json.loads(body)
        chans = doc.get("channels") if isinstance(doc, dict) else None
        return [c for c in chans or [] if isinstance(c, str)]

    async def lookup_channels(self, topic: str) -> list[str]:
        """Union (sorted, unique) of ``/channels?topic=`` from every identified lookupd.
        Failures are logged as a warning and otherwise ignored."""
        addrs = self.http_addresses()
        if not addrs:
            if self.peers:
                self.log.error("no available nsqlookupd to query for channels to pre-create "
                               f"for topic {topic}")
            return []
        results = await asyncio.gather(*(self._get_channels(a, topic) for a in addrs),
                                       return_exceptions=True)
        names: set[str] = set()
        errs = []
        for addr, res in zip(addrs, results):
            if isinstance(res, BaseException):
                if isinstance(res, asyncio.CancelledError):
                    raise res
                errs.append(f"Get \"http://{addr}/channels?topic={quote(topic, safe='')}\": "
                            f"{_err_text(res)}")
            else:
                names.update(res)
        if errs:
            prefix = "Failed to query any nsqlookupd: " if len(errs) == len(addrs) else ""
            self.log.warning("failed to query nsqlookupd for channels to pre-create for "
                             f"topic {topic} - {prefix}{'; '.join(errs)}")
        return sorted(names)

    def topic_starter(self, topic) -> None:
        """``Broker.topic_starter`` hook: create lookupd's channels for a topic created at
        runtime, then ``topic.start()``. Synchronous; the HTTP queries run in a task, and a
        topic starts at once when no lookupd is configured."""
        if not self.peers:
            topic.start()
            return

        async def run() -> None:
            try:
                await self.precreate_channels(topic)
            except Exception as e:  # noqa: BLE001 - pre-creation must never block a topic
                self.log.warning(f"failed to pre-create channels for topic {topic.name} - {e}")
            finally:
                topic.start()

        asyncio.get_running_loop().create_task(run())

    async def precreate_channels(self, topic) -> list[str]:
        """Create on ``topic`` every channel lookupd knows for it (``#ephemeral`` ones
        excepted: they would have no consumer). Returns the names created or kept."""
        names = [n for n in await self.lookup_channels(topic.name)
                 if not n.endswith("#ephemeral")]
        for name in names:
            topic.get_channel(name)
        return names
