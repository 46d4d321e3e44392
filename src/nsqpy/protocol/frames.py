"""Server -> client framing (spec tcp-protocol §2).

``size(int32 BE) = 4 + len(data)``, ``frame_type(int32 BE)``, ``data``.
"""

from __future__ import annotations

import struct

from .errors import ProtocolError

__all__ = [
    "FRAME_TYPE_RESPONSE", "FRAME_TYPE_ERROR", "FRAME_TYPE_MESSAGE",
    "encode_frame", "encode_response", "encode_error", "encode_message_frame",
    "OK_FRAME", "HEARTBEAT_FRAME", "CLOSE_WAIT_FRAME", "HEARTBEAT_DATA",
    "FrameDecoder", "HTTP_FRAME_SIZE",
]

FRAME_TYPE_RESPONSE = 0
FRAME_TYPE_ERROR = 1
FRAME_TYPE_MESSAGE = 2

HEARTBEAT_DATA = b"_heartbeat_"
#: "HTTP" read as an int32: what a client sees when it connects to an HTTP port.
HTTP_FRAME_SIZE = 1213486160

_FRAME_HDR = struct.Struct(">ii")
_pack_hdr = _FRAME_HDR.pack
_unpack_hdr_from = _FRAME_HDR.unpack_from
_unpack_size_from = struct.Struct(">i").unpack_from
# frame header + message header except the id: size, type, timestamp, attempts, id
_MSG_FRAME_HDR = struct.Struct(">iiqH16s")
_pack_msg_hdr = _MSG_FRAME_HDR.pack


def encode_frame(frame_type: int, data: bytes) -> bytes:
    return _pack_hdr(4 + len(data), frame_type) + data


def encode_response(data: bytes) -> bytes:
    return _pack_hdr(4 + len(data), FRAME_TYPE_RESPONSE) + data


def encode_error(data: bytes) -> bytes:
    return _pack_hdr(4 + len(data), FRAME_TYPE_ERROR) + data


def encode_message_frame(timestamp_ns: int, attempts: int, msg_id: bytes, body: bytes) -> bytes:
    """A whole message frame: frame header + 26-byte message header + body.

    ``attempts`` is truncated to 16 bits (Go's ``uint16``).
    """
    return _pack_msg_hdr(30 + len(body), 2, timestamp_ns, attempts & 0xFFFF, msg_id) + body


OK_FRAME = encode_response(b"OK")
HEARTBEAT_FRAME = encode_response(HEARTBEAT_DATA)
CLOSE_WAIT_FRAME = encode_response(b"CLOSE_WAIT")


class FrameDecoder:
    """Incremental client-side frame decoder.

    ``max_frame_size`` (optional) bounds the accepted ``size`` field; a size
    below 4 (no room for the frame type) is always rejected. Errors are raised
    as :class:`ProtocolError` with code ``E_BAD_FRAME``; the decoder is unusable
    afterwards.
    """

    __slots__ = ("_buf", "_pos", "max_frame_size")

    def __init__(self, max_frame_size: int | None = None) -> None:
        self._buf = bytearray()
        self._pos = 0
        self.max_frame_size = max_frame_size

    def feed(self, data: bytes) -> None:
        buf = self._buf
        pos = self._pos
        if pos:
            if pos >= len(buf):
                buf.clear()
                self._pos = 0
            elif pos > 65536:
                del buf[:pos]
                self._pos = 0
        buf += data

    def buffered(self) -> int:
        """Number of bytes received but not yet returned as frames."""
        return len(self._buf) - self._pos

    def next_frame(self) -> tuple[int, bytes] | None:
        buf = self._buf
        pos = self._pos
        avail = len(buf) - pos
        if avail < 4:
            return None
        size = _unpack_size_from(buf, pos)[0]
        if size < 4 or (self.max_frame_size is not None and size > self.max_frame_size):
            if size == HTTP_FRAME_SIZE:
                raise ProtocolError("E_BAD_FRAME", "invalid frame size %d "
                                    "(tried connecting to an HTTP port?)" % size)
            raise ProtocolError("E_BAD_FRAME", "invalid frame size %d" % size)
        if avail < 4 + size:
            return None
        frame_type = _unpack_size_from(buf, pos + 4)[0]
        end = pos + 4 + size
        data = bytes(buf[pos + 8:end])
        self._pos = end
        return frame_type, data

    def frames(self) -> list[tuple[int, bytes]]:
        out = []
        nf = self.next_frame
        while True:
            f = nf()
            if f is None:
                return out
            out.append(f)
