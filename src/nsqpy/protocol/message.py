"""The 26+N byte message layout (spec tcp-protocol §3), also the disk record payload."""

from __future__ import annotations

import struct

__all__ = ["MSG_HEADER_SIZE", "MSG_ID_LENGTH", "encode_message", "decode_message"]

MSG_ID_LENGTH = 16
MSG_HEADER_SIZE = 26  # int64 timestamp + uint16 attempts + 16-byte id

_HEADER = struct.Struct(">qH16s")
_pack = _HEADER.pack
_unpack_from = _HEADER.unpack_from


def encode_message(timestamp_ns: int, attempts: int, msg_id: bytes, body: bytes) -> bytes:
    """``timestamp(int64 BE) attempts(uint16 BE) id(16) body``.

    ``attempts`` is truncated to 16 bits like Go's ``uint16``.
    """
    return _pack(timestamp_ns, attempts & 0xFFFF, msg_id) + body


def decode_message(data: bytes) -> tuple[int, int, bytes, bytes]:
    """Inverse of :func:`encode_message`: ``(timestamp_ns, attempts, msg_id, body)``."""
    if len(data) < MSG_HEADER_SIZE:
        raise ValueError(f"invalid message buffer size ({len(data)})")
    ts, attempts, msg_id = _unpack_from(data)
    return ts, attempts, msg_id, bytes(data[MSG_HEADER_SIZE:])
