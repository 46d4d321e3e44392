"""Cluster state gathered from nsqlookupd and nsqd (Go ``internal/clusterinfo``).

Every query fans out concurrently. A query that fails on *every* upstream raises
:class:`AllFailed` (the API answers ``502 UPSTREAM_ERROR: …``); one that fails on some
returns its partial result together with the error texts (the API's ``WARNING: …``).
Actions (POSTs) never raise AllFailed: their failures are always partial, as upstream.
"""
from __future__ import annotations

import asyncio
import re
import time
from urllib.parse import quote

from .upstream import UpstreamError

__all__ = ["AllFailed", "ClusterInfo", "Producer", "err_list", "join_host_port"]

_SEMVER_RE = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$")


def err_list(errs: list) -> str:
    return "; ".join(str(e) for e in errs)


class AllFailed(Exception):
    """Every upstream failed; ``str(e)`` is e.g. ``failed to query any nsqlookupd: …``."""


def join_host_port(host: str, port) -> str:
    if ":" in host:
        return f"[{host}]:{port}"
    return f"{host}:{port}"


def q(s: str) -> str:
    """Go's url.QueryEscape."""
    return quote(s, safe="-_.~").replace("%20", "+")


def semver_key(v: str):
    m = _SEMVER_RE.match(v or "")
    if not m:
        return (0, 0, 0, 1, ())
    pre = m.group(4)
    if pre is None:
        return (int(m.group(1)), int(m.group(2)), int(m.group(3)), 1, ())
    parts = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre.split("."))
    return (int(m.group(1)), int(m.group(2)), int(m.group(3)), 0, parts)


class Producer:
    """An nsqd as nsqadmin knows it (from lookupd ``/nodes``/``/lookup`` or nsqd ``/info``)."""

    __slots__ = ("remote_addresses", "remote_address", "hostname", "broadcast_address",
                 "tcp_port", "http_port", "version", "topics", "out_of_date")

    def __init__(self, d: dict):
        self.remote_addresses: list | None = None
        self.remote_address = str(d.get("remote_address") or "")
        self.hostname = str(d.get("hostname") or "")
        self.broadcast_address = str(d.get("broadcast_address") or "")
        self.tcp_port = int(d.get("tcp_port") or 0)
        self.http_port = int(d.get("http_port") or 0)
        self.version = str(d.get("version") or "")
        topics = d.get("topics")
        tomb = d.get("tombstones") or []
        self.topics: list | None = None
        if topics:
            self.topics = [{"topic": t, "tombstoned": bool(tomb[i]) if i < len(tomb) else False}
                           for i, t in enumerate(topics)]
        self.out_of_date = False

    @property
    def http_address(self) -> str:
        return join_host_port(self.broadcast_address, self.http_port)

    @property
    def tcp_address(self) -> str:
        return join_host_port(self.broadcast_address, self.tcp_port)

    @property
    def address(self) -> str:
        return self.remote_address or "N/A"

    def to_json(self) -> dict:
        return {
            "remote_addresses": self.remote_addresses,
            "remote_address": self.remote_address,
            "hostname": self.hostname,
            "broadcast_address": self.broadcast_address,
            "tcp_port": self.tcp_port,
            "http_port": self.http_port,
            "version": self.version,
            "topics": self.topics,
            "out_of_date": self.out_of_date,
        }


def _i(d: dict, k: str) -> int:
    v = d.get(k)
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, (int, float)):
        return int(v)
    return 0


# -- stats shapes ------------------------------------------------------------------------------
def node_e2e(e) -> dict | None:
    if not isinstance(e, dict):
        return None
    count = _i(e, "count")
    pcts = e.get("percentiles")
    out = None
    if isinstance(pcts, list):
        out = []
        for p in pcts:
            if not isinstance(p, dict):
                continue
            v = float(p.get("value") or 0)
            out.append({"quantile": p.get("quantile", 0), "value": v, "min": v, "max": v,
                        "average": v, "count": count})
    return {"count": count, "percentiles": out, "topic": "", "channel": "", "host": ""}


