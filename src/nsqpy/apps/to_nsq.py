"""``to_nsq``: publish stdin, split on a delimiter, to every nsqd given (flags.md §7).

Each non-empty chunk (delimiter removed) is published with a synchronous PUB to every
``--nsqd-tcp-address`` in turn; a publish error is fatal.  ``--rate N`` throttles to N
messages per second.  [quirk, kept] the final chunk — the one not ended by the
delimiter — also loses its last byte, as upstream (``a\\nbb\\n\\nccc`` publishes ``a``,
``bb``, ``cc``).  EOF or SIGINT/SIGTERM: stop the producers, exit 0.  No ``--version``.
"""
from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
from typing import Any

from ..client import Producer
from ..goflags import FlagSet
from . import common

TOOL = "to_nsq"
_READ_SIZE = 1 << 16


def flagset() -> FlagSet:
    fs = FlagSet(sys.argv[0] if sys.argv and sys.argv[0] else TOOL)
    fs.string("topic", "", "NSQ topic to publish to")
    fs.string("delimiter", "\n", "character to split input from stdin")
    fs.str_list("nsqd-tcp-address", "destination nsqd TCP address (may be given multiple times)")
    common.add_producer_opt_flag(fs)
    fs.int("rate", 0, "Throttle messages to n/second. 0 to disable")
    return fs


class _Throttle:
    """Token bucket like upstream's: one message of credit at start, one more every
    1/rate seconds, at most ``rate`` saved up."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self.interval = 1.0 / rate
        self.balance = 1.0
        self.last = time.monotonic()

    def _refill(self) -> None:
        now = time.monotonic()
        self.balance = min(float(self.rate), self.balance + (now - self.last) * self.rate)
        self.last = now

    async def take(self) -> None:
        self._refill()
        while self.balance < 1.0:
            await asyncio.sleep((1.0 - self.balance) * self.interval)
            self._refill()
        self.balance -= 1.0


class _StdinReader:
    """Reads stdin in a daemon thread (a blocked read never holds up the exit) and
    hands the chunks to the event loop; ``b""`` means EOF."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.loop = asyncio.get_running_loop()
        self.queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=4)
        threading.Thread(target=self._run, name="to_nsq-stdin", daemon=True).start()

    def _put(self, data: bytes) -> None:
        fut = asyncio.run_coroutine_threadsafe(self.queue.put(data), self.loop)
        fut.result()

    def _run(self) -> None:
        try:
            while True:
                try:
                    data = os.read(self.fd, _READ_SIZE)
                except OSError:
                    data = b""
                self._put(data)
                if not data:
                    return
        except Exception:  # loop closed: the tool is exiting
            return

    async def read(self) -> bytes:
        return await self.queue.get()


class _PublishFailed(Exception):
    """A PUB failed: the tool ends (upstream's ``log.Fatal(err)``)."""


async def _publish_all(producers: list[Producer], topic: str, body: bytes) -> None:
    for p in producers:
        try:
            await p.publish(topic, body)
        except Exception as e:  # noqa: BLE001
            raise _PublishFailed(_publish_error(p, e)) from None


def _publish_error(p: Producer, e: BaseException) -> str:
    cause = e.__cause__ or e.__context__
    if isinstance(cause, OSError) and cause.strerror:
        return common.connect_error_text(p.address, cause)
    return str(e).replace("\n", " ") or type(e).__name__


async def _pump(values: dict[str, Any], producers: list[Producer], delim: bytes) -> None:
    topic = values["topic"]
    throttle = _Throttle(values["rate"]) if values["rate"] >= 1 else None
    if throttle is not None:
        common.std_log("Throttling messages rate to max:%d/second", values["rate"])
    reader = _StdinReader(sys.stdin.fileno())
    buf = b""
    eof = False
    while True:
        idx = buf.find(delim)
        if idx < 0:
            if eof:
                # the last chunk loses its last byte too (upstream quirk)
                chunk = buf[:-1]
                if chunk:
                    if throttle is not None:
                        await throttle.take()
                    await _publish_all(producers, topic, chunk)
                return
            data = await reader.read()
            if not data:
                eof = True
            buf += data
            continue
        chunk, buf = buf[:idx], buf[idx + 1:]
        if not chunk:
            continue
        if throttle is not None:
            await throttle.take()
        await _publish_all(producers, topic, chunk)


async def _run(values: dict[str, Any], delim: bytes) -> int:
    cfg = common.producer_config(values, TOOL)
    producers: list[Producer] = []
    for addr in values["nsqd_tcp_address"]:
        try:
            producers.append(Producer(addr, config=cfg))
        except (ValueError, Exception) as e:  # noqa: BLE001
            common.fatal("failed to create nsq.Producer - %s", e)
    if not producers:
        common.fatal("--nsqd-tcp-address required")

    stop = asyncio.Event()
    common.on_signals(lambda _sig: stop.set())
    pump = asyncio.ensure_future(_pump(values, producers, delim))
    stopper = asyncio.ensure_future(stop.wait())
    await asyncio.wait([pump, stopper], return_when=asyncio.FIRST_COMPLETED)
    if pump.done():
        try:
            pump.result()
        except _PublishFailed as e:
            common.fatal(str(e))
    else:
        pump.cancel()
    stopper.cancel()
    await asyncio.gather(*(p.close() for p in producers), return_exceptions=True)
    return 0


def _main() -> int:
    values, _rest = common.parse_args(flagset())
    if not values["topic"]:
        common.fatal("--topic required")
    delim = values["delimiter"].encode("utf-8", "surrogateescape")
    if len(delim) != 1:
        common.fatal("--delimiter must be a single byte")
    common.setup_client_logging("info")
    return common.run(_run(values, delim))


def main() -> None:
    common.main_guard(_main)


if __name__ == "__main__":
    main()
