"""``GET /stats``: the JSON document and the text report (nsqd-http.md §3 /stats).

``stats_dict()`` builds the document with Go's key order; ``stats_text()`` renders the
human-readable report byte-for-byte like nsqd's ``printStats``; ``go_json()`` encodes like
Go's ``encoding/json`` (re-exported from :mod:`nsqpy.gojson`).
"""
from __future__ import annotations

import time

from .. import NSQ_VERSION, version_string
from ..engine.e2e import snapshot as _e2e_snapshot
from ..gojson import go_json
from . import memstats

from ..gotime import format_duration as go_duration
from ..gotime import format_go_time_rfc3339

_EMPTY_E2E = {"count": 0, "percentiles": None}

__all__ = ["stats_dict", "stats_text", "collect", "go_json", "e2e_string", "go_duration"]


def _gofloat(v):
    """Integral floats become ints so they encode like Go (``1`` not ``1.0``)."""
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e21:
        return int(v)
    return v


def _e2e(percentiles, streams) -> dict:
    streams = [s for s in streams if s is not None]
    if not percentiles or not streams:
        return dict(_EMPTY_E2E)
    res = _e2e_snapshot(percentiles, streams)
    pcts = res.get("percentiles")
    if pcts is not None:
        pcts = [{"quantile": _gofloat(p["quantile"]), "value": _gofloat(p["value"])}
                for p in pcts]
    return {"count": res.get("count", 0), "percentiles": pcts}


# -- collection --------------------------------------------------------------------------------
def _channel_dict(ch, clients, percentiles) -> dict:
    return {
        "channel_name": ch.name,
        "depth": ch.depth(),
        "backend_depth": ch.backend.depth,
        "in_flight_count": ch.in_flight_count,
        "deferred_count": ch.deferred_count,
        "message_count": ch.message_count,
        "requeue_count": ch.requeue_count,
        "timeout_count": ch.timeout_count,
        "client_count": len(ch.consumers),
        "clients": clients,
        "paused": bool(ch.paused),
        "e2e_processing_latency": _e2e(percentiles, (ch.e2e,)),
    }


def collect(nsqd, topic=None, channel=None, include_clients=True):
    """``(topics, producers)`` as nsqd's GetStats: topics sorted by name (``None`` when the
    topic filter names an unknown topic, and then producers are ``None`` too), channels
    sorted by name, topics lacking the channel filter omitted; producers are the TCP
    connections that have published (``None`` if none or ``include_clients`` is false)."""
    topic = topic or None
    channel = channel or None
    broker = nsqd.broker
    percentiles = nsqd.opts.e2e_processing_latency_percentiles
    if topic is None:
        real_topics = sorted(broker.topics.items())
    else:
        t = broker.topics.get(topic)
        if t is None:
            return None, None
        real_topics = [(topic, t)]
    topics = []
    for _name, t in real_topics:
        chans = t.channels
        if channel is None:
            real_channels = sorted(chans.items())
        else:
            ch = chans.get(channel)
            if ch is None:
                continue
            real_channels = [(channel, ch)]
        channel_list = []
        for _cname, ch in real_channels:
            if include_clients:
                clients = [c.stats_dict(topic) for c in list(ch.consumers)]
            else:
                clients = None
            channel_list.append(_channel_dict(ch, clients, percentiles))
        topics.append({
            "topic_name": t.name,
            "channels": channel_list,
            "depth": t.depth(),
            "backend_depth": t.backend.depth,
            "message_count": t.message_count,
            "message_bytes": t.message_bytes,
            "paused": bool(t.paused),
            "e2e_processing_latency": _e2e(
                percentiles, [c.e2e for c in list(chans.values())]),
        })
    producers = None
    if include_clients:
        producers = [c.stats_dict(topic) for c in list(nsqd.clients) if c.pub_counts] or None
    return topics, producers


def stats_dict(nsqd, topic=None, channel=None, include_clients=True, include_mem=True) -> dict:
    """The ``/stats?format=json`` document."""
    topics, producers = collect(nsqd, topic, channel, include_clients)
    d = {
        "version": NSQ_VERSION,
        "health": nsqd.broker.health,
        "start_time": int(nsqd.start_time),
        "topics": topics,
    }
    if include_mem:
        d["memory"] = memstats.get_mem_stats()
    d["producers"] = producers
    return d


