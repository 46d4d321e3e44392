"""nsqlookupd TCP server: protocol V1 over asyncio (spec nsqlookupd.md §2).

One :class:`LookupProtocolV1` per connection. Framing and validation live in the sans-IO
:mod:`nsqpy.protocol.lookupd`; this module applies commands to the registration DB,
writes the answers and logs like upstream's ``tcp.go`` / ``lookup_protocol_v1.go``.
"""
from __future__ import annotations

import asyncio
import time

from .. import NSQ_VERSION
from ..gotime import format_duration
from ..protocol.lookupd import (BAD_PROTOCOL_RESPONSE, OK_RESPONSE, BadMagic, IdentifyCmd,
                                LookupdError, Magic, Ping, Register, ServerParser, Unregister,
                                encode_response, identify_response, parse_identify_body)
from .registration_db import PeerInfo, Producer

__all__ = ["LookupProtocolV1", "go_addr"]


def go_addr(addr) -> str:
    """A socket address the way Go's ``net.Addr.String()`` prints it."""
    if isinstance(addr, (tuple, list)) and len(addr) >= 2:
        host, port = addr[0], addr[1]
        if host.startswith("::ffff:") and "." in host:
            host = host[7:]              # IPv4-mapped: Go prints the IPv4 form
        if ":" in host:
            return f"[{host}]:{port}"
        return f"{host}:{port}"
    if isinstance(addr, (bytes, bytearray)):
        return addr.decode("utf-8", "surrogateescape")
    return "" if addr is None else str(addr)


