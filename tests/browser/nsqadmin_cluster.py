"""Live clusters for the nsqadmin tests: nsqlookupd + nsqd subprocesses + nsqadmin, plus
small real HTTP servers (notification sink, fake graphite) and a consuming client."""
from __future__ import annotations

import gzip
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from daemons import BIN, Conn, Daemon, start_nsqd  # noqa: E402
from nsqpy.protocol import commands as cmds  # noqa: E402


class AdminDaemon(Daemon):
    """nsqadmin logs only ``HTTP: listening on``; wait for that line."""

    def start(self, timeout: float = 10.0) -> "AdminDaemon":
        self.lines = []
        self.ports = {}
        self.proc = subprocess.Popen([os.path.join(BIN, self.name)] + self.args,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     stdin=subprocess.DEVNULL, env=self.env)
        threading.Thread(target=self._read, args=(self.proc.stderr,), daemon=True).start()
        threading.Thread(target=self._read, args=(self.proc.stdout,), daemon=True).start()
        deadline = time.monotonic() + timeout
        with self._cond:
            while "HTTP" not in self.ports:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"{self.name} exited {self.proc.returncode}:\n"
                                       + "".join(self.lines))
                left = deadline - time.monotonic()
                if left <= 0:
                    self.proc.kill()
                    raise RuntimeError(f"{self.name} did not listen:\n" + "".join(self.lines))
                self._cond.wait(left)
        return self

    def request(self, method: str, path: str, body=None, headers=None, decode=True):
        """(status, headers, body) with gzip/deflate undone when ``decode``."""
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        elif isinstance(body, str):
            body = body.encode()
        req = urllib.request.Request(self.http_base + path, data=body, method=method,
                                     headers=headers or {})
        opener = urllib.request.build_opener(NoRedirect)
        try:
            with opener.open(req, timeout=20) as resp:
                status, hdrs, data = resp.status, resp.headers, resp.read()
        except urllib.error.HTTPError as e:
            status, hdrs, data = e.code, e.headers, e.read()
        if decode and hdrs.get("Content-Encoding") == "gzip":
            data = gzip.decompress(data)
        return status, hdrs, data

    def api(self, method: str, path: str, body=None, headers=None):
        """(status, decoded JSON or raw text)."""
        status, hdrs, data = self.request(method, path, body, headers)
        try:
            return status, json.loads(data) if data else None
        except ValueError:
            return status, data.decode("utf-8", "replace")

    def get_json(self, path: str, headers=None):
        status, doc = self.api("GET", path, headers=headers)
        assert status == 200, (status, doc)
        return doc


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def start_admin(*args, env=None, timeout: float = 10.0) -> AdminDaemon:
    full_env = dict(os.environ)
    full_env.setdefault("NSQADMIN_HISTORY_INTERVAL", "0.5")
    if env:
        full_env.update(env)
    return AdminDaemon("nsqadmin", ["--http-address=127.0.0.1:0", *args], env=full_env).start(timeout)


def start_lookupd() -> Daemon:
    return Daemon("nsqlookupd", ["--tcp-address=127.0.0.1:0", "--http-address=127.0.0.1:0",
                                 "--broadcast-address=127.0.0.1"]).start()


