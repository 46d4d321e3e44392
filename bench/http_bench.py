#!/usr/bin/env python3
"""HTTP ``/pub`` keep-alive throughput of nsqpy's nsqd, measured with ``wrk``.

Starts a fresh ``nsqd`` (free ports, temp ``--data-path``) for each run and drives it with
``wrk`` and a Lua script POSTing 200-byte bodies to ``/pub?topic=bench_http``:

* ``http-pub-1conn``  ``wrk -t1 -c1``
* ``http-pub-8conn``  ``wrk -t2 -c8``

Prints ``<name> <req/s>`` per run plus nsqd's idle RSS after a ``/ping`` and the
start-to-``/ping`` time. ``run(duration)`` returns the same figures as a dict (for
bench/run_bench.py). Needs ``wrk`` on PATH (``make bench`` installs Debian's).
This is a script, not a test.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import command, env, free_port, ping, proc_status, stop  # noqa: E402

BODY_SIZE = 200
TOPIC = "bench_http"
REQS_RE = re.compile(r"Requests/sec:\s+([0-9.]+)")
NON2XX_RE = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")

LUA = """wrk.method = "POST"
wrk.body = string.rep("x", %d)
wrk.headers["Content-Type"] = "application/octet-stream"
""" % BODY_SIZE


class Nsqd:
    """A fresh nsqd on free ports; ``startup_ms``: exec to the first answered /ping."""

    def __init__(self) -> None:
        self.data_path = tempfile.mkdtemp(prefix="nsqpy-http-bench-")
        self.http_port = free_port()
        cmd = command("nsqd", "nsqpy.nsqd.main") + [
            "--tcp-address=127.0.0.1:0", f"--http-address=127.0.0.1:{self.http_port}",
            f"--data-path={self.data_path}", "--log-level=warn"]
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     env=env())
        deadline = t0 + 30
        while not ping(self.http_port):
            if self.proc.poll() is not None or time.perf_counter() > deadline:
                self.stop()
                raise RuntimeError("nsqd did not answer /ping")
            time.sleep(0.002)
        self.startup_ms = (time.perf_counter() - t0) * 1000
        time.sleep(0.3)
        ping(self.http_port)
        self.idle_rss = proc_status(self.proc.pid, "VmRSS")

    def stop(self) -> None:
        stop(self.proc)
        shutil.rmtree(self.data_path, ignore_errors=True)


def _wrk(port: int, threads: int, conns: int, duration: str, script: str) -> float:
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed (make bench installs it: apt-get install wrk)")
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{conns}", f"-d{duration}", "-s", script,
         f"http://127.0.0.1:{port}/pub?topic={TOPIC}"],
        capture_output=True, text=True, timeout=600).stdout
    m = REQS_RE.search(out)
    if not m:
        raise RuntimeError(f"wrk printed no Requests/sec:\n{out}")
    bad = NON2XX_RE.search(out)
    if bad:
        raise RuntimeError(f"{bad.group(1)} non-2xx responses:\n{out}")
    return float(m.group(1))


RUNS = [("http-pub-1conn", 1, 1), ("http-pub-8conn", 2, 8)]


def run(duration: str = "10s") -> dict:
    """``{"http-pub-1conn": req/s, "http-pub-8conn": req/s, "idle_rss": bytes,
    "startup_ms": ms}`` — each wrk run on its own fresh nsqd."""
    out: dict = {}
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(LUA)
        script = f.name
    try:
        for name, threads, conns in RUNS:
            nsqd = Nsqd()
            try:
                out.setdefault("idle_rss", nsqd.idle_rss)
                out.setdefault("startup_ms", nsqd.startup_ms)
                out[name] = _wrk(nsqd.http_port, threads, conns, duration, script)
            finally:
                nsqd.stop()
    finally:
        os.unlink(script)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--duration", default="10s", help="wrk duration of each run (default 10s)")
    opts = p.parse_args(argv)
    res = run(opts.duration)
    for name, _, _ in RUNS:
        print(f"{name} {res[name]:.0f}")
    print(f"idle-rss-after-ping {res['idle_rss'] / (1024 * 1024):.1f}Mi")
    print(f"start-to-ping {res['startup_ms']:.0f}ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
