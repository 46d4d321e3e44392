#!/usr/bin/env python3
"""Throughput/memory benchmark of nsqpy's nsqd (``make bench``).

Starts a fresh ``nsqd`` (on free ports, temp ``--data-path``) for each scenario
and drives it with ``bench_writer`` / ``bench_reader``:

1. pub-batch-200   bench_writer --batch-size=200
2. pub-batch-1     bench_writer --batch-size=1
3. sub-backlog     bench_writer fills a backlog first (not measured), then bench_reader
4. pub+sub         bench_writer and bench_reader at the same time
5. http-pub        HTTP /pub keep-alive with wrk on 1 and 8 connections (bench/http_bench.py)

For each it prints msgs/s and MB/s (from the tools' Go-style result lines),
nsqd's idle RSS (VmRSS right after start) and peak RSS (VmHWM at the end).
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

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV_BIN = os.path.join(ROOT, ".venv", "bin")
RESULT_RE = re.compile(r"duration: (\S+) - ([0-9.]+)mb/s - ([0-9.]+)ops/s - ([0-9.]+|inf)us/op")
LISTEN_RE = re.compile(r"TCP: listening on (\S+):(\d+)")


def _env() -> dict:
    env = dict(os.environ)
    src = os.path.join(ROOT, "src")
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def _command(script: str, module: str) -> list[str]:
    """The installed console script if present, else ``python -m module`` from src/."""
    path = os.path.join(VENV_BIN, script)
    if os.access(path, os.X_OK):
        return [path]
    return [sys.executable, "-m", module]


def _proc_status(pid: int, key: str) -> int:
    """A ``/proc/<pid>/status`` memory field in bytes (0 if unavailable)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class Nsqd:
    def __init__(self, extra: list[str]) -> None:
        self.data_path = tempfile.mkdtemp(prefix="nsqpy-bench-")
        cmd = _command("nsqd", "nsqpy.nsqd.main") + [
            "--tcp-address=127.0.0.1:0", "--http-address=127.0.0.1:0",
            f"--data-path={self.data_path}", *extra]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     env=_env(), text=True)
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
        self.idle_rss = _proc_status(self.proc.pid, "VmRSS")

    def peak_rss(self) -> int:
        return _proc_status(self.proc.pid, "VmHWM")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.data_path, ignore_errors=True)


def _start_tool(tool: str, nsqd: Nsqd, args: list[str]) -> subprocess.Popen:
    cmd = _command(tool, f"nsqpy.bench.{tool.split('_')[1]}") + [
        f"--nsqd-tcp-address={nsqd.tcp_address}", *args]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=_env(),
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


SCENARIOS = ["pub-batch-200", "pub-batch-1", "sub-backlog", "pub+sub", "http-pub"]


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
    p.add_argument("scenarios", nargs="*", default=SCENARIOS, help=f"subset of {SCENARIOS}")
    opts = p.parse_args(argv)

    mib = 1024 * 1024
    print(f"{'scenario':<15} {'side':<5} {'msgs/s':>12} {'MB/s':>9} {'idle RSS':>10} {'peak RSS':>10}")
    failed = 0
    for name in opts.scenarios:
        if name == "http-pub":
            try:
                import http_bench
                res = http_bench.run(opts.runfor)
            except Exception as e:  # report and continue
                print(f"{name:<15} ERROR: {e}", file=sys.stderr)
                failed += 1
                continue
            for key in ("http-pub-1conn", "http-pub-8conn"):
                print(f"{key:<15} {'pub':<5} {res[key]:>12,.0f} {'':>9} "
                      f"{res['idle_rss'] / mib:>8.1f}Mi {'':>10}", flush=True)
            continue
        try:
            res = run_scenario(name, opts)
        except Exception as e:  # report and continue with the next scenario
            print(f"{name:<15} ERROR: {e}", file=sys.stderr)
            failed += 1
            continue
        for side, (ops, mbps) in res["rows"].items():
            print(f"{name:<15} {side:<5} {ops:>12,.0f} {mbps:>9.2f} "
                  f"{res['idle'] / mib:>8.1f}Mi {res['peak'] / mib:>8.1f}Mi", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
