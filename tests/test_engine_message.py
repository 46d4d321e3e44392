"""The engine's queued-message form: a frame ready for its next delivery."""
import struct

import pytest

from nsqpy.engine.message import (frame_attempts, frame_head, frame_timestamp, from_record,
                                  next_delivery, to_record)
from nsqpy.protocol import encode_message_frame

MID = b"0123456789abcdef"
TS = 1_700_000_000_123_456_789


def new_frame(msg_id, body, ts):
    return frame_head(len(body), ts) + msg_id + body


def test_a_published_message_is_its_first_delivery_frame():
    assert new_frame(MID, b"body", TS) == encode_message_frame(TS, 1, MID, b"body")


def test_frame_accessors():
    frame = new_frame(MID, b"payload", TS)
    assert (frame[18:34], frame_attempts(frame), frame_timestamp(frame),
            frame[34:]) == (MID, 1, TS, b"payload")


def test_to_record_is_upstreams_disk_layout_with_attempts_so_far():
    frame = new_frame(MID, b"xyz", TS)
    assert to_record(frame) == struct.pack(">qH16s", TS, 0, MID) + b"xyz"


def test_from_record_counts_the_next_delivery():
    record = struct.pack(">qH16s", TS, 4, MID) + b"abc"
    assert from_record(record) == encode_message_frame(TS, 5, MID, b"abc")
    assert to_record(from_record(record)) == record


def test_from_record_rejects_short_records():
    with pytest.raises(ValueError, match="invalid message buffer size"):
        from_record(b"x" * 25)


def test_next_delivery_increments_attempts_and_wraps_at_16_bits():
    assert frame_attempts(next_delivery(new_frame(MID, b"", TS))) == 2
    wrapped = from_record(struct.pack(">qH16s", TS, 0xFFFE, MID))
    assert frame_attempts(wrapped) == 0xFFFF and frame_attempts(next_delivery(wrapped)) == 0
