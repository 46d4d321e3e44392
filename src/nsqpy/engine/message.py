"""How the engine holds a message: as the exact bytes of its next delivery.

A queued message (in a topic's or channel's memory queue, in the deferred heap) is one
``bytes`` object: the complete message frame its next consumer will receive::

    [size int32][frame type 2][timestamp int64][attempts uint16][id 16 bytes][body]

with ``attempts`` already counting that next delivery.  Delivering is then appending
that object to the connection's output (no encoding, no copy), every channel of a
topic shares the one object, and a queued 200-byte message costs its 267 bytes plus a
queue slot.  The disk queues store upstream's 26+N byte record (attempts so far, no
frame header); :func:`to_record` and :func:`from_record` convert at that boundary.

A delivered message is tracked by its channel (an in-flight tuple holding the frame
sent) until it is finished, requeued or times out.
"""
import struct

FRAME_TYPE_MESSAGE = 2
FRAME_OVERHEAD = 8 + 26              # frame header + message header
_FRAME_HEAD = struct.Struct(">iiqH")  # size, frame type, timestamp, attempts (+ id, body)
_pack_head = _FRAME_HEAD.pack
RECORD_HEAD = struct.Struct(">qH")    # a disk record: timestamp, attempts (+ id, body)
_unpack_record_head = RECORD_HEAD.unpack_from
_unpack_ts = struct.Struct(">q").unpack_from


def frame_head(body_len: int, timestamp: int) -> bytes:
    """The 18 bytes before the id of a freshly published message's frame (attempts 1:
    ready for its first delivery); ``frame_head(len(body), ts) + id + body``."""
    return _pack_head(body_len + 30, FRAME_TYPE_MESSAGE, timestamp, 1)


def frame_attempts(frame: bytes) -> int:
    """Deliveries the frame counts (including the one it is ready for)."""
    return (frame[16] << 8) | frame[17]


def frame_timestamp(frame: bytes) -> int:
    return _unpack_ts(frame, 8)[0]


def next_delivery(frame: bytes) -> bytes:
    """The frame of a message delivered before, for its next delivery (attempts + 1;
    16 bits like Go's uint16)."""
    attempts = (frame_attempts(frame) + 1) & 0xFFFF
    return frame[:16] + attempts.to_bytes(2, "big") + frame[18:]


def to_record(frame: bytes) -> bytes:
    """The disk record of a queued frame: attempts so far (one less than the frame's)."""
    attempts = (frame_attempts(frame) - 1) & 0xFFFF
    return frame[8:16] + attempts.to_bytes(2, "big") + frame[18:]


def from_record(record: bytes) -> bytes:
    """A disk record as a frame ready for the next delivery; ValueError if too short."""
    if len(record) < 26:
        raise ValueError("invalid message buffer size (%d)" % len(record))
    ts, attempts = _unpack_record_head(record)
    return _pack_head(len(record) + 4, FRAME_TYPE_MESSAGE, ts, (attempts + 1) & 0xFFFF) \
        + record[10:]
