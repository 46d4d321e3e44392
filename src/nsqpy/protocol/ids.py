"""Snowflake-like message ID generation (spec tcp-protocol §3), sans-IO.

Bits 63..22 hold ``(now_ns >> 20) - 1288834974288``, bits 21..12 the node id and
bits 11..0 a per-time-unit sequence. IDs are rendered as 16 lowercase hex ASCII
bytes. On failure (clock went backwards, sequence exhausted within one time unit,
new id not greater than the previous one) :class:`IDGenerationError` is raised;
the caller sleeps (nsqd: 1 ms) and retries. The generator state is updated
exactly as Go's ``guidFactory.NewGUID`` does, including on failures.
"""

from __future__ import annotations

import time
import zlib

__all__ = ["IDGenerator", "IDGenerationError", "SEQ_HEX", "seq_hex", "default_node_id", "TWEPOCH",
           "ErrTimeBackwards", "ErrSequenceExpired", "ErrIDBackwards"]

TWEPOCH = 1288834974288  # (2012-10-28 16:23:42 UTC).UnixNano() >> 20
_NODE_ID_BITS = 10
_SEQUENCE_BITS = 12
_NODE_ID_SHIFT = _SEQUENCE_BITS
_TIMESTAMP_SHIFT = _SEQUENCE_BITS + _NODE_ID_BITS
_SEQUENCE_MASK = (1 << _SEQUENCE_BITS) - 1
_MASK64 = (1 << 64) - 1


class IDGenerationError(Exception):
    """ID generation failed; retry after a short sleep (nsqd sleeps 1 ms)."""


class ErrTimeBackwards(IDGenerationError):
    def __init__(self) -> None:
        super().__init__("time has gone backwards")


class ErrSequenceExpired(IDGenerationError):
    def __init__(self) -> None:
        super().__init__("sequence expired")


class ErrIDBackwards(IDGenerationError):
    def __init__(self) -> None:
        super().__init__("ID went backward")


class IDGenerator:
    """One generator per topic. ``clock`` returns Unix time in nanoseconds."""

    __slots__ = ("node_id", "_node_bits", "_clock", "_last_ts", "_sequence", "_last_id",
                 "_prefix", "_prefix_base")

    def __init__(self, node_id: int, clock=time.time_ns) -> None:
        if not 0 <= node_id < 1024:
            raise ValueError("node_id must be in [0, 1023]")
        self.node_id = node_id
        self._node_bits = node_id << _NODE_ID_SHIFT
        self._clock = clock
        self._last_ts = -1
        self._sequence = 0
        self._last_id = 0  # like Go: an id of 0 is never produced
        self._prefix = b""      # reserve(): the id prefix of ``_prefix_base`` (a time unit)
        self._prefix_base = -1

    def next_int(self) -> int:
        """The next id as an integer (raises :class:`IDGenerationError`)."""
        ts = self._clock() >> 20
        last_ts = self._last_ts
        if ts == last_ts:
            seq = (self._sequence + 1) & _SEQUENCE_MASK
            self._sequence = seq
            if seq == 0:
                raise ErrSequenceExpired()
        elif ts < last_ts:
            raise ErrTimeBackwards()
        else:
            seq = self._sequence = 0
        self._last_ts = ts
        new_id = (((ts - TWEPOCH) << _TIMESTAMP_SHIFT) | self._node_bits | seq) & _MASK64
        if new_id <= self._last_id:
            raise ErrIDBackwards()
        self._last_id = new_id
        return new_id

    def next_id(self) -> bytes:
        """The next id as 16 lowercase hex ASCII bytes (raises :class:`IDGenerationError`)."""
        return b"%016x" % self.next_int()

    def one(self) -> bytes:
        """The next id as 16 hex bytes, like :meth:`next_id` (raises the same errors):
        within the time unit of the last id, from the cached prefix."""
        ts = self._clock() >> 20
        if ts == self._last_ts:
            seq = self._sequence + 1
            base = self._prefix_base
            if seq <= _SEQUENCE_MASK and base >> _TIMESTAMP_SHIFT == ts - TWEPOCH:
                ident = base | seq
                if ident > self._last_id:
                    self._sequence = seq
                    self._last_id = ident
                    return self._prefix + (SEQ_HEX or seq_hex())[seq]
        prefix, seq, _ = self.reserve(1)
        return prefix + (SEQ_HEX or seq_hex())[seq]

    def reserve(self, n: int) -> tuple[bytes, int, int]:
        """Up to ``n`` consecutive ids of the current time unit in one call, as
        ``(prefix, first_seq, count)``: id ``i`` is ``prefix + SEQ_HEX[first_seq + i]``
        (the sequence is the last three hex digits).  The same ids, in the same order,
        as ``count`` calls of :meth:`next_id` within one time unit; raises
        :class:`IDGenerationError` like it (sleep and retry)."""
        ts = self._clock() >> 20
        last_ts = self._last_ts
        if ts == last_ts:
            first = self._sequence + 1
            if first > _SEQUENCE_MASK:
                self._sequence = 0
                raise ErrSequenceExpired()
        elif ts < last_ts:
            raise ErrTimeBackwards()
        else:
            first = 0
        self._last_ts = ts
        base = (((ts - TWEPOCH) << _TIMESTAMP_SHIFT) | self._node_bits) & _MASK64
        if base | first <= self._last_id:
            self._sequence = first           # as one failed next_id call leaves it
            raise ErrIDBackwards()
        count = min(n, _SEQUENCE_MASK + 1 - first)
        self._sequence = first + count - 1
        self._last_id = base | (first + count - 1)
        if base != self._prefix_base:
            self._prefix = (b"%016x" % base)[:13]
            self._prefix_base = base
        return self._prefix, first, count


SEQ_HEX: list = []
"""The last three hex digits of an id for each sequence number (see ``reserve``); filled
by :func:`seq_hex` on first use (180 KiB an idle nsqd need not hold)."""


def seq_hex() -> list:
    if not SEQ_HEX:
        SEQ_HEX.extend(b"%03x" % i for i in range(_SEQUENCE_MASK + 1))
    return SEQ_HEX


def default_node_id(hostname: str) -> int:
    """nsqd's default ``--node-id``: CRC-32 (IEEE) of MD5(hostname), mod 1024."""
    import hashlib
    digest = hashlib.md5(hostname.encode("utf-8", "surrogateescape")).digest()
    return zlib.crc32(digest) % 1024