def http_json(url: str, method: str = "GET", body: bytes | None = None):
    req = urllib.request.Request(url, data=body, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            data = resp.read()
            return resp.status, (json.loads(data) if data.startswith(b"{") else data)
    except urllib.error.HTTPError as e:
        data = e.read()
        return e.code, (json.loads(data) if data.startswith(b"{") else data)


def wait_for(pred, timeout: float = 10.0, interval: float = 0.05, what: str = "condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


class Cluster:
    """nsqlookupd + N nsqd registered with it (nsqd started with --lookupd-tcp-address)."""

    def __init__(self, base_dir, n_nsqd: int = 2, nsqd_args=()):
        self.lookupd = start_lookupd()
        self.nsqds = []
        try:
            for i in range(n_nsqd):
                data = os.path.join(str(base_dir), f"nsqd{i}")
                os.makedirs(data, exist_ok=True)
                self.nsqds.append(start_nsqd(
                    base_dir, f"--lookupd-tcp-address=127.0.0.1:{self.lookupd.tcp_port}",
                    *nsqd_args, data_path=data))
            wait_for(lambda: len(self.lookupd_json("/nodes")["producers"]) == n_nsqd,
                     what="nsqd registration with nsqlookupd")
        except BaseException:
            self.stop()
            raise

    @property
    def lookupd_http(self) -> str:
        return f"127.0.0.1:{self.lookupd.http_port}"

    def node(self, i: int) -> str:
        return f"127.0.0.1:{self.nsqds[i].http_port}"

    def lookupd_json(self, path: str):
        status, doc = http_json(self.lookupd.http_base + path)
        return doc if status == 200 else {"status": status, **(doc if isinstance(doc, dict) else {})}

    def pub(self, i: int, topic: str, body: bytes = b"x", n: int = 1) -> None:
        d = self.nsqds[i]
        if n == 1:
            status, _h, data = d.http("POST", f"/pub?topic={topic}", body)
        else:
            status, _h, data = d.http("POST", f"/mpub?topic={topic}", b"\n".join([body] * n))
        assert status == 200, data

    def create_channel(self, i: int, topic: str, channel: str) -> None:
        status, _h, data = self.nsqds[i].http("POST", f"/topic/create?topic={topic}")
        assert status == 200, data
        status, _h, data = self.nsqds[i].http(
            "POST", f"/channel/create?topic={topic}&channel={channel}")
        assert status == 200, data

    def wait_producers(self, topic: str, n: int) -> None:
        wait_for(lambda: len(self.lookupd_json(f"/lookup?topic={topic}").get("producers") or [])
                 == n, what=f"{n} producers of {topic} in nsqlookupd")

    def stop(self) -> None:
        for d in self.nsqds:
            try:
                d.stop(timeout=10)
            except Exception:  # noqa: BLE001
                d.kill()
        try:
            self.lookupd.stop(timeout=10)
        except Exception:  # noqa: BLE001
            self.lookupd.kill()


class Consumer:
    """A V2 consumer connection on its own thread; FINs every message it gets."""

    def __init__(self, nsqd, topic: str, channel: str, rdy: int = 1, client_id: str = "worker",
                 hostname: str = "consumer-host", user_agent: str = "nsqadmin-test/1.0",
                 fin: bool = True, **identify):
        self.conn = Conn(nsqd.tcp_address)
        self.conn.identify(client_id=client_id, hostname=hostname, user_agent=user_agent,
                           feature_negotiation=True, **identify)
        self.conn.subscribe(topic, channel, rdy=rdy)
        self.fin = fin
        self.received = 0
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop:
            try:
                ft, data = self.conn.read_frame(timeout=0.2, skip_heartbeats=False)
            except (socket.timeout, TimeoutError):
                continue
            except (OSError, ConnectionError, ValueError):
                return
            if ft == 0 and data == b"_heartbeat_":
                try:
                    self.conn.send(cmds.encode_nop())
                except OSError:
                    return
            elif ft == 2:
                self.received += 1
                if self.fin:
                    try:
                        self.conn.send(cmds.encode_fin(data[10:26]))
                    except OSError:
                        return

    def rdy(self, n: int) -> None:
        self.conn.send(cmds.encode_rdy(n))

    def close(self) -> None:
        self._stop = True
        self._thread.join(2)
        try:
            self.conn.close()
        except OSError:
            pass


class Sink:
    """A real HTTP server recording every request (notification endpoint / fake graphite)."""

    def __init__(self, responder=None):
        self.requests: list[dict] = []
        self.cond = threading.Condition()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):  # quiet
                pass

            def _handle(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                rec = {"method": self.command, "path": self.path, "headers": dict(self.headers),
                       "body": body}
                with sink.cond:
                    sink.requests.append(rec)
                    sink.cond.notify_all()
                status, ctype, data = (responder(rec) if responder else (200, "text/plain", b"ok"))
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, n: int, timeout: float = 10.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        with self.cond:
            while len(self.requests) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"expected {n} requests, got {self.requests!r}")
                self.cond.wait(left)
            return list(self.requests)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def nsqd_topic(d, topic: str):
    for t in d.stats(topic=topic)["topics"] or []:
        if t["topic_name"] == topic:
            return t
    return None
