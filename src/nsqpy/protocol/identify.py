"""IDENTIFY body decoding/validation and the feature-negotiation reply.

Spec: tcp-protocol §6.1. JSON decoding follows Go's ``encoding/json`` into
nsqd's ``identifyDataV2`` struct:

* the top level must be an object (``null`` is accepted and means "all
  defaults", like Go); unknown keys are ignored; ``null`` values are ignored
  (the field keeps its previous value); duplicate keys: last non-null wins;
* keys match struct fields case-insensitively (Go's fold rules, so ``ſ`` matches
  ``s`` and the Kelvin sign matches ``k``);
* int fields accept only JSON integers within int64 (``sample_rate``: int32);
  bools only ``true``/``false``; strings only strings; anything else is a
  decode error. ``NaN``/``Infinity`` are not JSON;
* invalid UTF-8 inside strings becomes U+FFFD (one per bad byte), lone
  ``\\uD800``-style escapes too.

Then the fields are validated in nsqd's order (heartbeat, output buffer timeout,
output buffer size, sample rate, msg timeout).
"""

from __future__ import annotations

import codecs
import json
import re
from dataclasses import dataclass

from .errors import ProtocolError

__all__ = ["IdentifyConfig", "IdentifyData", "ServerFeatures", "parse_identify",
           "negotiated_deflate_level", "feature_negotiation_response"]

NSQ_VERSION = "1.3.0"

_I64_MIN = -(1 << 63)
_I64_MAX = (1 << 63) - 1
_I32_MIN = -(1 << 31)
_I32_MAX = (1 << 31) - 1


@dataclass
class IdentifyConfig:
    """The nsqd options IDENTIFY validation depends on (ms / bytes)."""

    max_heartbeat_interval_ms: int = 60000
    max_output_buffer_size: int = 65536
    min_output_buffer_timeout_ms: int = 25
    max_output_buffer_timeout_ms: int = 30000
    default_output_buffer_timeout_ms: int = 250
    client_timeout_ms: int = 60000
    msg_timeout_ms: int = 60000
    max_msg_timeout_ms: int = 900000
    max_deflate_level: int = 6


@dataclass
class ServerFeatures:
    """What :func:`feature_negotiation_response` needs from the server."""

    max_rdy_count: int = 2500
    max_msg_timeout_ms: int = 900000
    tls_enabled: bool = False
    deflate_enabled: bool = True
    snappy_enabled: bool = True
    max_deflate_level: int = 6
    auth_required: bool = False
    version: str = NSQ_VERSION


@dataclass
class IdentifyData:
    """Effective per-client values after a successful IDENTIFY.

    ``tls_v1``/``snappy``/``deflate`` are what the client *requested*; whether they
    are negotiated depends on the server (see :func:`feature_negotiation_response`).
    ``deflate_level`` is the level that applies if deflate is negotiated
    (requested level if > 0, else 6, capped at ``max_deflate_level``);
    ``requested_deflate_level`` is the raw value sent (0 if absent).
    """

    client_id: str = ""
    hostname: str = ""
    user_agent: str = ""
    feature_negotiation: bool = False
    heartbeat_interval_ms: int = 30000
    output_buffer_size: int = 16384
    output_buffer_timeout_ms: int = 250
    tls_v1: bool = False
    snappy: bool = False
    deflate: bool = False
    deflate_level: int = 6
    requested_deflate_level: int = 0
    sample_rate: int = 0
    msg_timeout_ms: int = 60000


# field name -> kind
_FIELDS = {
    "client_id": "str",
    "hostname": "str",
    "heartbeat_interval": "int",
    "output_buffer_size": "int",
    "output_buffer_timeout": "int",
    "feature_negotiation": "bool",
    "tls_v1": "bool",
    "deflate": "bool",
    "deflate_level": "int",
    "snappy": "bool",
    "sample_rate": "int32",
    "user_agent": "str",
    "msg_timeout": "int",
}
_FOLD = {0x017F: "s", 0x212A: "k"}  # non-ASCII runes whose Go fold class contains ASCII
_SURROGATE_RE = re.compile("[\ud800-\udfff]")


def _go_replace_errors(exc):
    # Like Go's utf8.DecodeRune: each undecodable byte becomes one U+FFFD.
    if isinstance(exc, UnicodeDecodeError):
        return "\ufffd", exc.start + 1
    raise exc


codecs.register_error("nsqpy-go-replace", _go_replace_errors)


class _DecodeError(Exception):
    pass


def _reject_constant(name):
    raise _DecodeError(name)


def _field_for(key: str):
    kind = _FIELDS.get(key)
    if kind is not None:
        return key
    folded = key.translate(_FOLD)
    if not folded.isascii():
        return None
    folded = folded.lower()
    return folded if folded in _FIELDS else None


class _Pairs(list):
    """A decoded JSON object, as its (key, value) pairs in document order."""


class _Huge:
    """An integer literal too long to convert; out of range for every field."""


def _parse_int(s: str):
    return int(s) if len(s) <= 25 else _Huge


