"""NSQ's Go HTTP layer (``internal/http_api`` + julienschmidt/httprouter + net/http
quirks), shared by the daemons' HTTP APIs (nsqd, nsqlookupd; meant for nsqadmin too).

Using it for a daemon::

    from nsqpy.httpapi import Err, PLAIN, RAW, Router, V1, parse_query, serve

    router = Router(daemon.log)                 # no_peer="@" if you serve unix sockets
    router.add("GET", "/ping", ping, PLAIN)     # await ping(request, query) -> "OK"
    router.add("GET", "/info", info)            # V1: dict/list -> Go JSON, str/bytes raw,
                                                #     None -> empty, RawJSON -> as is
    router.add("GET", "/config/:opt", config)   # await config(request, query, {"opt": …})
    router.add("GET", "/asset", asset, RAW, logged=False)   # returns its own Resp
    handle = await serve(router.handle, host=h, port=p)     # or sock=…, or path=…
    ...
    await handle.close()

Handlers get the aiohttp low-level ``request`` and the raw query string; parse it with
``parse_query(query)`` (first value wins; ``ValueError`` where Go's ParseQuery fails, or
``strict=False`` to skip bad pairs like ``req.FormValue``). ``raise Err(400,
"MISSING_ARG_TOPIC")`` answers ``{"message":"MISSING_ARG_TOPIC"}`` (plain text on PLAIN
routes); any other exception is logged ``panic in HTTP handler - …`` and answered ``500
{"message":"INTERNAL_ERROR"}``. The router does the rest: 301/307 trailing-slash and
case/clean-path redirects, ``OPTIONS``/``405`` with a sorted ``Allow``, ``404 NOT_FOUND``,
the ``http_api.Log`` line (``200 GET /info (1.2.3.4:5678) 1.234ms``) for ``logged``
routes. Bodies: ``await read_limited(request, n)`` (``Expect: 100-continue`` handled).
``Pprof().add_routes(router)`` adds the ``/debug/pprof/*`` stand-ins. JSON: ``go_json``
(:mod:`nsqpy.gojson`; it keeps ``1.0`` for floats — make integral floats ``int`` first
where Go would print ``1``).

Modules: :mod:`.router` (Router, V1/PLAIN/RAW, clean_path), :mod:`.responses` (Resp, Err,
RawJSON, v1_ok/v1_err/plain/text_response, content-type constants), :mod:`.request`
(parse_query, parse_int64, read_limited, remote_addr), :mod:`.server` (serve,
HTTPServerHandle), :mod:`.pprof` (Pprof).
"""
from ..gojson import go_json
from .pprof import Pprof
from .request import parse_int64, parse_query, parse_query_cached, read_limited, remote_addr
from .responses import (HTML_CT, JSON_CT, TEXT_CT, Err, RawJSON, Resp, plain, text_response,
                        v1_err, v1_ok)
from .router import PLAIN, RAW, V1, Router, clean_path
from .server import HTTPServerHandle, serve

__all__ = ["HTML_CT", "JSON_CT", "PLAIN", "RAW", "TEXT_CT", "V1", "Err", "HTTPServerHandle",
           "Pprof", "RawJSON", "Resp", "Router", "clean_path", "go_json", "parse_int64",
           "parse_query", "parse_query_cached", "plain", "read_limited", "remote_addr", "serve",
           "text_response", "v1_err", "v1_ok"]
