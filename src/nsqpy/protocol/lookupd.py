"""nsqlookupd TCP protocol V1, sans-IO (spec nsqlookupd.md §2, §5).

Shared by the nsqlookupd server (:class:`ServerParser`, :func:`encode_response`,
:func:`parse_identify_body`, :func:`identify_response`) and nsqd's client side
(``encode_*`` commands, :class:`ResponseDecoder`, :func:`parse_peer_info`).

Wire format:

* the client opens with the magic ``"  V1"``;
* a command is one line ending in ``\\n``, trimmed of surrounding whitespace and split on
  single spaces; ``IDENTIFY`` is followed by ``<int32 BE size><JSON body>``;
* every answer, success or error, is ``<int32 BE size><data>`` with **no** frame type;
* every error is fatal: the text ``<CODE> <desc>`` is sent and the connection closed.
"""

from __future__ import annotations

import json
import re
import struct
from dataclasses import dataclass
from typing import Any, Iterator

from ..gostrconv import go_json_string
from .names import is_valid_channel_name, is_valid_topic_name

__all__ = [
    "MAGIC_V1", "LookupdError", "BadMagic", "BAD_PROTOCOL_RESPONSE", "OK_RESPONSE",
    "Magic", "Ping", "IdentifyCmd", "Register", "Unregister",
    "ServerParser", "ResponseDecoder", "ResponseTooBig",
    "encode_response", "encode_ping", "encode_identify", "encode_register",
    "encode_unregister", "command_string",
    "parse_identify_body", "identify_response", "parse_peer_info", "format_peer_info",
    "LookupdPeerInfo", "IDENTIFY_FIELDS", "go_json_str",
]

MAGIC_V1 = b"  V1"

_SIZE = struct.Struct(">i")
_pack_size = _SIZE.pack
_unpack_size_from = _SIZE.unpack_from

# Go's unicode.IsSpace (strings.TrimSpace)
_WS = ("\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
       "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000")


class LookupdError(Exception):
    """A V1 protocol error; all are fatal. ``str(e)`` / :meth:`data` give the wire text
    ``<code> <desc>``; ``parent`` is the underlying cause for the server log (or None)."""

    def __init__(self, code: str, desc: str, parent: str | None = None):
        super().__init__(code, desc)
        self.code = code
        self.desc = desc
        self.parent = parent

    def __str__(self) -> str:
        return f"{self.code} {self.desc}"

    def data(self) -> bytes:
        return str(self).encode("utf-8", "surrogateescape")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LookupdError):
            return NotImplemented
        return (self.code, self.desc) == (other.code, other.desc)

    __hash__ = Exception.__hash__


class BadMagic(Exception):
    """The first four bytes were not ``"  V1"``; ``magic`` holds them. The server
    answers :data:`BAD_PROTOCOL_RESPONSE` and closes."""

    def __init__(self, magic: bytes):
        super().__init__(magic)
        self.magic = magic


BAD_PROTOCOL_RESPONSE = _pack_size(len(b"E_BAD_PROTOCOL")) + b"E_BAD_PROTOCOL"


# ---------------------------------------------------------------------------
# commands (parsed, server side)
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Magic:
    """The client sent the right magic (emitted once, so the server can log it)."""
    magic: bytes


@dataclass(frozen=True)
class Ping:
    pass


@dataclass(frozen=True)
class IdentifyCmd:
    body: bytes


@dataclass(frozen=True)
class Register:
    topic: str
    channel: str   # "" when none


@dataclass(frozen=True)
class Unregister:
    topic: str
    channel: str   # "" when none


def _text(b: bytes) -> str:
    return b.decode("utf-8", "surrogateescape")


def _topic_chan(command: str, params: list[str]) -> tuple[str, str]:
    """getTopicChan: validation in upstream's order."""
    if not params:
        raise LookupdError("E_INVALID", f"{command} insufficient number of params")
    topic = params[0]
    channel = params[1] if len(params) >= 2 else ""
    if not is_valid_topic_name(topic):
        raise LookupdError("E_BAD_TOPIC", f"{command} topic name '{topic}' is not valid")
    if channel != "" and not is_valid_channel_name(channel):
        raise LookupdError("E_BAD_CHANNEL", f"{command} channel name '{channel}' is not valid")
    return topic, channel


