"""TOML config files and option resolution (spec flags.md §4), reproducing
``github.com/mreiferson/go-options`` ``Resolve`` on top of a BurntSushi/toml map.

Precedence per option: flag given on the command line > config-file value >
built-in default. Unknown config keys are ignored.
"""
from __future__ import annotations

import os
from typing import Any, TextIO

from .goflags import Flag, FlagSet
from .gostrconv import GoNumError, go_fmt_s, go_fmt_v, parse_go_bool, parse_go_float, parse_go_int
from .gotime import MILLISECOND, parse_duration

__all__ = ["ConfigError", "load_config_file", "resolve", "coerce_config_value", "go_os_error"]


class ConfigError(Exception):
    """A fatal configuration problem.

    ``std_log`` tells how Go reports it: False → the daemon logs it as
    ``<prefix><ts> FATAL: <message>`` (e.g. ``failed to load config file …``);
    True → Go's plain ``log.Fatalf`` line ``<YYYY/MM/DD HH:MM:SS> ERROR: <message>``
    (the ``Resolve failed to coerce value …`` case). Either way exit code 1.
    Use :meth:`emit` to print it correctly.
    """

    def __init__(self, message: str, std_log: bool = False):
        super().__init__(message)
        self.message = message
        self.std_log = std_log

    def emit(self, logger: Any = None, stream: TextIO | None = None) -> None:
        """Write the error the way Go would (``logger`` is a nsqpy.log.Logger)."""
        import sys

        from .log import format_std_log
        if self.std_log or logger is None:
            out = stream or (getattr(logger, "stream", None) if logger is not None else None) \
                or sys.stderr
            text = ("ERROR: " + self.message) if self.std_log else self.message
            out.write(format_std_log(text))
            out.flush()
        else:
            logger.fatal(self.message)


def go_os_error(op: str, path: str, err: OSError) -> str:
    """``*os.PathError`` text: ``open /x: no such file or directory``."""
    code = err.errno
    if code is not None:
        msg = os.strerror(code)
        msg = msg[:1].lower() + msg[1:]
    else:
        msg = str(err)
    return f"{op} {path}: {msg}"


def load_config_file(path: str) -> dict:
    """Decode a TOML file into a plain dict.

    Raises ``ConfigError("failed to load config file <path> - <err>")``.
    """
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except IsADirectoryError as e:
        raise ConfigError(f"failed to load config file {path} - "
                          f"{go_os_error('read', path, e)}") from None
    except OSError as e:
        raise ConfigError(f"failed to load config file {path} - "
                          f"{go_os_error('open', path, e)}") from None
    try:
        import tomllib      # only when a --config file is given (import cost)
        return tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise ConfigError(f"failed to load config file {path} - "
                          f"invalid UTF-8 at byte {e.start}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"failed to load config file {path} - toml: {e}") from None


class _CoerceError(Exception):
    pass


def _type_name(v: Any) -> str:
    """Go type name of a TOML-decoded value."""
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int64"
    if isinstance(v, float):
        return "float64"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "[]interface {}"
    if isinstance(v, dict):
        return "map[string]interface {}"
    return "time.Time"


def _coerce_bool(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    if isinstance(v, str):
        return parse_go_bool(v)
    if isinstance(v, int):
        # [quirk] go-options treats an integer as `v == 0` (so 0 -> true, 1 -> false)
        return v == 0
    raise _CoerceError(f"invalid bool value type {_type_name(v)}")


def _coerce_int(v: Any) -> int:
    if isinstance(v, bool):
        raise _CoerceError("invalid int64 value type bool")
    if isinstance(v, str):
        return parse_go_int(v, 10, 64)
    if isinstance(v, int):
        return v
    raise _CoerceError(f"invalid int64 value type {_type_name(v)}")


def _coerce_float(v: Any) -> float:
    if isinstance(v, bool):
        raise _CoerceError("invalid float64 value type bool")
    if isinstance(v, str):
        return parse_go_float(v)
    if isinstance(v, (int, float)):
        return float(v)
    raise _CoerceError(f"invalid float64 value type {_type_name(v)}")


def _wrap_int64(n: int) -> int:
    n &= (1 << 64) - 1
    return n - (1 << 64) if n >= (1 << 63) else n


def _coerce_duration(v: Any) -> int:
    if isinstance(v, bool):
        raise _CoerceError("invalid time.Duration value type bool")
    if isinstance(v, str):
        return parse_duration(v)
    if isinstance(v, int):
        return _wrap_int64(v * MILLISECOND)  # integers mean milliseconds
    raise _CoerceError(f"invalid time.Duration value type {_type_name(v)}")


def _coerce_str_list(v: Any) -> list[str]:
    if isinstance(v, str):
        return v.split(",")
    if isinstance(v, list):
        out = []
        for x in v:
            if not isinstance(x, str):
                raise _CoerceError(f"interface conversion: interface {{}} is {_type_name(x)}, "
                                   "not string")
            out.append(x)
        return out
    return []  # go-options silently yields a nil slice for other types


def _coerce_float_list(v: Any) -> list[float]:
    if isinstance(v, str):
        return [parse_go_float(s.strip(" \t\n\r\v\f")) for s in v.split(",")]
    if isinstance(v, list):
        out = []
        for x in v:
            # Go would panic on a TOML integer here; integers are accepted instead
            if isinstance(x, bool) or not isinstance(x, (int, float)):
                raise _CoerceError(f"interface conversion: interface {{}} is {_type_name(x)}, "
                                   "not float64")
            out.append(float(x))
        return out
    return []


def _coerce_str(v: Any) -> str:
    return go_fmt_s(v)


_COERCERS = {
    "str": _coerce_str,
    "int": _coerce_int,
    "bool": _coerce_bool,
    "duration": _coerce_duration,
    "float": _coerce_float,
    "str_list": _coerce_str_list,
    "float_list": _coerce_float_list,
}


def coerce_config_value(flag: Flag, value: Any) -> Any:
    """Convert a config-file value for ``flag``; raises ConfigError (std_log)
    with go-options' ``Resolve failed to coerce value …`` message."""
    try:
        if flag.kind == "custom":
            if flag.coerce is not None:
                return flag.coerce(value)
            if isinstance(value, str):
                return flag.set(value, flag.initial())
            raise _CoerceError(f"invalid value type {_type_name(value)}")
        return _COERCERS[flag.kind](value)
    except (_CoerceError, GoNumError, ValueError) as e:
        err = str(e)
    except Exception as e:  # noqa: BLE001 - a custom coerce callback's own error
        err = getattr(e, "text", None) or str(e)
    raise ConfigError(
        f"Resolve failed to coerce value {go_fmt_v(value)} "
        f"({flag.go_value_repr(flag.default)}) for field {flag.field} - {err}",
        std_log=True)


def resolve(flagset: FlagSet, flag_values: dict, explicitly_set: set, config_map: dict | None
            ) -> dict:
    """Resolve every configurable flag of ``flagset``.

    ``flag_values``/``explicitly_set`` come from :meth:`FlagSet.parse`; ``config_map``
    is the decoded config file (or None/{}). Returns ``{key: value}`` for every
    flag (non-configurable ones keep their command-line value). Flags are resolved
    in definition order, so the first uncoercible value (in that order) is reported.
    """
    cfg = config_map or {}
    out: dict[str, Any] = {}
    for flag in flagset.flags:
        key = flag.key
        if key in explicitly_set or not flag.configurable:
            out[key] = flag_values.get(key, flag.initial())
        elif key in cfg:
            out[key] = coerce_config_value(flag, cfg[key])
        else:
            out[key] = flag_values.get(key, flag.initial())
    return out

