"""RdyController (sans-IO): RDY distribution, redistribution and backoff on a fake clock."""
import heapq
import random

from nsqpy.client.rdy import (BACKOFF, CONTINUE, RESUME, RdyController, exponential_strategy,
                              full_jitter_strategy)


class Clock:
    def __init__(self):
        self.now = 1000.0
        self._q = []
        self._seq = 0

    def time(self):
        return self.now

    def call_later(self, delay, fn, *args):
        self._seq += 1
        h = Handle(self.now + delay, self._seq, fn, args)
        heapq.heappush(self._q, h)
        return h

    def advance(self, dt):
        end = self.now + dt
        while self._q and self._q[0].when <= end:
            h = heapq.heappop(self._q)
            self.now = h.when
            if not h.cancelled:
                h.fn(*h.args)
        self.now = end


class Handle:
    def __init__(self, when, seq, fn, args):
        self.when, self.seq, self.fn, self.args = when, seq, fn, args
        self.cancelled = False

    def cancel(self):
        self.cancelled = True

    def __lt__(self, other):
        return (self.when, self.seq) < (other.when, other.seq)


class FakeConn:
    def __init__(self, name, clock, max_rdy=2500):
        self.address = name
        self.clock = clock
        self.rdy = 0
        self.max_rdy = max_rdy
        self.last_rdy_time = 0.0
        self.last_msg_time = 0.0
        self.in_flight = 0
        self.closing = False
        self.rdy_retry = None
        self.sent = []

    def send_rdy(self, count):
        self.rdy = count
        self.last_rdy_time = self.clock.now
        self.sent.append(count)


def make(max_in_flight, n_conns, **kw):
    clock = Clock()
    kw.setdefault("strategy", exponential_strategy(1.0))
    r = RdyController(max_in_flight, call_later=clock.call_later, clock=clock.time,
                      rng=random.Random(1), **kw)
    conns = [FakeConn(f"c{i}", clock) for i in range(n_conns)]
    return r, clock, conns


def test_max_in_flight_spread_evenly_over_connections():
    r, clock, conns = make(9, 3)
    for c in conns:
        r.add_conn(c)
    assert [c.rdy for c in conns] == [3, 3, 3]
    assert r.total_rdy == 9


def test_new_connection_takes_share_without_exceeding_budget():
    r, clock, conns = make(10, 2)
    r.add_conn(conns[0])
    assert conns[0].rdy == 10
    r.add_conn(conns[1])
    # the decrease is sent before the increase: no 5 s wait for the newcomer
    assert [c.rdy for c in conns] == [5, 5]
    assert conns[0].sent == [10, 5]


def test_rdy_capped_at_server_max_rdy_count():
    r, clock, conns = make(5000, 1)
    conns[0].max_rdy = 2500
    r.add_conn(conns[0])
    assert conns[0].rdy == 2500


def test_unchanged_rdy_not_resent():
    r, clock, conns = make(4, 1)
    r.add_conn(conns[0])
    r.update_rdy(conns[0], 4)
    r.update_rdy(conns[0], 0)
    r.update_rdy(conns[0], 0)
    assert conns[0].sent == [4, 0]


def test_refused_update_at_zero_is_retried_after_5s():
    r, clock, conns = make(1, 2)
    r.add_conn(conns[0])
    r.add_conn(conns[1])
    assert [c.rdy for c in conns] == [1, 0]
    assert conns[1].rdy_retry is not None
    conns[0].send_rdy(0)                        # budget frees up (e.g. redistribution)
    clock.advance(5.0)
    assert conns[1].rdy == 1


def test_redistribution_serves_more_connections_than_max_in_flight():
    r, clock, conns = make(1, 3, low_rdy_idle_timeout=1.0, low_rdy_timeout=2.0)
    for c in conns:
        r.add_conn(c)
    served = set()
    for _ in range(60):
        clock.advance(0.5)
        r.redistribute()
        assert r.total_rdy <= 1
        served.update(c.address for c in conns if c.rdy)
    assert served == {"c0", "c1", "c2"}