class ServerParser:
    """Incremental parser of what an nsqd sends to nsqlookupd.

    ``feed(data)`` buffers bytes; ``events()`` then yields, **lazily**, the events
    completed so far: :class:`Magic` (once, when ``expect_magic``), :class:`Ping`,
    :class:`IdentifyCmd`, :class:`Register`, :class:`Unregister`, or — last, after which
    the parser is dead — a :class:`LookupdError` (or :class:`BadMagic`) instance.
    Consume them one at a time and apply each before asking for the next: the server
    must set :attr:`identified` once an IDENTIFY succeeded, which decides ``cannot
    IDENTIFY again`` (checked before the body is read) and ``client must IDENTIFY`` for
    the (UN)REGISTER lines that follow in the same chunk.
    ``feed_eof()`` returns the error a half-received IDENTIFY body produces (a
    half-received command line is dropped silently, as upstream).
    ``parse(data)`` = feed + list(events()) for callers that don't IDENTIFY mid-chunk.
    """

    __slots__ = ("_buf", "_scan", "_state", "_need", "identified", "dead", "expect_magic")

    # states
    _MAGIC, _LINE, _ISIZE, _IBODY = range(4)

    def __init__(self, expect_magic: bool = True):
        self._buf = bytearray()
        self._scan = 0          # where to resume searching for "\n"
        self._state = self._MAGIC if expect_magic else self._LINE
        self._need = 0          # IDENTIFY body size
        self.identified = False
        self.dead = False
        self.expect_magic = expect_magic

    def feed(self, data: bytes) -> None:
        if not self.dead:
            self._buf += data

    def events(self) -> Iterator[Any]:
        return self._events()

    def parse(self, data: bytes) -> list:
        self.feed(data)
        return list(self._events())

    @property
    def pending(self) -> int:
        """Bytes received but not yet consumed (a partial magic, line or body)."""
        return len(self._buf)

    def feed_eof(self) -> list:
        if self.dead:
            return []
        self.dead = True
        if self._state == self._ISIZE:
            return [LookupdError("E_BAD_BODY", "IDENTIFY failed to read body size", "EOF")]
        if self._state == self._IBODY:
            return [LookupdError("E_BAD_BODY", "IDENTIFY failed to read body",
                                 "unexpected EOF")]
        return []

    def _fail(self, err: Exception) -> Exception:
        self.dead = True
        self._buf = bytearray()
        return err

    def _events(self) -> Iterator[Any]:
        buf = self._buf
        while not self.dead:
            state = self._state
            if state == self._MAGIC:
                if len(buf) < 4:
                    return
                magic = bytes(buf[:4])
                del buf[:4]
                if magic != MAGIC_V1:
                    yield self._fail(BadMagic(magic))
                    return
                self._state = self._LINE
                yield Magic(magic)
            elif state == self._LINE:
                nl = buf.find(b"\n", self._scan)
                if nl < 0:
                    self._scan = len(buf)
                    return
                line = _text(bytes(buf[:nl])).strip(_WS)
                del buf[:nl + 1]
                self._scan = 0
                try:
                    ev = self._command(line)
                except LookupdError as e:
                    yield self._fail(e)
                    return
                if ev is not None:
                    yield ev
            elif state == self._ISIZE:
                if len(buf) < 4:
                    return
                (size,) = _unpack_size_from(buf, 0)
                del buf[:4]
                if size < 0:
                    # upstream panics in make([]byte, size); answer as a body read failure
                    yield self._fail(LookupdError("E_BAD_BODY", "IDENTIFY failed to read body",
                                                  f"negative body size {size}"))
                    return
                self._need = size
                self._state = self._IBODY
            else:  # _IBODY
                need = self._need
                if len(buf) < need:
                    return
                body = bytes(buf[:need])
                del buf[:need]
                self._state = self._LINE
                yield IdentifyCmd(body)

    def _command(self, line: str):
        params = line.split(" ")
        name = params[0]
        if name == "PING":
            return Ping()
        if name == "IDENTIFY":
            if self.identified:
                raise LookupdError("E_INVALID", "cannot IDENTIFY again")
            self._state = self._ISIZE
            return None
        if name == "REGISTER" or name == "UNREGISTER":
            if not self.identified:
                raise LookupdError("E_INVALID", "client must IDENTIFY")
            topic, channel = _topic_chan(name, params[1:])
            return Register(topic, channel) if name == "REGISTER" else Unregister(topic, channel)
        raise LookupdError("E_INVALID", f"invalid command {name}")


# ---------------------------------------------------------------------------
# IDENTIFY body (Go encoding/json into PeerInfo)
# ---------------------------------------------------------------------------

IDENTIFY_FIELDS = {
    "remote_address": str, "hostname": str, "broadcast_address": str,
    "tcp_port": int, "http_port": int, "version": str,
}
"""PeerInfo's exported JSON fields and their Go kinds (``int`` is int64)."""

_INT64_MIN = -(1 << 63)
_INT64_MAX = (1 << 63) - 1


