#!/usr/bin/env python3
"""Throughput/memory benchmark of nsqpy's nsqd (``make bench``).

Starts a fresh ``nsqd`` (on free ports, temp ``--data-path``) for each scenario
and drives it with ``bench_writer`` / ``bench_reader``:

1. pub-batch-200   bench_writer --batch-size=200
2. pub-batch-1     bench_writer --batch-size=1
3. sub-backlog     bench_writer fills a backlog first (not measured), then bench_reader
4. pub+sub         bench_writer and bench_reader at the same time

For each it prints msgs/s and MB/s (from the tools' Go-style result lines),
nsqd's idle RSS (VmRSS right after start) and peak RSS (VmHWM at the end).
Then the other figures of issue #7, each from its own script in this folder (run alone
too): start-to-/ping, idle RSS and bytes per queued message (startup_memory_bench.py),
idle CPU with 10,000 topics+channels (idle_bench.py), HTTP /pub with wrk on 1 and 8
keep-alive connections (http_bench.py).  A summary table compares every figure with its
target.  ``--quick`` shortens the runs (3 s each, 200k queued messages).

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
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import command, env, proc_status, stop  # noqa: E402
RESULT_RE = re.compile(r"duration: (\S+) - ([0-9.]+)mb/s - ([0-9.]+)ops/s - ([0-9.]+|inf)us/op")
LISTEN_RE = re.compile(r"TCP: listening on (\S+):(\d+)")


class Nsqd:
    def __init__(self, extra: list[str]) -> None:
        self.data_path = tempfile.mkdtemp(prefix="nsqpy-bench-")
        cmd = command("nsqd", "nsqpy.nsqd.main") + [
            "--tcp-address=127.0.0.1:0", "--http-address=127.0.0.1:0",
            f"--data-path={self.data_path}", *extra]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     env=env(), text=True)
        self.tcp_address = None
        self.log_tail: list[str] = []
        found = threading.Event()

        def drain() -> None:  # keep reading stderr so nsqd never blocks on a full pipe
            for line in self.proc.stderr:
                if len(self.log_tail) < 200:
                    self.log_tail.append(line)
                m = LISTEN_RE.search(line)
                if m and self.tcp_address is None:
                    self.tcp_address = f"{m.group(1)}:{m.group(2)}"
                    found.set()
            found.set()

        threading.Thread(target=drain, daemon=True).start()
        if not found.wait(30) or self.tcp_address is None:
            self.stop()
            raise RuntimeError("nsqd did not report its TCP address:\n" + "".join(self.log_tail))
        time.sleep(0.3)  # let startup allocations settle
        self.idle_rss = proc_status(self.proc.pid, "VmRSS")

    def peak_rss(self) -> int:
        return proc_status(self.proc.pid, "VmHWM")

    def stop(self) -> None:
        stop(self.proc)
        shutil.rmtree(self.data_path, ignore_errors=True)


def _start_tool(tool: str, nsqd: Nsqd, args: list[str]) -> subprocess.Popen:
    cmd = command(tool, f"nsqpy.bench.{tool.split('_')[1]}") + [
        f"--nsqd-tcp-address={nsqd.tcp_address}", *args]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env(),
                            text=True)


def _result(proc: subprocess.Popen, what: str) -> tuple[float, float]:
    out, _ = proc.communicate()
    m = RESULT_RE.search(out or "")
    if proc.returncode != 0 or not m:
        raise RuntimeError(f"{what} failed (exit {proc.returncode}):\n{out}")
    return float(m.group(3)), float(m.group(2))  # ops/s, MiB/s


def run_scenario(name: str, opts) -> dict:
    common = [f"--runfor={opts.runfor}", f"--size={opts.size}"]
    if opts.workers:
        common.append(f"--workers={opts.workers}")
    nsqd = Nsqd(opts.nsqd_flag)
    try:
        rows = {}
        if name == "pub-batch-200":
            rows["pub"] = _result(_start_tool("bench_writer", nsqd, common + ["--batch-size=200"]),
                                  "bench_writer")
        elif name == "pub-batch-1":
            rows["pub"] = _result(_start_tool("bench_writer", nsqd, common + ["--batch-size=1"]),
                                  "bench_writer")
        elif name == "sub-backlog":
            fill = [f"--runfor={opts.backlog_runfor}", f"--size={opts.size}", "--batch-size=200"]
            _result(_start_tool("bench_writer", nsqd, fill), "bench_writer (backlog)")
            rows["sub"] = _result(_start_tool("bench_reader", nsqd, common), "bench_reader")
        elif name == "pub+sub":
            reader = _start_tool("bench_reader", nsqd, common)
            time.sleep(0.5)  # let the reader subscribe so the channel exists from the start
            writer = _start_tool("bench_writer", nsqd, common + ["--batch-size=200"])
            rows["pub"] = _result(writer, "bench_writer")
            rows["sub"] = _result(reader, "bench_reader")
        else:
            raise ValueError(name)
        return {"name": name, "rows": rows, "idle": nsqd.idle_rss, "peak": nsqd.peak_rss()}
    finally:
        nsqd.stop()


SCENARIOS = ["pub-batch-200", "pub-batch-1", "sub-backlog", "pub+sub"]
EXTRAS = ["startup-memory", "idle", "http"]

# (figure, target, higher is better)
TARGETS = [
    ("pub-batch-200 msgs/s", 500_000, True),
    ("pub-batch-1 msgs/s", 31_000, True),
    ("sub-backlog msgs/s", 410_000, True),
    ("pub+sub pub msgs/s", 500_000, True),
    ("pub+sub sub msgs/s", 500_000, True),
    ("idle RSS MiB", 25, False),
    ("bytes per queued 200-byte msg", 300, False),
    ("start to /ping ms", 200, False),
    ("idle CPU % with 10k topics+channels", 1, False),
    ("HTTP /pub req/s, 1 connection", 12_000, True),
    ("HTTP /pub req/s, 8 connections", 55_000, True),
]


def _load(name: str):
    import importlib.util
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), name)
    spec = importlib.util.spec_from_file_location(name[:-3], path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def run_extra(name: str, opts) -> dict:
    """Figures of the other bench scripts, by the summary's names."""
    if name == "startup-memory":
        mod = _load("startup_memory_bench.py")
        res = mod.startup()
        res.update(mod.queued_memory(200_000 if opts.quick else 1_000_000))
        return {"start to /ping ms": res["start-to-ping-ms"],
                "idle RSS MiB": res["idle-rss-mib"],
                "bytes per queued 200-byte msg": res["bytes-per-queued-msg"]}
    if name == "idle":
        res = _load("idle_bench.py").run(seconds=5.0 if opts.quick else 10.0)
        return {"idle CPU % with 10k topics+channels": res["idle-cpu-10k"],
                "RSS per idle topic+channel bytes": res["rss-per-topic-channel"]}
    if name == "http":
        if shutil.which("wrk") is None:
            raise RuntimeError("wrk is not installed (make bench installs it)")
        res = _load("http_bench.py").run(opts.runfor)
        return {"HTTP /pub req/s, 1 connection": res["http-pub-1conn"],
                "HTTP /pub req/s, 8 connections": res["http-pub-8conn"]}
    raise ValueError(name)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runfor", default="10s", help="Go duration of each measured run (default 10s)")
    p.add_argument("--backlog-runfor", default="10s",
                   help="how long bench_writer fills the backlog for sub-backlog (default 10s)")
    p.add_argument("--size", type=int, default=200, help="message size (default 200)")
    p.add_argument("--workers", type=int, default=0,
                   help="connections per bench tool (default: tool default, one per CPU)")
    p.add_argument("--nsqd-flag", action="append", default=[],
                   help="extra flag passed to nsqd (repeatable), e.g. --nsqd-flag=--mem-queue-size=100000")
    p.add_argument("--quick", action="store_true", help="3 s runs, 200k queued messages")
    p.add_argument("scenarios", nargs="*", default=SCENARIOS + EXTRAS,
                   help=f"subset of {SCENARIOS + EXTRAS}")
    opts = p.parse_args(argv)
    if opts.quick:
        opts.runfor = opts.backlog_runfor = "3s"

    mib = 1024 * 1024
    figures = {}
    print(f"{'scenario':<15} {'side':<5} {'msgs/s':>12} {'MB/s':>9} {'idle RSS':>10} {'peak RSS':>10}")
    failed = 0
    for name in opts.scenarios:
        try:
            if name in EXTRAS:
                res = run_extra(name, opts)
                figures.update(res)
                for k, v in res.items():
                    print(f"{k:<40} {v:>12,.1f}", flush=True)
                continue
            res = run_scenario(name, opts)
        except Exception as e:  # report and continue with the next scenario
            print(f"{name:<15} ERROR: {e}", file=sys.stderr)
            failed += 1
            continue
        for side, (ops, mbps) in res["rows"].items():
            figures[f"{name} {side} msgs/s" if name == "pub+sub" else f"{name} msgs/s"] = ops
            print(f"{name:<15} {side:<5} {ops:>12,.0f} {mbps:>9.2f} "
                  f"{res['idle'] / mib:>8.1f}Mi {res['peak'] / mib:>8.1f}Mi", flush=True)

    print()
    print(f"{'figure (issue #7)':<40} {'measured':>12} {'target':>10}")
    for fig, target, higher in TARGETS:
        if fig not in figures:
            continue
        v = figures[fig]
        ok = v >= target if higher else v <= target
        print(f"{fig:<40} {v:>12,.1f} {('>= ' if higher else '<= ') + format(target, ','):>10} "
              f"{'ok' if ok else 'MISSED'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
