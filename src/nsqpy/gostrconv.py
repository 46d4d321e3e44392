"""Go's ``strconv`` and ``fmt`` for flag and JSON values: quoting (``%q``), ``ParseBool``,
``ParseInt``/``ParseUint`` (base prefixes, underscores, Go's error texts), ``ParseFloat``,
float formatting (``%g``/``%v`` shortest form, ``encoding/json`` floats), JSON strings and
``%v``/``%s`` of the values flags hold.  Used by :mod:`nsqpy.goflags` (flag values and
their defaults in ``-help``), the config file and the JSON the daemons write."""
from __future__ import annotations

import math
from typing import Any

__all__ = [
    "GoNumError", "go_quote", "parse_go_bool", "parse_go_int", "parse_go_float",
    "format_go_float", "go_json_float", "go_json_string", "go_fmt_v", "go_fmt_s",
]

_SIMPLE_ESCAPES = {
    "\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n",
    "\r": "\\r", "\t": "\\t", "\v": "\\v",
}


def go_quote(s: str) -> str:
    """Go's ``strconv.Quote`` (the ``%q`` verb) for a Python string.

    Lone surrogates from ``surrogateescape``-decoded argv print as ``\\xNN``
    like Go prints invalid UTF-8 bytes.
    """
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch == '"' or ch == "\\":
            out.append("\\" + ch)
        elif 0xDC80 <= o <= 0xDCFF:
            out.append("\\x%02x" % (o - 0xDC00))
        elif ch.isprintable():
            out.append(ch)
        elif ch in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[ch])
        elif o < 0x20 or o == 0x7F:
            out.append("\\x%02x" % o)
        elif 0xD800 <= o <= 0xDFFF:
            out.append("\\ufffd")
        elif o < 0x10000:
            out.append("\\u%04x" % o)
        else:
            out.append("\\U%08x" % o)
    out.append('"')
    return "".join(out)


class GoNumError(ValueError):
    """A ``*strconv.NumError``: ``strconv.ParseInt: parsing "x": invalid syntax``."""

    SYNTAX = "invalid syntax"
    RANGE = "value out of range"

    def __init__(self, func: str, num: str, err: str):
        self.func = func
        self.num = num
        self.err = err
        super().__init__(f"strconv.{func}: parsing {go_quote(num)}: {err}")

    @property
    def is_range(self) -> bool:
        return self.err == self.RANGE

    @property
    def flag_message(self) -> str:
        """What Go's flag package reports instead (``parse error``/``value out of range``)."""
        return "value out of range" if self.is_range else "parse error"


_TRUE = frozenset(("1", "t", "T", "TRUE", "true", "True"))
_FALSE = frozenset(("0", "f", "F", "FALSE", "false", "False"))


def parse_go_bool(s: str) -> bool:
    """Go's ``strconv.ParseBool``."""
    if s in _TRUE:
        return True
    if s in _FALSE:
        return False
    raise GoNumError("ParseBool", s, GoNumError.SYNTAX)


def _lower(c: str) -> str:
    return c.lower() if c.isascii() else c


def _underscore_ok(s: str) -> bool:
    """Go's strconv.underscoreOK: underscores only between digits / after a base prefix."""
    saw = "^"
    i = 0
    if s and s[0] in "+-":
        s = s[1:]
    hexa = False
    if len(s) >= 2 and s[0] == "0" and _lower(s[1]) in ("b", "o", "x"):
        i = 2
        saw = "0"
        hexa = _lower(s[1]) == "x"
    while i < len(s):
        c = s[i]
        if "0" <= c <= "9" or (hexa and "a" <= _lower(c) <= "f"):
            saw = "0"
        elif c == "_":
            if saw != "0":
                return False
            saw = "_"
        else:
            if saw == "_":
                return False
            saw = "!"
        i += 1
    return saw != "_"


def _parse_uint(s: str, base: int, bit_size: int, func: str, num: str) -> int:
    if s == "":
        raise GoNumError(func, num, GoNumError.SYNTAX)
    base0 = base == 0
    s0 = s
    if base0:
        base = 10
        if s[0] == "0":
            if len(s) >= 3 and _lower(s[1]) == "b":
                base, s = 2, s[2:]
            elif len(s) >= 3 and _lower(s[1]) == "o":
                base, s = 8, s[2:]
            elif len(s) >= 3 and _lower(s[1]) == "x":
                base, s = 16, s[2:]
            else:
                base, s = 8, s[1:]
    elif not 2 <= base <= 36:
        raise ValueError(f"invalid base {base}")
    max_uint64 = (1 << 64) - 1
    cutoff = max_uint64 // base + 1
    max_val = (1 << bit_size) - 1
    underscores = False
    n = 0
    for c in s:
        if c == "_" and base0:
            underscores = True
            continue
        if "0" <= c <= "9":
            d = ord(c) - 48
        elif "a" <= _lower(c) <= "z":
            d = ord(_lower(c)) - 97 + 10
        else:
            raise GoNumError(func, num, GoNumError.SYNTAX)
        if d >= base:
            raise GoNumError(func, num, GoNumError.SYNTAX)
        if n >= cutoff:
            raise GoNumError(func, num, GoNumError.RANGE)
        n = n * base + d
        if n > max_val:
            raise GoNumError(func, num, GoNumError.RANGE)
    if underscores and not _underscore_ok(s0):
        raise GoNumError(func, num, GoNumError.SYNTAX)
    return n


