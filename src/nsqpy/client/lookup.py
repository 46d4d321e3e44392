"""nsqlookupd discovery for consumers (semantics §6.6), over aiohttp.

:func:`lookup_url` builds the ``/lookup?topic=`` URL from a configured address,
:func:`producer_addresses` extracts ``host:port`` strings from a reply and
:class:`LookupdPoller` runs the polling loop: one query right away, then after a random
jitter in ``[0, lookupd_poll_jitter × lookupd_poll_interval)`` one query every
``lookupd_poll_interval``, each against the next lookupd in rotation (up to 3 tries on
errors); :meth:`LookupdPoller.trigger` asks for an extra poll at once (used when a
connection closes).
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import urllib.parse
from typing import Any, Awaitable, Callable, Iterable

import aiohttp

from .config import Config

__all__ = ["lookup_url", "producer_addresses", "LookupdPoller", "LookupError_"]

log = logging.getLogger("nsqpy.client")

ACCEPT = "application/vnd.nsq; version=1.0"


class LookupError_(Exception):
    """A lookupd query failed (HTTP status, transport error or bad JSON)."""


def lookup_url(address: str, topic: str) -> str:
    """``host:port`` or a URL (scheme, path, query kept) → the ``/lookup`` URL for
    ``topic``; a missing or ``/`` path becomes ``/lookup``.  The port is mandatory."""
    if "://" not in address:
        address = "http://" + address
    u = urllib.parse.urlsplit(address)
    if u.port is None:
        raise ValueError(f"lookupd address {address!r} has no port")
    path = u.path if u.path not in ("", "/") else "/lookup"
    query = urllib.parse.parse_qsl(u.query, keep_blank_values=True)
    query.append(("topic", topic))
    return urllib.parse.urlunsplit((u.scheme, u.netloc, path,
                                    urllib.parse.urlencode(query), ""))


def _join_host_port(host: str, port: int) -> str:
    if ":" in host and not host.startswith("["):
        return f"[{host}]:{port}"
    return f"{host}:{port}"


def producer_addresses(reply: Any) -> list[str]:
    """``broadcast_address:tcp_port`` of every producer in a ``/lookup`` reply (also
    accepts the pre-1.0 ``{"status_code":…, "data":{…}}`` envelope)."""
    if isinstance(reply, dict) and "data" in reply and isinstance(reply["data"], dict) \
            and "producers" not in reply:
        reply = reply["data"]
    if not isinstance(reply, dict):
        raise LookupError_("lookupd reply is not a JSON object")
    out = []
    for p in reply.get("producers") or []:
        try:
            host = p["broadcast_address"]
            port = int(p["tcp_port"])
        except (KeyError, TypeError, ValueError):
            log.warning("lookupd: ignoring malformed producer %r", p)
            continue
        out.append(_join_host_port(host, port))
    return out


class LookupdPoller:
    """Polls the configured lookupds for ``topic`` and reports producer addresses to
    ``on_producers`` (an async or plain callable taking a list of ``host:port``)."""

    def __init__(self, topic: str, config: Config,
                 on_producers: Callable[[list[str]], Awaitable[None] | None],
                 rng: random.Random | None = None) -> None:
        self.topic = topic
        self.config = config
        self.addresses: list[str] = []
        self._on_producers = on_producers
        self._rng = rng or random.Random()
        self._index = 0
        self._session: aiohttp.ClientSession | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._stopped = False
        self.polls = 0

    def add(self, addresses: Iterable[str]) -> bool:
        """Add lookupd addresses; True if they were the first ones (the caller should
        then :meth:`start`)."""
        first = not self.addresses
        for a in addresses:
            lookup_url(a, self.topic)            # validate early
            if a not in self.addresses:
                self.addresses.append(a)
        return first and bool(self.addresses)

    def start(self) -> None:
        """Start the periodic polling (after a first :meth:`query`)."""
        if self._task is None and self.addresses:
            self._task = asyncio.get_running_loop().create_task(self._run())

    def trigger(self) -> None:
        """Poll again now (e.g. after a connection closed)."""
        self._wake.set()

    async def _run(self) -> None:
        # the caller ran the first query already
        cfg = self.config
        jitter = self._rng.random() * cfg.lookupd_poll_jitter * cfg.lookupd_poll_interval
        await self._sleep(jitter)
        while not self._stopped:
            await self.query()
            await self._sleep(cfg.lookupd_poll_interval)

    async def _sleep(self, delay: float) -> None:
        try:
            await asyncio.wait_for(self._wake.wait(), delay)
        except asyncio.TimeoutError:
            pass
        self._wake.clear()

    async def query(self) -> list[str] | None:
        """One poll: query the next lookupd (retrying the following ones, 3 tries in
        all); hand the producers to the callback.  Returns them, or None on failure."""
        if not self.addresses:
            return None
        for _ in range(3):
            addr = self.addresses[self._index % len(self.addresses)]
            self._index += 1
            try:
                producers = await self._query_one(addr)
            except (LookupError_, aiohttp.ClientError, asyncio.TimeoutError, ValueError,
                    OSError) as e:
                log.error("error querying nsqlookupd (%s) - %s", addr, e)
                continue
            self.polls += 1
            res = self._on_producers(producers)
            if asyncio.iscoroutine(res):
                await res
            return producers
        return None

    async def _query_one(self, addr: str) -> list[str]:
        cfg = self.config
        url = lookup_url(addr, self.topic)
        log.info("querying nsqlookupd %s", url)
        headers = {"Accept": ACCEPT}
        if cfg.auth_secret and cfg.skip_lookupd_authorization:
            headers["Authorization"] = f"Bearer {cfg.auth_secret}"
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=cfg.lookupd_poll_timeout))
        async with self._session.get(url, headers=headers) as resp:
            body = await resp.read()
            if resp.status != 200:
                raise LookupError_(f"HTTP {resp.status}: {body[:200]!r}")
        try:
            reply = json.loads(body)
        except ValueError as e:
            raise LookupError_(f"invalid JSON: {e}") from None
        return producer_addresses(reply)

    async def close(self) -> None:
        """Stop polling and close the HTTP session."""
        self._stopped = True
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
            self._task = None
        if self._session is not None:
            await self._session.close()
            self._session = None
