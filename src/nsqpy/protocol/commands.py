"""V2 commands: server-side incremental parser and client-side encoders.

Spec: tcp-protocol §4-§6. The parser is sans-IO: the server feeds it the bytes
it reads after the 4-byte magic and pulls command objects out of it.

Error strings and their check order reproduce nsqd v1.3.0 byte for byte
(state / TLS / auth checks are the server's job, done through ``precheck``).
Deliberate details:

* Numbers in command lines (RDY count, REQ/DPUB timeout) are parsed like Go's
  ``protocol.ByteToBase10``: ASCII digits only, empty string = 0, and values
  wrap modulo 2**64 (no overflow error); RDY then reinterprets as int64 and
  DPUB/REQ multiply by 1e6 in int64 nanoseconds, as upstream does.
* A command line longer than ``max_body_size + 4096`` bytes (with or without its
  newline) raises ``E_INVALID invalid command line too long (> N bytes)``. (Go's
  bufio reader silently drops a connection whose line exceeds 16 KiB; we use
  the brief's more generous bound and report the error.)
* ``precheck(name, args)`` receives the command name and the parameters *after*
  the name. If it returns :data:`SKIP` the command is dropped: commands without
  a body are discarded without validating their parameters (what nsqd does for
  RDY while closing); a command with a body is still fully parsed (and
  validated, since the framing depends on the sizes), then discarded.
* ``mpub_precheck(topic)`` (optional) runs for MPUB after the topic name was
  validated and before any body byte is read, which is where nsqd checks auth
  and creates the topic (so ``E_BAD_TOPIC`` wins over ``E_AUTH_FIRST``).
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

from .errors import ProtocolError
from .goquote import go_quote
from .names import is_valid_name

__all__ = [
    "MAGIC_V2", "SKIP", "Limits", "CommandParser", "Command",
    "Identify", "Auth", "Sub", "Rdy", "Fin", "Req", "Touch", "Cls", "Nop",
    "Pub", "Mpub", "Dpub", "COMMAND_CLASSES", "parse_base10",
    "encode_identify", "encode_auth", "encode_sub", "encode_rdy", "encode_fin",
    "encode_req", "encode_touch", "encode_cls", "encode_nop", "encode_pub",
    "encode_mpub", "encode_dpub",
]

from .encoders import MAGIC_V2

_int32 = struct.Struct(">i")
_unpack_i32 = _int32.unpack_from

_MASK64 = (1 << 64) - 1
_MAX_I64 = (1 << 63) - 1


class _SkipType:
    __slots__ = ()

    def __repr__(self) -> str:
        return "SKIP"


#: Returned by ``precheck`` to drop the current command silently.
SKIP = _SkipType()


# --------------------------------------------------------------------------- commands


class Command:
    """Base class: value equality and a readable repr for tests/logs."""

    __slots__ = ()
    NAME = b""

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, s) == getattr(other, s) for s in self.__slots__)

    def __repr__(self) -> str:
        fields = ", ".join(f"{s}={getattr(self, s, None)!r}" for s in self.__slots__)
        return f"{type(self).__name__}({fields})"

    __hash__ = None  # mutable, compared by value


class Identify(Command):
    __slots__ = ("body",)
    NAME = b"IDENTIFY"

    def __init__(self, body: bytes) -> None:
        self.body = body


class Auth(Command):
    __slots__ = ("secret",)
    NAME = b"AUTH"

    def __init__(self, secret: bytes) -> None:
        self.secret = secret


class Sub(Command):
    __slots__ = ("topic", "channel")
    NAME = b"SUB"

    def __init__(self, topic: str, channel: str) -> None:
        self.topic = topic
        self.channel = channel


class Rdy(Command):
    __slots__ = ("count",)
    NAME = b"RDY"

    def __init__(self, count: int) -> None:
        self.count = count


_FIN_RUN = re.compile(rb"(?:FIN [^ \n]{15}[^ \n\r]\n)+")
"""Consecutive plain FIN lines (see :meth:`CommandParser.take_fins`)."""


class Fin(Command):
    __slots__ = ("msg_id",)
    NAME = b"FIN"

    def __init__(self, msg_id: bytes) -> None:
        self.msg_id = msg_id


class Req(Command):
    __slots__ = ("msg_id", "timeout_ms")
    NAME = b"REQ"

    def __init__(self, msg_id: bytes, timeout_ms: int) -> None:
        self.msg_id = msg_id
        self.timeout_ms = timeout_ms


class Touch(Command):
    __slots__ = ("msg_id",)
    NAME = b"TOUCH"

    def __init__(self, msg_id: bytes) -> None:
        self.msg_id = msg_id


class Cls(Command):
    __slots__ = ()
    NAME = b"CLS"


class Nop(Command):
    __slots__ = ()
    NAME = b"NOP"


class Pub(Command):
    __slots__ = ("topic", "body")
    NAME = b"PUB"

    def __init__(self, topic: str, body: bytes) -> None:
        self.topic = topic
        self.body = body


class Mpub(Command):
    __slots__ = ("topic", "bodies")
    NAME = b"MPUB"

    def __init__(self, topic: str, bodies: list) -> None:
        self.topic = topic
        self.bodies = bodies


class Dpub(Command):
    __slots__ = ("topic", "defer_ms", "body")
    NAME = b"DPUB"

    def __init__(self, topic: str, defer_ms: int, body: bytes) -> None:
        self.topic = topic
        self.defer_ms = defer_ms
        self.body = body


COMMAND_CLASSES = (Identify, Auth, Sub, Rdy, Fin, Req, Touch, Cls, Nop, Pub, Mpub, Dpub)
_NOP = Nop()
_CLS = Cls()
_BODY_COMMANDS = frozenset({b"IDENTIFY", b"AUTH", b"PUB", b"MPUB", b"DPUB"})


# --------------------------------------------------------------------------- helpers


@dataclass(slots=True)
class Limits:
    """Server limits the parser validates against (read once by the parser)."""

    max_msg_size: int = 1048576
    max_body_size: int = 5242880
    max_rdy_count: int = 2500
    max_req_timeout_ms: int = 3600000


def _raw(b: bytes) -> str:
    """Raw client bytes for a ``%s`` in an error string (round-trips via frame_data)."""
    return b.decode("utf-8", "surrogateescape")


def parse_base10(b: bytes) -> int | None:
    """Go's ``protocol.ByteToBase10``: digits only ('' -> 0), result modulo 2**64.

    Returns None when a non-digit is present.
    """
    if b.isdigit():  # bytes.isdigit() is ASCII-only
        # 10**64 is a multiple of 2**64, so only the last 64 digits matter.
        if len(b) > 19:
            return int(b[-64:]) & _MASK64
        return int(b)
    if not b:
        return 0
    return None


def _ms_duration_ns(ms_u64: int) -> int:
    """``time.Duration(ms) * time.Millisecond`` with Go's int64 wrap-around."""
    ns = (ms_u64 * 1_000_000) & _MASK64
    return ns - (1 << 64) if ns > _MAX_I64 else ns