def e2e_add(agg: dict, e2: dict | None) -> None:
    """Merge one node's percentiles into an aggregate (count-weighted average)."""
    agg["host"] = "*"
    if not e2:
        return
    agg["count"] += e2["count"]
    for value in e2.get("percentiles") or []:
        pcts = agg["percentiles"]
        if pcts is None:
            pcts = agg["percentiles"] = []
        p = next((x for x in pcts if x["quantile"] == value["quantile"]), None)
        if p is None:
            p = {"quantile": value["quantile"], "value": 0.0, "min": value["min"],
                 "max": value["max"], "average": 0.0, "count": 0}
            pcts.append(p)
        p["max"] = max(value["max"], p["max"])
        p["min"] = min(value["min"], p["min"])
        p["count"] += value["count"]
        if p["count"] == 0:
            p["average"] = 0.0
        else:
            delta = value["average"] - p["average"]
            p["average"] = p["average"] + delta * value["count"] / p["count"]
        p["value"] = p["average"]


def node_client(c: dict, node: str, now_s: int) -> dict:
    connect_ts = _i(c, "connect_ts")
    return {
        "node": node,
        "remote_address": str(c.get("remote_address") or ""),
        "version": str(c.get("version") or ""),
        "client_id": str(c.get("client_id") or ""),
        "hostname": str(c.get("hostname") or ""),
        "user_agent": str(c.get("user_agent") or ""),
        "connect_ts": connect_ts,
        "connected": (now_s - connect_ts) * 1_000_000_000,
        "in_flight_count": _i(c, "in_flight_count"),
        "ready_count": _i(c, "ready_count"),
        "finish_count": _i(c, "finish_count"),
        "requeue_count": _i(c, "requeue_count"),
        "message_count": _i(c, "message_count"),
        "sample_rate": _i(c, "sample_rate"),
        "deflate": bool(c.get("deflate")),
        "snappy": bool(c.get("snappy")),
        "authed": bool(c.get("authed")),
        "auth_identity": str(c.get("auth_identity") or ""),
        "auth_identity_url": str(c.get("auth_identity_url") or ""),
        "tls": bool(c.get("tls")),
        "tls_cipher_suite": str(c.get("tls_cipher_suite") or ""),
        "tls_version": str(c.get("tls_version") or ""),
        "tls_negotiated_protocol": str(c.get("tls_negotiated_protocol") or ""),
        "tls_negotiated_protocol_is_mutual": bool(c.get("tls_negotiated_protocol_is_mutual")),
    }


def node_channel(ch: dict, topic_name: str, node: str, hostname: str, now_s: int) -> dict:
    depth = _i(ch, "depth")
    backend = _i(ch, "backend_depth")
    clients = ch.get("clients")
    return {
        "node": node,
        "hostname": hostname,
        "topic_name": topic_name,
        "channel_name": str(ch.get("channel_name") or ""),
        "depth": depth,
        "memory_depth": depth - backend,
        "backend_depth": backend,
        "in_flight_count": _i(ch, "in_flight_count"),
        "deferred_count": _i(ch, "deferred_count"),
        "requeue_count": _i(ch, "requeue_count"),
        "timeout_count": _i(ch, "timeout_count"),
        "message_count": _i(ch, "message_count"),
        "client_count": _i(ch, "client_count"),
        "nodes": None,
        "clients": ([node_client(c, node, now_s) for c in clients if isinstance(c, dict)]
                    if isinstance(clients, list) else None),
        "paused": bool(ch.get("paused")),
        "e2e_processing_latency": node_e2e(ch.get("e2e_processing_latency")),
    }


