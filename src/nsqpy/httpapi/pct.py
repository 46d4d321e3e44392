"""Percent-encoding as ``urllib.parse`` does it, for the two functions the HTTP layer
needs: importing ``urllib.parse`` also imports ``ipaddress`` (~0.3 MiB of RSS in every
daemon).  tests/test_httpapi_pct.py checks these against urllib."""
from __future__ import annotations

_ALWAYS_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~")
_HEX = {(a + b).encode(): bytes([int(a + b, 16)])
        for a in "0123456789abcdefABCDEF" for b in "0123456789abcdefABCDEF"}


def unquote_to_bytes(s: str) -> bytes:
    """``urllib.parse.unquote_to_bytes``: ``%XX`` decoded, malformed escapes kept."""
    b = s.encode("utf-8", "surrogateescape")
    if b"%" not in b:
        return b
    parts = b.split(b"%")
    out = [parts[0]]
    hexes = _HEX
    for part in parts[1:]:
        dec = hexes.get(part[:2])
        if dec is None:
            out.append(b"%")
            out.append(part)
        else:
            out.append(dec)
            out.append(part[2:])
    return b"".join(out)


def quote(b: bytes, safe: str = "/") -> str:
    """``urllib.parse.quote`` of bytes: unreserved and ``safe`` characters as they are,
    every other byte as ``%XX`` (upper case)."""
    ok = _ALWAYS_SAFE.union(safe.encode("ascii"))
    return "".join(chr(c) if c in ok else "%%%02X" % c for c in b)
