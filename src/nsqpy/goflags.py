"""A command-line parser compatible with Go's ``flag`` package (ExitOnError mode),
plus the Go ``strconv``/``fmt`` value helpers it needs.

Rules reproduced (spec flags.md §0):

* ``-name`` and ``--name`` are equivalent; values as ``-name=value`` or ``-name value``;
* bool flags take only ``-b`` or ``-b=<ParseBool form>`` (``-b false`` makes ``false``
  a positional argument);
* parsing stops at the first non-flag argument (``-`` alone is one) or after ``--``;
* list flags accumulate every occurrence;
* errors print ``<message>`` + usage on stderr and exit 2; ``-h``/``-help``/``--help``
  print the usage and exit 0.

Exiting is signalled by raising :class:`FlagExit`, which ``main()`` functions turn
into the printout and ``sys.exit`` via :meth:`FlagExit.exit`.

Typical use::

    fs = FlagSet("nsqd")
    fs.string("tcp-address", "0.0.0.0:4150", "<addr>:<port> to listen on for TCP clients")
    fs.duration("msg-timeout", 60 * SECOND, "default duration to wait ...")
    fs.str_list("lookupd-tcp-address", "lookupd TCP address (may be given multiple times)",
                key="nsqlookupd_tcp_addresses")
    try:
        values, explicitly_set, positional = fs.parse(sys.argv[1:])
    except FlagExit as e:
        e.exit()
"""
from __future__ import annotations

import math
import sys
from typing import Any, Callable, Iterable

from .gotime import format_duration, parse_duration

__all__ = [
    "FlagExit", "Flag", "FlagSet", "GoNumError",
    "go_quote", "parse_go_bool", "parse_go_int", "parse_go_float",
    "format_go_float", "go_json_float", "go_json_string", "go_fmt_v", "go_fmt_s",
    "KINDS", "KEEP",
]

KINDS = ("str", "int", "bool", "duration", "float", "str_list", "float_list", "custom")

KEEP = type("KEEP", (), {"__repr__": lambda self: "goflags.KEEP"})()
"""Returned by a custom flag's ``parse`` to leave the current value unchanged
(Go ``Value.Set`` implementations that accept a value but ignore it)."""


# ---------------------------------------------------------------------------
# Go strconv / fmt helpers
# ---------------------------------------------------------------------------

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


# ---------------------------------------------------------------------------
# FlagSet
# ---------------------------------------------------------------------------


class FlagExit(Exception):
    """Parsing ended the program: ``message`` (complete text, newlines included)
    goes to ``stream`` ("stderr" or "stdout"), then exit with ``code``."""

    def __init__(self, code: int, message: str = "", stream: str = "stderr"):
        super().__init__(code, message)
        self.code = code
        self.message = message
        self.stream = stream

    def __str__(self) -> str:
        return self.message

    @property
    def to_stdout(self) -> bool:
        """True when the message belongs on stdout (``--version``)."""
        return self.stream == "stdout"

    def exit(self) -> None:
        """Print the message and ``sys.exit(code)``."""
        out = sys.stdout if self.stream == "stdout" else sys.stderr
        if self.message:
            out.write(self.message)
            if not self.message.endswith("\n"):
                out.write("\n")
            out.flush()
        sys.exit(self.code)


class _SetError(Exception):
    """A Value.Set failure; ``text`` is the error as the flag package prints it."""

    def __init__(self, text: str):
        super().__init__(text)
        self.text = text