def node_topic(t: dict, node: str, hostname: str, now_s: int) -> dict:
    depth = _i(t, "depth")
    backend = _i(t, "backend_depth")
    name = str(t.get("topic_name") or "")
    chans = t.get("channels")
    return {
        "node": node,
        "hostname": hostname,
        "topic_name": name,
        "depth": depth,
        "memory_depth": depth - backend,
        "backend_depth": backend,
        "message_count": _i(t, "message_count"),
        "nodes": None,
        "channels": ([node_channel(c, name, node, hostname, now_s) for c in chans
                      if isinstance(c, dict)] if isinstance(chans, list) else None),
        "paused": bool(t.get("paused")),
        "e2e_processing_latency": node_e2e(t.get("e2e_processing_latency")),
    }


def _by_host(x: dict):
    return (x["hostname"], x["node"])


def new_channel_agg(topic: str, channel: str) -> dict:
    return {
        "node": "*", "hostname": "", "topic_name": topic, "channel_name": channel,
        "depth": 0, "memory_depth": 0, "backend_depth": 0, "in_flight_count": 0,
        "deferred_count": 0, "requeue_count": 0, "timeout_count": 0, "message_count": 0,
        "client_count": 0, "nodes": None, "clients": None, "paused": False,
        "e2e_processing_latency": None,
    }


_CH_SUMS = ("depth", "memory_depth", "backend_depth", "in_flight_count", "deferred_count",
            "requeue_count", "timeout_count", "message_count", "client_count")


def channel_add(agg: dict, a: dict) -> None:
    for k in _CH_SUMS:
        agg[k] += a[k]
    if agg["e2e_processing_latency"] is None:
        agg["e2e_processing_latency"] = {"count": 0, "percentiles": None,
                                         "topic": agg["topic_name"],
                                         "channel": agg["channel_name"], "host": "*"}
    e2e_add(agg["e2e_processing_latency"], a["e2e_processing_latency"])
    agg["nodes"] = sorted((agg["nodes"] or []) + [a], key=_by_host)
    if a["clients"]:
        agg["clients"] = sorted((agg["clients"] or []) + a["clients"],
                                key=lambda c: c["hostname"])
    if a["paused"]:
        agg["paused"] = True


def new_topic_agg(topic: str) -> dict:
    return {
        "node": "", "hostname": "", "topic_name": topic, "depth": 0, "memory_depth": 0,
        "backend_depth": 0, "message_count": 0, "nodes": None, "channels": None,
        "paused": False, "e2e_processing_latency": None,
    }


def topic_add(agg: dict, a: dict) -> None:
    agg["node"] = "*"
    for k in ("depth", "backend_depth", "memory_depth", "message_count"):
        agg[k] += a[k]
    if a["paused"]:
        agg["paused"] = True
    for ch in a["channels"] or []:
        chans = agg["channels"]
        if chans is None:
            chans = agg["channels"] = []
        target = next((c for c in chans if c["channel_name"] == ch["channel_name"]), None)
        if target is None:
            target = new_channel_agg(agg["topic_name"], ch["channel_name"])
            chans.append(target)
        channel_add(target, ch)
    if agg["channels"]:
        agg["channels"].sort(key=lambda c: c["channel_name"])
    agg["nodes"] = sorted((agg["nodes"] or []) + [a], key=_by_host)
    if agg["e2e_processing_latency"] is None:
        agg["e2e_processing_latency"] = {"count": 0, "percentiles": None,
                                         "topic": agg["topic_name"], "channel": "",
                                         "host": "*"}
    e2e_add(agg["e2e_processing_latency"], a["e2e_processing_latency"])


