"""Client-side command encoders (tcp-protocol.md §4, §6): bytes ready to write."""

from __future__ import annotations

import json
import struct

__all__ = ["MAGIC_V2", "encode_identify", "encode_auth", "encode_sub", "encode_rdy",
           "encode_fin", "encode_req", "encode_touch", "encode_cls", "encode_nop",
           "encode_pub", "encode_mpub", "encode_dpub"]

MAGIC_V2 = b"  V2"

_pack_i32 = struct.Struct(">i").pack


def _b(s) -> bytes:
    return s.encode("utf-8") if isinstance(s, str) else bytes(s)


def encode_identify(data: dict) -> bytes:
    body = json.dumps(data, separators=(",", ":")).encode("utf-8")
    return b"IDENTIFY\n" + _pack_i32(len(body)) + body


def encode_auth(secret) -> bytes:
    secret = _b(secret)
    return b"AUTH\n" + _pack_i32(len(secret)) + secret


def encode_sub(topic, channel) -> bytes:
    return b"SUB " + _b(topic) + b" " + _b(channel) + b"\n"


def encode_rdy(count: int) -> bytes:
    return b"RDY %d\n" % count


def encode_fin(msg_id: bytes) -> bytes:
    return b"FIN " + msg_id + b"\n"


def encode_req(msg_id: bytes, timeout_ms: int) -> bytes:
    return b"REQ " + msg_id + b" %d\n" % timeout_ms


def encode_touch(msg_id: bytes) -> bytes:
    return b"TOUCH " + msg_id + b"\n"


def encode_cls() -> bytes:
    return b"CLS\n"


def encode_nop() -> bytes:
    return b"NOP\n"


def encode_pub(topic, body: bytes) -> bytes:
    return b"PUB " + _b(topic) + b"\n" + _pack_i32(len(body)) + body


def encode_mpub(topic, bodies) -> bytes:
    parts = [b"", _pack_i32(len(bodies))]
    total = 4
    for body in bodies:
        parts.append(_pack_i32(len(body)))
        parts.append(body)
        total += 4 + len(body)
    parts[0] = b"MPUB " + _b(topic) + b"\n" + _pack_i32(total)
    return b"".join(parts)


def encode_dpub(topic, defer_ms: int, body: bytes) -> bytes:
    return b"DPUB " + _b(topic) + b" %d\n" % defer_ms + _pack_i32(len(body)) + body
