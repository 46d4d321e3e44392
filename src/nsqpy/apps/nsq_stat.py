"""``nsq_stat``: poll ``/stats`` of every nsqd carrying a topic and print the channel's
aggregate numbers as a table (flags.md §7).

nsqd are found through ``--lookupd-http-address`` (``/lookup?topic=``) or taken from
``--nsqd-http-address`` (those whose ``/stats`` list the topic).  Every ``--interval``
one line; the first poll only primes the rates; a header every 25 polls.  Exits 0
after ``--count`` data lines, or on SIGHUP/SIGINT/SIGTERM.
"""
from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import urllib.parse
from dataclasses import dataclass
from typing import Any

import aiohttp

from ..goflags import FlagSet
from ..gostrconv import parse_go_int
from ..gotime import SECOND
from . import common

TOOL = "nsq_stat"
ACCEPT = "application/vnd.nsq; version=1.0"

HEADER = ("------rate------+----------------depth----------------+"
          "--------------metadata---------------\n"
          "%7s %7s | %7s %7s %7s %5s %5s | %7s %7s %12s %7s\n"
          % ("ingress", "egress", "total", "mem", "disk", "inflt", "def",
             "req", "t-o", "msgs", "clients"))
LINE = "%7d %7d | %7d %7d %7d %5d %5d | %7d %7d %12d %7d\n"


class _Count:
    """``--count``: unset, or a positive number of reports (Go's numValue)."""

    def __init__(self, value: int | None = None) -> None:
        self.value = value

    @property
    def is_set(self) -> bool:
        return self.value is not None


def _parse_count(text: str) -> _Count:
    return _Count(parse_go_int(text, 10, 32))


def flagset() -> FlagSet:
    fs = FlagSet(sys.argv[0] if sys.argv and sys.argv[0] else TOOL)
    fs.bool("version", False, "print version")
    fs.string("topic", "", "NSQ topic")
    fs.string("channel", "", "NSQ channel")
    fs.duration("status-every", -1, "(deprecated) duration of time between polling/printing output")
    fs.duration("interval", 2 * SECOND, "duration of time between polling/printing output")
    fs.duration("http-client-connect-timeout", 2 * SECOND, "timeout for HTTP connect")
    fs.duration("http-client-request-timeout", 5 * SECOND, "timeout for HTTP request")
    fs.custom("count", _Count(), "number of reports", parse=_parse_count,
              to_str=lambda v: "N", zero_str="N")
    fs.str_list("nsqd-http-address", "nsqd HTTP address (may be given multiple times)")
    fs.str_list("lookupd-http-address", "lookupd HTTP address (may be given multiple times)")
    return fs


@dataclass
class ChannelStats:
    depth: int = 0
    backend_depth: int = 0
    in_flight_count: int = 0
    deferred_count: int = 0
    requeue_count: int = 0
    timeout_count: int = 0
    message_count: int = 0
    client_count: int = 0

    @property
    def memory_depth(self) -> int:
        return self.depth - self.backend_depth

    def add(self, c: dict[str, Any]) -> None:
        self.depth += int(c.get("depth") or 0)
        self.backend_depth += int(c.get("backend_depth") or 0)
        self.in_flight_count += int(c.get("in_flight_count") or 0)
        self.deferred_count += int(c.get("deferred_count") or 0)
        self.requeue_count += int(c.get("requeue_count") or 0)
        self.timeout_count += int(c.get("timeout_count") or 0)
        self.message_count += int(c.get("message_count") or 0)
        clients = c.get("client_count")
        if clients is None:
            clients = len(c.get("clients") or ())
        self.client_count += int(clients)


class StatError(Exception):
    pass


def _url(addr: str, path: str, **query: str) -> str:
    return f"http://{addr}{path}?" + urllib.parse.urlencode(query)


def _join_host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"


