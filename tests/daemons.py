"""Start real nsqpy daemons as subprocesses on port 0 and talk to them over real sockets."""
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

from nsqpy.protocol import commands as cmds
from nsqpy.protocol.frames import FrameDecoder

BIN = os.path.dirname(sys.executable)
LISTEN_RE = re.compile(r"(TCP|HTTP|HTTPS): listening on (\S+)")


class Daemon:
    """A daemon subprocess; ``tcp_port``/``http_port`` are parsed from its log lines."""

    def __init__(self, name: str, args, env=None):
        self.name = name
        self.args = list(args)
        self.env = env
        self.lines = []
        self.ports = {}
        self.proc = None
        self._cond = threading.Condition()

    def start(self, timeout: float = 10.0) -> "Daemon":
        self.lines = []
        self.ports = {}
        self.proc = subprocess.Popen([os.path.join(BIN, self.name)] + self.args,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     stdin=subprocess.DEVNULL, env=self.env)
        threading.Thread(target=self._read, args=(self.proc.stderr,), daemon=True).start()
        threading.Thread(target=self._read, args=(self.proc.stdout,), daemon=True).start()
        want = {"TCP"} if "--http-address=" in self.args else {"TCP", "HTTP"}
        deadline = time.monotonic() + timeout
        with self._cond:
            while not want <= set(self.ports):
                if self.proc.poll() is not None:
                    raise RuntimeError(f"{self.name} exited {self.proc.returncode}:\n"
                                       + "".join(self.lines))
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RuntimeError(f"{self.name} did not listen:\n" + "".join(self.lines))
                self._cond.wait(left)
        return self

    def _read(self, stream) -> None:
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", "replace")
            with self._cond:
                self.lines.append(line)
                m = LISTEN_RE.search(line)
                if m:
                    self.ports[m.group(1)] = int(m.group(2).rsplit(":", 1)[1])
                self._cond.notify_all()

    @property
    def tcp_port(self) -> int:
        return self.ports["TCP"]

    @property
    def http_port(self) -> int:
        return self.ports["HTTP"]

    @property
    def tcp_address(self):
        return ("127.0.0.1", self.tcp_port)

    @property
    def http_base(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def log_text(self) -> str:
        with self._cond:
            return "".join(self.lines)

    def wait_for_log(self, pattern: str, timeout: float = 5.0) -> str:
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in self.lines:
                    if rx.search(line):
                        return line
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no log line matching {pattern!r}:\n" + "".join(self.lines))
                self._cond.wait(left)

    def stop(self, sig=signal.SIGTERM, timeout: float = 15.0) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    # -- HTTP helpers ----------------------------------------------------------------------
    def http(self, method: str, path: str, body: bytes | None = None, headers=None):
        """(status, headers, body bytes) of one request; never raises on HTTP errors."""
        req = urllib.request.Request(self.http_base + path, data=body, method=method,
                                     headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, resp.headers, resp.read()
        except urllib.error.HTTPError as e:
            return e.code, e.headers, e.read()

    def stats(self, **params):
        query = urllib.parse.urlencode({"format": "json", **params})
        status, _, body = self.http("GET", f"/stats?{query}")
        assert status == 200, body
        return json.loads(body)

    def channel_stats(self, topic: str, channel: str):
        for t in self.stats(topic=topic)["topics"] or []:
            for c in t["channels"]:
                if c["channel_name"] == channel:
                    return c
        return None


def start_nsqd(tmp_path, *extra, data_path=None) -> Daemon:
    data = data_path or str(tmp_path / "data")
    os.makedirs(data, exist_ok=True)
    args = ["--tcp-address=127.0.0.1:0", "--http-address=127.0.0.1:0",
            f"--data-path={data}", "--broadcast-address=127.0.0.1"] + list(extra)
    d = Daemon("nsqd", args)
    d.data_path = data
    return d.start()


class Conn:
    """A blocking V2 client over a real socket, for tests that check exact frames."""

    def __init__(self, address, magic: bytes = cmds.MAGIC_V2, timeout: float = 5.0):
        self.sock = socket.create_connection(address, timeout=timeout)
        self.sock.settimeout(timeout)
        self.decoder = FrameDecoder()
        self.pending = []
        self.enc = self.dec = None          # snappy/deflate stream codecs once negotiated
        if magic:
            self.sock.sendall(magic)

    def send(self, data: bytes) -> None:
        if self.enc is not None:
            data = self.enc.encode(data)
        self.sock.sendall(data)

    def upgrade(self, negotiated: dict, ssl_context=None, deflate_level: int = 6) -> None:
        """Follow the server's IDENTIFY reply: TLS, then snappy or deflate, each ending in OK."""
        from nsqpy.protocol.compression import (DeflateDecoder, DeflateEncoder, SnappyDecoder,
                                                SnappyEncoder)
        if negotiated.get("tls_v1"):
            self.sock = ssl_context.wrap_socket(self.sock)
            self.expect_response(b"OK")
        if negotiated.get("snappy"):
            self.enc, self.dec = SnappyEncoder(), SnappyDecoder()
            self.expect_response(b"OK")
        if negotiated.get("deflate"):
            self.enc, self.dec = DeflateEncoder(deflate_level), DeflateDecoder()
            self.expect_response(b"OK")

    def read_frame(self, timeout: float | None = None, skip_heartbeats: bool = True):
        if timeout is not None:
            self.sock.settimeout(timeout)
        while True:
            while self.pending:
                ft, data = self.pending.pop(0)
                if skip_heartbeats and ft == 0 and data == b"_heartbeat_":
                    continue
                return ft, data
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise ConnectionError("closed by server")
            if self.dec is not None:
                chunk = self.dec.decode(chunk)
            self.decoder.feed(chunk)
            self.pending.extend(self.decoder.frames())

    def expect_response(self, data: bytes = b"OK") -> None:
        ft, got = self.read_frame()
        assert (ft, got) == (0, data), (ft, got)

    def expect_error(self, text: bytes) -> None:
        ft, got = self.read_frame()
        assert (ft, got) == (1, text), (ft, got)

    def expect_closed(self, timeout: float = 5.0) -> None:
        self.sock.settimeout(timeout)
        while True:
            try:
                chunk = self.sock.recv(1 << 16)
            except ConnectionResetError:
                return
            if not chunk:
                return
            self.decoder.feed(chunk)
            for ft, data in self.decoder.frames():
                if not (ft == 0 and data == b"_heartbeat_"):
                    raise AssertionError(f"unexpected frame before close: {ft} {data!r}")

    def read_message(self, timeout: float | None = None):
        ft, data = self.read_frame(timeout)
        assert ft == 2, (ft, data)
        ts, attempts, msg_id = struct.unpack(">qH16s", data[:26])
        return msg_id, attempts, data[26:], ts

    def _recv_exact(self, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("closed by server")
            buf += chunk
        return buf

    def identify(self, **fields) -> dict | None:
        """IDENTIFY; the reply is read without over-reading, since an upgrade may follow it."""
        self.send(cmds.encode_identify(fields))
        size, ft = struct.unpack(">ii", self._recv_exact(8))
        data = self._recv_exact(size - 4)
        assert ft == 0, data
        return json.loads(data) if data.startswith(b"{") else None

    def subscribe(self, topic: str, channel: str, rdy: int = 0) -> None:
        self.send(cmds.encode_sub(topic, channel))
        self.expect_response()
        if rdy:
            self.send(cmds.encode_rdy(rdy))

    def pub(self, topic: str, body: bytes) -> None:
        self.send(cmds.encode_pub(topic, body))
        self.expect_response()

    def close(self) -> None:
        self.sock.close()


def consume_exactly(d, topic: str, channel: str, n: int, quiet: float = 0.5):
    """Subscribe to ``d``, receive exactly n messages (FIN each) and check nothing more
    arrives within ``quiet`` seconds.  Returns [(id, attempts, body, ts)] in order."""
    c = Conn(d.tcp_address)
    try:
        c.subscribe(topic, channel, rdy=max(n, 1))
        got = []
        for _ in range(n):
            m = c.read_message(timeout=10)
            got.append(m)
            c.send(b"FIN " + m[0] + b"\n")
        try:
            extra = c.read_frame(timeout=quiet)
        except (TimeoutError, OSError):
            extra = None
        assert extra is None, f"unexpected extra frame {extra!r}"
        return got
    finally:
        c.close()
