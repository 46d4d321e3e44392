"""Go ``time`` package compatibility: ``time.ParseDuration``, ``Duration.String()``
and RFC 3339 time formatting.

Durations are plain ``int`` nanoseconds everywhere in nsqpy.
"""
from __future__ import annotations

import time as _time

NANOSECOND = 1
MICROSECOND = 1_000
MILLISECOND = 1_000_000
SECOND = 1_000_000_000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE

_INT64_MAX = (1 << 63) - 1
_INT64_MIN = -(1 << 63)

_UNITS: dict[bytes, int] = {
    b"ns": NANOSECOND,
    b"us": MICROSECOND,
    "\u00b5s".encode(): MICROSECOND,  # U+00B5 micro sign
    "\u03bcs".encode(): MICROSECOND,  # U+03BC Greek small letter mu
    b"ms": MILLISECOND,
    b"s": SECOND,
    b"m": MINUTE,
    b"h": HOUR,
}

_DIGITS = frozenset(b"0123456789")
_HEX = "0123456789abcdef"


def _to_bytes(s: str | bytes) -> bytes:
    if isinstance(s, bytes):
        return s
    return s.encode("utf-8", "surrogateescape")


def quote(s: str | bytes) -> str:
    """The ``time`` package's private ``quote``: double quotes, ``"`` and ``\\``
    backslash-escaped, control and non-ASCII bytes as ``\\xNN``."""
    out = ['"']
    for b in _to_bytes(s):
        if b < 0x20 or b >= 0x80:
            out.append("\\x" + _HEX[b >> 4] + _HEX[b & 0xF])
        elif b == 0x22 or b == 0x5C:
            out.append("\\" + chr(b))
        else:
            out.append(chr(b))
    out.append('"')
    return "".join(out)


def parse_duration(s: str | bytes) -> int:
    """Parse a Go duration string (``"1h30m"``, ``"-1.5s"``, ``"250ms"``) into
    nanoseconds, exactly like Go's ``time.ParseDuration``.

    Raises ``ValueError`` with Go's error text, e.g.
    ``time: invalid duration "abc"`` or ``time: missing unit in duration "10"``.
    """
    orig = _to_bytes(s)
    b = orig
    n = len(b)
    i = 0
    neg = False

    def invalid() -> ValueError:
        return ValueError("time: invalid duration " + quote(orig))

    if n and b[0] in (0x2D, 0x2B):  # '-' '+'
        neg = b[0] == 0x2D
        i = 1
    if b[i:] == b"0":
        return 0
    if i == n:
        raise invalid()

    total = 0
    while i < n:
        c = b[i]
        if not (c == 0x2E or c in _DIGITS):
            raise invalid()
        # leading integer
        start = i
        v = 0
        while i < n and b[i] in _DIGITS:
            if v > (1 << 63) // 10:
                raise invalid()
            v = v * 10 + (b[i] - 0x30)
            if v > (1 << 63):
                raise invalid()
            i += 1
        pre = i != start
        # optional fraction
        post = False
        f = 0
        scale = 1.0
        if i < n and b[i] == 0x2E:
            i += 1
            fstart = i
            overflow = False
            while i < n and b[i] in _DIGITS:
                if not overflow:
                    if f > _INT64_MAX // 10:
                        overflow = True
                    else:
                        y = f * 10 + (b[i] - 0x30)
                        if y > (1 << 63):
                            overflow = True
                        else:
                            f = y
                            scale *= 10
                i += 1
            post = i != fstart
        if not pre and not post:
            raise invalid()
        # unit
        ustart = i
        while i < n and not (b[i] == 0x2E or b[i] in _DIGITS):
            i += 1
        if i == ustart:
            raise ValueError("time: missing unit in duration " + quote(orig))
        u = b[ustart:i]
        unit = _UNITS.get(u)
        if unit is None:
            raise ValueError("time: unknown unit " + quote(u) + " in duration " + quote(orig))
        if v > (1 << 63) // unit:
            raise invalid()
        v *= unit
        if f > 0:
            # float64 arithmetic, as Go does, for nanosecond-accurate fractions
            v += int(float(f) * (float(unit) / scale))
            if v > (1 << 63):
                raise invalid()
        total += v
        if total > (1 << 63):
            raise invalid()
    if neg:
        return -total
    if total > _INT64_MAX:
        raise invalid()
    return total


def _fmt_frac(u: int, prec: int) -> tuple[str, int]:
    """Go's fmtFrac: fraction digits of ``u`` (``prec`` of them, trailing zeros
    and the point omitted) and the remaining integer part."""
    p = 10 ** prec
    frac = u % p
    if frac:
        return "." + str(frac).rjust(prec, "0").rstrip("0"), u // p
    return "", u // p


def format_duration(ns: int) -> str:
    """Go's ``time.Duration.String()``: ``0s``, ``1.5µs``, ``250ms``, ``2s``,
    ``1m0s``, ``1h0m0s``, ``1m52.562562775s``."""
    ns = int(ns)
    neg = ns < 0
    u = -ns if neg else ns
    if u < SECOND:
        if u == 0:
            return "0s"
        if u < MICROSECOND:
            frac, ip = "", u
            unit = "ns"
        elif u < MILLISECOND:
            frac, ip = _fmt_frac(u, 3)
            unit = "\u00b5s"
        else:
            frac, ip = _fmt_frac(u, 6)
            unit = "ms"
        out = f"{ip}{frac}{unit}"
    else:
        frac, secs = _fmt_frac(u, 9)
        mins, s = divmod(secs, 60)
        out = f"{s}{frac}s"
        if mins:
            hours, m = divmod(mins, 60)
            out = f"{m}m{out}"
            if hours:
                out = f"{hours}h{out}"
    return "-" + out if neg else out


def format_go_time_rfc3339(epoch_seconds: float | None = None) -> str:
    """Go ``t.Format(time.RFC3339)`` of a local time: ``2026-11-24T21:25:56Z``
    when the local zone is UTC, else with a ``+01:00``-style offset."""
    if epoch_seconds is None:
        epoch_seconds = _time.time()
    tm = _time.localtime(int(epoch_seconds // 1))
    base = _time.strftime("%Y-%m-%dT%H:%M:%S", tm)
    off = tm.tm_gmtoff or 0
    if off == 0:
        return base + "Z"
    sign = "+" if off > 0 else "-"
    off = abs(off)
    return f"{base}{sign}{off // 3600:02d}:{(off % 3600) // 60:02d}"
