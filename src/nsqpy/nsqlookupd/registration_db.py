"""nsqlookupd's registration database (spec nsqlookupd.md §1).

A map from a registration key ``(category, key, subkey)`` — categories ``client``,
``topic``, ``channel`` — to the producers registered under it, indexed by peer id (the
nsqd connection's remote ``ip:port``). Producers point at their connection's shared
:class:`PeerInfo` (so one PING refreshes ``last_update`` everywhere) and carry their own
tombstone state. Keys survive their producers: only explicit deletes (HTTP, or an
``#ephemeral`` UNREGISTER leaving no producer) remove them.

Everything runs on the event loop thread, so there is no locking. Secondary indexes keep
``/lookup``, ``/channels`` and disconnect clean-up independent of the database size.
"""
from __future__ import annotations

import time
from typing import Iterable

__all__ = ["PeerInfo", "Producer", "RegistrationDB", "Registration", "ZERO_TIME_UNIX_NANO",
           "filter_by_active"]

Registration = tuple  # (category, key, subkey)

ZERO_TIME_UNIX_NANO = -6795364578871345152
"""Go's ``time.Time{}.UnixNano()`` (a never-set tombstone time in ``/debug``)."""


class PeerInfo:
    """One identified nsqd connection (Go ``PeerInfo``)."""

    __slots__ = ("id", "remote_address", "hostname", "broadcast_address", "tcp_port",
                 "http_port", "version", "last_update")

    def __init__(self, id: str, remote_address: str = "", hostname: str = "",
                 broadcast_address: str = "", tcp_port: int = 0, http_port: int = 0,
                 version: str = "", last_update: int = 0):
        self.id = id
        self.remote_address = remote_address
        self.hostname = hostname
        self.broadcast_address = broadcast_address
        self.tcp_port = tcp_port
        self.http_port = http_port
        self.version = version
        self.last_update = last_update     # unix ns

    def to_json_dict(self) -> dict:
        """The PeerInfo JSON object in Go's field order."""
        return {"remote_address": self.remote_address, "hostname": self.hostname,
                "broadcast_address": self.broadcast_address, "tcp_port": self.tcp_port,
                "http_port": self.http_port, "version": self.version}

    def __repr__(self) -> str:
        return f"PeerInfo({self.id!r}, {self.broadcast_address}:{self.tcp_port})"


class Producer:
    """A peer's membership in one registration, with its tombstone state."""

    __slots__ = ("peer_info", "tombstoned", "tombstoned_at", "_tombstoned_mono")

    def __init__(self, peer_info: PeerInfo):
        self.peer_info = peer_info
        self.tombstoned = False
        self.tombstoned_at: int | None = None    # unix ns; None = Go's zero time
        self._tombstoned_mono = 0

    def tombstone(self) -> None:
        self.tombstoned = True
        self.tombstoned_at = time.time_ns()
        self._tombstoned_mono = time.monotonic_ns()

    def is_tombstoned(self, lifetime_ns: int, now_mono: int | None = None) -> bool:
        if not self.tombstoned:
            return False
        now = time.monotonic_ns() if now_mono is None else now_mono
        return now - self._tombstoned_mono < lifetime_ns

    @property
    def tombstoned_at_unix_nano(self) -> int:
        return ZERO_TIME_UNIX_NANO if self.tombstoned_at is None else self.tombstoned_at

    def __repr__(self) -> str:
        return f"Producer({self.peer_info!r}, tombstoned={self.tombstoned})"


def filter_by_active(producers: Iterable[Producer], inactive_timeout_ns: int,
                     tombstone_lifetime_ns: int) -> list[Producer]:
    """Producers whose peer pinged within ``inactive_timeout_ns`` and that are not
    tombstoned within ``tombstone_lifetime_ns`` (0 = ignore tombstones)."""
    now = time.time_ns()
    now_mono = time.monotonic_ns()
    out = []
    for p in producers:
        if now - p.peer_info.last_update > inactive_timeout_ns:
            continue
        if p.tombstoned and p.is_tombstoned(tombstone_lifetime_ns, now_mono):
            continue
        out.append(p)
    return out


