"""Helpers shared by the tool tests (nsq_to_http, nsq_to_nsq, nsq_pubsub, nsq_tail,
nsq_to_file, nsq_stat, to_nsq) and the nsqlookupd tests: tool subprocesses, waiting,
publishing to and reading from a real nsqd, flag-error checks."""
import contextlib
import os
import re
import signal
import socket
import subprocess
import threading
import time

import pytest

from daemons import BIN, Daemon


def tool_path(name: str) -> str:
    return os.path.join(BIN, name)


# -- tool subprocesses --------------------------------------------------------------------

class LogTool(Daemon):
    """A tool subprocess whose stdout/stderr lines are collected (the ``Daemon`` harness,
    without waiting for listening ports): ``wait_for_log``, ``text``, ``stop``, ``kill``."""

    def __init__(self, name: str, *args):
        super().__init__(name, args)
        self.start()

    def start(self) -> "LogTool":
        self.lines = []
        self.ports = {}
        self.proc = subprocess.Popen([tool_path(self.name), *self.args], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                     env=self.env)
        for s in (self.proc.stdout, self.proc.stderr):
            threading.Thread(target=self._read, args=(s,), daemon=True).start()
        return self

    def text(self) -> str:
        return self.log_text()

    def stop(self, sig=signal.SIGTERM, timeout: float = 10.0) -> int:
        return super().stop(sig, timeout)


class StreamTool:
    """A tool subprocess whose stdout/stderr bytes are collected by threads into
    ``out``/``err``."""

    def __init__(self, name: str, *args, stdin=subprocess.DEVNULL):
        self.proc = subprocess.Popen([tool_path(name), *args], stdin=stdin,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.out = bytearray()
        self.err = bytearray()
        self._threads = [threading.Thread(target=self._pump, args=(s, b), daemon=True)
                         for s, b in ((self.proc.stdout, self.out), (self.proc.stderr, self.err))]
        for t in self._threads:
            t.start()

    @staticmethod
    def _pump(stream, buf):
        for chunk in iter(lambda: stream.read1(65536), b""):
            buf.extend(chunk)

    @property
    def stderr(self) -> str:
        return bytes(self.err).decode(errors="replace")

    def wait(self, timeout: float = 10.0) -> int:
        rc = self.proc.wait(timeout)
        for t in self._threads:
            t.join(2)
        return rc

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@contextlib.contextmanager
def factory(make, cleanup):
    """For fixtures: yield a function calling ``make`` that remembers what it made;
    ``cleanup`` each of those afterwards."""
    made = []

    def create(*args, **kw):
        obj = make(*args, **kw)
        made.append(obj)
        return obj

    try:
        yield create
    finally:
        for obj in made:
            cleanup(obj)


def run(path: str, *args, input=None, timeout: float = 15):
    """Run a tool to completion (bytes); stdin is ``input`` or else /dev/null."""
    stdin = {"input": input} if input is not None else {"stdin": subprocess.DEVNULL}
    return subprocess.run([path, *args], capture_output=True, timeout=timeout, **stdin)


def run_text(path: str, *args, timeout: float = 10):
    return subprocess.run([path, *args], capture_output=True, text=True, timeout=timeout)


def assert_clean_exit(tool: LogTool) -> None:
    rc = tool.stop()
    assert rc == 0, tool.text()
    assert "Traceback" not in tool.text(), tool.text()


def assert_one_line_fatal(res, text: str) -> None:
    """Exit 1 with exactly one stderr line ending in ``text`` (bytes result of ``run``)."""
    assert res.returncode == 1, res
    err = res.stderr.decode()
    assert err.count("\n") == 1, err
    assert err.rstrip("\n").endswith(text), err
    assert "Traceback" not in err


def assert_logged_fatal(r, message: str) -> None:
    """Exit 1 with exactly one std-log line ``<date> <time> message`` (text result)."""
    assert r.returncode == 1, r.stderr
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr
    assert re.fullmatch(r"\d{4}/\d\d/\d\d \d\d:\d\d:\d\d " + re.escape(message), lines[0])


# -- waiting ------------------------------------------------------------------------------

def wait_until(cond, timeout: float = 5.0, interval: float = 0.02, msg: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {msg}")


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# -- nsqd / nsqlookupd ----------------------------------------------------------------------

def tcp(d) -> str:
    return f"127.0.0.1:{d.tcp_port}"


def nsqd_addr(d) -> str:
    return f"--nsqd-tcp-address=127.0.0.1:{d.tcp_port}"


def pub(d, topic, body) -> None:
    status, _, resp = d.http("POST", f"/pub?topic={topic}", body)
    assert status == 200, resp


def mpub(d, topic, bodies) -> None:
    status, _, resp = d.http("POST", f"/mpub?topic={topic}", b"\n".join(bodies))
    assert status == 200, resp


def topic_count(d, topic) -> int:
    for t in d.stats(topic=topic)["topics"] or []:
        if t["topic_name"] == topic:
            return t["message_count"]
    return 0


def drained(d, topic, channel, deferred=True) -> bool:
    """Nothing left in ``channel``: no depth, nothing in flight (nor deferred)."""
    c = d.channel_stats(topic, channel)
    return c is not None and c["depth"] == 0 and c["in_flight_count"] == 0 \
        and (not deferred or c["deferred_count"] == 0)


def start_lookupd(*extra) -> Daemon:
    return Daemon("nsqlookupd", ["--tcp-address=127.0.0.1:0", "--http-address=127.0.0.1:0",
                                 *extra]).start()


def lookupd_fixture(*extra):
    """A ``lookupd`` fixture: an nsqlookupd on port 0 (with ``extra`` flags), stopped after."""
    @pytest.fixture
    def lookupd():
        d = start_lookupd(*extra)
        yield d
        d.stop()
    return lookupd