# -- text ------------------------------------------------------------------------------------
def _fmt_e2e_value(v: float) -> str:
    if v > 1e9:
        return "%.1fs" % (v / 1e9)
    if v > 1e6:
        return "%.1fms" % (v / 1e6)
    if v > 1e3:
        return "%.1fus" % (v / 1e3)
    return "%.1fns" % v


def e2e_string(e2e) -> str:
    """quantile.Result.String(): the formatted values joined with ``, ``."""
    pcts = (e2e or {}).get("percentiles") or ()
    return ", ".join(_fmt_e2e_value(float(p["value"])) for p in pcts)


def _client_line(c: dict, now: float) -> str:
    """ClientStats.String(): producer form when it has pub_counts, else consumer form."""
    connected = max(0, int(now - c.get("connect_ts", 0))) * 1_000_000_000
    port = str(c.get("remote_address", "")).rpartition(":")[2]
    ident = f"{c.get('hostname', '')}:{port} {c.get('user_agent', '')}"
    pubs = c.get("pub_counts")
    if pubs:
        total = sum(p["count"] for p in pubs)
        topics = ",".join(f"{p['topic']}={p['count']}" for p in pubs)
        return "[%s %-21s] msgs: %-8d topics: %s connected: %s" % (
            c.get("version", "V2"), ident, total, topics, go_duration(connected))
    return ("[%s %-21s] state: %d inflt: %-4d rdy: %-4d fin: %-8d re-q: %-8d msgs: %-8d "
            "connected: %s") % (
        c.get("version", "V2"), ident, c.get("state", 0), c.get("in_flight_count", 0),
        c.get("ready_count", 0), c.get("finish_count", 0), c.get("requeue_count", 0),
        c.get("message_count", 0), go_duration(connected))


def render_text(nsqd, topics, producers, memory, health: str) -> str:
    now = time.time()
    start = nsqd.start_time
    start_ns = nsqd.start_time_ns
    out = [
        version_string("nsqd"), "\n",
        "start_time ", format_go_time_rfc3339(start), "\n",
        "uptime ", go_duration(max(0, time.time_ns() - start_ns)), "\n",
        "\nHealth: ", health, "\n",
    ]
    if memory is not None:
        out.append("\nMemory:\n")
        for key in memstats.MEM_KEYS:
            out.append("   %-25s\t%d\n" % (key, memory[key]))
    if not topics:
        out.append("\nTopics: None\n")
    else:
        out.append("\nTopics:")
    for t in topics or ():
        out.append("\n%s[%-15s] depth: %-5d be-depth: %-5d msgs: %-8d e2e%%: %s\n" % (
            "*P " if t["paused"] else "   ", t["topic_name"], t["depth"], t["backend_depth"],
            t["message_count"], e2e_string(t["e2e_processing_latency"])))
        for c in t["channels"]:
            out.append(
                "%s[%-25s] depth: %-5d be-depth: %-5d inflt: %-4d def: %-4d re-q: %-5d "
                "timeout: %-5d msgs: %-8d e2e%%: %s\n" % (
                    "   *P " if c["paused"] else "      ", c["channel_name"], c["depth"],
                    c["backend_depth"], c["in_flight_count"], c["deferred_count"],
                    c["requeue_count"], c["timeout_count"], c["message_count"],
                    e2e_string(c["e2e_processing_latency"])))
            for client in c["clients"] or ():
                out.append("        " + _client_line(client, now) + "\n")
    if not producers:
        out.append("\nProducers: None\n")
    else:
        out.append("\nProducers:\n")
        for client in producers:
            out.append("   " + _client_line(client, now) + "\n")
    return "".join(out)


def stats_text(nsqd, topic=None, channel=None, include_clients=True, include_mem=True) -> str:
    """The ``/stats`` text report."""
    topics, producers = collect(nsqd, topic, channel, include_clients)
    memory = memstats.get_mem_stats() if include_mem else None
    return render_text(nsqd, topics, producers, memory, nsqd.broker.health)