# -- the cluster -------------------------------------------------------------------------------
class ClusterInfo:
    def __init__(self, client, log):
        self.client = client
        self.log = log

    async def _gather(self, coros):
        return await asyncio.gather(*coros, return_exceptions=True)

    def _split(self, results):
        ok, errs = [], []
        for r in results:
            if isinstance(r, UpstreamError):
                errs.append(r)
            elif isinstance(r, BaseException):
                errs.append(UpstreamError(str(r) or r.__class__.__name__))
            else:
                ok.append(r)
        return ok, errs

    async def _get(self, endpoint: str, what: str):
        self.log.debug(f"CI: querying {what} {endpoint}")
        return await self.client.get_v1(endpoint)

    # -- lookupd -------------------------------------------------------------------------------
    async def lookupd_topics(self, addrs: list[str]):
        results = await self._gather(self._get(f"http://{a}/topics", "nsqlookupd") for a in addrs)
        ok, errs = self._split(results)
        if len(errs) == len(addrs):
            raise AllFailed(f"failed to query any nsqlookupd: {err_list(errs)}")
        topics = sorted({t for r in ok for t in ((r or {}).get("topics") or [])})
        return (topics or None), errs

    async def lookupd_topic_channels(self, topic: str, addrs: list[str]):
        results = await self._gather(
            self._get(f"http://{a}/channels?topic={q(topic)}", "nsqlookupd") for a in addrs)
        ok, errs = self._split(results)
        if len(errs) == len(addrs):
            raise AllFailed(f"failed to query any nsqlookupd: {err_list(errs)}")
        chans = sorted({c for r in ok for c in ((r or {}).get("channels") or [])})
        return (chans or None), errs

    async def lookupd_topic_producers(self, topic: str, addrs: list[str]):
        results = await self._gather(
            self._get(f"http://{a}/lookup?topic={q(topic)}", "nsqlookupd") for a in addrs)
        ok, errs = self._split(results)
        if len(errs) == len(addrs):
            raise AllFailed(f"failed to query any nsqlookupd: {err_list(errs)}")
        producers: list[Producer] = []
        seen = set()
        for r in ok:
            for d in (r or {}).get("producers") or []:
                p = Producer(d)
                if p.http_address in seen:
                    continue
                seen.add(p.http_address)
                producers.append(p)
        return producers, errs

    async def lookupd_producers(self, addrs: list[str]):
        results = await self._gather(self._get(f"http://{a}/nodes", "nsqlookupd") for a in addrs)
        by_addr: dict[str, Producer] = {}
        producers: list[Producer] = []
        errs = []
        max_version = semver_key("0.0.0")
        for addr, r in zip(addrs, results):
            if isinstance(r, BaseException):
                errs.append(r if isinstance(r, UpstreamError) else UpstreamError(str(r)))
                continue
            for d in (r or {}).get("producers") or []:
                p = Producer(d)
                existing = by_addr.get(p.tcp_address)
                if existing is None:
                    by_addr[p.tcp_address] = p
                    producers.append(p)
                    if semver_key(p.version) > max_version:
                        max_version = semver_key(p.version)
                    if p.topics:
                        p.topics.sort(key=lambda t: t["topic"])
                    existing = p
                if existing.remote_addresses is None:
                    existing.remote_addresses = []
                existing.remote_addresses.append(f"{addr}/{p.address}")
        if len(errs) == len(addrs):
            raise AllFailed(f"failed to query any nsqlookupd: {err_list(errs)}")
        for p in producers:
            if semver_key(p.version) < max_version:
                p.out_of_date = True
        producers.sort(key=lambda p: p.hostname)
        return producers, errs

    # -- nsqd ----------------------------------------------------------------------------------
    async def _nsqd_info_and_topics(self, addr: str, topic: str | None):
        if topic is None:
            info = await self._get(f"http://{addr}/info", "nsqd")
            stats = await self._get(f"http://{addr}/stats?format=json&include_clients=false",
                                    "nsqd")
        else:
            stats = await self._get(
                f"http://{addr}/stats?format=json&topic={q(topic)}&include_clients=false",
                "nsqd")
            info = await self._get(f"http://{addr}/info", "nsqd")
        names = [str(t.get("topic_name")) for t in ((stats or {}).get("topics") or [])
                 if isinstance(t, dict)]
        info = info or {}
        p = Producer({"hostname": info.get("hostname"),
                      "broadcast_address": info.get("broadcast_address"),
                      "tcp_port": info.get("tcp_port"), "http_port": info.get("http_port"),
                      "version": info.get("version")})
        p.topics = [{"topic": n, "tombstoned": False} for n in names] or None
        return p, names

    async def nsqd_topics(self, addrs: list[str]):
        results = await self._gather(
            self._get(f"http://{a}/stats?format=json", "nsqd") for a in addrs)
        ok, errs = self._split(results)
        if len(errs) == len(addrs):
            raise AllFailed(f"failed to query any nsqd: {err_list(errs)}")
        topics = sorted({str(t.get("topic_name")) for r in ok
                         for t in ((r or {}).get("topics") or []) if isinstance(t, dict)})
        return (topics or None), errs

    async def nsqd_producers(self, addrs: list[str]):
        results = await self._gather(self._nsqd_info_and_topics(a, None) for a in addrs)
        ok, errs = self._split(results)
        if len(errs) == len(addrs):
            raise AllFailed(f"failed to query any nsqd: {err_list(errs)}")
        return [p for p, _names in ok], errs

    async def nsqd_topic_producers(self, topic: str, addrs: list[str]):
        results = await self._gather(self._nsqd_info_and_topics(a, topic) for a in addrs)
        ok, errs = self._split(results)
        if len(errs) == len(addrs):
            raise AllFailed(f"failed to query any nsqd: {err_list(errs)}")
        return [p for p, names in ok if topic in names], errs

    # -- mode-independent ------------------------------------------------------------------------
    async def topics(self, lookupd: list[str], nsqd: list[str]):
        if lookupd:
            return await self.lookupd_topics(lookupd)
        return await self.nsqd_topics(nsqd)

    async def topic_producers(self, topic: str, lookupd: list[str], nsqd: list[str]):
        if lookupd:
            return await self.lookupd_topic_producers(topic, lookupd)
        return await self.nsqd_topic_producers(topic, nsqd)

    async def producers(self, lookupd: list[str], nsqd: list[str]):
        if lookupd:
            return await self.lookupd_producers(lookupd)
        return await self.nsqd_producers(nsqd)

    async def nsqd_stats(self, producers: list[Producer], topic: str = "", channel: str = "",
                         include_clients: bool = True):
        """(per-node topic stats sorted by host, {channel key: aggregate}, errors); the
        channel key is the channel name when ``topic`` is given, else ``topic:channel``."""
        async def one(p: Producer):
            addr = p.http_address
            endpoint = f"http://{addr}/stats?format=json"
            if topic:
                endpoint += "&topic=" + q(topic)
                if channel:
                    endpoint += "&channel=" + q(channel)
            if not include_clients:
                endpoint += "&include_clients=false"
            return p, await self._get(endpoint, "nsqd")

        results = await self._gather(one(p) for p in producers)
        ok, errs = self._split(results)
        if producers and len(errs) == len(producers):
            raise AllFailed(f"failed to query any nsqd: {err_list(errs)}")
        now_s = int(time.time())
        topic_list: list[dict] = []
        channel_map: dict[str, dict] = {}
        for p, resp in ok:
            addr = p.http_address
            for t in (resp or {}).get("topics") or []:
                if not isinstance(t, dict):
                    continue
                ts = node_topic(t, addr, p.hostname, now_s)
                if topic and ts["topic_name"] != topic:
                    continue
                topic_list.append(ts)
                for ch in ts["channels"] or []:
                    key = ch["channel_name"] if topic else f"{ts['topic_name']}:{ch['channel_name']}"
                    agg = channel_map.get(key)
                    if agg is None:
                        agg = channel_map[key] = new_channel_agg(ts["topic_name"],
                                                                 ch["channel_name"])
                    channel_add(agg, ch)
        topic_list.sort(key=_by_host)
        return topic_list, channel_map, errs

    # -- actions ---------------------------------------------------------------------------------
    async def _post_all(self, endpoints: list[str], what: str) -> list:
        errs = []
        for endpoint in endpoints:  # sequential, as upstream
            self.log.debug(f"CI: querying {what} {endpoint}")
            try:
                await self.client.post_v1(endpoint)
            except UpstreamError as e:
                errs.append(e)
        return errs

    async def lookupd_post(self, addrs: list[str], uri: str, qs: str) -> list:
        return await self._post_all([f"http://{a}/{uri}?{qs}" for a in addrs], "nsqlookupd")

    async def producers_post(self, producers: list[Producer], uri: str, qs: str) -> list:
        return await self._post_all([f"http://{p.http_address}/{uri}?{qs}" for p in producers],
                                    "nsqd")

    async def nsqd_addrs_post(self, addrs: list[str], uri: str, qs: str) -> list:
        return await self._post_all([f"http://{a}/{uri}?{qs}" for a in addrs], "nsqd")

    async def create_topic_channel(self, topic: str, channel: str, lookupd: list[str],
                                   nsqd: list[str]) -> list:
        errs = []
        if not lookupd:
            # nsqd mode: there is no lookupd to create it in; create it on every nsqd
            errs += await self.nsqd_addrs_post(nsqd, "topic/create", f"topic={q(topic)}")
            if channel:
                errs += await self.nsqd_addrs_post(
                    nsqd, "channel/create", f"topic={q(topic)}&channel={q(channel)}")
            return errs
        errs += await self.lookupd_post(lookupd, "topic/create", f"topic={q(topic)}")
        if channel:
            qs = f"topic={q(topic)}&channel={q(channel)}"
            errs += await self.lookupd_post(lookupd, "channel/create", qs)
            producers, perrs = await self.lookupd_topic_producers(topic, lookupd)
            errs += perrs
            errs += await self.producers_post(producers, "channel/create", qs)
        return errs

    async def _topic_producers_for_action(self, topic, lookupd, nsqd):
        return await self.topic_producers(topic, lookupd, nsqd)

    async def delete_topic(self, topic: str, lookupd: list[str], nsqd: list[str]) -> list:
        producers, errs = await self.topic_producers(topic, lookupd, nsqd)
        errs = list(errs)
        qs = f"topic={q(topic)}"
        errs += await self.lookupd_post(lookupd, "topic/delete", qs)
        errs += await self.producers_post(producers, "topic/delete", qs)
        return errs

    async def delete_channel(self, topic: str, channel: str, lookupd: list[str],
                             nsqd: list[str]) -> list:
        producers, errs = await self.topic_producers(topic, lookupd, nsqd)
        errs = list(errs)
        qs = f"topic={q(topic)}&channel={q(channel)}"
        errs += await self.lookupd_post(lookupd, "channel/delete", qs)
        errs += await self.producers_post(producers, "channel/delete", qs)
        return errs

    async def topic_action(self, action: str, topic: str, lookupd, nsqd) -> list:
        producers, errs = await self.topic_producers(topic, lookupd, nsqd)
        return list(errs) + await self.producers_post(producers, f"topic/{action}",
                                                      f"topic={q(topic)}")

    async def channel_action(self, action: str, topic: str, channel: str, lookupd, nsqd) -> list:
        producers, errs = await self.topic_producers(topic, lookupd, nsqd)
        return list(errs) + await self.producers_post(
            producers, f"channel/{action}", f"topic={q(topic)}&channel={q(channel)}")

    async def tombstone_node_for_topic(self, topic: str, node: str, lookupd: list[str],
                                       nsqd: list[str]) -> list:
        errs = await self.lookupd_post(lookupd, "topic/tombstone",
                                       f"topic={q(topic)}&node={q(node)}")
        producers, perrs = await self.producers(lookupd, nsqd)
        errs += perrs
        target = [p for p in producers if p.http_address == node][:1]
        errs += await self.producers_post(target, "topic/delete", f"topic={q(topic)}")
        return errs
