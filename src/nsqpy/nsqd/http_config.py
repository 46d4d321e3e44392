"""nsqd's ``GET/PUT /config/:opt`` (nsqd-http.md /config): read any option as JSON, set
``nsqlookupd_tcp_addresses`` (a JSON string list) or ``log_level`` at runtime."""
from __future__ import annotations

import asyncio
import json

from ..httpapi import Err, RawJSON, read_limited

__all__ = ["add_config_routes"]


def add_config_routes(router, nsqd) -> None:
    async def config(request, query, params):
        return await _config(nsqd, request, params["opt"])

    router.add("GET", "/config/:opt", config)
    router.add("PUT", "/config/:opt", config)


async def _config(nsqd, request, name: str):
    """``name``: the option's config-file key."""
    opts = nsqd.opts
    if request.method == "PUT":
        read_max = opts.max_msg_size + 1
        try:
            body = await read_limited(request, read_max)
        except (asyncio.CancelledError, KeyboardInterrupt):
            raise
        except Exception:
            raise Err(500, "INTERNAL_ERROR") from None
        if len(body) == read_max or not body:
            raise Err(413, "INVALID_VALUE")
        if name == "nsqlookupd_tcp_addresses":
            addrs = _parse_json_str_list(body)
            if addrs is None:
                raise Err(400, "INVALID_VALUE")
            opts.nsqlookupd_tcp_addresses = addrs
            setter = getattr(nsqd, "set_lookupd_addresses", None)
            if setter is not None:
                setter(list(addrs))
        elif name == "log_level":
            level = body.decode("utf-8", "surrogateescape").lower()
            if level not in ("debug", "info", "warn", "error", "fatal"):
                raise Err(400, "INVALID_VALUE")
            try:
                nsqd.log.set_level(level)
            except ValueError:
                raise Err(400, "INVALID_VALUE") from None
            opts.log_level = level
        else:
            raise Err(400, "INVALID_OPTION")
    return _config_value(nsqd, name)


def _config_value(nsqd, name: str):
    opts = nsqd.opts
    if name == "statsd_prefix":
        from .statsd import statsd_prefix
        return statsd_prefix(nsqd)
    if name == "broadcast_http_port" and not opts.broadcast_http_port:
        return RawJSON(str(int(nsqd.http_port or 0)))
    if name == "broadcast_tcp_port" and not opts.broadcast_tcp_port:
        return RawJSON(str(int(nsqd.tcp_port or 0)))
    if name == "nsqlookupd_tcp_addresses" and opts.nsqlookupd_tcp_addresses is None:
        return RawJSON("null")
    try:
        from .options import config_value_json
        kind, body = config_value_json(opts, name)
    except (KeyError, AttributeError):
        raise Err(400, "INVALID_OPTION") from None
    if kind == "text":
        return body
    return RawJSON(body)


def _parse_json_str_list(body: bytes):
    """json.Unmarshal into []string: a JSON array of strings (or null); else None."""
    try:
        v = json.loads(body.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return None
    if v is None:
        return []
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        return None
    return v
