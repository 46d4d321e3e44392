import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from daemons import Conn, start_nsqd  # noqa: E402


@pytest.fixture
def nsqd(tmp_path):
    """A real nsqd subprocess on port 0 with its own data dir; stopped afterwards."""
    d = start_nsqd(tmp_path)
    yield d
    d.stop()


@pytest.fixture
def nsqd_factory(tmp_path):
    """Start nsqd with extra flags: ``nsqd_factory("--mem-queue-size=0")``."""
    started = []

    def factory(*extra, data_path=None):
        d = start_nsqd(tmp_path, *extra, data_path=data_path)
        started.append(d)
        return d

    yield factory
    for d in started:
        d.stop()


@pytest.fixture
def conn_factory():
    conns = []

    def factory(daemon, **kw):
        c = Conn(daemon.tcp_address, **kw)
        conns.append(c)
        return c

    yield factory
    for c in conns:
        c.close()
