"""nsqlookupd HTTP API (spec nsqlookupd.md §3): routes and handlers on the shared
httprouter / ``http_api`` layer of :mod:`nsqpy.httpapi` (every API route logged like
``http_api.Log``; pprof not).
"""
from __future__ import annotations

from .. import NSQ_VERSION
from ..httpapi import (PLAIN, Err, HTTPServerHandle, Pprof, Router, go_json, parse_query,
                       serve)
from ..protocol.names import is_valid_channel_name, is_valid_topic_name
from .registration_db import filter_by_active

__all__ = ["start_http_server", "HTTPServerHandle", "LookupdHTTPAPI", "go_json",
           "parse_query", "Err"]


def _arg(params: dict, name: str) -> str:
    """A required argument; missing: 400 ``MISSING_ARG_<NAME>``."""
    v = params.get(name)
    if v is None:
        raise Err(400, f"MISSING_ARG_{name.upper()}")
    return v


class LookupdHTTPAPI:
    def __init__(self, lookupd):
        self.lookupd = lookupd
        self.log = lookupd.log
        # unix sockets may be served (peers log as "@"); unread bodies are drained, not
        # closed on
        self.router = router = Router(lookupd.log, no_peer="@", close_unread_body=False)
        add = router.add
        add("GET", "/ping", self.ping, PLAIN)
        add("GET", "/info", self.info)
        add("GET", "/debug", self.debug)
        add("GET", "/lookup", self.lookup)
        add("GET", "/topics", self.topics)
        add("GET", "/channels", self.channels)
        add("GET", "/nodes", self.nodes)
        add("POST", "/topic/create", self.topic_create)
        add("POST", "/topic/delete", self.topic_delete)
        add("POST", "/channel/create", self.channel_create)
        add("POST", "/channel/delete", self.channel_delete)
        add("POST", "/topic/tombstone", self.topic_tombstone)
        Pprof().add_routes(router, "/debug/pprof")

    # -- request helpers ------------------------------------------------------------------------
    @staticmethod
    async def _params(request, query: str) -> dict:
        """http_api.NewReqParams: the query string (the body is read and ignored)."""
        try:
            params = parse_query(query)
        except ValueError:
            raise Err(400, "INVALID_REQUEST") from None
        content = request.content
        if not content.at_eof():
            try:
                while await content.read(1 << 16):
                    pass
            except Exception:  # noqa: BLE001
                raise Err(400, "INVALID_REQUEST") from None
        return params

    @staticmethod
    def _topic_channel(params: dict) -> tuple[str, str]:
        """http_api.GetTopicChannelArgs."""
        topic = _arg(params, "topic")
        if not is_valid_topic_name(topic):
            raise Err(400, "INVALID_ARG_TOPIC")
        channel = _arg(params, "channel")
        if not is_valid_channel_name(channel):
            raise Err(400, "INVALID_ARG_CHANNEL")
        return topic, channel

    # -- handlers --------------------------------------------------------------------------------
    async def ping(self, request, query):
        return "OK"

    async def info(self, request, query):
        return {"version": NSQ_VERSION}

    async def topics(self, request, query):
        regs = self.lookupd.db.find_registrations("topic", "*", "")
        return {"topics": [k for _c, k, _s in regs]}

    async def channels(self, request, query):
        params = await self._params(request, query)
        topic = _arg(params, "topic")
        regs = self.lookupd.db.find_registrations("channel", topic, "*")
        return {"channels": [s for _c, _k, s in regs]}

    async def lookup(self, request, query):
        params = await self._params(request, query)
        topic = _arg(params, "topic")
        db = self.lookupd.db
        if not db.find_registrations("topic", topic, ""):
            raise Err(404, "TOPIC_NOT_FOUND")
        opts = self.lookupd.opts
        channels = [s for _c, _k, s in db.find_registrations("channel", topic, "*")]
        producers = filter_by_active(db.find_producers("topic", topic, ""),
                                     opts.inactive_producer_timeout, opts.tombstone_lifetime)
        return {"channels": channels,
                "producers": [p.peer_info.to_json_dict() for p in producers]}

    async def topic_create(self, request, query):
        params = await self._params(request, query)
        topic = _arg(params, "topic")
        if not is_valid_topic_name(topic):
            raise Err(400, "INVALID_ARG_TOPIC")
        self.log.info(f"DB: adding topic({topic})")
        self.lookupd.db.add_registration(("topic", topic, ""))
        return None

    async def topic_delete(self, request, query):
        params = await self._params(request, query)
        topic = _arg(params, "topic")
        db = self.lookupd.db
        for r in db.find_registrations("channel", topic, "*"):
            self.log.info(f"DB: removing channel({r[2]}) from topic({topic})")
            db.remove_registration(r)
        for r in db.find_registrations("topic", topic, ""):
            self.log.info(f"DB: removing topic({topic})")
            db.remove_registration(r)
        return None

    async def topic_tombstone(self, request, query):
        params = await self._params(request, query)
        topic = _arg(params, "topic")
        node = _arg(params, "node")
        self.log.info(f"DB: setting tombstone for producer@{node} of topic({topic})")
        for p in self.lookupd.db.find_producers("topic", topic, ""):
            pi = p.peer_info
            if f"{pi.broadcast_address}:{pi.http_port}" == node:
                p.tombstone()
        return None

    async def channel_create(self, request, query):
        params = await self._params(request, query)
        topic, channel = self._topic_channel(params)
        db = self.lookupd.db
        self.log.info(f"DB: adding channel({channel}) in topic({topic})")
        db.add_registration(("channel", topic, channel))
        self.log.info(f"DB: adding topic({topic})")
        db.add_registration(("topic", topic, ""))
        return None

    async def channel_delete(self, request, query):
        params = await self._params(request, query)
        topic, channel = self._topic_channel(params)
        db = self.lookupd.db
        regs = db.find_registrations("channel", topic, channel)
        if not regs:
            raise Err(404, "CHANNEL_NOT_FOUND")
        self.log.info(f"DB: removing channel({channel}) from topic({topic})")
        for r in regs:
            db.remove_registration(r)
        return None

    async def nodes(self, request, query):
        lookupd = self.lookupd
        db = lookupd.db
        opts = lookupd.opts
        # tombstoned nodes are not filtered out here
        producers = filter_by_active(db.find_producers("client", "", ""),
                                     opts.inactive_producer_timeout, 0)
        lifetime = opts.tombstone_lifetime
        out = []
        for p in producers:
            pi = p.peer_info
            topics = [k for c, k, _s in db.lookup_registrations(pi.id) if c == "topic"]
            tombstones = []
            for t in topics:
                tp = db.producer(("topic", t, ""), pi.id)
                tombstones.append(bool(tp is not None and tp.peer_info is pi
                                       and tp.is_tombstoned(lifetime)))
            node = pi.to_json_dict()
            node["tombstones"] = tombstones
            node["topics"] = topics
            out.append(node)
        return {"producers": out}

    async def debug(self, request, query):
        data = {}
        for (cat, key, sub), producers in self.lookupd.db.items():
            if not producers:
                continue
            entries = []
            for p in producers.values():
                pi = p.peer_info
                entries.append({
                    "broadcast_address": pi.broadcast_address,
                    "hostname": pi.hostname,
                    "http_port": pi.http_port,
                    "id": pi.id,
                    "last_update": pi.last_update,
                    "tcp_port": pi.tcp_port,
                    "tombstoned": p.tombstoned,
                    "tombstoned_at": p.tombstoned_at_unix_nano,
                    "version": pi.version,
                })
            data[f"{cat}:{key}:{sub}"] = entries
        return {k: data[k] for k in sorted(data)}


async def start_http_server(lookupd, sock=None, path: str | None = None) -> HTTPServerHandle:
    """Serve the API on an already-bound listening socket ``sock`` (or a unix socket
    ``path``)."""
    api = LookupdHTTPAPI(lookupd)
    return await serve(api.router.handle, sock=sock, path=path, api=api)
