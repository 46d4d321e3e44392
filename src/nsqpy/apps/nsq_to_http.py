"""``nsq_to_http``: consume a topic/channel and send every message to HTTP endpoints.

Spec flags.md §7 (nsq_to_http).  Each message is sent with ``--get`` (the address has
one ``%s``, replaced by the query-escaped body; success = 200) or ``--post`` (the body,
``Content-Type: --content-type``; success = any 2xx) to

* one address chosen by ``--mode=hostpool`` (default; ``epsilon-greedy`` likewise) or
  ``--mode=round-robin``,
* or every address in turn (any other mode, e.g. ``multicast``; the first failure ends
  the attempt).

A message is finished only once the endpoint(s) accepted it; a failure (connection
error, timeout, another status) requeues it with backoff, so it is retried and never
silently lost.  ``--n`` requests run concurrently.  ``--sample`` finishes a fraction of
the messages without sending them.
"""
from __future__ import annotations

import asyncio
import random
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, Sequence

import aiohttp
from yarl import URL

from ..client import Message
from ..goflags import FlagSet
from ..gotime import SECOND
from . import common
from .common import fatal, std_log
from .hostpool import EpsilonGreedyHostPool, HostPool, HostPoolResponse, RoundRobin, \
    TimerMetrics

TOOL = "nsq_to_http"

MODE_ALL = "multicast"
MODE_ROUND_ROBIN = "round-robin"
MODE_HOST_POOL = "hostpool"
MODE_EPSILON_GREEDY = "epsilon-greedy"

DEFAULT_CONTENT_TYPE = "application/octet-stream"


def build_flags() -> FlagSet:
    fs = FlagSet(TOOL)
    common.add_version_flag(fs)
    fs.string("topic", "", "nsq topic")
    fs.string("channel", "nsq_to_http", "nsq channel")
    common.add_consumer_flags(fs, max_in_flight=200)
    fs.int("n", 100, "number of concurrent publishers")
    fs.string("mode", "hostpool", "the upstream request mode options: multicast, round-robin, "
              "hostpool (default), epsilon-greedy")
    fs.float("sample", 1.0, "% of messages to publish (float b/w 0 -> 1)")
    fs.duration("http-client-connect-timeout", 2 * SECOND, "timeout for HTTP connect")
    fs.duration("http-client-request-timeout", 20 * SECOND, "timeout for HTTP request")
    fs.int("status-every", 250, "the # of requests between logging status (per handler), "
           "0 disables")
    fs.string("content-type", DEFAULT_CONTENT_TYPE, "the Content-Type used for POST requests")
    fs.str_list("post", "HTTP address to make a POST request to.  data will be in the body "
                "(may be given multiple times)")
    fs.str_list("get", "HTTP address to make a GET request to. '%s' will be printf replaced "
                "with data (may be given multiple times)")
    fs.str_list("header", "Custom header for HTTP requests (may be given multiple times)")
    return fs


def parse_custom_headers(values: Sequence[str]) -> dict[str, str]:
    """``"Name: value"`` → ``{"Name": "value"}`` (split at the first ``:``, both sides
    trimmed and non-empty); raises ValueError otherwise."""
    headers: dict[str, str] = {}
    for s in values:
        key, sep, val = s.partition(":")
        key, val = key.strip(), val.strip()
        if not sep or not key or not val:
            raise ValueError(f"Invalid header: {s!r}")
        headers[key] = val
    return headers


def query_escape(body: bytes) -> str:
    """Go ``url.QueryEscape``: space → ``+``, everything but ``[A-Za-z0-9-_.~]`` %-escaped."""
    return urllib.parse.quote_plus(body, safe="")


def get_endpoint(template: str, body: bytes) -> str:
    """The GET address with its ``%s`` replaced by the query-escaped body (``%%`` → ``%``)."""
    escaped = query_escape(body)
    out: list[str] = []
    i = 0
    n = len(template)
    used = False
    while i < n:
        c = template[i]
        if c == "%" and i + 1 < n:
            nxt = template[i + 1]
            if nxt == "%":
                out.append("%")
                i += 2
                continue
            if nxt == "s" and not used:
                out.append(escaped)
                used = True
                i += 2
                continue
        out.append(c)
        i += 1
    return "".join(out)


@dataclass
class Options:
    topic: str
    channel: str
    nsqd_tcp_addresses: list[str]
    lookupd_http_addresses: list[str]
    method: str
    addresses: list[str]
    mode: str
    sample: float
    concurrency: int
    connect_timeout: float
    request_timeout: float
    status_every: int
    content_type: str
    headers: dict[str, str] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)


