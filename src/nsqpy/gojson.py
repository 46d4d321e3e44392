"""JSON the way Go's ``encoding/json`` ``Marshal`` writes it: compact, HTML-safe escapes
(``\\u003c`` ``\\u003e`` ``\\u0026`` ``\\u2028`` ``\\u2029``), ``\\u0008``/``\\u000c`` for
``\\b``/``\\f``, UTF-8 kept, lone surrogates as U+FFFD.

Dicts keep their insertion order: build Go maps with sorted keys and structs in field
order. Floats are written as Python writes them (``1.0``); convert integral floats to
``int`` first where Go would print ``1``.
"""
from __future__ import annotations

import json
import re

__all__ = ["go_json"]

_HTML_ESC = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026",
             "\u2028": "\\u2028", "\u2029": "\\u2029"}
_HTML_RE = re.compile("[<>&\u2028\u2029]")
_SHORT_ESC_RE = re.compile(r"\\[\\bf]")
_SURROGATE_RE = re.compile("[\ud800-\udfff]")
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"),
                          check_circular=False).encode


def _short_esc(m) -> str:
    s = m.group(0)
    if s == "\\b":
        return "\\u0008"
    if s == "\\f":
        return "\\u000c"
    return s


def go_json(obj) -> bytes:
    """Compact JSON as Go's ``json.Marshal`` writes it."""
    s = _dumps(obj)
    if _HTML_RE.search(s):
        s = _HTML_RE.sub(lambda m: _HTML_ESC[m.group(0)], s)
    if "\\b" in s or "\\f" in s:
        s = _SHORT_ESC_RE.sub(_short_esc, s)
    try:
        return s.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE_RE.sub("\ufffd", s).encode("utf-8")
