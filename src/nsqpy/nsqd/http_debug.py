"""nsqd's debug routes: the shared ``/debug/pprof/*`` stand-ins (heap profile headed by
nsqd's memory stats) plus nsqd's own ``PUT /debug/setblockrate`` and ``POST
/debug/freememory``."""
from __future__ import annotations

import gc

from ..httpapi import PLAIN, Err, Pprof, parse_int64, parse_query, read_limited
from ..protocol.goquote import go_quote
from . import memstats

__all__ = ["add_debug_routes"]


def add_debug_routes(router) -> Pprof:
    pprof = Pprof(mem_stats=memstats.get_mem_stats)
    pprof.add_routes(router, "/debug/pprof/")

    async def set_block_rate(request, query):
        form = parse_query(query, strict=False)
        if request.method in ("POST", "PUT", "PATCH"):
            ctype = request.headers.get("Content-Type", "")
            if ctype.split(";", 1)[0].strip().lower() == "application/x-www-form-urlencoded":
                try:
                    body = await read_limited(request, 10 << 20)
                    post = parse_query(body.decode("utf-8", "surrogateescape"), strict=False)
                    form = {**form, **post}
                except Exception:  # noqa: BLE001
                    pass
        rate = form.get("rate", "")
        v = parse_int64(rate)
        if v is None:
            raise Err(400, f"invalid block rate : strconv.Atoi: parsing {go_quote(rate)}: "
                           f"invalid syntax")
        if v == "range":
            raise Err(400, f"invalid block rate : strconv.Atoi: parsing {go_quote(rate)}: "
                           f"value out of range")
        pprof.block_rate = v
        return b""

    async def free_memory(request, query):
        gc.collect()
        try:
            import ctypes
            ctypes.CDLL(None).malloc_trim(0)
        except Exception:  # noqa: BLE001
            pass
        return b""

    router.add("PUT", "/debug/setblockrate", set_block_rate, PLAIN)
    router.add("POST", "/debug/freememory", free_memory, PLAIN)
    return pprof