class Poller:
    """The cluster queries nsq_stat needs (the clusterinfo subset)."""

    def __init__(self, session: aiohttp.ClientSession, topic: str, channel: str) -> None:
        self.session = session
        self.topic = topic
        self.channel = channel

    async def _get(self, url: str) -> Any:
        try:
            async with self.session.get(url, headers={"Accept": ACCEPT}) as resp:
                body = await resp.read()
                if resp.status != 200:
                    raise StatError(f"got response {resp.status} {resp.reason} "
                                    f"{body.decode('utf-8', 'replace').strip()!r}")
        except asyncio.TimeoutError:
            raise StatError(f'Get "{url}": i/o timeout') from None
        except aiohttp.ClientConnectorError as e:
            os_err = e.os_error
            if os_err is not None and os_err.errno:
                reason = os.strerror(os_err.errno)
            else:
                reason = str(os_err if os_err is not None else e)
            raise StatError(f'Get "{url}": dial tcp {e.host}:{e.port}: connect: '
                            f'{reason[:1].lower()}{reason[1:]}') from None
        except aiohttp.ClientError as e:
            raise StatError(f'Get "{url}": {e}') from None
        try:
            return json.loads(body)
        except ValueError as e:
            raise StatError(f"failed to parse JSON from {url} - {e}") from None

    async def _all(self, urls: list[str]) -> list[Any]:
        results = await asyncio.gather(*(self._get(u) for u in urls), return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            raise StatError("; ".join(str(e) for e in errors))
        return results

    async def lookupd_producers(self, lookupds: list[str]) -> list[str]:
        replies = await self._all([_url(a, "/lookup", topic=self.topic) for a in lookupds])
        out: list[str] = []
        for reply in replies:
            if isinstance(reply, dict) and "data" in reply and "producers" not in reply:
                reply = reply["data"]  # pre-1.0 envelope
            for p in (reply or {}).get("producers") or []:
                addr = _join_host_port(p["broadcast_address"], int(p["http_port"]))
                if addr not in out:
                    out.append(addr)
        return out

    async def nsqd_producers(self, nsqds: list[str]) -> list[str]:
        replies = await self._all([_url(a, "/stats", format="json", topic=self.topic,
                                        include_clients="false") for a in nsqds])
        out = []
        for addr, reply in zip(nsqds, replies):
            topics = (reply or {}).get("topics") or []
            if any(t.get("topic_name") == self.topic for t in topics) and addr not in out:
                out.append(addr)
        return out

    async def channel_stats(self, producers: list[str]) -> ChannelStats | None:
        replies = await self._all([_url(a, "/stats", format="json", topic=self.topic,
                                        channel=self.channel, include_clients="false")
                                   for a in producers])
        found = False
        agg = ChannelStats()
        for reply in replies:
            for t in (reply or {}).get("topics") or []:
                if t.get("topic_name") != self.topic:
                    continue
                for c in t.get("channels") or []:
                    if c.get("channel_name") == self.channel:
                        agg.add(c)
                        found = True
        return agg if found else None


def _write(text: str) -> None:
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        sys.exit(0)


async def stat_loop(values: dict[str, Any], interval_ns: int) -> int:
    topic, channel = values["topic"], values["channel"]
    count: _Count = values["count"]
    interval = interval_ns / 1e9
    timeout = aiohttp.ClientTimeout(total=values["http_client_request_timeout"] / 1e9,
                                    connect=values["http_client_connect_timeout"] / 1e9)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        poller = Poller(session, topic, channel)
        prev: ChannelStats | None = None
        i = 0
        while not count.is_set or count.value >= i:  # type: ignore[operator]
            try:
                if values["lookupd_http_address"]:
                    producers = await poller.lookupd_producers(values["lookupd_http_address"])
                else:
                    producers = await poller.nsqd_producers(values["nsqd_http_address"])
            except StatError as e:
                common.fatal("ERROR: failed to get topic producers - %s", e)
            try:
                c = await poller.channel_stats(producers)
            except StatError as e:
                common.fatal("ERROR: failed to get nsqd stats - %s", e)
            if c is None:
                common.fatal("ERROR: failed to find channel(%s) in stats metadata for topic(%s)",
                             channel, topic)
            if i % 25 == 0:
                _write(HEADER)
            if prev is not None:
                dmsg = c.message_count - prev.message_count
                ddepth = c.depth - prev.depth
                _write(LINE % (int(dmsg / interval), int((dmsg - ddepth) / interval),
                               c.depth, c.memory_depth, c.backend_depth, c.in_flight_count,
                               c.deferred_count, c.requeue_count, c.timeout_count,
                               c.message_count, c.client_count))
            prev = c
            i += 1
            if count.is_set and i > count.value:  # type: ignore[operator]
                break
            await asyncio.sleep(interval)
    return 0


async def _run(values: dict[str, Any], interval_ns: int) -> int:
    loop = asyncio.get_running_loop()
    done: asyncio.Future[int] = loop.create_future()

    def on_signal(_sig: int) -> None:
        if not done.done():
            done.set_result(0)

    common.on_signals(on_signal, (signal.SIGHUP, signal.SIGINT, signal.SIGTERM))
    task = asyncio.ensure_future(stat_loop(values, interval_ns))
    await asyncio.wait([task, done], return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        return task.result()
    task.cancel()
    return done.result()


def _check_addrs(addrs: list[str]) -> str | None:
    for a in addrs:
        if a.startswith("http"):
            return "address should not contain scheme"
    return None


def _main() -> int:
    values, _rest = common.parse_args(flagset())
    if values["version"]:
        common.print_version(TOOL)
        return 0
    if not values["topic"] or not values["channel"]:
        common.fatal("--topic and --channel are required")
    interval = values["interval"]
    if values["status_every"] != -1:
        common.std_log("--status-every is deprecated, use --interval")
        interval = values["status_every"]
    if interval <= 0:
        common.fatal("--interval should be positive")
    if values["http_client_connect_timeout"] <= 0:
        common.fatal("--http-client-connect-timeout should be positive")
    if values["http_client_request_timeout"] <= 0:
        common.fatal("--http-client-request-timeout should be positive")
    count: _Count = values["count"]
    if count.is_set and count.value <= 0:  # type: ignore[operator]
        common.fatal("--count should be positive")
    nsqds, lookupds = values["nsqd_http_address"], values["lookupd_http_address"]
    if not nsqds and not lookupds:
        common.fatal("--nsqd-http-address or --lookupd-http-address required")
    if nsqds and lookupds:
        common.fatal("use --nsqd-http-address or --lookupd-http-address not both")
    err = _check_addrs(nsqds)
    if err:
        common.fatal("--nsqd-http-address error - %s", err)
    err = _check_addrs(lookupds)
    if err:
        common.fatal("--lookupd-http-address error - %s", err)
    common.setup_client_logging("info")
    return common.run(_run(values, interval))


def main() -> None:
    common.main_guard(_main)


if __name__ == "__main__":
    main()