def _decode_fields(body: bytes) -> dict:
    try:
        text = body.decode("utf-8", "nsqpy-go-replace")
        doc = json.loads(text, object_pairs_hook=_Pairs, parse_int=_parse_int,
                         parse_constant=_reject_constant)
    except (ValueError, _DecodeError, RecursionError):
        raise _DecodeError() from None
    if doc is None:
        return {}
    if type(doc) is not _Pairs:
        raise _DecodeError()  # top level is not an object
    out: dict = {}
    for key, value in doc:
        field = _field_for(key)
        if field is None or value is None:
            continue
        kind = _FIELDS[field]
        if kind == "str":
            if type(value) is not str:
                raise _DecodeError()
            if _SURROGATE_RE.search(value):
                value = _SURROGATE_RE.sub("\ufffd", value)
        elif kind == "bool":
            if type(value) is not bool:
                raise _DecodeError()
        else:
            if type(value) is not int:
                raise _DecodeError()
            lo, hi = (_I32_MIN, _I32_MAX) if kind == "int32" else (_I64_MIN, _I64_MAX)
            if not lo <= value <= hi:
                raise _DecodeError()
        out[field] = value
    return out


def _bad(desc: str) -> ProtocolError:
    return ProtocolError("E_BAD_BODY", "IDENTIFY " + desc)


def parse_identify(body: bytes, cfg: IdentifyConfig | None = None) -> IdentifyData:
    """Decode and validate an IDENTIFY body; raise ProtocolError(E_BAD_BODY ...)."""
    if cfg is None:
        cfg = IdentifyConfig()
    try:
        f = _decode_fields(bytes(body))
    except _DecodeError:
        raise _bad("failed to decode JSON body") from None

    d = IdentifyData(
        client_id=f.get("client_id", ""),
        hostname=f.get("hostname", ""),
        user_agent=f.get("user_agent", ""),
        feature_negotiation=f.get("feature_negotiation", False),
        tls_v1=f.get("tls_v1", False),
        snappy=f.get("snappy", False),
        deflate=f.get("deflate", False),
    )

    hb = f.get("heartbeat_interval", 0)
    if hb == -1:
        d.heartbeat_interval_ms = -1
    elif hb == 0:
        d.heartbeat_interval_ms = cfg.client_timeout_ms // 2
    elif 1000 <= hb <= cfg.max_heartbeat_interval_ms:
        d.heartbeat_interval_ms = hb
    else:
        raise _bad("heartbeat interval (%d) is invalid" % hb)

    obt = f.get("output_buffer_timeout", 0)
    if obt == -1:
        d.output_buffer_timeout_ms = 0
    elif obt == 0:
        d.output_buffer_timeout_ms = cfg.default_output_buffer_timeout_ms
    elif cfg.min_output_buffer_timeout_ms <= obt <= cfg.max_output_buffer_timeout_ms:
        d.output_buffer_timeout_ms = obt
    else:
        raise _bad("output buffer timeout (%d) is invalid" % obt)

    obs = f.get("output_buffer_size", 0)
    if obs == -1:
        d.output_buffer_size = 1
        d.output_buffer_timeout_ms = 0
    elif obs == 0:
        d.output_buffer_size = 16384
    elif 64 <= obs <= cfg.max_output_buffer_size:
        d.output_buffer_size = obs
    else:
        raise _bad("output buffer size (%d) is invalid" % obs)

    sr = f.get("sample_rate", 0)
    if not 0 <= sr <= 99:
        raise _bad("sample rate (%d) is invalid" % sr)
    d.sample_rate = sr

    mt = f.get("msg_timeout", 0)
    if mt == 0:
        d.msg_timeout_ms = cfg.msg_timeout_ms
    elif 1000 <= mt <= cfg.max_msg_timeout_ms:
        d.msg_timeout_ms = mt
    else:
        raise _bad("msg timeout (%d) is invalid" % mt)

    dl = f.get("deflate_level", 0)
    d.requested_deflate_level = dl
    d.deflate_level = min(dl if dl > 0 else 6, cfg.max_deflate_level)
    return d


def negotiated_deflate_level(data: IdentifyData, deflate_negotiated: bool,
                             max_deflate_level: int) -> int:
    """nsqd: 6, or the requested level if deflate is negotiated and it is > 0;
    then capped at ``max_deflate_level``."""
    level = 6
    if deflate_negotiated and data.requested_deflate_level > 0:
        level = data.requested_deflate_level
    return min(level, max_deflate_level)


def feature_negotiation_response(data: IdentifyData, server) -> bytes:
    """The compact JSON reply of §6.1.3 (keys in nsqd's order).

    ``server`` needs: max_rdy_count, max_msg_timeout_ms, tls_enabled,
    deflate_enabled, snappy_enabled, max_deflate_level, auth_required
    (optional: version). Raises ``E_IDENTIFY_FAILED cannot enable both deflate
    and snappy compression`` when both would be negotiated.
    """
    tls_v1 = bool(server.tls_enabled) and data.tls_v1
    deflate = bool(server.deflate_enabled) and data.deflate
    snappy = bool(server.snappy_enabled) and data.snappy
    if deflate and snappy:
        raise ProtocolError("E_IDENTIFY_FAILED", "cannot enable both deflate and snappy compression")
    doc = {
        "max_rdy_count": server.max_rdy_count,
        "version": getattr(server, "version", NSQ_VERSION),
        "max_msg_timeout": server.max_msg_timeout_ms,
        "msg_timeout": data.msg_timeout_ms,
        "tls_v1": tls_v1,
        "deflate": deflate,
        "deflate_level": negotiated_deflate_level(data, deflate, server.max_deflate_level),
        "max_deflate_level": server.max_deflate_level,
        "snappy": snappy,
        "sample_rate": data.sample_rate,
        "auth_required": bool(server.auth_required),
        "output_buffer_size": data.output_buffer_size,
        "output_buffer_timeout": data.output_buffer_timeout_ms,
    }
    return json.dumps(doc, separators=(",", ":")).encode("utf-8")