def parse_go_int(s: str, base: int = 0, bit_size: int = 64) -> int:
    """Go's ``strconv.ParseInt``. With ``base=0`` (the flag package's choice)
    ``0x1f``, ``0o17``, ``017``, ``0b101`` and ``1_000`` are accepted."""
    if s == "":
        raise GoNumError("ParseInt", s, GoNumError.SYNTAX)
    neg = False
    body = s
    if s[0] == "+":
        body = s[1:]
    elif s[0] == "-":
        neg = True
        body = s[1:]
    try:
        un = _parse_uint(body, base, bit_size, "ParseInt", s)
    except GoNumError as e:
        raise GoNumError("ParseInt", s, e.err) from None
    cutoff = 1 << (bit_size - 1)
    if (not neg and un >= cutoff) or (neg and un > cutoff):
        raise GoNumError("ParseInt", s, GoNumError.RANGE)
    return -un if neg else un


def _prefix_len_ignore_case(s: str, prefix: str) -> int:
    n = 0
    for a, b in zip(s, prefix):
        if _lower(a) != b:
            break
        n += 1
    return n


def _special_float(s: str) -> tuple[float, int] | None:
    if not s:
        return None
    sign = 1.0
    nsign = 0
    rest = s
    c = s[0]
    if c in "+-":
        sign = -1.0 if c == "-" else 1.0
        nsign = 1
        rest = s[1:]
        c = "i"  # Go falls through to the infinity case
    if c in "iI":
        n = _prefix_len_ignore_case(rest, "infinity")
        if 3 < n < 8:
            n = 3
        if n in (3, 8):
            return sign * math.inf, nsign + n
    elif c in "nN":
        if _prefix_len_ignore_case(rest, "nan") == 3:
            return math.nan, 3
    return None


def parse_go_float(s: str) -> float:
    """Go's ``strconv.ParseFloat(s, 64)``: decimal and hex (``0x1p-2``) literals,
    underscores between digits, ``inf``/``infinity``/``nan`` (any case).
    Overflow raises a range ``GoNumError``."""
    num = s
    sp = _special_float(s)
    if sp is not None:
        if sp[1] == len(s):
            return sp[0]
        raise GoNumError("ParseFloat", num, GoNumError.SYNTAX)

    def bad() -> GoNumError:
        return GoNumError("ParseFloat", num, GoNumError.SYNTAX)

    n = len(s)
    i = 0
    if i < n and s[i] in "+-":
        i += 1
    hexa = False
    exp_char = "e"
    if i + 2 < n and s[i] == "0" and _lower(s[i + 1]) == "x":
        hexa = True
        exp_char = "p"
        i += 2
    sawdot = sawdigits = underscores = False
    while i < n:
        c = s[i]
        if c == "_":
            underscores = True
        elif c == ".":
            if sawdot:
                break
            sawdot = True
        elif "0" <= c <= "9" or (hexa and "a" <= _lower(c) <= "f"):
            sawdigits = True
        else:
            break
        i += 1
    if not sawdigits:
        raise bad()
    if i < n and _lower(s[i]) == exp_char:
        i += 1
        if i >= n:
            raise bad()
        if s[i] in "+-":
            i += 1
        if i >= n or not ("0" <= s[i] <= "9"):
            raise bad()
        while i < n and ("0" <= s[i] <= "9" or s[i] == "_"):
            if s[i] == "_":
                underscores = True
            i += 1
    elif hexa:
        raise bad()  # a hex mantissa needs a 'p' exponent
    if underscores and not _underscore_ok(s[:i]):
        raise bad()
    if i != n:
        raise bad()
    text = s.replace("_", "")
    try:
        v = float.fromhex(text) if hexa else float(text)
    except OverflowError:
        raise GoNumError("ParseFloat", num, GoNumError.RANGE) from None
    except ValueError:
        raise bad() from None
    if math.isinf(v):
        raise GoNumError("ParseFloat", num, GoNumError.RANGE)
    return v