class Flag:
    """One defined flag. Normally created through the FlagSet helper methods."""

    __slots__ = ("name", "kind", "default", "help", "key", "configurable", "field",
                 "type_name", "is_bool", "is_list", "zero_str", "quote_default",
                 "_parse", "_to_str", "coerce")

    def __init__(self, name: str, kind: str, default: Any, help: str, *,
                 key: str | None = None, configurable: bool = True, field: str | None = None,
                 parse: Callable[[str], Any] | None = None,
                 to_str: Callable[[Any], str] | None = None,
                 zero_str: str | None = None, is_bool: bool = False,
                 type_name: str | None = None,
                 coerce: Callable[[Any], Any] | None = None):
        if kind not in KINDS:
            raise ValueError(f"unknown flag kind {kind!r}")
        self.name = name
        self.kind = kind
        self.default = default
        self.help = help
        self.key = key if key is not None else name.replace("-", "_")
        self.configurable = configurable
        self.field = field if field is not None else _camel(self.key)
        self.is_list = kind in ("str_list", "float_list")
        self.coerce = coerce
        if kind == "custom":
            if parse is None or to_str is None:
                raise ValueError("custom flags need parse and to_str")
            self._parse = parse
            self._to_str = to_str
            self.zero_str = zero_str if zero_str is not None else ""
            self.is_bool = is_bool
            self.type_name = type_name if type_name is not None else ("" if is_bool else "value")
            self.quote_default = False
        else:
            self._parse = parse
            self._to_str = to_str
            zs, tn = _KIND_INFO[kind]
            self.zero_str = zero_str if zero_str is not None else zs
            self.is_bool = kind == "bool"
            self.type_name = type_name if type_name is not None else tn
            self.quote_default = kind == "str"

    # Go Value.String() of a value of this flag
    def value_str(self, value: Any) -> str:
        k = self.kind
        if self._to_str is not None:
            return self._to_str(value)
        if k == "str":
            return value
        if k == "int":
            return str(value)
        if k == "bool":
            return "true" if value else "false"
        if k == "duration":
            return format_duration(value)
        if k == "float":
            return format_go_float(value, "g")
        if k == "str_list":
            return ",".join(value)
        if k == "float_list":
            return ",".join("%f" % v for v in value)
        raise AssertionError(k)

    def go_value_repr(self, value: Any) -> str:
        """``%+v`` of the Go options-struct field holding ``value``."""
        if self.kind == "custom":
            return self.value_str(value)
        if self.kind == "duration":
            return format_duration(value)
        return go_fmt_v(value)

    def set(self, text: str, current: Any) -> Any:
        """Go ``Value.Set``: returns the new value or raises _SetError/FlagExit."""
        k = self.kind
        if self._parse is not None:
            try:
                v = self._parse(text)
            except (ValueError, TypeError) as e:
                raise _SetError(str(e)) from None
            if v is KEEP:
                return current
            if self.is_list:
                return list(current) + list(v)
            return v
        if k == "str":
            return text
        if k == "str_list":
            return list(current) + [text]
        try:
            if k == "int":
                return parse_go_int(text, 0, 64)
            if k == "bool":
                return parse_go_bool(text)
            if k == "float":
                return parse_go_float(text)
        except GoNumError as e:
            raise _SetError(e.flag_message) from None
        if k == "duration":
            try:
                return parse_duration(text)
            except ValueError:
                raise _SetError("parse error") from None
        if k == "float_list":
            # internal/app.FloatArray: comma-separated; a bad number is log.Fatalf'd
            out = list(current)
            for part in text.split(","):
                try:
                    out.append(parse_go_float(part))
                except GoNumError:
                    from .log import format_std_log
                    raise FlagExit(1, format_std_log(f"Could not parse: {part}")) from None
            return out
        raise AssertionError(k)

    def usage_entry(self) -> str:
        name, usage = _unquote_usage(self.help, self.type_name)
        line = f"  -{self.name}"
        if name:
            line += " " + name
        if len(line) <= 4:
            line += "\t"
        else:
            line += "\n    \t"
        line += usage.replace("\n", "\n    \t")
        def_str = self.value_str(self.default)
        if def_str != self.zero_str:
            if self.quote_default:
                line += f" (default {go_quote(def_str)})"
            else:
                line += f" (default {def_str})"
        return line + "\n"

    def initial(self) -> Any:
        d = self.default
        return list(d) if isinstance(d, (list, tuple)) else d


_KIND_INFO = {
    # kind: (String() of the zero value, usage type name)
    "str": ("", "string"),
    "int": ("0", "int"),
    "bool": ("false", ""),
    "duration": ("0s", "duration"),
    "float": ("0", "float"),
    "str_list": ("", "value"),
    "float_list": ("", "value"),
}


def _camel(key: str) -> str:
    return "".join(p[:1].upper() + p[1:] for p in key.split("_"))


def _unquote_usage(usage: str, type_name: str) -> tuple[str, str]:
    """Go's flag.UnquoteUsage: a back-quoted word names the argument."""
    i = usage.find("`")
    if i >= 0:
        j = usage.find("`", i + 1)
        if j >= 0:
            name = usage[i + 1:j]
            return name, usage[:i] + name + usage[j + 1:]
    return type_name, usage


