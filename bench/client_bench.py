#!/usr/bin/env python3
"""Client throughput: nsqpy.client vs pynsq (tornado) against the same nsqd.

Starts ``nsqd`` (default: the one next to this interpreter) on ephemeral ports, then for
each client, in a fresh subprocess, publishes N messages of S bytes (PUB pipelined with
a fixed window, and MPUB batches) and consumes them (handler → FIN, max_in_flight M),
printing msgs/s for each phase and client and the ratio ours/pynsq.

    .venv/bin/python bench/client_bench.py -n 200000 -s 200
    .venv/bin/python bench/client_bench.py --nsqd /path/to/go/nsqd

On a small machine nsqd (one Python process) is usually the bottleneck, MPUB above all:
there both clients reach nsqd's ceiling and only the CPU column tells them apart.

Each phase uses its own topic so the clients never see each other's messages.  CPU time
of the client process is reported too (µs/msg), which stays meaningful when nsqd itself
is the bottleneck.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
LISTEN_RE = re.compile(r"TCP: listening on (\S+)")


# -- nsqd -------------------------------------------------------------------------------
def start_nsqd(binary: str, data_path: str, extra: list[str]) -> tuple[subprocess.Popen, int]:
    args = [binary, "--tcp-address=127.0.0.1:0", "--http-address=127.0.0.1:0",
            f"--data-path={data_path}"] + extra
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL)
    port: list[int] = []
    ready = threading.Event()

    def reader() -> None:
        assert proc.stderr is not None
        for raw in iter(proc.stderr.readline, b""):
            m = LISTEN_RE.search(raw.decode("utf-8", "replace"))
            if m and not port:
                port.append(int(m.group(1).rsplit(":", 1)[1]))
                ready.set()
        ready.set()

    threading.Thread(target=reader, daemon=True).start()
    if not ready.wait(15) or not port:
        proc.kill()
        raise SystemExit("nsqd did not start")
    return proc, port[0]


# -- workers (run in a subprocess each) --------------------------------------------------
def _result(n: int, t0: float, c0: float) -> dict:
    wall = time.perf_counter() - t0
    cpu = time.process_time() - c0
    return {"n": n, "wall": wall, "rate": n / wall, "cpu_us": cpu / n * 1e6}


def ours(mode: str, port: int, topic: str, n: int, size: int, window: int, batch: int,
         mif: int, loop_kind: str) -> dict:
    import asyncio

    from nsqpy.client import Consumer, Producer

    addr = f"127.0.0.1:{port}"
    body = b"x" * size

    async def pub() -> dict:
        p = Producer(addr)
        await p.ping()
        t0, c0 = time.perf_counter(), time.process_time()
        per = n // window

        async def worker(k: int) -> None:
            for _ in range(k):
                await p.publish(topic, body)

        await asyncio.gather(*(worker(per + (1 if i < n % window else 0))
                               for i in range(window)))
        r = _result(n, t0, c0)
        await p.close()
        return r

    async def mpub() -> dict:
        p = Producer(addr)
        await p.ping()
        t0, c0 = time.perf_counter(), time.process_time()
        batches = [[body] * batch for _ in range(n // batch)]
        inflight = max(1, window // batch)
        it = iter(batches)

        async def worker() -> None:
            for b in it:
                await p.multi_publish(topic, b)

        await asyncio.gather(*(worker() for _ in range(inflight)))
        r = _result(len(batches) * batch, t0, c0)
        await p.close()
        return r

    async def sub() -> dict:
        done = asyncio.get_running_loop().create_future()
        count = 0
        state = {}

        def handler(msg) -> None:
            nonlocal count
            count += 1
            if count == 1:
                state["t0"], state["c0"] = time.perf_counter(), time.process_time()
            if count >= n and not done.done():
                done.set_result(None)

        c = Consumer(topic, "bench", handler, nsqd_tcp_addresses=[addr], max_in_flight=mif)
        await c.start()
        await done
        r = _result(n - 1, state["t0"], state["c0"])
        await c.close()
        return r

    coro = {"pub": pub, "mpub": mpub, "sub": sub}[mode]()
    if loop_kind == "uvloop":
        import uvloop
        return uvloop.run(coro)
    return asyncio.run(coro)


def pynsq(mode: str, port: int, topic: str, n: int, size: int, window: int, batch: int,
          mif: int, loop_kind: str) -> dict:
    if loop_kind == "uvloop":
        import asyncio

        import uvloop
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    import logging

    import nsq
    import tornado.ioloop
    logging.getLogger("nsq").setLevel(logging.WARNING)
    ioloop = tornado.ioloop.IOLoop.current()
    addr = f"127.0.0.1:{port}"
    body = b"x" * size
    out: dict = {}

    if mode in ("pub", "mpub"):
        writer = nsq.Writer([addr])
        state = {"sent": 0, "acked": 0}
        unit = 1 if mode == "pub" else batch
        total = n if mode == "pub" else (n // batch) * batch
        depth = window if mode == "pub" else max(1, window // batch)

        def send_one() -> None:
            state["sent"] += unit
            if mode == "pub":
                writer.pub(topic, body, callback=on_ack)
            else:
                writer.mpub(topic, [body] * batch, callback=on_ack)

        def on_ack(conn, data) -> None:
            if isinstance(data, Exception):
                raise SystemExit(f"publish failed: {data}")
            state["acked"] += unit
            if state["acked"] >= total:
                out.update(_result(total, state["t0"], state["c0"]))
                ioloop.stop()
            elif state["sent"] < total:
                send_one()

        def begin() -> None:
            if not writer.conns:
                ioloop.call_later(0.05, begin)
                return
            state["t0"], state["c0"] = time.perf_counter(), time.process_time()
            for _ in range(min(depth, total // unit)):
                send_one()

        ioloop.call_later(0.1, begin)
        ioloop.start()
        return out

    count = 0
    state = {}

    def handler(msg) -> bool:
        nonlocal count
        count += 1
        if count == 1:
            state["t0"], state["c0"] = time.perf_counter(), time.process_time()
        if count >= n and not out:
            out.update(_result(n - 1, state["t0"], state["c0"]))
            ioloop.add_callback(ioloop.stop)
        return True

    nsq.Reader(topic=topic, channel="bench", message_handler=handler,
               nsqd_tcp_addresses=[addr], max_in_flight=mif)
    ioloop.start()
    return out


# -- driver ------------------------------------------------------------------------------
def run_worker(client: str, mode: str, port: int, topic: str, args: argparse.Namespace) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", client, "--mode", mode,
           "--port", str(port), "--topic", topic, "-n", str(args.n), "-s", str(args.size),
           "--window", str(args.window), "--batch", str(args.batch),
           "--max-in-flight", str(args.max_in_flight), "--loop", args.loop]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
    if res.returncode != 0:
        raise SystemExit(f"{client} {mode} failed:\n{res.stderr}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=200_000, help="messages per phase")
    ap.add_argument("-s", "--size", type=int, default=200, help="message size (bytes)")
    ap.add_argument("--window", type=int, default=200, help="PUBs in flight")
    ap.add_argument("--batch", type=int, default=100, help="messages per MPUB")
    ap.add_argument("--max-in-flight", type=int, default=1000)
    ap.add_argument("--loop", choices=("asyncio", "uvloop"), default="uvloop",
                    help="event loop for both clients (tornado runs on asyncio's)")
    ap.add_argument("--clients", default="ours,pynsq")
    ap.add_argument("--phases", default="pub,mpub,sub")
    ap.add_argument("--nsqd", default=os.path.join(os.path.dirname(sys.executable), "nsqd"))
    ap.add_argument("--nsqd-arg", action="append", default=[])
    ap.add_argument("--timeout", type=float, default=600)
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--mode", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--topic", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.worker:
        fn = ours if args.worker == "ours" else pynsq
        r = fn(args.mode, args.port, args.topic, args.n, args.size, args.window, args.batch,
               args.max_in_flight, args.loop)
        print(json.dumps(r))
        return

    clients = args.clients.split(",")
    phases = args.phases.split(",")
    with tempfile.TemporaryDirectory(prefix="client-bench-") as tmp:
        proc, port = start_nsqd(args.nsqd, tmp,
                                [f"--mem-queue-size={2 * args.n}"] + args.nsqd_arg)
        print(f"nsqd {args.nsqd} on 127.0.0.1:{port}; n={args.n} size={args.size} "
              f"window={args.window} batch={args.batch} max_in_flight={args.max_in_flight} "
              f"loop={args.loop}", flush=True)
        results: dict[tuple[str, str], dict] = {}
        try:
            for client in clients:
                for phase in phases:
                    if phase == "sub":
                        src = "pub" if "pub" in phases else "mpub"
                        if src not in phases:
                            raise SystemExit("sub needs a pub or mpub phase first")
                        topic = f"bench_{client}_{src}"
                    else:
                        topic = f"bench_{client}_{phase}"
                    r = run_worker(client, phase, port, topic, args)
                    results[(client, phase)] = r
                    print(f"  {client:6s} {phase:5s} {r['rate']:12,.0f} msgs/s   "
                          f"{r['cpu_us']:7.2f} µs CPU/msg   ({r['n']} in {r['wall']:.2f}s)",
                          flush=True)
        finally:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
        if "ours" in clients and "pynsq" in clients:
            print("ratio ours/pynsq:")
            for phase in phases:
                a, b = results[("ours", phase)], results[("pynsq", phase)]
                print(f"  {phase:5s} throughput ×{a['rate'] / b['rate']:.2f}   "
                      f"CPU/msg ×{b['cpu_us'] / a['cpu_us']:.2f} less")


if __name__ == "__main__":
    main()