class LookupProtocolV1(asyncio.Protocol):
    """One nsqd (or other client) connection to nsqlookupd."""

    def __init__(self, lookupd):
        self.lookupd = lookupd
        self.log = lookupd.log
        self.db = lookupd.db
        self.parser = ServerParser(expect_magic=True)
        self.transport = None
        self.addr = ""
        self.peer_info: PeerInfo | None = None
        self.exit_err: str | None = None
        self.closing = False

    def __repr__(self) -> str:
        return f"LookupProtocolV1({self.addr})"

    # -- asyncio callbacks ------------------------------------------------------------------
    def connection_made(self, transport) -> None:
        self.transport = transport
        self.addr = go_addr(transport.get_extra_info("peername"))
        self.lookupd.clients.add(self)
        self.log.info(f"TCP: new client({self.addr})")

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        parser = self.parser
        parser.feed(data)
        self._handle(parser.events())

    def eof_received(self):
        if not self.closing:
            events = self.parser.feed_eof()
            if events:
                self._handle(events)
            elif not self._magic_ok and self.parser.pending:
                self.exit_err = "unexpected EOF"   # io.ReadFull of the magic, partial
        return False   # close the transport

    def connection_lost(self, exc) -> None:
        self.lookupd.clients.discard(self)
        self.transport = None
        if self.exit_err is None:
            self.exit_err = "EOF" if exc is None else _os_error_text(exc)
        if self._magic_ok:
            self.log.info(f"PROTOCOL(V1): [{self.addr}] exiting ioloop")
            peer = self.peer_info
            if peer is not None:
                db = self.db
                for r in db.lookup_registrations(peer.id):
                    removed, _ = db.remove_producer(r, peer.id)
                    if removed:
                        self.log.info(f"DB: client({self.addr}) UNREGISTER category:{r[0]} "
                                      f"key:{r[1]} subkey:{r[2]}")
            self.log.error(f"client({self.addr}) - {self.exit_err}")
        elif not self._bad_magic:
            self.log.error(f"failed to read protocol version - {self.exit_err}")

    _magic_ok = False
    _bad_magic = False

    # -- commands ------------------------------------------------------------------------------
    def _handle(self, events) -> None:
        for ev in events:
            if self.closing:
                return
            try:
                if isinstance(ev, Ping):
                    self._ping()
                elif isinstance(ev, Register):
                    self._register(ev.topic, ev.channel)
                elif isinstance(ev, Unregister):
                    self._unregister(ev.topic, ev.channel)
                elif isinstance(ev, IdentifyCmd):
                    self._identify(ev.body)
                elif isinstance(ev, Magic):
                    self._magic_ok = True
                    self.log.info(f"CLIENT({self.addr}): desired protocol magic "
                                  f"'{ev.magic.decode('utf-8', 'surrogateescape')}'")
                elif isinstance(ev, LookupdError):
                    raise ev
                elif isinstance(ev, BadMagic):
                    self._reject_magic(ev.magic)
                    return
            except LookupdError as e:
                self._fatal(e)
                return

    def _write(self, data: bytes) -> None:
        t = self.transport
        if t is not None and not t.is_closing():
            t.write(data)

    def _fatal(self, e: LookupdError) -> None:
        ctx = f" - {e.parent}" if e.parent else ""
        self.log.error(f"[{self.addr}] - {e}{ctx}")
        self._write(encode_response(e.data()))
        self.exit_err = str(e)
        self.closing = True
        if self.transport is not None:
            self.transport.close()

    def _reject_magic(self, magic: bytes) -> None:
        text = magic.decode("utf-8", "surrogateescape")
        self.log.info(f"CLIENT({self.addr}): desired protocol magic '{text}'")
        self._bad_magic = True
        self.closing = True
        self._write(BAD_PROTOCOL_RESPONSE)
        if self.transport is not None:
            self.transport.close()
        self.log.error(f"client({self.addr}) bad protocol magic '{text}'")

    def _ping(self) -> None:
        peer = self.peer_info
        if peer is not None:
            now = time.time_ns()
            self.log.info(f"CLIENT({peer.id}): pinged (last ping "
                          f"{format_duration(now - peer.last_update)})")
            peer.last_update = now
        self._write(OK_RESPONSE)

    def _identify(self, body: bytes) -> None:
        fields = parse_identify_body(body)
        lookupd = self.lookupd
        peer = PeerInfo(self.addr, remote_address=self.addr, hostname=fields["hostname"],
                        broadcast_address=fields["broadcast_address"],
                        tcp_port=fields["tcp_port"], http_port=fields["http_port"],
                        version=fields["version"], last_update=time.time_ns())
        self.log.info(f"CLIENT({self.addr}): IDENTIFY Address:{peer.broadcast_address} "
                      f"TCP:{peer.tcp_port} HTTP:{peer.http_port} Version:{peer.version}")
        self.peer_info = peer
        self.parser.identified = True
        if self.db.add_producer(("client", "", ""), Producer(peer)):
            self.log.info(f"DB: client({self.addr}) REGISTER category:client key: subkey:")
        self._write(encode_response(identify_response(
            lookupd.opts.broadcast_address, lookupd.hostname, lookupd.http_port,
            lookupd.tcp_port, NSQ_VERSION)))

    def _register(self, topic: str, channel: str) -> None:
        peer = self.peer_info
        db = self.db
        if channel:
            if db.add_producer(("channel", topic, channel), Producer(peer)):
                self.log.info(f"DB: client({self.addr}) REGISTER category:channel key:{topic} "
                              f"subkey:{channel}")
        if db.add_producer(("topic", topic, ""), Producer(peer)):
            self.log.info(f"DB: client({self.addr}) REGISTER category:topic key:{topic} "
                          f"subkey:")
        self._write(OK_RESPONSE)

    def _unregister(self, topic: str, channel: str) -> None:
        peer_id = self.peer_info.id
        db = self.db
        log = self.log
        if channel:
            key = ("channel", topic, channel)
            removed, left = db.remove_producer(key, peer_id)
            if removed:
                log.info(f"DB: client({self.addr}) UNREGISTER category:channel key:{topic} "
                         f"subkey:{channel}")
            # an ephemeral channel goes away with its last producer
            if left == 0 and channel.endswith("#ephemeral"):
                db.remove_registration(key)
        else:
            # a topic UNREGISTER also drops the peer from the topic's channels (unexpected:
            # nsqd unregisters channels first), warning for each one actually removed
            for r in db.find_registrations("channel", topic, "*"):
                removed, _ = db.remove_producer(r, peer_id)
                if removed:
                    log.warning(f"client({self.addr}) unexpected UNREGISTER category:channel "
                                f"key:{topic} subkey:{r[2]}")
            key = ("topic", topic, "")
            removed, left = db.remove_producer(key, peer_id)
            if removed:
                log.info(f"DB: client({self.addr}) UNREGISTER category:topic key:{topic} "
                         f"subkey:")
            if left == 0 and topic.endswith("#ephemeral"):
                db.remove_registration(key)
        self._write(OK_RESPONSE)


def _os_error_text(exc: BaseException) -> str:
    if isinstance(exc, ConnectionResetError):
        return "read: connection reset by peer"
    if isinstance(exc, OSError) and exc.strerror:
        return f"read: {exc.strerror.lower()}"
    return str(exc) or exc.__class__.__name__
