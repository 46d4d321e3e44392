"""Go's ``strconv.Quote`` / ``fmt.Sprintf("%q", string(b))`` for raw bytes.

Rules (Go 1.21): the result is wrapped in double quotes; ``"`` and ``\\`` are
backslash-escaped; each byte that is not part of a valid UTF-8 sequence becomes
``\\xNN``; printable runes (Unicode categories L, M, N, P, S and U+0020) are kept;
``\\a \\b \\f \\n \\r \\t \\v`` use their short escapes; other runes below U+0020
and U+007F become ``\\xNN``; other non-printable runes become ``\\uNNNN`` or
``\\UNNNNNNNN``. Hex digits are lowercase.

Python's ``str.isprintable`` uses the same category definition as Go's
``unicode.IsPrint`` (only the Unicode version differs: 14.0 in Python 3.11,
15.0 in Go 1.21, so characters new in 15.0 are escaped here but kept by Go).
"""

from __future__ import annotations

__all__ = ["go_quote"]

_SHORT = {
    0x07: "\\a", 0x08: "\\b", 0x0C: "\\f", 0x0A: "\\n",
    0x0D: "\\r", 0x09: "\\t", 0x0B: "\\v",
    0x22: '\\"', 0x5C: "\\\\",
}


def _escape_char(ch: str) -> str:
    cp = ord(ch)
    short = _SHORT.get(cp)
    if short is not None:
        return short
    if 0xDC80 <= cp <= 0xDCFF:
        # surrogateescape marker: a raw byte that was not valid UTF-8
        return "\\x%02x" % (cp - 0xDC00)
    if ch.isprintable():
        return ch
    if cp < 0x20 or cp == 0x7F:
        return "\\x%02x" % cp
    if cp < 0x10000:
        return "\\u%04x" % cp
    return "\\U%08x" % cp


def go_quote(b: bytes | str) -> str:
    """Quote like Go's ``%q`` applied to ``string(b)``.

    ``str`` input is treated as its UTF-8 encoding (surrogateescape'd bytes are
    restored), so ``go_quote(s) == go_quote(s.encode("utf-8", "surrogateescape"))``.
    """
    if isinstance(b, str):
        b = b.encode("utf-8", "surrogateescape")
    else:
        b = bytes(b)
    # Fast path: printable ASCII without quote/backslash.
    if b.isascii():
        s = b.decode("ascii")
        if s.isprintable() and '"' not in s and "\\" not in s:
            return '"' + s + '"'
    # surrogateescape maps every byte of an invalid UTF-8 sequence to U+DC80+byte,
    # exactly the bytes Go's utf8.DecodeRune rejects one at a time. Encoded
    # surrogates (ED A0..BF xx) are invalid in both.
    text = b.decode("utf-8", "surrogateescape")
    return '"' + "".join([_escape_char(ch) for ch in text]) + '"'
