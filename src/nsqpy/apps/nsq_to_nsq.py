"""``nsq_to_nsq``: relay messages from one NSQ cluster to another.

Spec flags.md §7 (nsq_to_nsq).  One consumer per ``--topic`` (channel ``--channel``)
re-publishes every message to ``--destination-topic`` (default: the topic it came from)
on one of the ``--destination-nsqd-tcp-address`` nsqd, chosen by ``--mode``:
``round-robin``, or host-pool (``hostpool``, the default, and ``epsilon-greedy``); an
unknown mode is round-robin.  A message is finished only after the destination nsqd
answered ``OK``; a failed publish requeues it (default delay, with backoff).

JSON filtering (only with ``--require-json-field`` / ``--whitelist-json-field``), as the
Go tool with go-simplejson (numbers kept as their literal text):

* a body that is not JSON is logged and dropped (finished);
* ``--require-json-field``: the (object) message must have the field, else it is dropped;
  with ``--require-json-value`` the field must equal it: string compare for JSON strings,
  numeric compare for numbers when the flag value parses as a number; a missing field
  with a required value is a handler error (requeue + backoff);
* ``--whitelist-json-field`` (repeatable): publish a new object with just those fields
  (keys sorted, as Go marshals a map); a body that is not an object is an error (requeue).
"""
from __future__ import annotations

import asyncio
import json
import math
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

from ..client import Config, Message, Producer
from ..goflags import FlagSet
from ..gostrconv import GoNumError, parse_go_float
from ..gojson import go_json
from ..protocol.names import is_valid_channel_name, is_valid_topic_name
from . import common
from .common import fatal, std_log
from .hostpool import EpsilonGreedyHostPool, HostPool, HostPoolResponse, RoundRobin, \
    TimerMetrics

TOOL = "nsq_to_nsq"


def build_flags() -> FlagSet:
    fs = FlagSet(TOOL)
    common.add_version_flag(fs)
    fs.str_list("topic", "nsq topic (may be given multiple times)")
    fs.string("channel", "nsq_to_nsq", "nsq channel")
    fs.string("destination-topic", "", "use this destination topic for all consumed topics "
              "(default is consumed topic name)")
    common.add_consumer_flags(fs, max_in_flight=200)
    common.add_producer_opt_flag(fs)
    fs.str_list("destination-nsqd-tcp-address",
                "destination nsqd TCP address (may be given multiple times)")
    fs.int("status-every", 250, "the # of requests between logging status (per destination), "
           "0 disables")
    fs.string("mode", "hostpool", "the upstream request mode options: round-robin, hostpool "
              "(default), epsilon-greedy")
    fs.string("require-json-field", "", "for JSON messages: only pass messages that contain "
              "this field")
    fs.string("require-json-value", "", "for JSON messages: only pass messages in which the "
              "required field has this value")
    fs.str_list("whitelist-json-field", "for JSON messages: pass this field (may be given "
                "multiple times)")
    return fs


# ---------------------------------------------------------------------------------------
# JSON, the go-simplejson way
# ---------------------------------------------------------------------------------------

class JSONNumber(str):
    """A JSON number kept as its literal text (Go ``json.Number``)."""

    def float64(self) -> float:
        """Go ``strconv.ParseFloat(n, 64)``; ValueError when out of range."""
        v = float(self)
        if math.isinf(v):
            raise ValueError(f"value out of range: {self}")
        return v


def _no_constant(name: str) -> Any:
    raise ValueError(f"invalid character {name[:1]!r} looking for beginning of value")


_decoder = json.JSONDecoder(parse_float=JSONNumber, parse_int=JSONNumber,
                            parse_constant=_no_constant)
_WS = " \t\r\n"


