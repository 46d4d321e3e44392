"""Reading requests as Go's net/http does: query strings (``url.ParseQuery``, first value
wins), ``strconv.ParseInt``, bodies through ``io.LimitReader`` (answering ``Expect:
100-continue`` when the body is first read) and ``RemoteAddr`` for log lines."""
from __future__ import annotations

import re
from .pct import unquote_to_bytes

__all__ = ["expect_continue", "parse_int64", "parse_query",
           "parse_query_cached", "read_limited", "remote_addr"]

_INT64_MIN = -(1 << 63)
_INT64_MAX = (1 << 63) - 1
_INT_RE = re.compile(r"[+-]?[0-9]+")
_BAD_PCT_RE = re.compile(r"%(?![0-9a-fA-F]{2})")


# -- query strings (Go's url.ParseQuery) -------------------------------------------------------
def _unescape(s: str) -> str:
    if "%" not in s and "+" not in s:
        return s
    s = s.replace("+", " ")
    if "%" in s:
        if _BAD_PCT_RE.search(s):
            raise ValueError("invalid URL escape")
        return unquote_to_bytes(s).decode("utf-8", "surrogateescape")
    return s


def parse_query(q: str, strict: bool = True) -> dict:
    """First value of each key. ``strict``: raise ValueError where Go's ParseQuery returns an
    error (bad escape, ``;`` separator); otherwise skip the bad pairs like Go's Form."""
    out = {}
    if not q:
        return out
    for part in q.split("&"):
        if not part:
            continue
        if ";" in part:
            if strict:
                raise ValueError("invalid semicolon separator in query")
            continue
        k, _, v = part.partition("=")
        try:
            k = _unescape(k)
            v = _unescape(v)
        except ValueError:
            if strict:
                raise
            continue
        if k not in out:
            out[k] = v
    return out


_QUERY_CACHE: dict = {}


def parse_query_cached(q: str) -> dict:
    """parse_query(q) for handlers that only read the result (publishers repeat queries)."""
    d = _QUERY_CACHE.get(q)
    if d is None:
        d = parse_query(q)
        if len(_QUERY_CACHE) >= 1024:
            _QUERY_CACHE.clear()
        _QUERY_CACHE[q] = d
    return d


def parse_int64(s: str):
    """strconv.ParseInt(s, 10, 64): None on syntax error, 'range' when out of range."""
    if not _INT_RE.fullmatch(s):
        return None
    v = int(s)
    if v < _INT64_MIN or v > _INT64_MAX:
        return "range"
    return v


# -- bodies -----------------------------------------------------------------------------------
def expect_continue(request) -> None:
    """Answer ``Expect: 100-continue`` the first time the body is read (as Go does)."""
    if not request.continued:
        request.send_continue()


async def read_limited(request, limit: int) -> bytes:
    """Up to ``limit`` bytes of the body (io.LimitReader + io.ReadAll)."""
    content = request.content
    if content.at_eof():
        return b""
    if request.headers.get("Expect") is not None:
        expect_continue(request)
    # fast path: the whole body is usually buffered already
    data = content.read_nowait(limit)
    total = len(data)
    if total >= limit or content.at_eof():
        return data
    chunks = [data]
    while total < limit:
        chunk = await content.read(limit - total)
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
        if content.at_eof():
            break
    return b"".join(chunks)


# -- peers --------------------------------------------------------------------------------------
def remote_addr(request, no_peer: str = "") -> str:
    """Go's ``req.RemoteAddr``: ``host:port`` / ``[v6]:port`` (IPv4-mapped IPv6 shown as
    IPv4); ``no_peer`` when the connection has no address (``"@"`` for a unix socket);
    ``""`` when the connection is gone."""
    transport = request.transport
    peer = request.peername
    if isinstance(peer, (tuple, list)) and len(peer) >= 2:
        host = peer[0]
        if host.startswith("::ffff:") and "." in host:
            host = host[7:]
        return f"[{host}]:{peer[1]}" if ":" in host else f"{host}:{peer[1]}"
    return no_peer if peer is not None or transport is not None else ""