_SURROGATES = re.compile("[\ud800-\udfff]")


class _IntLiteral:
    """A JSON number kept as its literal so Go's int rules can be applied."""
    __slots__ = ("text",)

    def __init__(self, text: str):
        self.text = text


def _reject_constant(name: str):
    raise ValueError(f"invalid character '{name[0]}' looking for beginning of value")


def _go_fold(s: str) -> str:
    """Go's json field-name folding (simple case folding incl. the Kelvin sign and long s)."""
    return s.replace("\u212a", "k").replace("\u017f", "s").lower()


def _go_kind(v: Any) -> str:
    if v is True or v is False:
        return "bool"
    if isinstance(v, str):
        return "string"
    if isinstance(v, _IntLiteral) or isinstance(v, float):
        return "number"
    if isinstance(v, list):
        return "array"
    if isinstance(v, dict) or isinstance(v, tuple):
        return "object"
    return "null"


def parse_identify_body(body: bytes) -> dict:
    """Decode an IDENTIFY body like Go's ``json.Unmarshal`` into PeerInfo, then check
    the required fields. Returns ``{remote_address, hostname, broadcast_address,
    tcp_port, http_port, version}`` (zero values for absent keys; ``remote_address``
    is the client's to overwrite).

    Raises LookupdError ``E_BAD_BODY IDENTIFY failed to decode JSON body`` (invalid JSON,
    a non-object, or a known key of the wrong type / out-of-range int) or
    ``E_BAD_BODY IDENTIFY missing fields``. Key matching is case-insensitive (exact
    match preferred), unknown keys are ignored, the last duplicate wins.
    """
    def bad(parent: str) -> LookupdError:
        return LookupdError("E_BAD_BODY", "IDENTIFY failed to decode JSON body", parent)

    text = body.decode("utf-8", "replace")  # Go replaces invalid UTF-8 with U+FFFD
    try:
        doc = json.loads(text, object_pairs_hook=tuple, parse_int=_IntLiteral,
                         parse_float=_IntLiteral, parse_constant=_reject_constant)
    except ValueError as e:
        if not text.strip():
            raise bad("unexpected end of JSON input") from None
        raise bad(str(e)) from None
    out: dict[str, Any] = {"remote_address": "", "hostname": "", "broadcast_address": "",
                           "tcp_port": 0, "http_port": 0, "version": ""}
    if doc is None:
        pass
    elif not isinstance(doc, tuple):
        raise bad(f"json: cannot unmarshal {_go_kind(doc)} into Go value of type "
                  "nsqlookupd.PeerInfo")
    else:
        first_err = None
        for key, value in doc:
            field = key if key in IDENTIFY_FIELDS else None
            if field is None:
                folded = _go_fold(key)
                for f in IDENTIFY_FIELDS:
                    if f == folded:
                        field = f
                        break
            if field is None or value is None:
                continue
            kind = IDENTIFY_FIELDS[field]
            err = None
            if kind is str:
                if isinstance(value, str):
                    out[field] = _SURROGATES.sub("\ufffd", value)
                else:
                    err = f"json: cannot unmarshal {_go_kind(value)} into Go struct field " \
                          f"PeerInfo.{field} of type string"
            else:
                lit = value.text if isinstance(value, _IntLiteral) else None
                n = None
                if lit is not None and all(c not in lit for c in ".eE"):
                    n = int(lit)
                    if n < _INT64_MIN or n > _INT64_MAX:
                        n = None
                if n is not None:
                    out[field] = n
                elif lit is not None:
                    err = f"json: cannot unmarshal number {lit} into Go struct field " \
                          f"PeerInfo.{field} of type int"
                else:
                    err = f"json: cannot unmarshal {_go_kind(value)} into Go struct field " \
                          f"PeerInfo.{field} of type int"
            if err is not None and first_err is None:
                first_err = err
        if first_err is not None:
            raise bad(first_err)
    if (out["broadcast_address"] == "" or out["tcp_port"] == 0 or out["http_port"] == 0
            or out["version"] == ""):
        raise LookupdError("E_BAD_BODY", "IDENTIFY missing fields")
    return out


# ---------------------------------------------------------------------------
# JSON the Go way (compact, sorted map keys, HTML-safe escapes)
# ---------------------------------------------------------------------------

go_json_str = go_json_string      # one Go-JSON string encoder for the project


def identify_response(broadcast_address: str, hostname: str, http_port: int, tcp_port: int,
                      version: str) -> bytes:
    """nsqlookupd's IDENTIFY answer (a Go map: keys sorted)."""
    return (f'{{"broadcast_address":{go_json_str(broadcast_address)},'
            f'"hostname":{go_json_str(hostname)},"http_port":{int(http_port)},'
            f'"tcp_port":{int(tcp_port)},"version":{go_json_str(version)}}}'
            ).encode("utf-8")