def decode_json(body: bytes) -> Any:
    """Decode the first JSON value of ``body`` like Go's ``json.Decoder`` with
    ``UseNumber`` (trailing data ignored, invalid UTF-8 replaced); ValueError if none."""
    text = body.decode("utf-8", "replace")
    i = 0
    n = len(text)
    while i < n and text[i] in _WS:
        i += 1
    if i == n:
        raise ValueError("EOF")
    value, _end = _decoder.raw_decode(text, i)
    return value


def marshal_json(value: Any) -> bytes:
    """Go ``json.Marshal`` of a decoded value: map keys sorted, numbers verbatim."""
    return _marshal(value).encode("utf-8")


def _marshal(v: Any) -> str:
    if isinstance(v, JSONNumber):
        return str.__str__(v)
    if isinstance(v, dict):
        return "{" + ",".join(go_json(str(k)).decode("utf-8") + ":" + _marshal(v[k])
                              for k in sorted(v)) + "}"
    if isinstance(v, list):
        return "[" + ",".join(_marshal(x) for x in v) + "]"
    return go_json(v).decode("utf-8")


class JSONFilter:
    """``--require-json-field`` / ``--require-json-value`` / ``--whitelist-json-field``."""

    def __init__(self, require_field: str, require_value: str, whitelist: Sequence[str]) -> None:
        self.require_field = require_field
        self.require_value = require_value
        self.whitelist = list(whitelist)
        self.value_number: float | None = None
        if require_value:
            try:
                self.value_number = parse_go_float(require_value)
            except GoNumError:
                self.value_number = None

    @property
    def active(self) -> bool:
        return bool(self.require_field or self.whitelist)

    def should_pass(self, obj: Any) -> tuple[bool, bool]:
        """``(pass, backoff)`` like the Go tool's ``shouldPassMessage``."""
        if not self.require_field:
            return True, False
        if not isinstance(obj, dict) or self.require_field not in obj:
            if self.require_value:
                std_log("ERROR: missing field to check required value")
                return False, True
            return False, False
        if not self.require_value:
            return True, False
        val = obj[self.require_field]
        if isinstance(val, str) and not isinstance(val, JSONNumber):
            return val == self.require_value, False
        if self.value_number is not None:
            if isinstance(val, JSONNumber):
                try:
                    return val.float64() == self.value_number, False
                except ValueError:
                    return False, False
            return False, False
        return False, False

    def filter(self, obj: Any, raw: bytes) -> bytes:
        """The body to publish; ValueError when a whitelist applies to a non-object."""
        if not self.whitelist:
            return raw
        if not isinstance(obj, dict):
            raise ValueError("json is not an object")
        return marshal_json({k: obj[k] for k in self.whitelist if k in obj})


# ---------------------------------------------------------------------------------------
# the relay
# ---------------------------------------------------------------------------------------

class PublishError(Exception):
    """The destination did not accept a message (or the filter asks for a requeue)."""


@dataclass
class Options:
    topics: list[str]
    channel: str
    destination_topic: str
    nsqd_tcp_addresses: list[str]
    lookupd_http_addresses: list[str]
    destinations: list[str]
    mode: str
    status_every: int
    json_filter: JSONFilter
    values: dict[str, Any] = field(default_factory=dict)


def validate(values: dict[str, Any]) -> Options:
    topics = list(values["topic"])
    channel = values["channel"]
    if not topics or not channel:
        fatal("--topic and --channel are required")
    for t in topics:
        if not is_valid_topic_name(t):
            fatal("--topic is invalid")
    dest_topic = values["destination_topic"]
    if dest_topic and not is_valid_topic_name(dest_topic):
        fatal("--destination-topic is invalid")
    if not is_valid_channel_name(channel):
        fatal("--channel is invalid")
    common.check_consumer_addresses(values)
    dests = list(values["destination_nsqd_tcp_address"])
    if not dests:
        fatal("--destination-nsqd-tcp-address required")
    mode = values["mode"]
    if mode not in ("hostpool", "epsilon-greedy"):
        mode = "round-robin"
    return Options(
        topics=topics, channel=channel, destination_topic=dest_topic,
        nsqd_tcp_addresses=list(values["nsqd_tcp_address"]),
        lookupd_http_addresses=list(values["lookupd_http_address"]),
        destinations=dests, mode=mode, status_every=values["status_every"],
        json_filter=JSONFilter(values["require_json_field"], values["require_json_value"],
                               values["whitelist_json_field"]),
        values=values)