class RegistrationDB:
    def __init__(self) -> None:
        # (category, key, subkey) -> {peer id: Producer}, insertion ordered
        self._map: dict[tuple, dict[str, Producer]] = {}
        # category -> key -> {subkey: None}
        self._index: dict[str, dict[str, dict[str, None]]] = {}
        # peer id -> {registration: None}
        self._by_peer: dict[str, dict[tuple, None]] = {}

    def __len__(self) -> int:
        return len(self._map)

    # -- keys ----------------------------------------------------------------------------
    def _ensure(self, k: tuple) -> dict[str, Producer]:
        producers = self._map.get(k)
        if producers is None:
            producers = self._map[k] = {}
            cat, key, sub = k
            self._index.setdefault(cat, {}).setdefault(key, {})[sub] = None
        return producers

    def add_registration(self, k: tuple) -> None:
        """Create the key (empty) if missing."""
        self._ensure(k)

    def remove_registration(self, k: tuple) -> None:
        """Delete the key and all its producers."""
        producers = self._map.pop(k, None)
        if producers is None:
            return
        cat, key, sub = k
        keys = self._index.get(cat)
        if keys is not None:
            subs = keys.get(key)
            if subs is not None:
                subs.pop(sub, None)
                if not subs:
                    del keys[key]
            if not keys:
                del self._index[cat]
        for pid in producers:
            regs = self._by_peer.get(pid)
            if regs is not None:
                regs.pop(k, None)
                if not regs:
                    del self._by_peer[pid]

    def has_registration(self, k: tuple) -> bool:
        return k in self._map

    # -- producers -------------------------------------------------------------------------
    def add_producer(self, k: tuple, p: Producer) -> bool:
        """Add ``p`` under ``k`` (creating the key); False if that peer id is already there."""
        producers = self._ensure(k)
        pid = p.peer_info.id
        if pid in producers:
            return False
        producers[pid] = p
        self._by_peer.setdefault(pid, {})[k] = None
        return True

    def remove_producer(self, k: tuple, peer_id: str) -> tuple[bool, int]:
        """Remove the peer from ``k`` (the key stays). Returns (removed, producers left)."""
        producers = self._map.get(k)
        if producers is None:
            return False, 0
        removed = producers.pop(peer_id, None) is not None
        if removed:
            regs = self._by_peer.get(peer_id)
            if regs is not None:
                regs.pop(k, None)
                if not regs:
                    del self._by_peer[peer_id]
        return removed, len(producers)

    # -- queries -----------------------------------------------------------------------------
    def find_registrations(self, category: str, key: str, subkey: str) -> list[tuple]:
        """Keys of ``category`` matching key/subkey, where ``*`` matches anything."""
        if key != "*" and subkey != "*":
            k = (category, key, subkey)
            return [k] if k in self._map else []
        keys = self._index.get(category)
        if not keys:
            return []
        if key != "*":
            subs = keys.get(key)
            if not subs:
                return []
            return [(category, key, s) for s in subs]
        out = []
        for kk, subs in keys.items():
            if subkey == "*":
                out.extend((category, kk, s) for s in subs)
            elif subkey in subs:
                out.append((category, kk, subkey))
        return out

    def find_producers(self, category: str, key: str, subkey: str) -> list[Producer]:
        """Producers of every matching key, each peer id once (first occurrence)."""
        if key != "*" and subkey != "*":
            producers = self._map.get((category, key, subkey))
            return list(producers.values()) if producers else []
        seen: set[str] = set()
        out = []
        for k in self.find_registrations(category, key, subkey):
            for pid, p in self._map[k].items():
                if pid not in seen:
                    seen.add(pid)
                    out.append(p)
        return out

    def producer(self, k: tuple, peer_id: str) -> Producer | None:
        producers = self._map.get(k)
        return producers.get(peer_id) if producers else None

    def lookup_registrations(self, peer_id: str) -> list[tuple]:
        """Every key the peer is registered under."""
        regs = self._by_peer.get(peer_id)
        return list(regs) if regs else []

    def items(self):
        """(key, {peer id: Producer}) pairs, for /debug."""
        return self._map.items()
