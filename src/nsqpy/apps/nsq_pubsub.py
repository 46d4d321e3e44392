"""``nsq_pubsub``: an HTTP publish / streaming-subscribe front end for NSQ.

Endpoints (``--http-address``, default ``0.0.0.0:8080``):

* ``POST /pub?topic=<t>`` — the request body is published as one message (to the
  ``--nsqd-tcp-address`` nsqd, failing over in order; with ``--lookupd-http-address``
  to the nsqd the lookupds list in ``/nodes``).  ``200 OK`` once nsqd accepted it.
* ``GET /sub?topic=<t>&channel=<c>`` — a long-lived streaming response (``text/plain``):
  every message of the channel is written as its body plus ``\\n`` as it arrives, and
  ``{"_heartbeat_":<unix time>}`` lines every 30 s.  Each subscriber is its own consumer
  (``--max-in-flight`` messages in flight), so several subscribers of one channel share
  its messages.  A message is finished once it was written out to the subscriber's socket;
  when the subscriber goes away every message it had not been sent yet goes back to the
  channel at once (REQ, no backoff) for another subscriber.
* ``GET /stats`` — the number of messages streamed and one line per subscriber;
  ``GET /ping`` — ``OK``.

Like Go's ``nsq_pubsub`` (which had ``/sub`` and ``/stats`` only), but built on
:mod:`nsqpy.client` and aiohttp.
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any, Sequence

import aiohttp
from aiohttp import web

from ..client import Config, Consumer, Message, NotConnectedError, Producer
from ..goflags import FlagSet
from ..protocol.names import is_valid_channel_name, is_valid_topic_name
from . import common
from .common import fatal, std_log

TOOL = "nsq_pubsub"
HEARTBEAT_INTERVAL = 30.0
LOOKUPD_TIMEOUT = 5.0


def build_flags() -> FlagSet:
    fs = FlagSet(TOOL)
    common.add_version_flag(fs)
    fs.string("http-address", "0.0.0.0:8080", "<addr>:<port> to listen on for HTTP clients")
    common.add_consumer_flags(fs, max_in_flight=100)
    common.add_producer_opt_flag(fs)
    return fs


def split_host_port(addr: str) -> tuple[str, int]:
    host, sep, port = addr.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"address {addr}: missing port in address")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port)


def _json_error(status: int, message: str) -> web.Response:
    return web.json_response({"message": message}, status=status)


class Subscriber:
    """One ``/sub`` client: a consumer whose messages are streamed to the response."""

    def __init__(self, server: "PubSubServer", request: web.Request, topic: str,
                 channel: str) -> None:
        self.server = server
        self.request = request
        self.topic = topic
        self.channel = channel
        self.remote = _remote(request)
        self.connected_at = time.monotonic()
        self.consumer = Consumer(topic, channel, None, config=server.consumer_config,
                                 nsqd_tcp_addresses=server.nsqd_addresses,
                                 lookupd_http_addresses=server.lookupd_addresses,
                                 auto_finish=False)
        self.sent = 0
        self.finished = 0
        self.requeued = 0
        self._stopping = False

    def stop(self) -> None:
        """End the stream (server shutdown): CLS, requeue what was not written."""
        if not self._stopping:
            self._stopping = True
            self.consumer.stop()

    async def serve(self) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/plain; charset=utf-8",
                                           "Cache-Control": "no-cache",
                                           "X-Accel-Buffering": "no"})
        writer = await resp.prepare(self.request)
        assert writer is not None
        transport = self.request.transport
        if transport is not None:
            # pause (and so make drain() wait) as soon as anything is left unsent, so a
            # message is finished only once it is out of our buffers
            try:
                transport.set_write_buffer_limits(high=0, low=0)
            except (AttributeError, NotImplementedError, ValueError):
                pass
        std_log(f"[{self.remote}] new subscriber {self.topic}/{self.channel}")
        current: Message | None = None
        reason = "stopped"
        try:
            await self.consumer.start()
            next_heartbeat = time.monotonic() + HEARTBEAT_INTERVAL
            while not self._stopping:
                left = next_heartbeat - time.monotonic()
                if left <= 0:
                    await writer.write(b'{"_heartbeat_":%d}\n' % int(time.time()))
                    await writer.drain()
                    next_heartbeat = time.monotonic() + HEARTBEAT_INTERVAL
                    continue
                current = await self.consumer.get_message(timeout=left)
                if current is None:
                    continue
                await writer.write(current.body + b"\n")
                await writer.drain()
                self.sent += 1
                self.server.message_count += 1
                current.finish()
                self.finished += 1
                current = None
                self.requeued = self.consumer.messages_requeued
        except asyncio.CancelledError:
            reason = "disconnected"
            raise
        except (ConnectionError, OSError, aiohttp.ClientError) as e:
            reason = f"disconnected ({str(e) or type(e).__name__})"
        except Exception as e:  # noqa: BLE001 - end this stream, keep the server up
            reason = f"failed ({str(e) or type(e).__name__})"
        finally:
            if current is not None and not current.has_responded():
                current.requeue(0, backoff=False)
            self._stopping = True
            self.consumer.stop()               # CLS; queued messages are requeued
            self.requeued = self.consumer.messages_requeued
            self.server._forget(self)
            std_log(f"[{self.remote}] subscriber {self.topic}/{self.channel} {reason} "
                    f"(sent {self.sent}, requeued {self.requeued})")
        try:
            await writer.write_eof()
        except (ConnectionError, OSError, aiohttp.ClientError, RuntimeError):
            pass
        return resp


class _OneLineHandler(logging.Handler):
    """aiohttp's own log records as one std-log line each (no tracebacks)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            msg = record.getMessage()
        except Exception:  # noqa: BLE001
            msg = str(record.msg)
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            msg += f" - {type(exc).__name__}: {exc}"
        std_log(msg.replace("\n", " "))


