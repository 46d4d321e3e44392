"""``nsq_tail``: consume topics and write every message body to stdout (flags.md §7).

One consumer per ``--topic`` on a shared channel (default a random
``tail%06d#ephemeral``); each message is written as ``[<topic> | ]<body>\\n`` and
finished.  ``--n N`` exits 0 right after printing the N-th message — before it is
finished, as upstream does (the message stays in flight until it times out).
SIGINT/SIGTERM stop gracefully (CLS, wait for in-flight, exit 0).
"""
from __future__ import annotations

import asyncio
import random
import sys
from typing import Any

from ..client import Consumer, Message
from ..goflags import FlagSet
from . import common

TOOL = "nsq_tail"


def flagset() -> FlagSet:
    # Go's global flag set: "Usage of <argv[0]>:"
    fs = FlagSet(sys.argv[0] if sys.argv and sys.argv[0] else TOOL)
    common.add_version_flag(fs)
    fs.string("channel", "", "NSQ channel")
    fs.int("n", 0, "total messages to show (will wait if starved)")
    fs.bool("print-topic", False, "print topic name where message was received")
    fs.str_list("topic", "NSQ topic (may be given multiple times)")
    common.add_consumer_flags(fs)
    return fs


class _Output:
    """Writes message lines to stdout (binary) and counts them for ``--n``."""

    def __init__(self, total: int, print_topic: bool) -> None:
        self.total = total
        self.print_topic = print_topic
        self.shown = 0
        self.out = sys.stdout.buffer
        self.consumers: list[Consumer] = []

    def handler(self, topic: str) -> Any:
        prefix = topic.encode() + b" | " if self.print_topic else b""

        def handle(msg: Message) -> None:
            self.shown += 1
            try:
                self.out.write(prefix + msg.body + b"\n")
                self.out.flush()
            except (OSError, ValueError) as e:
                common.fatal("ERROR: failed to write to os.Stdout - %s", e)
            if self.total > 0 and self.shown >= self.total:
                # exit at once, before this message's FIN (upstream quirk); the FINs
                # of the earlier ones still go out, as they would have in Go by now
                for c in self.consumers:
                    for conn in c.connections.values():
                        conn._flush()
                common.exit_now(0)
        return handle


async def _run(values: dict[str, Any]) -> int:
    total = values["n"]
    max_in_flight = values["max_in_flight"]
    if 0 < total < max_in_flight:
        max_in_flight = total  # don't ask for more messages than we want
    cfg = common.consumer_config(values, TOOL, max_in_flight)
    out = _Output(total, values["print_topic"])

    stop = asyncio.Event()
    common.on_signals(lambda _sig: stop.set())

    consumers = []
    for topic in values["topic"]:
        common.std_log("Adding consumer for topic: %s", topic)
        c = common.new_consumer(topic, values["channel"], out.handler(topic), cfg)
        consumers.append(c)
        out.consumers.append(c)
        await common.start_consumer(c, values["nsqd_tcp_address"],
                                    values["lookupd_http_address"])

    await stop.wait()
    await common.stop_consumers(consumers)
    return 0


def _main() -> int:
    values, _rest = common.parse_args(flagset())
    if values["version"]:
        common.print_version(TOOL)
        return 0
    if not values["channel"]:
        values["channel"] = "tail%06d#ephemeral" % (random.getrandbits(63) % 999999)
    common.check_consumer_addresses(values)
    if not values["topic"]:
        common.fatal("--topic required")
    common.setup_client_logging("info")
    return common.run(_run(values))


def main() -> None:
    common.main_guard(_main)


if __name__ == "__main__":
    main()