class FlagSet:
    """A Go-compatible flag set. ``prog_name`` is printed as ``Usage of <name>:``."""

    def __init__(self, prog_name: str):
        self.name = prog_name
        self._flags: dict[str, Flag] = {}

    # -- definition -------------------------------------------------------
    def add(self, flag: Flag) -> Flag:
        if flag.name in self._flags:
            raise ValueError(f"{self.name} flag redefined: {flag.name}")
        self._flags[flag.name] = flag
        return flag

    def define(self, name: str, kind: str, default: Any = None, help: str = "", **kw: Any) -> Flag:
        """Generic definition; ``kw`` as for :class:`Flag` (key, configurable, field,
        and parse/to_str/zero_str/is_bool/type_name/coerce for ``custom``)."""
        if default is None:
            default = {"str": "", "int": 0, "bool": False, "duration": 0, "float": 0.0,
                       "str_list": [], "float_list": []}.get(kind)
        return self.add(Flag(name, kind, default, help, **kw))

    def string(self, name: str, default: str, help: str, **kw: Any) -> Flag:
        return self.define(name, "str", default, help, **kw)

    def int(self, name: str, default: int, help: str, **kw: Any) -> Flag:
        return self.define(name, "int", default, help, **kw)

    def bool(self, name: str, default: bool, help: str, **kw: Any) -> Flag:
        return self.define(name, "bool", default, help, **kw)

    def duration(self, name: str, default_ns: int, help: str, **kw: Any) -> Flag:
        return self.define(name, "duration", default_ns, help, **kw)

    def float(self, name: str, default: float, help: str, **kw: Any) -> Flag:
        return self.define(name, "float", default, help, **kw)

    def str_list(self, name: str, help: str, default: Iterable[str] = (), **kw: Any) -> Flag:
        return self.define(name, "str_list", list(default), help, **kw)

    def float_list(self, name: str, help: str, default: Iterable[float] = (), **kw: Any) -> Flag:
        return self.define(name, "float_list", list(default), help, **kw)

    def custom(self, name: str, default: Any, help: str, *, parse: Callable[[str], Any],
               to_str: Callable[[Any], str], zero_str: str = "", is_bool: bool = False,
               type_name: str | None = None, coerce: Callable[[Any], Any] | None = None,
               **kw: Any) -> Flag:
        """A flag with its own ``parse(text) -> value`` (raise ValueError(msg) on bad
        input; msg is printed as Go prints a Value.Set error), ``to_str(value)`` (Go
        ``String()``, shown as the usage default unless it equals ``zero_str``),
        ``is_bool`` (may be given bare, like ``--tls-required``) and ``coerce(config
        value) -> value`` for config files (default: strings go through ``parse``)."""
        return self.define(name, "custom", default, help, parse=parse, to_str=to_str,
                           zero_str=zero_str, is_bool=is_bool, type_name=type_name,
                           coerce=coerce, **kw)

    # -- lookup -----------------------------------------------------------
    def lookup(self, name: str) -> Flag | None:
        return self._flags.get(name)

    def by_key(self, key: str) -> Flag | None:
        for f in self._flags.values():
            if f.key == key:
                return f
        return None

    @property
    def flags(self) -> list[Flag]:
        """Flags in definition order."""
        return list(self._flags.values())

    def defaults(self) -> dict[str, Any]:
        return {f.key: f.initial() for f in self._flags.values()}

    # -- usage ------------------------------------------------------------
    def usage(self) -> str:
        head = f"Usage of {self.name}:\n" if self.name else "Usage:\n"
        return head + "".join(self._flags[n].usage_entry() for n in sorted(self._flags))

    def _fail(self, msg: str) -> FlagExit:
        return FlagExit(2, msg + "\n" + self.usage())

    # -- parsing ----------------------------------------------------------
    def parse(self, argv: Iterable[str]) -> tuple[dict[str, Any], set[str], list[str]]:
        """Parse ``argv`` (without the program name).

        Returns ``(values, explicitly_set, positional)``: ``values`` maps every
        flag's key to its value (default when not given), ``explicitly_set`` holds
        the keys of flags given on the command line, ``positional`` the
        arguments left after flag parsing stopped.
        Raises :class:`FlagExit` for help (0) and errors (2).
        """
        args = list(argv)
        values = self.defaults()
        explicit: set[str] = set()
        i = 0
        n = len(args)
        while i < n:
            s = args[i]
            if len(s) < 2 or s[0] != "-":
                break
            num_minuses = 1
            if s[1] == "-":
                num_minuses = 2
                if len(s) == 2:  # "--" terminates the flags
                    i += 1
                    break
            name = s[num_minuses:]
            if not name or name[0] == "-" or name[0] == "=":
                raise self._fail(f"bad flag syntax: {s}")
            i += 1
            has_value = False
            value = ""
            eq = name.find("=", 1)
            if eq > 0:
                value = name[eq + 1:]
                has_value = True
                name = name[:eq]
            flag = self._flags.get(name)
            if flag is None:
                if name in ("help", "h"):
                    raise FlagExit(0, self.usage())
                raise self._fail(f"flag provided but not defined: -{name}")
            key = flag.key
            if flag.is_bool:
                text = value if has_value else "true"
                try:
                    values[key] = flag.set(text, values[key])
                except _SetError as e:
                    if has_value:
                        raise self._fail(
                            f"invalid boolean value {go_quote(value)} for -{name}: {e.text}") from None
                    raise self._fail(f"invalid boolean flag {name}: {e.text}") from None
            else:
                if not has_value and i < n:
                    value = args[i]
                    has_value = True
                    i += 1
                if not has_value:
                    raise self._fail(f"flag needs an argument: -{name}")
                try:
                    values[key] = flag.set(value, values[key])
                except _SetError as e:
                    raise self._fail(
                        f"invalid value {go_quote(value)} for flag -{name}: {e.text}") from None
            explicit.add(key)
        return values, explicit, args[i:]