def _setup_aiohttp_logging() -> None:
    lg = logging.getLogger("aiohttp")
    if not any(isinstance(h, _OneLineHandler) for h in lg.handlers):
        lg.addHandler(_OneLineHandler())
    lg.propagate = False
    lg.setLevel(logging.WARNING)


def _remote(request: web.Request) -> str:
    peer = request.transport.get_extra_info("peername") if request.transport else None
    if isinstance(peer, tuple) and len(peer) >= 2:
        host = peer[0]
        return f"[{host}]:{peer[1]}" if ":" in host else f"{host}:{peer[1]}"
    return request.remote or "?"


class PubSubServer:
    def __init__(self, values: dict[str, Any]) -> None:
        self.nsqd_addresses: list[str] = list(values["nsqd_tcp_address"])
        self.lookupd_addresses: list[str] = list(values["lookupd_http_address"])
        self.consumer_config: Config = common.consumer_config(values, TOOL)
        self.producer_config: Config = common.producer_config(values, TOOL)
        self.producer: Producer | None = None
        self.subscribers: list[Subscriber] = []
        self._closing_consumers: set[asyncio.Task[Any]] = set()
        self.message_count = 0
        self.published = 0
        self._http: aiohttp.ClientSession | None = None

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/pub", self.handle_pub)
        app.router.add_put("/pub", self.handle_pub)
        app.router.add_get("/sub", self.handle_sub)
        app.router.add_get("/stats", self.handle_stats)
        app.router.add_get("/ping", self.handle_ping)
        return app

    # -- publishing ------------------------------------------------------------------------
    async def _lookupd_nodes(self) -> list[str]:
        if self._http is None:
            self._http = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=LOOKUPD_TIMEOUT))
        found: list[str] = []
        for addr in self.lookupd_addresses:
            url = addr if "://" in addr else f"http://{addr}"
            url = url.rstrip("/") + "/nodes"
            try:
                async with self._http.get(
                        url, headers={"Accept": "application/vnd.nsq; version=1.0"}) as r:
                    data = json.loads(await r.read())
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError, ValueError) as e:
                std_log(f"ERROR: querying nsqlookupd {url} - {e or type(e).__name__}")
                continue
            if isinstance(data, dict) and "data" in data and "producers" not in data:
                data = data["data"]          # pre-1.0 response envelope
            for p in (data or {}).get("producers") or []:
                try:
                    host = p["broadcast_address"]
                    port = int(p["tcp_port"])
                except (KeyError, TypeError, ValueError):
                    continue
                a = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
                if a not in found:
                    found.append(a)
        return found

    async def _producer(self, refresh: bool = False) -> Producer:
        if self.producer is not None and not refresh:
            return self.producer
        if self.nsqd_addresses:
            if self.producer is None:
                self.producer = Producer(self.nsqd_addresses, config=self.producer_config)
            return self.producer
        nodes = await self._lookupd_nodes()
        if not nodes:
            raise NotConnectedError("no nsqd found via nsqlookupd")
        old = self.producer
        if old is not None and old.addresses == nodes:
            return old
        self.producer = Producer(nodes, config=self.producer_config)
        if old is not None:
            asyncio.ensure_future(old.close())
        return self.producer

    async def publish(self, topic: str, body: bytes) -> None:
        producer = await self._producer()
        try:
            await producer.publish(topic, body)
        except NotConnectedError:
            if not self.lookupd_addresses:
                raise
            producer = await self._producer(refresh=True)
            await producer.publish(topic, body)
        self.published += 1

    async def handle_pub(self, request: web.Request) -> web.Response:
        topic = request.query.get("topic")
        if not topic:
            return _json_error(400, "MISSING_ARG_TOPIC")
        if not is_valid_topic_name(topic):
            return _json_error(400, "INVALID_TOPIC")
        body = await request.read()
        if not body:
            return _json_error(400, "MSG_EMPTY")
        try:
            await self.publish(topic, body)
        except Exception as e:  # noqa: BLE001 - any failure is a 503 for the client
            text = str(e) or type(e).__name__
            std_log(f"ERROR: publish to {topic} failed - {text}")
            return _json_error(503, f"PUB_FAILED {text}")
        return web.Response(text="OK")

    # -- subscribing -----------------------------------------------------------------------
    async def handle_sub(self, request: web.Request) -> web.StreamResponse:
        topic = request.query.get("topic")
        channel = request.query.get("channel")
        if not topic:
            return _json_error(400, "MISSING_ARG_TOPIC")
        if not is_valid_topic_name(topic):
            return _json_error(400, "INVALID_ARG_TOPIC")
        if not channel:
            return _json_error(400, "MISSING_ARG_CHANNEL")
        if not is_valid_channel_name(channel):
            return _json_error(400, "INVALID_ARG_CHANNEL")
        sub = Subscriber(self, request, topic, channel)
        self.subscribers.append(sub)
        return await sub.serve()

    def _forget(self, sub: Subscriber) -> None:
        if sub in self.subscribers:
            self.subscribers.remove(sub)
        task = asyncio.ensure_future(sub.consumer.wait_closed())
        self._closing_consumers.add(task)
        task.add_done_callback(self._closing_consumers.discard)

    async def handle_stats(self, request: web.Request) -> web.Response:
        lines = [f"Total Messages: {self.message_count}", ""]
        now = time.monotonic()
        for s in self.subscribers:
            lines.append(f"[{s.remote}] [{s.topic} : {s.channel}] msgs: {s.sent:<8d} "
                         f"fin: {s.finished:<8d} re-q: {s.requeued:<8d} "
                         f"connected: {int(now - s.connected_at)}s")
        return web.Response(text="\n".join(lines) + "\n")

    async def handle_ping(self, request: web.Request) -> web.Response:
        return web.Response(text="OK")

    # -- shutdown --------------------------------------------------------------------------
    async def close(self) -> None:
        for s in list(self.subscribers):
            s.stop()
        # wait for the streams to end and their consumers to close
        for _ in range(300):
            if not self.subscribers:
                break
            await asyncio.sleep(0.01)
        if self._closing_consumers:
            await asyncio.gather(*list(self._closing_consumers), return_exceptions=True)
        if self.producer is not None:
            await self.producer.close()
        if self._http is not None:
            await self._http.close()


