"""``<DATETIME>`` rendering for ``nsq_to_file`` file names: upstream's strftime
subset translated to a Go layout, then formatted like Go's ``time.Time.Format``."""
from __future__ import annotations

import time


_STRFTIME_TO_GO = {
    "B": "January", "b": "Jan", "m": "01", "A": "Monday", "a": "Mon", "d": "02",
    "H": "15", "I": "03", "M": "04", "S": "05", "Y": "2006", "y": "06", "p": "PM",
    "Z": "MST", "z": "-0700", "%": "%",
}


def strftime_to_go_layout(fmt: str) -> str:
    """Upstream's strftime → Go layout translation (unknown ``%x`` kept as is)."""
    out = []
    i = 0
    n = len(fmt)
    while i < n:
        if fmt[i] == "%" and i <= n - 2 and fmt[i + 1] in _STRFTIME_TO_GO:
            out.append(_STRFTIME_TO_GO[fmt[i + 1]])
            i += 2
            continue
        out.append(fmt[i])
        i += 1
    return "".join(out)


_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December"]
_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


def _starts_lower(s: str) -> bool:
    return bool(s) and "a" <= s[0] <= "z"


def _next_chunk(layout: str) -> tuple[str, str, str]:
    """Go's ``nextStdChunk``: (literal prefix, std token or "", rest)."""
    n = len(layout)
    for i in range(n):
        c = layout[i]
        rest = layout[i:]
        if c == "J" and rest.startswith("Jan"):
            if rest.startswith("January"):
                return layout[:i], "January", layout[i + 7:]
            if not _starts_lower(layout[i + 3:]):
                return layout[:i], "Jan", layout[i + 3:]
        elif c == "M":
            if rest.startswith("Mon"):
                if rest.startswith("Monday"):
                    return layout[:i], "Monday", layout[i + 6:]
                if not _starts_lower(layout[i + 3:]):
                    return layout[:i], "Mon", layout[i + 3:]
            if rest.startswith("MST"):
                return layout[:i], "MST", layout[i + 3:]
        elif c == "0":
            if n >= i + 2 and "1" <= layout[i + 1] <= "6":
                return layout[:i], layout[i:i + 2], layout[i + 2:]
            if n >= i + 3 and layout[i + 1] == "0" and layout[i + 2] == "2":
                return layout[:i], "002", layout[i + 3:]
        elif c == "1":
            if n >= i + 2 and layout[i + 1] == "5":
                return layout[:i], "15", layout[i + 2:]
            return layout[:i], "1", layout[i + 1:]
        elif c == "2":
            if rest.startswith("2006"):
                return layout[:i], "2006", layout[i + 4:]
            return layout[:i], "2", layout[i + 1:]
        elif c == "_":
            if n >= i + 2 and layout[i + 1] == "2":
                if layout[i + 1:i + 5] == "2006":
                    return layout[:i + 1], "2006", layout[i + 5:]
                return layout[:i], "_2", layout[i + 2:]
            if n >= i + 3 and layout[i + 1] == "_" and layout[i + 2] == "2":
                return layout[:i], "__2", layout[i + 3:]
        elif c in "345":
            return layout[:i], c, layout[i + 1:]
        elif c == "P" and n >= i + 2 and layout[i + 1] == "M":
            return layout[:i], "PM", layout[i + 2:]
        elif c == "p" and n >= i + 2 and layout[i + 1] == "m":
            return layout[:i], "pm", layout[i + 2:]
        elif c in "-Z":
            for tok in ("070000", "07:00:00", "0700", "07:00", "07"):
                if layout[i + 1:i + 1 + len(tok)] == tok:
                    return layout[:i], c + tok, layout[i + 1 + len(tok):]
        elif c in ".," and i + 1 < n and layout[i + 1] in "09":
            ch = layout[i + 1]
            j = i + 1
            while j < n and layout[j] == ch:
                j += 1
            if not (j < n and layout[j].isdigit()):
                return layout[:i], layout[i:j], layout[j:]
    return layout, "", ""


def _tz(offset: int, token: str) -> str:
    if token[0] == "Z" and offset == 0:
        return "Z"
    sign = "-" if offset < 0 else "+"
    off = abs(offset)
    hh, mm, ss = off // 3600, (off // 60) % 60, off % 60
    body = token[1:]
    if body == "07":
        return f"{sign}{hh:02d}"
    if body == "0700":
        return f"{sign}{hh:02d}{mm:02d}"
    if body == "07:00":
        return f"{sign}{hh:02d}:{mm:02d}"
    if body == "070000":
        return f"{sign}{hh:02d}{mm:02d}{ss:02d}"
    return f"{sign}{hh:02d}:{mm:02d}:{ss:02d}"


def go_time_format(layout: str, t: float | None = None) -> str:
    """Go's ``time.Time.Format(layout)`` for the local time ``t`` (epoch seconds)."""
    if t is None:
        t = time.time()
    lt = time.localtime(t)
    nanos = int(round((t - int(t)) * 1e9)) % 1_000_000_000
    offset = lt.tm_gmtoff or 0
    out = []
    while layout:
        prefix, tok, layout = _next_chunk(layout)
        out.append(prefix)
        if not tok:
            break
        hour12 = lt.tm_hour % 12 or 12
        if tok == "2006":
            out.append("%04d" % lt.tm_year)
        elif tok == "06":
            out.append("%02d" % (lt.tm_year % 100))
        elif tok == "January":
            out.append(_MONTHS[lt.tm_mon - 1])
        elif tok == "Jan":
            out.append(_MONTHS[lt.tm_mon - 1][:3])
        elif tok == "1":
            out.append(str(lt.tm_mon))
        elif tok == "01":
            out.append("%02d" % lt.tm_mon)
        elif tok == "Monday":
            out.append(_DAYS[lt.tm_wday])
        elif tok == "Mon":
            out.append(_DAYS[lt.tm_wday][:3])
        elif tok == "2":
            out.append(str(lt.tm_mday))
        elif tok == "_2":
            out.append("%2d" % lt.tm_mday)
        elif tok == "02":
            out.append("%02d" % lt.tm_mday)
        elif tok == "__2":
            out.append("%3d" % lt.tm_yday)
        elif tok == "002":
            out.append("%03d" % lt.tm_yday)
        elif tok == "15":
            out.append("%02d" % lt.tm_hour)
        elif tok == "3":
            out.append(str(hour12))
        elif tok == "03":
            out.append("%02d" % hour12)
        elif tok == "4":
            out.append(str(lt.tm_min))
        elif tok == "04":
            out.append("%02d" % lt.tm_min)
        elif tok == "5":
            out.append(str(lt.tm_sec))
        elif tok == "05":
            out.append("%02d" % lt.tm_sec)
        elif tok == "PM":
            out.append("PM" if lt.tm_hour >= 12 else "AM")
        elif tok == "pm":
            out.append("pm" if lt.tm_hour >= 12 else "am")
        elif tok == "MST":
            name = lt.tm_zone or ""
            out.append(name if name else _tz(offset, "-0700"))
        elif tok[0] in "-Z":
            out.append(_tz(offset, tok))
        elif tok[0] in ".,":
            digits = len(tok) - 1
            frac = "%09d" % nanos
            if tok[1] == "0":
                out.append(tok[0] + frac[:digits])
            else:
                frac = frac[:digits].rstrip("0")
                if frac:
                    out.append(tok[0] + frac)
    return "".join(out)


def strftime(fmt: str, t: float | None = None) -> str:
    """``<DATETIME>``: the strftime subset upstream supports, rendered like Go."""
    return go_time_format(strftime_to_go_layout(fmt), t)