# ---------------------------------------------------------------------------
# encoding (client side) and responses
# ---------------------------------------------------------------------------

def encode_response(data: bytes) -> bytes:
    """``<int32 size><data>`` — every V1 answer, success or error."""
    return _pack_size(len(data)) + data


OK_RESPONSE = encode_response(b"OK")


def _enc(s: str | bytes) -> bytes:
    return s if isinstance(s, bytes) else s.encode("utf-8", "surrogateescape")


def encode_ping() -> bytes:
    return b"PING\n"


def encode_identify(info: dict | bytes) -> bytes:
    """``IDENTIFY\\n<size><json>``; a dict is encoded with sorted keys like go-nsq."""
    if isinstance(info, dict):
        body = json.dumps(info, sort_keys=True, separators=(",", ":"),
                          ensure_ascii=False).encode("utf-8", "surrogateescape")
    else:
        body = bytes(info)
    return b"IDENTIFY\n" + _pack_size(len(body)) + body


def encode_register(topic: str, channel: str | None = None) -> bytes:
    if channel:
        return b"REGISTER " + _enc(topic) + b" " + _enc(channel) + b"\n"
    return b"REGISTER " + _enc(topic) + b"\n"


def encode_unregister(topic: str, channel: str | None = None) -> bytes:
    if channel:
        return b"UNREGISTER " + _enc(topic) + b" " + _enc(channel) + b"\n"
    return b"UNREGISTER " + _enc(topic) + b"\n"


def command_string(name: str, topic: str | None = None, channel: str | None = None) -> str:
    """go-nsq ``Command.String()``: ``REGISTER t c`` / ``UNREGISTER t`` / ``PING``."""
    params = [p for p in (topic, channel) if p]
    return name + (" " + " ".join(params) if params else "")


class ResponseTooBig(Exception):
    """A response whose size field exceeds the reader's limit (nsqd: --max-body-size)."""

    def __init__(self, size: int, limit: int):
        super().__init__(f"response body size ({size}) is greater than limit ({limit})")
        self.size = size
        self.limit = limit


class ResponseDecoder:
    """Client-side decoder of size-prefixed V1 responses.

    ``feed(data)`` then ``responses()`` yields each complete response body. A size above
    ``max_size`` (when given) or below 0 raises :class:`ResponseTooBig` / ValueError.
    """

    __slots__ = ("_buf", "max_size")

    def __init__(self, max_size: int | None = None):
        self._buf = bytearray()
        self.max_size = max_size

    def feed(self, data: bytes) -> None:
        self._buf += data

    def responses(self) -> list[bytes]:
        out = []
        buf = self._buf
        while len(buf) >= 4:
            (size,) = _unpack_size_from(buf, 0)
            if size < 0:
                raise ValueError(f"invalid response size {size}")
            if self.max_size is not None and size > self.max_size:
                raise ResponseTooBig(size, self.max_size)
            if len(buf) < 4 + size:
                break
            out.append(bytes(buf[4:4 + size]))
            del buf[:4 + size]
        return out


@dataclass
class LookupdPeerInfo:
    """What nsqd keeps from an nsqlookupd IDENTIFY answer (go ``peerInfo``)."""
    tcp_port: int = 0
    http_port: int = 0
    version: str = ""
    broadcast_address: str = ""


def parse_peer_info(data: bytes) -> LookupdPeerInfo:
    """Decode nsqlookupd's IDENTIFY answer; raises ValueError if it is not a JSON object
    with fields of the right types."""
    doc = json.loads(data.decode("utf-8", "replace"))
    if doc is None:
        return LookupdPeerInfo()
    if not isinstance(doc, dict):
        raise ValueError("IDENTIFY response is not a JSON object")
    info = LookupdPeerInfo()
    for key, value in doc.items():
        f = _go_fold(key)
        if value is None:
            continue
        if f in ("tcp_port", "http_port"):
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"bad {f} {value!r}")
            setattr(info, f, value)
        elif f in ("version", "broadcast_address"):
            if not isinstance(value, str):
                raise ValueError(f"bad {f} {value!r}")
            setattr(info, f, value)
    return info


def format_peer_info(info: LookupdPeerInfo) -> str:
    """Go ``%+v`` of nsqd's peerInfo struct."""
    return (f"{{TCPPort:{info.tcp_port} HTTPPort:{info.http_port} Version:{info.version} "
            f"BroadcastAddress:{info.broadcast_address}}}")