async def _run(values: dict[str, Any], host: str, port: int) -> int:
    server = PubSubServer(values)
    runner = web.AppRunner(server.app(), handler_cancellation=True, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host or None, port, reuse_address=True)
    try:
        await site.start()
    except OSError as e:
        await runner.cleanup()
        fatal(f"FATAL: listen ({host}:{port}) failed - {e.strerror or e}")
    bound = [s.getsockname() for s in (site._server.sockets if site._server else [])]
    if bound:
        h, p = bound[0][0], bound[0][1]
        shown = f"[{h}]:{p}" if ":" in h else f"{h}:{p}"
    else:
        shown = f"{host}:{port}"
    std_log(f"listening on {shown}")
    stop = asyncio.Event()
    common.on_signals(lambda _sig: stop.set())
    await stop.wait()
    await server.close()
    await runner.cleanup()
    return 0


def _main(argv: Sequence[str] | None) -> int:
    values, _rest = common.parse_args(build_flags(), argv)
    if values["version"]:
        common.print_version(TOOL)
        return 0
    if values["max_in_flight"] <= 0:
        fatal("--max-in-flight must be > 0")
    common.check_consumer_addresses(
        values, required_msg="--nsqd-tcp-address or --lookupd-http-address required.")
    try:
        host, port = split_host_port(values["http_address"])
    except ValueError as e:
        fatal(str(e))
    common.setup_client_logging()
    _setup_aiohttp_logging()
    return common.run(_run(values, host, port))


def main(argv: Sequence[str] | None = None) -> None:
    common.main_guard(lambda: _main(argv))


if __name__ == "__main__":
    main()
