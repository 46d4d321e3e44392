"""bench_writer: publish MPUB batches as fast as nsqd accepts them (Go's bench/bench_writer).

One raw protocol V2 connection per worker (default: one per CPU, like Go):
magic, IDENTIFY (client_id/hostname ``writer``), then MPUB batches until
``--runfor`` elapses. Unlike Go (one batch at a time) each connection keeps
``--inflight`` batches pipelined. Prints Go's result line on stderr:
``[bench_writer] <date> <time> duration: ... - ...mb/s - ...ops/s - ...us/op``.
"""

from __future__ import annotations

import asyncio
import sys
import time

from .. import NSQ_VERSION
from ..protocol import (
    FRAME_TYPE_ERROR, FRAME_TYPE_RESPONSE, HEARTBEAT_DATA, MAGIC_V2, FrameDecoder, ProtocolError,
    encode_identify, encode_mpub, encode_nop,
)
from . import base_parser, go_log, parse_address, result_line, run_async, sleep_until_deadline

PREFIX = "[bench_writer] "


class BenchError(Exception):
    pass


class PubConn(asyncio.Protocol):
    def __init__(self, batch_cmd: bytes, batch_len: int, inflight: int) -> None:
        self.batch_cmd = batch_cmd
        self.batch_len = batch_len
        self.inflight = inflight
        self.decoder = FrameDecoder()
        self.transport = None
        loop = asyncio.get_running_loop()
        self.identified = loop.create_future()
        self.done = loop.create_future()
        self.end_time = 0.0
        self.outstanding = 0
        self.running = False
        self.msg_count = 0

    # -- asyncio.Protocol
    def connection_made(self, transport) -> None:
        self.transport = transport
        transport.write(MAGIC_V2 + encode_identify({
            "client_id": "writer", "hostname": "writer",
            "user_agent": f"bench_writer/{NSQ_VERSION}"}))

    def connection_lost(self, exc) -> None:
        err = BenchError(f"connection lost: {exc or 'EOF'}")
        for fut in (self.identified, self.done):
            if not fut.done():
                fut.set_exception(err)

    def data_received(self, data: bytes) -> None:
        dec = self.decoder
        dec.feed(data)
        try:
            frames = dec.frames()
        except ProtocolError as e:
            self._fail(str(e))
            return
        for ftype, body in frames:
            if ftype == FRAME_TYPE_RESPONSE:
                if body == b"OK":
                    self._on_ok()
                elif body == HEARTBEAT_DATA:
                    self.transport.write(encode_nop())
            elif ftype == FRAME_TYPE_ERROR:
                self._fail(body.decode("utf-8", "replace"))
                return

    # -- logic
    def _fail(self, msg: str) -> None:
        err = BenchError(msg)
        for fut in (self.identified, self.done):
            if not fut.done():
                fut.set_exception(err)
        self.transport.close()

    def _on_ok(self) -> None:
        if not self.identified.done():
            self.identified.set_result(None)
            return
        self.outstanding -= 1
        self.msg_count += self.batch_len
        if time.monotonic() < self.end_time:
            self.outstanding += 1
            self.transport.write(self.batch_cmd)
        elif self.outstanding == 0 and not self.done.done():
            self.done.set_result(self.msg_count)

    def start(self, end_time: float) -> None:
        self.end_time = end_time
        self.outstanding = self.inflight
        self.transport.write(self.batch_cmd * self.inflight)


async def run(args) -> int:
    loop = asyncio.get_running_loop()
    host, port = parse_address(args.nsqd_tcp_address)
    batch_cmd = encode_mpub(args.topic, [b"a" * args.size] * args.batch_size)
    conns = []
    for _ in range(max(1, args.workers)):
        _, proto = await asyncio.wait_for(loop.create_connection(
            lambda: PubConn(batch_cmd, args.batch_size, max(1, args.inflight)), host, port), 1.0)
        conns.append(proto)
        await proto.identified
    await sleep_until_deadline(args.deadline, PREFIX)
    start = time.monotonic()
    start_ns = time.perf_counter_ns()
    for c in conns:
        c.start(start + args.runfor / 1e9)
    counts = await asyncio.gather(*(c.done for c in conns))
    duration_ns = time.perf_counter_ns() - start_ns
    for c in conns:
        c.transport.close()
    go_log(PREFIX, result_line(duration_ns, sum(counts), args.size))
    return 0


def main(argv=None) -> None:
    p = base_parser("bench_writer", "publish MPUB batches to nsqd as fast as possible")
    p.add_argument("--batch-size", type=int, default=200, help="batch size of messages")
    p.add_argument("--inflight", type=int, default=4,
                   help="MPUB batches pipelined per connection (Go: 1)")
    args = p.parse_args(argv)
    if args.size < 1 or args.batch_size < 1:
        p.error("--size and --batch-size must be >= 1")
    try:
        code = run_async(run(args))
    except (BenchError, OSError, asyncio.TimeoutError) as e:
        go_log(PREFIX, f"error: {e or type(e).__name__}")
        code = 1
    sys.exit(code)


if __name__ == "__main__":
    main()
