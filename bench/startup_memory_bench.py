#!/usr/bin/env python3
"""nsqd start-up time, idle RSS and memory per queued message (part of ``make bench``).

* ``start-to-ping``: exec of ``nsqd`` until ``GET /ping`` answers ``200 OK`` (polled
  every 2 ms on a fresh connection), median of several starts; the sources are
  byte-compiled first, as an installed nsqd's are.
* ``idle-rss``: nsqd's VmRSS 0.5 s after that first ``/ping`` (so the HTTP server has
  answered once), median of the same starts.
* ``bytes-per-queued-msg``: nsqd started with ``--mem-queue-size`` above the count;
  a topic with one channel; ``count`` (default 1,000,000) 200-byte messages published
  over TCP MPUB; (RSS after all are in the channel's memory queue - RSS before) / count.

Run alone: ``python bench/startup_memory_bench.py``; ``run()`` returns the figures as
a dict for bench/run_bench.py.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import ROOT, command, env, free_port, http, rss, stop  # noqa: E402


class _Nsqd:
    def __init__(self, *flags: str) -> None:
        self.data = tempfile.mkdtemp(prefix="nsqpy-bench-")
        self.tcp, self.http = free_port(), free_port()
        self.t0 = time.perf_counter()
        self.proc = subprocess.Popen(
            command("nsqd", "nsqpy.nsqd.main") + [
                f"--tcp-address=127.0.0.1:{self.tcp}", f"--http-address=127.0.0.1:{self.http}",
                f"--data-path={self.data}", *flags],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env())

    def wait_ping(self, timeout: float = 10.0) -> float:
        """Seconds from exec to the first ``200 OK`` of ``/ping``."""
        deadline = self.t0 + timeout
        while time.perf_counter() < deadline:
            try:
                if http(self.http, "GET", "/ping")[0] == 200:
                    return time.perf_counter() - self.t0
            except OSError:
                pass
            time.sleep(0.002)
        raise RuntimeError("nsqd did not answer /ping")

    def stop(self) -> None:
        stop(self.proc)
        shutil.rmtree(self.data, ignore_errors=True)


def compile_sources() -> None:
    """Byte-compile nsqpy as an install does (``make`` does too), so start-up time and
    RSS are those of an installed nsqd, not of one compiling its modules first."""
    import compileall
    compileall.compile_dir(os.path.join(ROOT, "src"), quiet=1)


def startup(runs: int = 5) -> dict:
    compile_sources()
    times, rss_values = [], []
    for _ in range(runs):
        n = _Nsqd()
        try:
            times.append(n.wait_ping())
            time.sleep(0.5)
            rss_values.append(rss(n.proc.pid))
        finally:
            n.stop()
    return {"start-to-ping-ms": statistics.median(times) * 1000,
            "idle-rss-mib": statistics.median(rss_values) / 2**20}


def _depth(port: int, topic: str) -> int:
    status, body = http(port, "GET", f"/stats?format=json&topic={topic}")
    for t in json.loads(body)["topics"]:
        for ch in t["channels"]:
            return ch["depth"]
    return 0


def queued_memory(count: int = 1_000_000, size: int = 200, batch: int = 1000) -> dict:
    n = _Nsqd(f"--mem-queue-size={count + 10_000}", "--max-body-size=10485760")
    try:
        n.wait_ping()
        http(n.http, "POST", "/topic/create?topic=mem")
        http(n.http, "POST", "/channel/create?topic=mem&channel=c")
        time.sleep(0.5)
        before = rss(n.proc.pid)
        body = bytes(range(256)) * (size // 256 + 1)
        msg = struct.pack(">i", size) + body[:size]
        payload = struct.pack(">i", batch) + msg * batch
        cmd = b"MPUB mem\n" + struct.pack(">i", len(payload)) + payload
        with socket.create_connection(("127.0.0.1", n.tcp)) as s:
            s.sendall(b"  V2")
            sent = 0
            while sent < count:
                s.sendall(cmd)
                sent += batch
                resp = b""
                while len(resp) < 10:               # [size][type=0]["OK"]
                    resp += s.recv(10 - len(resp))
                if resp[8:] != b"OK":
                    raise RuntimeError(f"MPUB failed: {resp!r}")
        depth = _depth(n.http, "mem")
        time.sleep(0.5)
        after = rss(n.proc.pid)
        return {"bytes-per-queued-msg": (after - before) / depth, "queued": depth}
    finally:
        n.stop()


def run(count: int = 1_000_000) -> dict:
    out = startup()
    out.update(queued_memory(count))
    return out


def main() -> int:
    res = run(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
    print(f"start-to-ping        {res['start-to-ping-ms']:8.0f} ms")
    print(f"idle-rss             {res['idle-rss-mib']:8.1f} MiB")
    print(f"bytes-per-queued-msg {res['bytes-per-queued-msg']:8.0f} B  ({res['queued']:,} queued)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