def test_redistribution_takes_rdy_from_busy_connection_after_low_rdy_timeout():
    r, clock, conns = make(1, 2, low_rdy_idle_timeout=10.0, low_rdy_timeout=3.0)
    for c in conns:
        r.add_conn(c)
    holder = conns[0]
    for _ in range(8):                          # the holder keeps receiving messages
        clock.advance(0.5)
        holder.last_msg_time = clock.now
        r.redistribute()
    assert holder.sent == [1, 0]               # taken away after 3 s despite traffic
    assert conns[1].rdy == 1                    # and handed to the waiting connection


def test_closed_connection_rdy_goes_to_others():
    r, clock, conns = make(4, 2)
    for c in conns:
        r.add_conn(c)
    assert [c.rdy for c in conns] == [2, 2]
    r.remove_conn(conns[0])
    assert conns[1].rdy == 4


def test_change_max_in_flight_and_pause():
    r, clock, conns = make(4, 2)
    for c in conns:
        r.add_conn(c)
    r.set_max_in_flight(10)
    assert [c.rdy for c in conns] == [5, 5]
    r.set_max_in_flight(0)
    assert [c.rdy for c in conns] == [0, 0]


def test_backoff_enter_test_waters_and_exit():
    r, clock, conns = make(4, 2, strategy=exponential_strategy(0.1))
    for c in conns:
        r.add_conn(c)
    r.signal(BACKOFF)
    assert r.backoff_level == 1 and r.in_backoff_timeout
    assert [c.rdy for c in conns] == [0, 0]
    r.signal(BACKOFF)                           # ignored while the timer runs
    assert r.backoff_level == 1
    clock.advance(0.2)                          # 0.1 × 2^1
    assert not r.in_backoff_timeout
    assert sorted(c.rdy for c in conns) == [0, 1]
    r.signal(BACKOFF)                           # the test message failed too
    assert r.backoff_level == 2
    assert [c.rdy for c in conns] == [0, 0]
    clock.advance(0.4)
    assert sorted(c.rdy for c in conns) == [0, 1]
    r.signal(RESUME)
    assert r.backoff_level == 1 and r.in_backoff_timeout
    clock.advance(0.2)
    r.signal(RESUME)
    assert r.backoff_level == 0 and not r.in_backoff()
    assert [c.rdy for c in conns] == [2, 2]


def test_requeue_without_backoff_keeps_level_but_continues():
    r, clock, conns = make(2, 1, strategy=exponential_strategy(0.1))
    r.add_conn(conns[0])
    r.signal(CONTINUE)
    assert r.backoff_level == 0 and conns[0].rdy == 2
    r.signal(BACKOFF)
    clock.advance(0.2)
    assert conns[0].rdy == 1
    r.signal(CONTINUE)
    assert r.backoff_level == 1 and conns[0].rdy == 0 and r.in_backoff_timeout


def test_backoff_level_bounded_by_max_backoff_duration():
    r, clock, conns = make(1, 1, strategy=exponential_strategy(1.0), max_backoff_duration=4.0)
    r.add_conn(conns[0])
    for _ in range(5):
        r.signal(BACKOFF)
        clock.advance(10)
    assert r.backoff_level == 2                 # 2^3 = 8 s > 4 s


def test_no_backoff_when_max_backoff_duration_is_zero():
    r, clock, conns = make(3, 1, max_backoff_duration=0.0)
    r.add_conn(conns[0])
    r.signal(BACKOFF)
    assert r.backoff_level == 0 and conns[0].rdy == 3


def test_is_starved():
    r, clock, conns = make(10, 1)
    r.add_conn(conns[0])
    assert not r.is_starved()
    conns[0].in_flight = 9
    assert r.is_starved()
    conns[0].closing = True
    assert not r.is_starved()


def test_strategies():
    assert exponential_strategy(1.0)(3) == 8.0
    fj = full_jitter_strategy(1.0, random.Random(3))
    vals = [fj(3) for _ in range(100)]
    assert all(0 <= v < 8.0 for v in vals) and len(set(vals)) > 50
