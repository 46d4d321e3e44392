"""A command-line parser compatible with Go's ``flag`` package (ExitOnError mode); the
Go ``strconv``/``fmt`` value helpers it needs are in :mod:`nsqpy.gostrconv` (and
re-exported here).

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

import sys
from typing import Any, Callable, Iterable

from .gostrconv import (GoNumError, format_go_float, go_fmt_s, go_fmt_v, go_json_float,
                        go_json_string, go_quote, parse_go_bool, parse_go_float,
                        parse_go_int)
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
