"""Python stand-ins for Go's ``net/http/pprof`` handlers (same paths, index page and
content types; the profiles describe this Python process). Routes are RAW and not logged,
as in NSQ."""
from __future__ import annotations

import asyncio
import gc
import io
import re
import sys
import threading
import traceback

from .request import parse_int64, parse_query, read_limited
from .responses import HTML_CT, text_response
from .router import RAW

__all__ = ["Pprof"]

_PROFILES = [("block", "Stack traces that led to blocking on synchronization primitives"),
             ("cmdline", "The command line invocation of the current program"),
             ("goroutine", "Stack traces of all current tasks and threads"),
             ("heap", "A sampling of memory allocations of live objects"),
             ("profile", "CPU profile (?seconds=N, default 30)"),
             ("symbol", "Symbol lookup"),
             ("threadcreate", "Stack traces that led to the creation of new OS threads")]


class Pprof:
    """The ``/debug/pprof/*`` handlers. ``mem_stats``: optional ``() -> dict`` whose items
    head the heap profile; ``block_rate``: what ``/debug/pprof/block`` reports as the
    sampling period (nsqd's ``/debug/setblockrate`` sets it)."""

    def __init__(self, mem_stats=None):
        self.mem_stats = mem_stats
        self.block_rate = 0

    def add_routes(self, router, index_path: str = "/debug/pprof/") -> None:
        """Register the handlers; ``index_path``: ``/debug/pprof/`` (nsqd) or
        ``/debug/pprof`` (nsqlookupd)."""
        add = router.add
        add("GET", index_path, self.index, RAW, False)
        add("GET", "/debug/pprof/cmdline", self.cmdline, RAW, False)
        add("GET", "/debug/pprof/symbol", self.symbol, RAW, False)
        add("POST", "/debug/pprof/symbol", self.symbol, RAW, False)
        add("GET", "/debug/pprof/profile", self.profile, RAW, False)
        add("GET", "/debug/pprof/heap", self.heap, RAW, False)
        add("GET", "/debug/pprof/goroutine", self.goroutine, RAW, False)
        add("GET", "/debug/pprof/block", self.block, RAW, False)
        add("GET", "/debug/pprof/threadcreate", self.threadcreate, RAW, False)

    async def index(self, request, query):
        rows = "".join(f'<tr><td><a href="{n}?debug=1">{n}</a></td></tr>\n'
                       for n, _ in _PROFILES)
        descs = "".join(f"<li><div class=profile-name>{n}: </div> {d}</li>\n"
                        for n, d in _PROFILES)
        body = ("<html>\n<head>\n<title>/debug/pprof/</title>\n</head>\n<body>\n"
                "/debug/pprof/\n<br>\n<p>Set debug=1 as a query parameter to export in "
                "legacy text format</p>\n<br>\nTypes of profiles available:\n<table>\n"
                f"{rows}</table>\n<br>\n<p>\nProfile Descriptions:\n<ul>\n{descs}</ul>\n"
                "</p>\n</body>\n</html>\n")
        return text_response(body, HTML_CT)

    async def cmdline(self, request, query):
        return text_response(
            "\x00".join([sys.executable] + sys.argv).encode("utf-8", "surrogateescape"))

    async def symbol(self, request, query):
        lines = ["num_symbols: 1\n"]
        if request.method == "POST":
            data = await read_limited(request, 1 << 20)
        else:
            data = query.encode()
        for word in re.split(rb"[+&]", data):
            word = word.strip()
            if word.startswith(b"0x"):
                lines.append(f"{word.decode('ascii', 'replace')} ??\n")
        return text_response("".join(lines))

    async def profile(self, request, query):
        import cProfile
        import pstats
        params = parse_query(query, strict=False)
        seconds = parse_int64(params.get("seconds", "30"))
        if not isinstance(seconds, int) or seconds <= 0:
            seconds = 30
        prof = cProfile.Profile()
        prof.enable()
        try:
            await asyncio.sleep(seconds)
        finally:
            prof.disable()
        out = io.StringIO()
        pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(100)
        return text_response(out.getvalue())

    async def heap(self, request, query):
        counts: dict = {}
        for obj in gc.get_objects():
            t = type(obj).__name__
            counts[t] = counts.get(t, 0) + 1
        top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:50]
        lines = ["heap profile: python\n"]
        if self.mem_stats is not None:
            lines += [f"# {k} = {v}\n" for k, v in self.mem_stats().items()]
        lines.append("# gc-tracked objects by type\n")
        lines += [f"{n:>10} {t}\n" for t, n in top]
        return text_response("".join(lines))

    async def goroutine(self, request, query):
        tasks = asyncio.all_tasks()
        out = [f"goroutine profile: total {len(tasks) + threading.active_count()}\n"]
        for task in tasks:
            out.append(f"\n{task!r}\n")
            for frame in task.get_stack(limit=32):
                out.extend(traceback.format_stack(frame, limit=1))
        frames = sys._current_frames()
        for th in threading.enumerate():
            out.append(f"\nthread {th.name} (ident {th.ident})\n")
            frame = frames.get(th.ident)
            if frame is not None:
                out.extend(traceback.format_stack(frame))
        return text_response("".join(out).encode("utf-8", "replace"))

    async def block(self, request, query):
        return text_response(f"--- contention:\ncycles/second=1000000000\n"
                             f"sampling period={self.block_rate}\n")

    async def threadcreate(self, request, query):
        threads = threading.enumerate()
        out = [f"threadcreate profile: total {len(threads)}\n"]
        out += [f"# {th.name} daemon={th.daemon} ident={th.ident}\n" for th in threads]
        return text_response("".join(out))
