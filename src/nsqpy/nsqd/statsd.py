"""statsd output (semantics.md §5): every ``--statsd-interval`` push counters (deltas since
the previous push) and gauges over UDP, lines packed into datagrams of at most
``--statsd-udp-packet-size`` bytes and spread evenly over (interval - 1 s).
"""
from __future__ import annotations

import asyncio
import socket

from . import memstats
from .stats import collect

__all__ = ["statsd_loop", "statsd_prefix", "build_lines", "pack_datagrams"]


def statsd_prefix(nsqd) -> str:
    """``--statsd-prefix`` with ``%s`` -> ``<broadcast_address>_<broadcast_http_port>``
    (``.`` and ``:`` -> ``_``) and a trailing ``.``; ``""`` stays empty."""
    opts = nsqd.opts
    prefix = opts.statsd_prefix
    if not prefix:
        return ""
    if "%s" in prefix:
        host = opts.broadcast_address or getattr(nsqd, "hostname", "")
        port = getattr(opts, "broadcast_http_port", 0) or getattr(nsqd, "http_port", 0) or 0
        hostport = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        prefix = prefix.replace("%s", hostport.replace(".", "_").replace(":", "_"))
    if not prefix.endswith("."):
        prefix += "."
    return prefix


def build_lines(nsqd, prefix: str, last: dict, last_mem: dict) -> list[bytes]:
    """One push worth of statsd lines; updates ``last``/``last_mem`` (previous counters)."""
    opts = nsqd.opts
    exclude = opts.statsd_exclude_ephemeral
    topics, _ = collect(nsqd, None, None, include_clients=False)
    lines = []
    add = lines.append
    new_last = {}
    for t in topics or ():
        tname = t["topic_name"]
        prev = last.get(tname) or (0, 0, {})
        chan_prev_all = prev[2]
        chan_now = {}
        for c in t["channels"]:
            chan_now[c["channel_name"]] = (c["message_count"], c["requeue_count"],
                                           c["timeout_count"])
        new_last[tname] = (t["message_count"], t["message_bytes"], chan_now)
        if exclude and tname.endswith("#ephemeral"):
            continue
        p = f"{prefix}topic.{tname}."
        add(f"{p}message_count:{t['message_count'] - prev[0]}|c\n")
        add(f"{p}message_bytes:{t['message_bytes'] - prev[1]}|c\n")
        add(f"{p}depth:{t['depth']}|g\n")
        add(f"{p}backend_depth:{t['backend_depth']}|g\n")
        for item in t["e2e_processing_latency"].get("percentiles") or ():
            add("%se2e_processing_latency_%.0f:%d|g\n" % (
                p, item["quantile"] * 100.0, int(item["value"])))
        for c in t["channels"]:
            cname = c["channel_name"]
            if exclude and cname.endswith("#ephemeral"):
                continue
            cprev = chan_prev_all.get(cname) or (0, 0, 0)
            cp = f"{p}channel.{cname}."
            add(f"{cp}message_count:{c['message_count'] - cprev[0]}|c\n")
            add(f"{cp}depth:{c['depth']}|g\n")
            add(f"{cp}backend_depth:{c['backend_depth']}|g\n")
            add(f"{cp}in_flight_count:{c['in_flight_count']}|g\n")
            add(f"{cp}deferred_count:{c['deferred_count']}|g\n")
            add(f"{cp}requeue_count:{c['requeue_count'] - cprev[1]}|c\n")
            add(f"{cp}timeout_count:{c['timeout_count'] - cprev[2]}|c\n")
            add(f"{cp}clients:{c['client_count']}|g\n")
            for item in c["e2e_processing_latency"].get("percentiles") or ():
                add("%se2e_processing_latency_%.0f:%d|g\n" % (
                    cp, item["quantile"] * 100.0, int(item["value"])))
    last.clear()
    last.update(new_last)
    if opts.statsd_mem_stats:
        ms = memstats.get_mem_stats()
        m = f"{prefix}mem."
        for key in ("heap_objects", "heap_idle_bytes", "heap_in_use_bytes",
                    "heap_released_bytes", "gc_pause_usec_100", "gc_pause_usec_99",
                    "gc_pause_usec_95", "next_gc_bytes"):
            add(f"{m}{key}:{ms[key]}|g\n")
        runs = ms["gc_total_runs"]
        add(f"{m}gc_runs:{runs - last_mem.get('gc_total_runs', 0)}|c\n")
        last_mem["gc_total_runs"] = runs
    return [line.encode("utf-8", "surrogateescape") for line in lines]


def pack_datagrams(lines, size: int) -> list[bytes]:
    """Go's BoundaryBufferedWriter: a line is never split; a new datagram starts when
    the next line doesn't fit; a line longer than ``size`` goes out alone."""
    out = []
    buf = bytearray()
    for line in lines:
        if len(line) > size - len(buf) and buf:
            out.append(bytes(buf))
            buf.clear()
        if len(line) > size:
            out.append(line)
            continue
        buf += line
    if buf:
        out.append(bytes(buf))
    return out


async def _open_socket(addr: str):
    host, sep, port = addr.rpartition(":")
    if not sep:
        raise OSError(f"address {addr}: missing port in address")
    host = host.strip("[]")
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host or None, int(port), type=socket.SOCK_DGRAM)
    if not infos:
        raise OSError(f"no address for {addr}")
    family, stype, proto, _cn, sockaddr = infos[0]
    sock = socket.socket(family, stype, proto)
    try:
        sock.setblocking(False)
        sock.connect(sockaddr)
    except OSError:
        sock.close()
        raise
    return sock


def _send(sock, data: bytes) -> None:
    try:
        sock.send(data)
    except OSError:
        pass  # statsd is fire-and-forget (Go ignores write errors too)


async def statsd_loop(nsqd) -> None:
    """Run until cancelled (at shutdown)."""
    opts = nsqd.opts
    log = nsqd.log
    memstats.install()
    interval = max(opts.statsd_interval, 1_000_000) / 1e9
    loop = asyncio.get_running_loop()
    last: dict = {}
    last_mem: dict = {}
    next_tick = loop.time() + interval
    try:
        while True:
            delay = next_tick - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            now = loop.time()
            next_tick += interval
            if next_tick < now:          # a missed tick fires once, like a Go ticker
                next_tick = now + interval - ((now - next_tick) % interval)
            addr = opts.statsd_address
            try:
                sock = await _open_socket(addr)
            except (OSError, ValueError, UnicodeError):
                log.error(f"failed to create UDP socket to statsd({addr})")
                continue
            try:
                log.info(f"STATSD: pushing stats to {addr}")
                lines = build_lines(nsqd, statsd_prefix(nsqd), last, last_mem)
                datagrams = pack_datagrams(lines, opts.statsd_udp_packet_size)
                await _spread(sock, datagrams, interval - 1.0)
            finally:
                sock.close()
    except asyncio.CancelledError:
        log.info("STATSD: closing")
        raise


async def _spread(sock, datagrams, spread: float) -> None:
    """Go's SpreadWriter: write each datagram then wait spread/n; on shutdown the rest is
    written without waiting."""
    if not datagrams:
        return
    pause = spread / len(datagrams) if spread > 0 else 0.0
    for i, data in enumerate(datagrams):
        _send(sock, data)
        if pause > 0:
            try:
                await asyncio.sleep(pause)
            except asyncio.CancelledError:
                for rest in datagrams[i + 1:]:
                    _send(sock, rest)
                raise