def _err(code: str, desc: str) -> ProtocolError:
    return ProtocolError(code, desc)


# --------------------------------------------------------------------------- parser


class CommandParser:
    """Incremental parser for the client -> server V2 command stream.

    Buffering: the current contiguous data is an immutable ``bytes`` with a
    read offset; data fed while unread bytes remain is queued as chunks and only
    joined once enough bytes for the next step (a line, a size, a body) are
    available, so large bodies arriving in many reads are copied O(1) times.
    """

    __slots__ = (
        "_buf", "_pos", "_chunks", "_chunks_len", "_nl_pending",
        "_precheck", "_mpub_precheck", "_handlers", "_resume", "_cmd", "_label",
        "_need", "_blob_attr", "_mpub_n", "_skip", "_dead",
        "max_msg_size", "max_body_size", "max_rdy_count", "max_req_timeout_ms",
        "max_line_size", "_max_msgs",
    )

    def __init__(self, limits: Limits | None = None, precheck=None, mpub_precheck=None) -> None:
        if limits is None:
            limits = Limits()
        self.max_msg_size = limits.max_msg_size
        self.max_body_size = limits.max_body_size
        self.max_rdy_count = limits.max_rdy_count
        self.max_req_timeout_ms = limits.max_req_timeout_ms
        self.max_line_size = limits.max_body_size + 4096
        self._max_msgs = (limits.max_body_size - 4) // 5
        self._precheck = precheck
        self._mpub_precheck = mpub_precheck
        self._buf = b""
        self._pos = 0
        self._chunks: list = []
        self._chunks_len = 0
        self._nl_pending = False
        self._resume = None
        self._cmd = None
        self._label = ""
        self._need = 0
        self._blob_attr = ""
        self._mpub_n = 0
        self._skip = False
        self._dead = False
        self._handlers = {
            b"FIN": self._line_fin,
            b"RDY": self._line_rdy,
            b"REQ": self._line_req,
            b"PUB": self._line_pub,
            b"MPUB": self._line_mpub,
            b"DPUB": self._line_dpub,
            b"NOP": self._line_nop,
            b"TOUCH": self._line_touch,
            b"SUB": self._line_sub,
            b"CLS": self._line_cls,
            b"AUTH": self._line_auth,
            b"IDENTIFY": self._line_identify,
        }

    # -- buffer management -------------------------------------------------------

    def feed(self, data: bytes) -> None:
        """Append received bytes (bytes-like; copied unless it is ``bytes``)."""
        if not data:
            return
        if not self._chunks and self._pos >= len(self._buf):
            self._buf = bytes(data)  # no copy for bytes
            self._pos = 0
        else:
            data = bytes(data)
            self._chunks.append(data)
            self._chunks_len += len(data)
            if not self._nl_pending and b"\n" in data:
                self._nl_pending = True

    def buffered(self) -> int:
        """Number of received bytes not yet consumed by returned commands."""
        return len(self._buf) - self._pos + self._chunks_len

    def _merge(self) -> None:
        parts = self._chunks
        buf = self._buf
        pos = self._pos
        if pos < len(buf):
            parts.insert(0, memoryview(buf)[pos:])
        self._buf = b"".join(parts)
        self._pos = 0
        self._chunks = []
        self._chunks_len = 0
        self._nl_pending = False

    def _ensure(self, n: int) -> bool:
        """Make ``n`` bytes contiguous at ``_pos`` if they have arrived."""
        if self._pos + n <= len(self._buf):
            return True
        if len(self._buf) - self._pos + self._chunks_len < n:
            return False
        self._merge()
        return True

    def _take(self, n: int):
        pos = self._pos
        end = pos + n
        buf = self._buf
        if end > len(buf):
            if not self._ensure(n):
                return None
            buf = self._buf
            pos = 0
            end = n
        self._pos = end
        return buf[pos:end]

    def _read_i32(self):
        pos = self._pos
        if pos + 4 > len(self._buf):
            if not self._ensure(4):
                return None
            pos = 0
        self._pos = pos + 4
        return _unpack_i32(self._buf, pos)[0]

    # -- main loop ----------------------------------------------------------------

    def next_command(self):
        """Return the next complete command, or None if more bytes are needed.

        Raises :class:`ProtocolError`; the parser must not be used afterwards.
        """
        if self._dead:
            raise ProtocolError("E_INVALID", "parser used after a fatal error")
        try:
            return self._next()
        except ProtocolError:
            self._dead = True
            raise

    def _next(self):
        handlers = self._handlers
        precheck = self._precheck
        while True:
            resume = self._resume
            if resume is not None:
                cmd = resume()
                if cmd is None:
                    return None
                if self._skip:
                    self._skip = False
                    continue
                return cmd

            buf = self._buf
            pos = self._pos
            nl = buf.find(b"\n", pos)
            if nl == pos + 20 and buf.startswith(b"FIN ", pos):
                # the hot path of a consumer: exactly "FIN <16-byte id>\n"
                mid = buf[pos + 4:nl]
                if b" " not in mid and mid[15] != 13:
                    self._pos = nl + 1
                    if precheck is not None:
                        precheck(b"FIN", None)
                    return Fin(mid)
            if nl < 0:
                if self._chunks and (self._nl_pending or self.buffered() > self.max_line_size):
                    self._merge()
                    continue
                if len(buf) - pos > self.max_line_size:
                    raise self._line_too_long()
                return None
            if nl - pos > self.max_line_size:
                raise self._line_too_long()
            end = nl
            if end > pos and buf[end - 1] == 13:
                end -= 1
            params = buf[pos:end].split(b" ")
            self._pos = nl + 1
            name = params[0]
            if precheck is not None and precheck(name, params[1:]) is SKIP:
                if name not in _BODY_COMMANDS:
                    continue
                self._skip = True
            handler = handlers.get(name)
            if handler is None:
                raise ProtocolError("E_INVALID", "invalid command " + _raw(name))
            cmd = handler(params)
            if cmd is None:
                return None
            if self._skip:
                self._skip = False
                continue
            return cmd

    def take_fins(self) -> list:
        """The ids of the plain ``FIN <16-byte id>\\n`` lines at the current position, in
        order, consumed (a consumer's hot path: one call for a whole read of FINs).
        Stops at anything else, which :meth:`next_command` then parses (so an id with a
        space, a newline or a trailing CR still gets the generic path's exact error).
        No precheck runs: the caller applies FIN's state checks before calling this."""
        if self._resume is not None or self._dead:
            return []
        buf = self._buf
        pos = self._pos
        m = _FIN_RUN.match(buf, pos)
        if m is None:
            return []
        end = m.end()
        self._pos = end
        return [buf[p + 4:p + 20] for p in range(pos, end, 21)]

    def eof_error(self) -> ProtocolError | None:
        """The error upstream sends when the stream ends inside a command's size or body
        (its ``io.ReadFull`` fails), or None when it ended between commands or in a line."""
        resume = self._resume
        if resume is None or self._dead:
            return None
        fn = resume.__func__
        label = self._label
        if fn is CommandParser._blob_size:
            return _err("E_BAD_BODY", "%s failed to read body size" % label)
        if fn is CommandParser._blob_body:
            return _err("E_BAD_BODY", "%s failed to read body" % label)
        if fn is CommandParser._msg_size:
            return _err("E_BAD_MESSAGE", "%s failed to read message body size" % label)
        if fn is CommandParser._msg_body:
            return _err("E_BAD_MESSAGE", "%s failed to read message body" % label)
        if fn is CommandParser._mpub_size:
            return _err("E_BAD_BODY", "MPUB failed to read body size")
        if fn is CommandParser._mpub_num:
            return _err("E_BAD_BODY", "MPUB failed to read message count")
        if self.buffered() < 4:
            return _err("E_BAD_MESSAGE", "MPUB failed to read message(%d) body size"
                        % len(self._cmd.bodies))
        return _err("E_BAD_MESSAGE", "MPUB failed to read message body")

    def _line_too_long(self) -> ProtocolError:
        return ProtocolError("E_INVALID", "invalid command line too long (> %d bytes)"
                             % self.max_line_size)

    # -- commands without body ----------------------------------------------------

    def _line_fin(self, params):
        if len(params) < 2:
            raise _err("E_INVALID", "FIN insufficient number of params")
        mid = params[1]
        if len(mid) != 16:
            raise _err("E_INVALID", "invalid message ID")
        return Fin(mid)

    def _line_touch(self, params):
        if len(params) < 2:
            raise _err("E_INVALID", "TOUCH insufficient number of params")
        mid = params[1]
        if len(mid) != 16:
            raise _err("E_INVALID", "invalid message ID")
        return Touch(mid)

    def _line_req(self, params):
        if len(params) < 3:
            raise _err("E_INVALID", "REQ insufficient number of params")
        mid = params[1]
        if len(mid) != 16:
            raise _err("E_INVALID", "invalid message ID")
        raw = params[2]
        ms = parse_base10(raw)
        if ms is None:
            raise _err("E_INVALID", "REQ could not parse timeout " + _raw(raw))
        if ms > 9_223_372_036_854:  # would wrap in Go's int64 nanoseconds
            ns = _ms_duration_ns(ms)
            ms = 0 if ns < 0 else ns // 1_000_000  # Go clamps negative durations to 0
        return Req(mid, ms)

    def _line_rdy(self, params):
        if len(params) > 1:
            raw = params[1]
            count = parse_base10(raw)
            if count is None:
                raise _err("E_INVALID", "RDY could not parse count " + _raw(raw))
            if count > _MAX_I64:
                count -= 1 << 64  # int64(uint64)
        else:
            count = 1
        if count < 0 or count > self.max_rdy_count:
            raise _err("E_INVALID", "RDY count %d out of range 0-%d" % (count, self.max_rdy_count))
        return Rdy(count)

    def _line_sub(self, params):
        if len(params) < 3:
            raise _err("E_INVALID", "SUB insufficient number of parameters")
        topic = params[1]
        if not is_valid_name(topic):
            raise _err("E_BAD_TOPIC", "SUB topic name %s is not valid" % go_quote(topic))
        channel = params[2]
        if not is_valid_name(channel):
            raise _err("E_BAD_CHANNEL", "SUB channel name %s is not valid" % go_quote(channel))
        return Sub(topic.decode("ascii"), channel.decode("ascii"))

    def _line_nop(self, params):
        return _NOP

    def _line_cls(self, params):
        return _CLS

    # -- IDENTIFY / AUTH ----------------------------------------------------------

    def _line_identify(self, params):
        self._cmd = Identify(b"")
        self._label = "IDENTIFY"
        self._blob_attr = "body"
        return self._blob_size()

    def _line_auth(self, params):
        if len(params) != 1:
            raise _err("E_INVALID", "AUTH invalid number of parameters")
        self._cmd = Auth(b"")
        self._label = "AUTH"
        self._blob_attr = "secret"
        return self._blob_size()

    def _blob_size(self):
        size = self._read_i32()
        if size is None:
            self._resume = self._blob_size
            return None
        if size > self.max_body_size:
            raise _err("E_BAD_BODY", "%s body too big %d > %d"
                       % (self._label, size, self.max_body_size))
        if size <= 0:
            raise _err("E_BAD_BODY", "%s invalid body size %d" % (self._label, size))
        self._need = size
        return self._blob_body()

    def _blob_body(self):
        body = self._take(self._need)
        if body is None:
            self._resume = self._blob_body
            return None
        self._resume = None
        cmd = self._cmd
        self._cmd = None
        setattr(cmd, self._blob_attr, body)
        return cmd

    # -- PUB / DPUB ---------------------------------------------------------------

    def _line_pub(self, params):
        if len(params) < 2:
            raise _err("E_INVALID", "PUB insufficient number of parameters")
        topic = params[1]
        if not is_valid_name(topic):
            raise _err("E_BAD_TOPIC", "PUB topic name %s is not valid" % go_quote(topic))
        self._label = "PUB"
        # Fast path: size and body already buffered.
        buf = self._buf
        pos = self._pos
        if pos + 4 <= len(buf):
            size = _unpack_i32(buf, pos)[0]
            if 0 < size <= self.max_msg_size and pos + 4 + size <= len(buf):
                self._pos = end = pos + 4 + size
                return Pub(topic.decode("ascii"), buf[pos + 4:end])
        self._cmd = Pub(topic.decode("ascii"), b"")
        return self._msg_size()

    def _line_dpub(self, params):
        if len(params) < 3:
            raise _err("E_INVALID", "DPUB insufficient number of parameters")
        topic = params[1]
        if not is_valid_name(topic):
            raise _err("E_BAD_TOPIC", "DPUB topic name %s is not valid" % go_quote(topic))
        raw = params[2]
        ms = parse_base10(raw)
        if ms is None:
            raise _err("E_INVALID", "DPUB could not parse timeout " + _raw(raw))
        ns = _ms_duration_ns(ms)
        if ns < 0 or ns > self.max_req_timeout_ms * 1_000_000:
            raise _err("E_INVALID", "DPUB timeout %d out of range 0-%d"
                       % (ms, self.max_req_timeout_ms))
        self._label = "DPUB"
        self._cmd = Dpub(topic.decode("ascii"), ns // 1_000_000, b"")
        return self._msg_size()

    def _msg_size(self):
        size = self._read_i32()
        if size is None:
            self._resume = self._msg_size
            return None
        if size <= 0:
            raise _err("E_BAD_MESSAGE", "%s invalid message body size %d" % (self._label, size))
        if size > self.max_msg_size:
            raise _err("E_BAD_MESSAGE", "%s message too big %d > %d"
                       % (self._label, size, self.max_msg_size))
        self._need = size
        return self._msg_body()

    def _msg_body(self):
        body = self._take(self._need)
        if body is None:
            self._resume = self._msg_body
            return None
        self._resume = None
        cmd = self._cmd
        self._cmd = None
        cmd.body = body
        return cmd

    # -- MPUB ---------------------------------------------------------------------

    def _line_mpub(self, params):
        if len(params) < 2:
            raise _err("E_INVALID", "MPUB insufficient number of parameters")
        topic = params[1]
        if not is_valid_name(topic):
            raise _err("E_BAD_TOPIC", "E_BAD_TOPIC MPUB topic name %s is not valid"
                       % go_quote(topic))
        name = topic.decode("ascii")
        if self._mpub_precheck is not None:
            self._mpub_precheck(name)
        self._cmd = Mpub(name, [])
        return self._mpub_size()

    def _mpub_size(self):
        size = self._read_i32()
        if size is None:
            self._resume = self._mpub_size
            return None
        if size <= 0:
            raise _err("E_BAD_BODY", "MPUB invalid body size %d" % size)
        if size > self.max_body_size:
            raise _err("E_BAD_BODY", "MPUB body too big %d > %d" % (size, self.max_body_size))
        return self._mpub_num()

    def _mpub_num(self):
        num = self._read_i32()
        if num is None:
            self._resume = self._mpub_num
            return None
        if num <= 0 or num > self._max_msgs:
            raise _err("E_BAD_BODY", "MPUB invalid message count %d" % num)
        self._mpub_n = num
        return self._mpub_msgs()

    def _mpub_msgs(self):
        cmd = self._cmd
        bodies = cmd.bodies
        append = bodies.append
        n = self._mpub_n
        max_msg = self.max_msg_size
        unpack = _unpack_i32
        while True:
            buf = self._buf
            pos = self._pos
            blen = len(buf)
            i = len(bodies)
            size = -1
            while i < n:
                if pos + 4 > blen:
                    size = -1
                    break
                size = unpack(buf, pos)[0]
                if size <= 0:
                    self._pos = pos
                    raise _err("E_BAD_MESSAGE", "MPUB invalid message(%d) body size %d"
                               % (i, size))
                if size > max_msg:
                    self._pos = pos
                    raise _err("E_BAD_MESSAGE", "MPUB message too big %d > %d"
                               % (size, max_msg))
                end = pos + 4 + size
                if end > blen:
                    break
                append(buf[pos + 4:end])
                pos = end
                i += 1
            self._pos = pos
            if i == n:
                self._resume = None
                self._cmd = None
                return cmd
            # Message i is incomplete: its size (4 bytes) or its body is missing.
            if not self._ensure(4 if size < 0 else 4 + size):
                self._resume = self._mpub_msgs
                return None


# Client-side encoders live in encoders.py; re-exported here for the contract.
from .encoders import (  # noqa: E402
    encode_auth, encode_cls, encode_dpub, encode_fin, encode_identify, encode_mpub, encode_nop,
    encode_pub, encode_rdy, encode_req, encode_sub, encode_touch,
)
