"""bench_writer / bench_reader: raw protocol V2 load generators (Go's bench/ tools).

Shared helpers: Go duration parsing/formatting, the ``--deadline`` wait, the
Go ``log`` style result line, and the common argparse flags.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import os
import re
import sys
import time

__all__ = ["parse_go_duration", "format_go_duration", "go_log", "result_line",
           "base_parser", "parse_address", "sleep_until_deadline", "run_async"]

_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 1_000_000,
          "s": 1_000_000_000, "m": 60_000_000_000, "h": 3_600_000_000_000}
_DUR_PART = re.compile(r"([0-9]*(?:\.[0-9]*)?)([a-zµμ]+)")


def parse_go_duration(text: str) -> int:
    """Go's ``time.ParseDuration`` -> nanoseconds (``"10s"``, ``"1m30s"``, ``"250ms"``)."""
    s = text
    neg = False
    if s[:1] in "+-" and s:
        neg = s[0] == "-"
        s = s[1:]
    if s == "0":
        return 0
    if not s:
        raise ValueError(f'time: invalid duration "{text}"')
    total = 0
    pos = 0
    while pos < len(s):
        m = _DUR_PART.match(s, pos)
        if not m or m.group(1) in ("", ".") or m.group(2) not in _UNITS:
            raise ValueError(f'time: invalid duration "{text}"')
        num, unit = m.groups()
        whole, _, frac = num.partition(".")
        scale = _UNITS[unit]
        total += int(whole or "0") * scale
        if frac:
            total += int(frac) * scale // 10 ** len(frac)
        pos = m.end()
    return -total if neg else total


def _frac(v: int, prec: int) -> tuple[str, int]:
    digits = v % 10 ** prec
    s = ("%0*d" % (prec, digits)).rstrip("0") if prec else ""
    return ("." + s if s else ""), v // 10 ** prec


def format_go_duration(ns: int) -> str:
    """Go's ``Duration.String()``: ``10.000183s``, ``1m0s``, ``1.5ms``, ``0s``."""
    neg = ns < 0
    u = -ns if neg else ns
    if u == 0:
        return "0s"
    if u < 1_000_000_000:
        if u < 1_000:
            unit, prec = "ns", 0
        elif u < 1_000_000:
            unit, prec = "µs", 3
        else:
            unit, prec = "ms", 6
        frac, whole = _frac(u, prec)
        out = f"{whole}{frac}{unit}"
    else:
        frac, secs = _frac(u, 9)
        out = f"{secs % 60}{frac}s"
        mins = secs // 60
        if mins:
            out = f"{mins % 60}m" + out
            hours = mins // 60
            if hours:
                out = f"{hours}h" + out
    return "-" + out if neg else out


def go_log(prefix: str, msg: str, stream=None) -> None:
    """Go ``log.Printf`` with ``log.SetPrefix(prefix)`` and LstdFlags (local time), to stderr."""
    stamp = time.strftime("%Y/%m/%d %H:%M:%S")
    (stream or sys.stderr).write(f"{prefix}{stamp} {msg}\n")
    (stream or sys.stderr).flush()


def result_line(duration_ns: int, msg_count: int, size: int) -> str:
    """``duration: 10.0s - 48.300mb/s - 253421.000ops/s - 3.946us/op`` (Go's format)."""
    secs = duration_ns / 1e9 if duration_ns > 0 else float("nan")
    mbps = msg_count * size / secs / 1024 / 1024
    ops = msg_count / secs
    us_op = (duration_ns // 1000) / msg_count if msg_count else float("inf")
    return (f"duration: {format_go_duration(duration_ns)} - {mbps:.3f}mb/s - "
            f"{ops:.3f}ops/s - {us_op:.3f}us/op")


def parse_address(addr: str) -> tuple[str, int]:
    host, sep, port = addr.rpartition(":")
    if not sep:
        raise ValueError(f"invalid address {addr!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def _duration_arg(text: str) -> int:
    try:
        return parse_go_duration(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def base_parser(prog: str, description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=description)
    p.add_argument("--runfor", type=_duration_arg, default=10_000_000_000,
                   help="duration of time to run (Go duration, default 10s)")
    p.add_argument("--nsqd-tcp-address", default="127.0.0.1:4150", help="<addr>:<port> to connect to nsqd")
    p.add_argument("--size", type=int, default=200, help="size of messages")
    p.add_argument("--topic", default="sub_bench", help="topic to use")
    p.add_argument("--deadline", default="",
                   help='deadline to start the benchmark run ("2006-01-02 15:04:05", UTC like Go)')
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                   help="number of connections (Go: one per CPU)")
    return p


async def sleep_until_deadline(deadline: str, prefix: str) -> None:
    """Go parses ``--deadline`` with time.Parse (UTC) and sleeps until then."""
    if not deadline:
        return
    t = datetime.datetime.strptime(deadline, "%Y-%m-%d %H:%M:%S").replace(
        tzinfo=datetime.timezone.utc)
    delay = (t - datetime.datetime.now(datetime.timezone.utc)).total_seconds()
    go_log(prefix, f"sleeping until {t:%Y-%m-%d %H:%M:%S} +0000 UTC "
                   f"({format_go_duration(int(delay * 1e9))})")
    if delay > 0:
        await asyncio.sleep(delay)


def run_async(coro) -> int:
    """Run on uvloop when available (it is a declared dependency)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover
        return asyncio.run(coro)
    return uvloop.run(coro)
