"""Client configuration: the go-nsq option names, defaults and ranges (flags.md §6).

Every option can be given to :class:`Config` as a keyword argument or set later with
:meth:`Config.set` (which is what the tools' ``--consumer-opt key,value`` passthrough
uses).  Values are coerced the go-nsq way:

* durations: a Go duration string (``"250ms"``, ``"1m30s"``), an ``int``/``float``
  number of **milliseconds** (also as a digit string, ``"1500"``), or a
  :class:`datetime.timedelta`; stored as float **seconds**;
* booleans: ``True``/``False``, Go's ``strconv.ParseBool`` strings (``"1"``, ``"t"``,
  ``"true"``, ``"FALSE"`` …) or integers (non-zero = true);
* integers and floats: numbers or decimal strings.

Ranges are checked on every ``set`` (``ValueError`` with go-nsq's text,
``invalid max_in_flight ! -1 < 0``); :meth:`Config.validate` re-checks cross-field rules.
"""

from __future__ import annotations

import copy
import datetime
import socket
import ssl
from dataclasses import dataclass
from typing import Any, Callable

from ..gotime import parse_duration

__all__ = ["Config", "ConfigError", "OPTIONS", "parse_opt", "DEFAULT_USER_AGENT"]

#: go-nsq's default user agent; the tools prepend ``<tool>/1.3.0``.
DEFAULT_USER_AGENT = "go-nsq/1.1.0"

_MS = 0.001
_S = 1.0
_M = 60.0


class ConfigError(ValueError):
    """An unknown option or a value that cannot be coerced or is out of range."""


@dataclass(frozen=True)
class _Opt:
    kind: str                      # duration | int | float | bool | str | choice
    default: Any
    lo: Any = None
    hi: Any = None
    choices: tuple[str, ...] = ()


#: option name -> (kind, default, min, max).  Durations in seconds.
OPTIONS: dict[str, _Opt] = {
    "dial_timeout": _Opt("duration", 1 * _S),
    "read_timeout": _Opt("duration", 60 * _S, 100 * _MS, 5 * _M),
    "write_timeout": _Opt("duration", 1 * _S, 100 * _MS, 5 * _M),
    "local_addr": _Opt("str", ""),
    "lookupd_poll_interval": _Opt("duration", 60 * _S, 10 * _MS, 5 * _M),
    "lookupd_poll_jitter": _Opt("float", 0.3, 0.0, 1.0),
    "lookupd_poll_timeout": _Opt("duration", 60 * _S),
    "max_requeue_delay": _Opt("duration", 15 * _M, 0.0, 60 * _M),
    "default_requeue_delay": _Opt("duration", 90 * _S, 0.0, 60 * _M),
    "backoff_strategy": _Opt("choice", "exponential", choices=("exponential", "full_jitter")),
    "max_backoff_duration": _Opt("duration", 2 * _M, 0.0, 60 * _M),
    "backoff_multiplier": _Opt("duration", 1 * _S, 0.0, 60 * _M),
    "max_attempts": _Opt("int", 5, 0, 65535),
    "low_rdy_idle_timeout": _Opt("duration", 10 * _S, 1 * _S, 5 * _M),
    "low_rdy_timeout": _Opt("duration", 30 * _S, 1 * _S, 5 * _M),
    "rdy_redistribute_interval": _Opt("duration", 5 * _S, 1 * _MS, 5 * _S),
    "client_id": _Opt("str", None),
    "hostname": _Opt("str", None),
    "user_agent": _Opt("str", DEFAULT_USER_AGENT),
    "heartbeat_interval": _Opt("duration", 30 * _S),
    "sample_rate": _Opt("int", 0, 0, 99),
    "tls_v1": _Opt("bool", False),
    "tls_root_ca_file": _Opt("str", ""),
    "tls_insecure_skip_verify": _Opt("bool", False),
    "tls_cert": _Opt("str", ""),
    "tls_key": _Opt("str", ""),
    "tls_min_version": _Opt("choice", "",
                            choices=("", "ssl3.0", "tls1.0", "tls1.1", "tls1.2", "tls1.3")),
    "deflate": _Opt("bool", False),
    "deflate_level": _Opt("int", 6, 1, 9),
    "snappy": _Opt("bool", False),
    "output_buffer_size": _Opt("int", 16384),
    "output_buffer_timeout": _Opt("duration", 250 * _MS),
    "max_in_flight": _Opt("int", 1, 0, None),
    "msg_timeout": _Opt("duration", 0.0, 0.0, None),
    "auth_secret": _Opt("str", ""),
    # go-nsq's (inverted) name: when true an auth_secret is also sent to lookupd.
    "skip_lookupd_authorization": _Opt("bool", True),
}

