#!/usr/bin/env python3
"""Idle cost of many topics and channels in nsqpy's nsqd.

Starts a fresh ``nsqd`` (free ports, temp ``--data-path``), creates N topics each with
one channel through the HTTP API (``/topic/create`` + ``/channel/create``, pipelined over
a few keep-alive connections), lets it settle, then reads nsqd's utime+stime from
``/proc/<pid>/stat`` over a quiet interval.  Prints::

    idle-cpu-10k <percent of one core>
    rss-per-topic-channel <bytes>

``run()`` returns the same figures as a dict (plus the raw numbers) for bench/run_bench.py.
nsqd is killed at the end (a clean stop would fsync every queue; the data dir is removed).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import command, cpu_seconds, env, rss  # noqa: E402

LISTEN_RE = re.compile(r"(TCP|HTTP): listening on \S+:(\d+)")
def _start_nsqd(data_path: str):
    proc = subprocess.Popen(command("nsqd", "nsqpy.nsqd.main") + [
        "--tcp-address=127.0.0.1:0", "--http-address=127.0.0.1:0", f"--data-path={data_path}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
        env=env(), text=True)
    ports: dict[str, int] = {}
    ready = threading.Event()

    def drain() -> None:     # keep reading the log so nsqd never blocks on a full pipe
        for line in proc.stderr:
            m = LISTEN_RE.search(line)
            if m:
                ports[m.group(1)] = int(m.group(2))
                if len(ports) == 2:
                    ready.set()
        ready.set()

    threading.Thread(target=drain, daemon=True).start()
    if not ready.wait(30) or len(ports) < 2:
        proc.kill()
        raise RuntimeError("nsqd did not report its listeners")
    return proc, ports["HTTP"]


async def _create(port: int, n: int, concurrency: int = 4) -> None:
    names = iter(range(n))

    async def response(r) -> None:
        line = await r.readline()
        if b" 200 " not in line:
            raise RuntimeError(f"create failed: {line!r}")
        length = 0
        while True:
            h = await r.readline()
            if h in (b"\r\n", b""):
                break
            if h.lower().startswith(b"content-length:"):
                length = int(h.split(b":")[1])
        await r.readexactly(length)

    async def worker() -> None:
        r, w = await asyncio.open_connection("127.0.0.1", port)
        for i in names:
            w.write(b"POST /topic/create?topic=idle%d HTTP/1.1\r\nHost: nsqd\r\n"
                    b"Content-Length: 0\r\n\r\n"
                    b"POST /channel/create?topic=idle%d&channel=c HTTP/1.1\r\nHost: nsqd\r\n"
                    b"Content-Length: 0\r\n\r\n" % (i, i))
            await response(r)
            await response(r)
        w.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))


def run(n: int = 10_000, seconds: float = 10.0, settle: float = 2.0) -> dict:
    data_path = tempfile.mkdtemp(prefix="nsqpy-idle-bench-")
    proc = None
    try:
        proc, http_port = _start_nsqd(data_path)
        time.sleep(0.5)
        rss0 = rss(proc.pid)
        t0 = time.monotonic()
        asyncio.run(_create(http_port, n))
        create_s = time.monotonic() - t0
        time.sleep(settle)
        rss1 = rss(proc.pid)
        c0, w0 = cpu_seconds(proc.pid), time.monotonic()
        time.sleep(seconds)
        c1, w1 = cpu_seconds(proc.pid), time.monotonic()
        return {
            "idle-cpu-10k": 100.0 * (c1 - c0) / (w1 - w0),
            "rss-per-topic-channel": (rss1 - rss0) / n,
            "topics": n,
            "create-seconds": create_s,
            "rss-before": rss0,
            "rss-after": rss1,
        }
    finally:
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        shutil.rmtree(data_path, ignore_errors=True)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--topics", type=int, default=10_000, help="topics, each with a channel")
    p.add_argument("--seconds", type=float, default=10.0, help="idle measurement window")
    opts = p.parse_args(argv)
    res = run(opts.topics, opts.seconds)
    print(f"idle-cpu-10k {res['idle-cpu-10k']:.2f}")
    print(f"rss-per-topic-channel {res['rss-per-topic-channel']:.0f}")
    print(f"# {res['topics']} topics+channels created in {res['create-seconds']:.1f}s, "
          f"RSS {res['rss-before'] / 2**20:.1f} -> {res['rss-after'] / 2**20:.1f} MiB",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
