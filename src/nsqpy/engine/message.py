"""One message as the engine holds it: a topic's copy or a channel's copy.

The wire/disk layout lives in :mod:`nsqpy.protocol.message`; this is the in-memory
record with the bookkeeping a channel needs while the message is in flight.
"""
import struct

_HEADER = struct.Struct(">qH16s")


class Message:
    __slots__ = ("id", "body", "timestamp", "attempts", "deliver_ts", "consumer",
                 "tick", "defer_ms")

    def __init__(self, msg_id: bytes, body: bytes, timestamp: int, attempts: int = 0,
                 defer_ms: int = 0):
        self.id = msg_id
        self.body = body
        self.timestamp = timestamp      # ns since the epoch, set at publish, never changed
        self.attempts = attempts        # deliveries so far (incremented on each send)
        self.deliver_ts = 0.0           # monotonic seconds of the current delivery
        self.consumer = None            # the consumer holding it in flight
        self.tick = 0                   # the in-flight timeout bucket it sits in
        self.defer_ms = defer_ms        # DPUB delay, applied per channel by the topic

    def copy(self) -> "Message":
        return Message(self.id, self.body, self.timestamp, self.attempts, self.defer_ms)

    def encode(self) -> bytes:
        """The 26+N byte layout nsqd writes to a disk queue."""
        return _HEADER.pack(self.timestamp, self.attempts, self.id) + self.body

    @classmethod
    def decode(cls, data: bytes) -> "Message":
        if len(data) < 26:
            raise ValueError("invalid message buffer size (%d)" % len(data))
        ts, attempts, msg_id = _HEADER.unpack_from(data)
        return cls(msg_id, data[26:], ts, attempts)