_BOOL_STRINGS = {
    "1": True, "t": True, "T": True, "TRUE": True, "true": True, "True": True,
    "0": False, "f": False, "F": False, "FALSE": False, "false": False, "False": False,
}

_TLS_VERSIONS = {
    "ssl3.0": ssl.TLSVersion.SSLv3, "tls1.0": ssl.TLSVersion.TLSv1,
    "tls1.1": ssl.TLSVersion.TLSv1_1, "tls1.2": ssl.TLSVersion.TLSv1_2,
    "tls1.3": ssl.TLSVersion.TLSv1_3,
}


def _fmt(kind: str, v: Any) -> str:
    if kind == "duration":
        return f"{v:g}s"
    return str(v)


def _coerce_duration(v: Any) -> float:
    if isinstance(v, datetime.timedelta):
        return v.total_seconds()
    if isinstance(v, bool):
        raise TypeError("invalid value type")
    if isinstance(v, (int, float)):
        return v * _MS
    if isinstance(v, (str, bytes)):
        s = v.decode() if isinstance(v, bytes) else v
        t = s.strip()
        if t.lstrip("+-").isdigit():
            return int(t) * _MS
        return parse_duration(s) / 1e9
    raise TypeError("invalid value type")


def _coerce_bool(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    if isinstance(v, int):
        return v != 0
    if isinstance(v, (str, bytes)):
        s = v.decode() if isinstance(v, bytes) else v
        if s in _BOOL_STRINGS:
            return _BOOL_STRINGS[s]
        raise ValueError(f'strconv.ParseBool: parsing "{s}": invalid syntax')
    raise TypeError("invalid value type")


def _coerce_int(v: Any) -> int:
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, int):
        return v
    if isinstance(v, float) and v.is_integer():
        return int(v)
    if isinstance(v, (str, bytes)):
        s = v.decode() if isinstance(v, bytes) else v
        return int(s.strip(), 10)
    raise TypeError("invalid value type")


def _coerce_float(v: Any) -> float:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return float(v)
    if isinstance(v, (str, bytes)):
        return float(v)
    raise TypeError("invalid value type")


def _coerce_str(v: Any) -> str:
    if isinstance(v, bytes):
        return v.decode()
    return str(v)


_COERCE: dict[str, Callable[[Any], Any]] = {
    "duration": _coerce_duration, "bool": _coerce_bool, "int": _coerce_int,
    "float": _coerce_float, "str": _coerce_str, "choice": _coerce_str,
}


def parse_opt(opt: str) -> tuple[str, str]:
    """Split a ``--consumer-opt``/``--producer-opt`` value: ``"key,value"`` →
    ``("key", "value")``; a bare ``"key"`` means ``"true"``; ``-`` in keys becomes ``_``."""
    key, sep, value = opt.partition(",")
    return key.replace("-", "_"), (value if sep else "true")