def _shortest_digits(f: float) -> tuple[str, int]:
    """Shortest round-trip decimal digits of abs(f) and the decimal-point position
    (value = 0.DIGITS x 10**dp), like Go's ftoa shortest mode."""
    f = abs(f)
    if f == 0:
        return "", 0
    from decimal import Decimal     # rarely needed: imported on first use
    t = Decimal(repr(f)).as_tuple()
    digits = "".join(map(str, t.digits)).rstrip("0")
    # repr's digits may have trailing zeros (e.g. 100.0); dp is unaffected by stripping
    dp = len(t.digits) + int(t.exponent)
    digits = digits.lstrip("0")  # cannot happen for repr output, kept for safety
    return digits or "0", dp


def format_go_float(f: float, fmt: str = "g") -> str:
    """``strconv.FormatFloat(f, fmt, -1, 64)`` for fmt in ``g``, ``e``, ``f``
    (shortest representation). ``%v`` of a float64 is ``format_go_float(f, "g")``."""
    if math.isnan(f):
        return "NaN"
    if math.isinf(f):
        return "+Inf" if f > 0 else "-Inf"
    neg = math.copysign(1.0, f) < 0
    digits, dp = _shortest_digits(f)
    if digits == "":  # zero
        digits, dp, nd = "0", 1, 0
    else:
        nd = len(digits)
    if fmt == "g":
        exp = dp - 1 if nd else 0
        fmt = "e" if (nd and (exp < -4 or exp >= 6)) else "f"
        if nd == 0:
            fmt = "f"
    if fmt == "e":
        if nd == 0:
            body = "0e+00"
        else:
            mant = digits[0] + ("." + digits[1:] if nd > 1 else "")
            exp = dp - 1
            esign = "-" if exp < 0 else "+"
            body = f"{mant}e{esign}{abs(exp):02d}"
    elif fmt == "f":
        if nd == 0:
            body = "0"
        elif dp <= 0:
            body = "0." + "0" * (-dp) + digits
        elif dp >= nd:
            body = digits + "0" * (dp - nd)
        else:
            body = digits[:dp] + "." + digits[dp:]
    else:
        raise ValueError(f"unsupported float format {fmt!r}")
    return "-" + body if neg else body


def go_json_float(f: float) -> str:
    """A float64 as Go's ``encoding/json`` writes it (``1`` not ``1.0``,
    ``1e-7``, ``1e+21``)."""
    if math.isnan(f) or math.isinf(f):
        raise ValueError(f"json: unsupported value: {format_go_float(f)}")
    a = abs(f)
    fmt = "e" if a != 0 and (a < 1e-6 or a >= 1e21) else "f"
    s = format_go_float(f, fmt)
    if fmt == "e" and len(s) >= 4 and s[-4] == "e" and s[-3] == "-" and s[-2] == "0":
        s = s[:-2] + s[-1]
    return s


_JSON_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t",
                 "<": "\\u003c", ">": "\\u003e", "&": "\\u0026",
                 "\u2028": "\\u2028", "\u2029": "\\u2029"}


def go_json_string(s: str) -> str:
    """A string as Go's ``encoding/json`` writes it (HTML-safe escapes, UTF-8 kept)."""
    if s.isascii() and s.isprintable() and not any(c in s for c in '"\\<>&'):
        return '"' + s + '"'
    out = ['"']
    for ch in s:
        e = _JSON_ESCAPES.get(ch)
        if e is not None:
            out.append(e)
        elif ch < " ":
            out.append("\\u%04x" % ord(ch))
        elif "\ud800" <= ch <= "\udfff":
            out.append("\ufffd")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def go_fmt_v(v: Any) -> str:
    """``fmt.Sprintf("%v", v)`` for values as a TOML decoder yields them
    (str, int, float, bool, list, dict, datetime)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return v
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return format_go_float(v, "g")
    if isinstance(v, (list, tuple)):
        return "[" + " ".join(go_fmt_v(x) for x in v) + "]"
    if isinstance(v, dict):
        return "map[" + " ".join(f"{k}:{go_fmt_v(v[k])}" for k in sorted(v)) + "]"
    if v is None:
        return "<nil>"
    return str(v)


def go_fmt_s(v: Any) -> str:
    """``fmt.Sprintf("%s", v)``: non-strings come out as ``%!s(int64=5)`` etc."""
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return f"%!s(bool={'true' if v else 'false'})"
    if isinstance(v, int):
        return f"%!s(int64={v})"
    if isinstance(v, float):
        return f"%!s(float64={format_go_float(v, 'g')})"
    if isinstance(v, (list, tuple)):
        return "[" + " ".join(go_fmt_s(x) for x in v) + "]"
    if isinstance(v, dict):
        return "map[" + " ".join(f"{k}:{go_fmt_s(v[k])}" for k in sorted(v)) + "]"
    if v is None:
        return "%!s(<nil>)"
    return str(v)