class Relay:
    """Publishes consumed messages to the destination nsqd (one producer each)."""

    def __init__(self, opts: Options, producer_config: Config) -> None:
        self.opts = opts
        self.producers: dict[str, Producer] = {}
        for addr in opts.destinations:
            try:
                self.producers[addr] = Producer(addr, config=producer_config)
            except (ValueError, TypeError) as e:
                fatal(f"failed creating producer {e}")
        self.selector: HostPool | RoundRobin
        if opts.mode == "round-robin":
            self.selector = RoundRobin(opts.destinations)
        elif opts.mode == "epsilon-greedy":
            self.selector = EpsilonGreedyHostPool(opts.destinations)
        else:
            self.selector = HostPool(opts.destinations)
        if len(opts.destinations) == 1:
            self.per_address = {opts.destinations[0]: TimerMetrics(0, "")}
        else:
            self.per_address = {a: TimerMetrics(opts.status_every, f"[{a}]:")
                                for a in opts.destinations}
        self.aggregate = TimerMetrics(opts.status_every, "[aggregate]:")
        self.filter = opts.json_filter

    def handler(self, dest_topic: str) -> Any:
        async def handle(msg: Message) -> None:
            await self.relay(msg, dest_topic)
        return handle

    async def relay(self, msg: Message, dest_topic: str) -> None:
        """Return → FIN; raise → REQ with the default delay and backoff."""
        body = msg.body
        flt = self.filter
        if flt.active:
            try:
                obj = decode_json(body)
            except ValueError:
                std_log("ERROR: Unable to decode json: " + body.decode("utf-8", "replace"))
                return
            passed, backoff = flt.should_pass(obj)
            if not passed:
                if backoff:
                    raise PublishError("backoff")
                return
            try:
                body = flt.filter(obj, body)
            except ValueError as e:
                std_log(f"ERROR: filterMessage() failed: {e}")
                raise PublishError(str(e)) from None
        started = time.monotonic()
        choice: HostPoolResponse = self.selector.get()
        addr = choice.host
        try:
            await self.producers[addr].publish(dest_topic, body)
        except Exception as e:  # noqa: BLE001 - any publish failure requeues
            choice.mark(e)
            self._status(addr, started)
            raise PublishError(f"({addr}) publish failed: {str(e) or type(e).__name__}") \
                from None
        choice.mark(None)
        self._status(addr, started)

    def _status(self, addr: str, started: float) -> None:
        self.per_address[addr].status(started)
        self.aggregate.status(started)

    async def close(self) -> None:
        await asyncio.gather(*(p.close() for p in self.producers.values()),
                             return_exceptions=True)


async def _run(opts: Options) -> int:
    stop = asyncio.Event()
    common.on_signals(lambda _sig: stop.set())
    relay = Relay(opts, common.producer_config(opts.values, TOOL))
    cfg = common.consumer_config(opts.values, TOOL)
    consumers = []
    for topic in opts.topics:
        dest = opts.destination_topic or topic
        consumers.append(common.new_consumer(topic, opts.channel, relay.handler(dest), cfg))
    for c in consumers:
        await common.start_consumer(c, opts.nsqd_tcp_addresses, opts.lookupd_http_addresses)
    await stop.wait()
    await common.stop_consumers(consumers)
    await relay.close()
    return 0


def main(argv: Sequence[str] | None = None) -> None:
    common.run_tool(TOOL, build_flags(), validate, _run, argv)


if __name__ == "__main__":
    main()