def validate(values: dict[str, Any]) -> Options:
    """The Go tool's checks, in its order; each failure is a fatal log line (exit 1)."""
    headers: dict[str, str] = {}
    if values["header"]:
        try:
            headers = parse_custom_headers(values["header"])
        except ValueError:
            fatal("--header value format should be 'key=value'")
    topic, channel = values["topic"], values["channel"]
    if not topic or not channel:
        fatal("--topic and --channel are required")
    posts, gets = values["post"], values["get"]
    content_type = values["content_type"]
    if content_type != DEFAULT_CONTENT_TYPE:
        if not posts:
            fatal("--content-type only used with --post")
        if not content_type:
            fatal("--content-type requires a value when used")
    common.check_consumer_addresses(values)
    if not gets and not posts:
        fatal("--get or --post required")
    if gets and posts:
        fatal("use --get or --post not both")
    for g in gets:
        if g.count("%s") != 1:
            fatal("invalid GET address - must be a printf string")
    mode_flag = values["mode"]
    if mode_flag == "multicast":
        std_log("WARNING: multicast mode is deprecated in favor of using separate "
                "nsq_to_http on different channels (and will be dropped in a future release)")
        mode = MODE_ALL
    elif mode_flag == "round-robin":
        mode = MODE_ROUND_ROBIN
    elif mode_flag == "hostpool":
        mode = MODE_HOST_POOL
    elif mode_flag == "epsilon-greedy":
        mode = MODE_EPSILON_GREEDY
    else:
        mode = MODE_ALL          # Go's zero value: every address
    sample = values["sample"]
    if sample > 1.0 or sample < 0.0:
        fatal("ERROR: --sample must be between 0.0 and 1.0")
    if values["n"] < 1:
        fatal("--n must be > 0")
    return Options(
        topic=topic, channel=channel,
        nsqd_tcp_addresses=list(values["nsqd_tcp_address"]),
        lookupd_http_addresses=list(values["lookupd_http_address"]),
        method="POST" if posts else "GET",
        addresses=list(posts or gets),
        mode=mode,
        sample=sample, concurrency=values["n"],
        connect_timeout=values["http_client_connect_timeout"] / SECOND,
        request_timeout=values["http_client_request_timeout"] / SECOND,
        status_every=values["status_every"], content_type=content_type,
        headers=headers, values=values)


class PublishError(Exception):
    """An endpoint did not accept a message."""


class HTTPPublisher:
    """Sends message bodies to the endpoints; one instance per tool run."""

    def __init__(self, opts: Options, session: aiohttp.ClientSession) -> None:
        self.opts = opts
        self.session = session
        self.addresses = opts.addresses
        self.user_agent = f"{TOOL} v{common.NSQ_VERSION}"
        self.selector: HostPool | RoundRobin | None
        if opts.mode == MODE_ROUND_ROBIN:
            self.selector = RoundRobin(self.addresses)
        elif opts.mode == MODE_EPSILON_GREEDY:
            self.selector = EpsilonGreedyHostPool(self.addresses)
        elif opts.mode == MODE_HOST_POOL:
            self.selector = HostPool(self.addresses)
        else:
            self.selector = None
        if len(self.addresses) == 1:
            self.per_address = {self.addresses[0]: TimerMetrics(0, "")}
        else:
            self.per_address = {a: TimerMetrics(opts.status_every, f"[{a}]:")
                                for a in self.addresses}
        self.aggregate = TimerMetrics(opts.status_every, "[aggregate]:")
        self._sem = asyncio.Semaphore(opts.concurrency)
        self._rng = random.Random()
        self.sent = 0

    def _headers(self) -> dict[str, str]:
        h = {"User-Agent": self.user_agent}
        if self.opts.method == "POST":
            h["Content-Type"] = self.opts.content_type
        h.update(self.opts.headers)
        return h

    async def publish(self, addr: str, body: bytes) -> None:
        """One request; raises :class:`PublishError` unless the endpoint accepted it."""
        if self.opts.method == "GET":
            endpoint = get_endpoint(addr, body)
            data: bytes | None = None
            ok = (200,)
        else:
            endpoint = addr
            data = body
            ok = tuple(range(200, 300))
        try:
            url = URL(endpoint, encoded=True)
            async with self.session.request(self.opts.method, url, data=data,
                                            headers=self._headers()) as resp:
                await resp.read()
                status = resp.status
        except asyncio.TimeoutError:
            raise PublishError(f"{self.opts.method} {endpoint}: timeout") from None
        except (aiohttp.ClientError, OSError, ValueError) as e:
            raise PublishError(f"{self.opts.method} {endpoint}: "
                               f"{str(e) or type(e).__name__}") from None
        if status not in ok:
            raise PublishError(f"got status code {status}")
        self.sent += 1

    async def handle(self, msg: Message) -> None:
        """Consumer handler: return → FIN, raise → REQ (with backoff)."""
        if self.opts.sample < 1.0 and self._rng.random() > self.opts.sample:
            return
        async with self._sem:
            started = time.monotonic()
            body = msg.body
            if self.selector is None:
                for addr in self.addresses:
                    st = time.monotonic()
                    await self.publish(addr, body)
                    self.per_address[addr].status(st)
            else:
                choice: HostPoolResponse = self.selector.get()
                addr = choice.host
                try:
                    await self.publish(addr, body)
                except PublishError as e:
                    choice.mark(e)
                    raise
                choice.mark(None)
                self.per_address[addr].status(started)
            self.aggregate.status(started)


async def _run(opts: Options) -> int:
    connect = opts.connect_timeout or None
    total = opts.request_timeout or None
    timeout = aiohttp.ClientTimeout(total=total, sock_connect=connect, connect=None)
    connector = aiohttp.TCPConnector(limit=0)
    stop = asyncio.Event()
    common.on_signals(lambda _sig: stop.set())
    # no cookie jar: like Go's http.Client every request stands alone
    async with aiohttp.ClientSession(timeout=timeout, connector=connector,
                                     cookie_jar=aiohttp.DummyCookieJar()) as session:
        publisher = HTTPPublisher(opts, session)
        cfg = common.consumer_config(opts.values, TOOL)
        consumer = common.new_consumer(opts.topic, opts.channel, publisher.handle, cfg)
        await common.start_consumer(consumer, opts.nsqd_tcp_addresses,
                                    opts.lookupd_http_addresses)
        await stop.wait()
        await common.stop_consumers([consumer])
    return 0


def main(argv: Sequence[str] | None = None) -> None:
    common.run_tool(TOOL, build_flags(), validate, _run, argv)


if __name__ == "__main__":
    main()
