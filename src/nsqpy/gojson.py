"""JSON the way Go's ``encoding/json`` ``Marshal`` writes it: compact, HTML-safe escapes
(``\\u003c`` ``\\u003e`` ``\\u0026`` ``\\u2028`` ``\\u2029``), ``\\u0008``/``\\u000c`` for
``\\b``/``\\f``, UTF-8 kept, lone surrogates as U+FFFD.

Dicts keep their insertion order: build Go maps with sorted keys and structs in field
order. Floats are written as Python writes them (``1.0``); convert integral floats to
``int`` first where Go would print ``1`` (``go_json(integral_floats(obj))``).

``decode_struct_body`` decodes small request bodies into string fields the way Go's
``json.Decoder`` does, raising :class:`GoJSONError` with Go's error texts.
"""
from __future__ import annotations

import json
import re

__all__ = ["GoJSONError", "decode_struct_body", "go_json", "integral_floats"]

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


def integral_floats(obj):
    """``obj`` with integral floats (below 1e21) as ints, in dicts and lists too: Go's
    ``json.Marshal`` writes ``1`` where Python writes ``1.0``."""
    if isinstance(obj, float):
        if obj.is_integer() and abs(obj) < 1e21:
            return int(obj)
        return obj
    if isinstance(obj, dict):
        return {k: integral_floats(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [integral_floats(v) for v in obj]
    return obj


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


class GoJSONError(ValueError):
    """``str(e)`` is the text Go's json.Decoder.Decode returns."""


def _quote_char(c: str) -> str:
    if c == "'":
        return "'\\''"
    if c == '"':
        return "'\"'"
    o = ord(c)
    if c == "\\":
        return "'\\\\'"
    if 0x20 <= o < 0x7f:
        return f"'{c}'"
    esc = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t",
           "\v": "\\v"}.get(c)
    if esc:
        return f"'{esc}'"
    if o < 0x20 or o == 0x7f:
        return "'\\x%02x'" % o
    if c == "\ufffd":
        return "'\ufffd'"
    return f"'{c}'"


_WS = " \t\r\n"


class _Scanner:
    """A validating scanner for one JSON value; raises GoJSONError with Go's texts."""

    def __init__(self, text: str):
        self.s = text
        self.i = 0
        self.n = len(text)

    def err_char(self, c: str, context: str) -> GoJSONError:
        return GoJSONError(f"invalid character {_quote_char(c)} {context}")

    def skip_ws(self) -> None:
        while self.i < self.n and self.s[self.i] in _WS:
            self.i += 1

    def eof(self) -> GoJSONError:
        return GoJSONError("unexpected EOF")

    def next_char(self) -> str:
        """The next non-space character (not consumed); EOF is an error."""
        self.skip_ws()
        if self.i >= self.n:
            raise self.eof()
        return self.s[self.i]

    def value(self) -> None:
        c = self.next_char()
        if c == "{":
            self.i += 1
            if self.next_char() == "}":
                self.i += 1
                return
            while True:
                c = self.next_char()
                if c != '"':
                    raise self.err_char(c, "looking for beginning of object key string")
                self.string()
                c = self.next_char()
                if c != ":":
                    raise self.err_char(c, "after object key")
                self.i += 1
                self.value()
                c = self.next_char()
                if c == ",":
                    self.i += 1
                    continue
                if c == "}":
                    self.i += 1
                    return
                raise self.err_char(c, "after object key:value pair")
        if c == "[":
            self.i += 1
            if self.next_char() == "]":
                self.i += 1
                return
            while True:
                self.value()
                c = self.next_char()
                if c == ",":
                    self.i += 1
                    continue
                if c == "]":
                    self.i += 1
                    return
                raise self.err_char(c, "after array element")
        if c == '"':
            self.string()
            return
        if c == "-" or c.isdigit():
            self.number()
            return
        for lit in ("true", "false", "null"):
            if c == lit[0]:
                for k, want in enumerate(lit):
                    if self.i + k >= self.n:
                        raise self.eof()
                    got = self.s[self.i + k]
                    if got != want:
                        raise self.err_char(got, f"in literal {lit} (expecting {_quote_char(want)})")
                self.i += len(lit)
                return
        raise self.err_char(c, "looking for beginning of value")

    def string(self) -> None:
        self.i += 1
        while True:
            if self.i >= self.n:
                raise self.eof()
            c = self.s[self.i]
            if c == '"':
                self.i += 1
                return
            if c == "\\":
                self.i += 1
                if self.i >= self.n:
                    raise self.eof()
                e = self.s[self.i]
                if e == "u":
                    for k in range(4):
                        if self.i + 1 + k >= self.n:
                            raise self.eof()
                        h = self.s[self.i + 1 + k]
                        if h not in "0123456789abcdefABCDEF":
                            raise self.err_char(h, "in \\u hexadecimal character escape")
                    self.i += 5
                    continue
                if e not in '"\\/bfnrt':
                    raise self.err_char(e, "in string escape code")
                self.i += 1
                continue
            if ord(c) < 0x20:
                raise self.err_char(c, "in string literal")
            self.i += 1

    def number(self) -> None:
        s = self.s
        if s[self.i] == "-":
            self.i += 1
            if self.i >= self.n:
                raise self.eof()
            if not s[self.i].isdigit():
                raise self.err_char(s[self.i], "in numeric literal")
        if s[self.i] == "0":
            self.i += 1
        else:
            while self.i < self.n and s[self.i].isdigit():
                self.i += 1
        if self.i < self.n and s[self.i] == ".":
            self.i += 1
            if self.i >= self.n:
                raise self.eof()
            if not s[self.i].isdigit():
                raise self.err_char(s[self.i], "after decimal point in numeric literal")
            while self.i < self.n and s[self.i].isdigit():
                self.i += 1
        if self.i < self.n and s[self.i] in "eE":
            self.i += 1
            if self.i < self.n and s[self.i] in "+-":
                self.i += 1
            if self.i >= self.n:
                raise self.eof()
            if not s[self.i].isdigit():
                raise self.err_char(s[self.i], "in exponent of numeric literal")
            while self.i < self.n and s[self.i].isdigit():
                self.i += 1


_GO_KIND = {dict: "object", list: "array", str: "string", bool: "bool", int: "number",
            float: "number"}


def decode_struct_body(body: bytes, fields: tuple[str, ...]) -> dict[str, str]:
    """``json.NewDecoder(body).Decode(&struct{F string `json:"f"`…})``: the first JSON
    value of ``body``; keys match case-insensitively; returns every field ("" when
    absent or null). Raises GoJSONError with Go's text."""
    text = body.decode("utf-8", "replace")
    sc = _Scanner(text)
    sc.skip_ws()
    if sc.i >= sc.n:
        raise GoJSONError("EOF")
    start = sc.i
    sc.value()
    doc = json.loads(text[start:sc.i])
    out = {f: "" for f in fields}
    if doc is None:
        return out
    if not isinstance(doc, dict):
        struct = "struct { " + "; ".join(
            f'{f[:1].upper()}{f[1:]} string "json:\\"{f}\\""' for f in fields) + " }"
        raise GoJSONError(f"json: cannot unmarshal {_GO_KIND.get(type(doc), 'value')} "
                          f"into Go value of type {struct}")
    type_err = None
    for key, val in doc.items():
        for f in fields:
            if key.lower() == f.lower():
                if val is None:
                    continue
                if isinstance(val, str):
                    out[f] = val
                elif type_err is None:
                    type_err = GoJSONError(
                        f"json: cannot unmarshal {_GO_KIND.get(type(val), 'value')} "
                        f"into Go struct field .{f} of type string")
                break
    if type_err is not None:
        raise type_err
    return out
