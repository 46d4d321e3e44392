"""bench_reader: consume and FIN as fast as nsqd delivers (Go's bench/bench_reader).

One raw protocol V2 connection per worker (default: one per CPU, like Go):
magic, IDENTIFY (client_id/hostname ``reader``), SUB topic/channel, RDY
``--rdy``; every message is FINished (all FINs of one socket read are sent in
one write). After ``--runfor`` the connections are closed and Go's result line
is printed on stderr.
"""

from __future__ import annotations

import asyncio
import struct
import sys
import time

from .. import NSQ_VERSION
from ..protocol import (
    FRAME_TYPE_ERROR, FRAME_TYPE_MESSAGE, FRAME_TYPE_RESPONSE, HEARTBEAT_DATA, MAGIC_V2,
    ProtocolError, encode_identify, encode_nop, encode_rdy, encode_sub,
)
from . import base_parser, go_log, parse_address, result_line, run_async, sleep_until_deadline

PREFIX = "[bench_reader] "
_hdr = struct.Struct(">ii").unpack_from


class BenchError(Exception):
    pass


class SubConn(asyncio.Protocol):
    def __init__(self, topic: str, channel: str) -> None:
        self.topic = topic
        self.channel = channel
        self.buf = b""
        self.transport = None
        self.msg_count = 0
        self.oks = 0
        loop = asyncio.get_running_loop()
        self.subscribed = loop.create_future()
        self.failed = loop.create_future()
        self.closing = False

    def connection_made(self, transport) -> None:
        self.transport = transport
        transport.write(MAGIC_V2 + encode_identify({
            "client_id": "reader", "hostname": "reader",
            "user_agent": f"bench_reader/{NSQ_VERSION}"}) + encode_sub(self.topic, self.channel))

    def connection_lost(self, exc) -> None:
        if not self.closing:
            self._fail(f"connection lost: {exc or 'EOF'}")

    def _fail(self, msg: str) -> None:
        err = BenchError(msg)
        for fut in (self.subscribed, self.failed):
            if not fut.done():
                fut.set_exception(err)
        if self.transport is not None:
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data if self.buf else data
        pos = 0
        end = len(buf)
        fins = []
        count = 0
        while pos + 8 <= end:
            size, ftype = _hdr(buf, pos)
            if size < 4:
                self._fail(str(ProtocolError("E_BAD_FRAME", f"invalid frame size {size}")))
                return
            nxt = pos + 4 + size
            if nxt > end:
                break
            if ftype == FRAME_TYPE_MESSAGE:
                # frame header 8 + timestamp 8 + attempts 2 -> id at +18
                fins.append(b"FIN " + buf[pos + 18:pos + 34] + b"\n")
                count += 1
            elif ftype == FRAME_TYPE_RESPONSE:
                body = buf[pos + 8:nxt]
                if body == HEARTBEAT_DATA:
                    fins.append(encode_nop())
                elif body == b"OK" and not self.subscribed.done():
                    self.oks += 1
                    if self.oks == 2:  # IDENTIFY + SUB
                        self.subscribed.set_result(None)
            elif ftype == FRAME_TYPE_ERROR:
                self._fail(buf[pos + 8:nxt].decode("utf-8", "replace"))
                return
            pos = nxt
        self.buf = buf[pos:]
        self.msg_count += count
        if fins and not self.closing:
            self.transport.write(b"".join(fins))

    def start(self, rdy: int) -> None:
        self.transport.write(encode_rdy(rdy))

    def stop(self) -> None:
        self.closing = True
        self.transport.close()


async def run(args) -> int:
    loop = asyncio.get_running_loop()
    host, port = parse_address(args.nsqd_tcp_address)
    conns = []
    for _ in range(max(1, args.workers)):
        _, proto = await asyncio.wait_for(loop.create_connection(
            lambda: SubConn(args.topic, args.channel), host, port), 1.0)
        conns.append(proto)
        await proto.subscribed
    await sleep_until_deadline(args.deadline, PREFIX)
    start_ns = time.perf_counter_ns()
    for c in conns:
        c.start(args.rdy)
    failures = [c.failed for c in conns]
    done, _ = await asyncio.wait(failures, timeout=args.runfor / 1e9,
                                 return_when=asyncio.FIRST_COMPLETED)
    for c in conns:
        c.stop()
    for fut in done:
        fut.result()  # raises BenchError
    duration_ns = time.perf_counter_ns() - start_ns
    for fut in failures:
        fut.cancel()
    go_log(PREFIX, result_line(duration_ns, sum(c.msg_count for c in conns), args.size))
    return 0


def main(argv=None) -> None:
    p = base_parser("bench_reader", "subscribe to nsqd and FIN messages as fast as possible")
    p.add_argument("--channel", default="ch", help="channel to consume")
    p.add_argument("--rdy", type=int, default=2500, help="RDY count to use")
    args = p.parse_args(argv)
    try:
        code = run_async(run(args))
    except (BenchError, OSError, asyncio.TimeoutError) as e:
        go_log(PREFIX, f"error: {e or type(e).__name__}")
        code = 1
    sys.exit(code)


if __name__ == "__main__":
    main()