class Config:
    """NSQ client options (go-nsq names; see the module docstring for value formats).

    Attributes carry the coerced values, e.g. ``config.read_timeout == 60.0`` (seconds),
    ``config.max_in_flight == 1``.  ``tls_context`` may be set to a ready
    :class:`ssl.SSLContext` instead of the ``tls_*`` file options.
    """

    dial_timeout: float
    read_timeout: float
    write_timeout: float
    local_addr: str
    lookupd_poll_interval: float
    lookupd_poll_jitter: float
    lookupd_poll_timeout: float
    max_requeue_delay: float
    default_requeue_delay: float
    backoff_strategy: str
    max_backoff_duration: float
    backoff_multiplier: float
    max_attempts: int
    low_rdy_idle_timeout: float
    low_rdy_timeout: float
    rdy_redistribute_interval: float
    client_id: str
    hostname: str
    user_agent: str
    heartbeat_interval: float
    sample_rate: int
    tls_v1: bool
    tls_root_ca_file: str
    tls_insecure_skip_verify: bool
    tls_cert: str
    tls_key: str
    tls_min_version: str
    deflate: bool
    deflate_level: int
    snappy: bool
    output_buffer_size: int
    output_buffer_timeout: float
    max_in_flight: int
    msg_timeout: float
    auth_secret: str
    skip_lookupd_authorization: bool

    def __init__(self, **options: Any) -> None:
        for name, opt in OPTIONS.items():
            object.__setattr__(self, name, opt.default)
        host = socket.gethostname()
        self.hostname = host
        self.client_id = host.split(".")[0]
        self.tls_context: ssl.SSLContext | None = None
        for key, value in options.items():
            self.set(key, value)

    def set(self, option: str, value: Any = True) -> None:
        """Set one option by name (``-`` in the name is read as ``_``), coercing and
        range-checking ``value``.  Raises :class:`ConfigError`."""
        option = option.replace("-", "_")
        if option == "tls_context":
            if value is not None and not isinstance(value, ssl.SSLContext):
                raise ConfigError("tls_context must be an ssl.SSLContext")
            self.tls_context = value
            return
        opt = OPTIONS.get(option)
        if opt is None:
            raise ConfigError(f"invalid option {option}")
        try:
            v = _COERCE[opt.kind](value)
        except (TypeError, ValueError) as e:
            raise ConfigError(f"failed to coerce option {option} ({value}) - {e}") from None
        if opt.kind == "choice" and v not in opt.choices:
            raise ConfigError(f"invalid {option} {v!r}: want one of "
                              + ", ".join(repr(c) for c in opt.choices))
        if opt.lo is not None and v < opt.lo:
            raise ConfigError(f"invalid {option} ! {_fmt(opt.kind, v)} < {_fmt(opt.kind, opt.lo)}")
        if opt.hi is not None and v > opt.hi:
            raise ConfigError(f"invalid {option} ! {_fmt(opt.kind, v)} > {_fmt(opt.kind, opt.hi)}")
        object.__setattr__(self, option, v)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in OPTIONS:
            self.set(name, value)
        else:
            object.__setattr__(self, name, value)

    def set_opt(self, opt: str) -> None:
        """Apply one ``key,value`` passthrough string (see :func:`parse_opt`)."""
        self.set(*parse_opt(opt))

    def get(self, option: str) -> Any:
        """The current value of an option (durations in seconds)."""
        option = option.replace("-", "_")
        if option not in OPTIONS and option != "tls_context":
            raise ConfigError(f"invalid option {option}")
        return getattr(self, option)

    def validate(self) -> None:
        """Cross-field checks (go-nsq: heartbeat interval must not exceed read timeout;
        both of ``tls_cert``/``tls_key`` or neither)."""
        if self.heartbeat_interval > self.read_timeout:
            raise ConfigError(f"HeartbeatInterval {self.heartbeat_interval:g}s must be less "
                              f"than ReadTimeout {self.read_timeout:g}s")
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ConfigError("tls_cert and tls_key must be set together")

    def copy(self) -> "Config":
        """An independent copy (consumers/producers copy the config they are given)."""
        c = copy.copy(self)
        return c

    def ssl_context(self, server_hostname: str | None = None) -> ssl.SSLContext:
        """The client TLS context: ``tls_context`` if set, else one built from
        ``tls_root_ca_file`` / ``tls_insecure_skip_verify`` / ``tls_cert`` + ``tls_key`` /
        ``tls_min_version`` (system roots when no CA file is given)."""
        if self.tls_context is not None:
            return self.tls_context
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH,
                                         cafile=self.tls_root_ca_file or None)
        if self.tls_insecure_skip_verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if self.tls_cert and self.tls_key:
            ctx.load_cert_chain(self.tls_cert, self.tls_key)
        if self.tls_min_version:
            ctx.minimum_version = _TLS_VERSIONS[self.tls_min_version]
        return ctx

    def identify_body(self) -> dict[str, Any]:
        """The IDENTIFY JSON object this configuration sends (semantics §6.1 step 3)."""
        def ms(v: float) -> int:
            return int(round(v * 1000))
        return {
            "client_id": self.client_id,
            "hostname": self.hostname,
            "user_agent": self.user_agent,
            "short_id": self.client_id,
            "long_id": self.hostname,
            "feature_negotiation": True,
            "heartbeat_interval": ms(self.heartbeat_interval),
            "output_buffer_size": self.output_buffer_size,
            "output_buffer_timeout": ms(self.output_buffer_timeout),
            "tls_v1": self.tls_v1,
            "snappy": self.snappy,
            "deflate": self.deflate,
            "deflate_level": self.deflate_level,
            "sample_rate": self.sample_rate,
            "msg_timeout": ms(self.msg_timeout),
        }

    def __repr__(self) -> str:
        items = ", ".join(f"{k}={getattr(self, k)!r}" for k in OPTIONS
                          if k != "auth_secret")
        return f"Config({items})"
