"""What a channel needs from a subscribed connection, without knowing it is a socket.

The channel delivers to :class:`Consumer` objects; the TCP layer subclasses it and
implements :meth:`send_frames`, :meth:`flush` and :meth:`close_connection`.  Counters
live here because the channel updates them on its hot path.
"""

STATE_INIT = 0
STATE_DISCONNECTED = 1
STATE_SUBSCRIBED = 3
STATE_CLOSING = 4


class Consumer:
    # Subclasses add their own __slots__ or a __dict__; these are the engine's fields.
    __slots__ = ()

    def init_consumer(self) -> None:
        self.state = STATE_INIT
        self.channel = None
        self.rdy = 0
        self.in_flight = 0
        self.ready = False          # maintained by the channel: subscribed, in_flight < rdy
        self.message_count = 0
        self.finish_count = 0
        self.requeue_count = 0
        self.msg_timeout = 60.0     # seconds in flight before a timeout requeue
        self.sample_rate = 0
        self.output_blocked = False # the connection cannot take more output right now

    # -- called by the connection --------------------------------------------------
    def set_rdy(self, count: int) -> None:
        self.rdy = count
        self.update_ready()

    def update_ready(self) -> None:
        """Re-evaluate readiness and tell the channel when it changes."""
        ready = (self.state == STATE_SUBSCRIBED and self.in_flight < self.rdy
                 and not self.output_blocked)
        if ready != self.ready:
            ch = self.channel
            if ch is None:
                self.ready = ready
            elif ready:
                ch.consumer_ready(self)
            else:
                ch.consumer_unready(self)
                self.flush()

    # -- implemented by the connection ----------------------------------------------
    def send_frames(self, frames) -> None:  # pragma: no cover - abstract
        """Queue complete message frames (see :mod:`nsqpy.engine.message`)."""
        raise NotImplementedError

    def flush(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def flush_soon(self) -> None:
        """Flush once the current batch of deliveries is done (default: now)."""
        self.flush()

    def close_connection(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError
