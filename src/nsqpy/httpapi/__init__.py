"""NSQ's Go HTTP layer (``internal/http_api`` + julienschmidt/httprouter + net/http
quirks) shared by the daemons' HTTP APIs: nsqd, nsqlookupd and nsqadmin.

Using it::

    from nsqpy.httpapi import PLAIN, RAW, Err, Router, parse_query, serve

    router = Router(daemon.log)                 # no_peer="@" if unix sockets are served
    router.add("GET", "/ping", ping, PLAIN)     # await ping(request, query) -> "OK"
    router.add("GET", "/info", info)            # V1: dict/list -> Go JSON, str/bytes raw,
                                                #     None -> empty, RawJSON -> as is
    router.add("GET", "/api/topics/:topic/:channel", chan)  # chan(request, query, params)
    router.add("GET", "/static/asset.js", asset, RAW, logged=False)  # returns a Resp
    router.add("POST", "/pub", pub, sync=pub_sync)  # pub_sync(request, query): the same
                                                    # without awaiting, or NotImplemented
    handle = await serve(router.handle, sock=sock, api=api,  # or host=/port=/ssl=, path=
                         sync_handler=router.handle_sync)     # eager=False: see serve()
    ...
    await handle.close()

Handlers get a :class:`~.server.Request` (``method``, ``raw_path``, ``path``,
``headers``, ``version``, ``content``, ``transport``, ``peername``; request headers are
shared between identical requests: never modify them) and the raw query string:
``parse_query(query)`` (first value wins; ValueError where Go's ParseQuery fails; ``strict=False`` skips bad
pairs like ``req.FormValue``). ``raise Err(400, "MISSING_ARG_TOPIC")`` answers
``{"message":"MISSING_ARG_TOPIC"}`` (plain text on PLAIN routes); any other exception is
logged ``panic in HTTP handler - …`` and answered ``500 INTERNAL_ERROR``. The router does
trailing-slash / case / clean-path redirects (301 GET, 307 otherwise), ``OPTIONS`` and
``405`` with a sorted ``Allow``, ``404 NOT_FOUND`` and the ``http_api.Log`` line for
``logged`` routes. Bodies: ``await read_limited(request, n)`` (answers ``Expect:
100-continue``). ``Pprof().add_routes(router)`` adds ``/debug/pprof/*``. JSON: ``go_json``
(:mod:`nsqpy.gojson`; floats stay ``1.0``, so make integral floats ``int`` first where Go
prints ``1``). Command lines: :mod:`nsqpy.daemon_main` (``parse_or_exit``,
``run_daemon``, ``define_log_level``, ``check_config_log_level``, ``os_hostname``).

nsqadmin (:mod:`nsqpy.nsqadmin.http_api`) puts ``--base-path`` into the paths it ``add``s,
wraps ``router.handle`` for ``CompressHandler``, serves INDEX/PROXY routes RAW, returns its
static files as a :class:`Resp` from a PLAIN route (so a missing file is a plain-text 404)
and passes ``Router(escape_sub_delims=True)``: its redirect ``Location`` escapes ``!'()*``
as Go's ``URL.EscapedPath`` does (nsqd and nsqlookupd keep them unescaped).

Modules: :mod:`.router` (Router, V1/PLAIN/RAW, clean_path), :mod:`.responses` (Resp, Err,
RawJSON, v1_ok/v1_err/plain/text_response, content types), :mod:`.request` (parse_query,
parse_int64, read_limited, remote_addr), :mod:`.server` (serve, HTTPServerHandle, Request:
our own HTTP/1.1 server on asyncio.Protocol), :mod:`.h1` (the sans-IO request parser and
response bytes), :mod:`.body` (request bodies), :mod:`.pprof` (Pprof). aiohttp is not
imported by any of them.
"""
from ..gojson import go_json
from .pprof import Pprof
from .request import parse_int64, parse_query, parse_query_cached, read_limited, remote_addr
from .responses import (HTML_CT, JSON_CT, TEXT_CT, Err, RawJSON, Resp, plain, text_response,
                        v1_err, v1_ok)
from .router import PLAIN, RAW, V1, Router, clean_path
from .server import HTTPServerHandle, Request, serve

__all__ = ["HTML_CT", "JSON_CT", "PLAIN", "RAW", "TEXT_CT", "V1", "Err", "HTTPServerHandle",
           "Pprof", "RawJSON", "Request", "Resp", "Router", "clean_path", "go_json", "parse_int64",
           "parse_query", "parse_query_cached", "plain", "read_limited", "remote_addr", "serve",
           "text_response", "v1_err", "v1_ok"]
