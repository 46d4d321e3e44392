"""nsqpy's own HTTP/1.1 server (nsqpy.httpapi.server) over real sockets: a small router
served from a background event loop (TCP, TLS and a unix socket), plus a real nsqd for the
slow-loris and no-aiohttp checks. One test per behaviour."""
import asyncio
import os
import re
import selectors
import socket
import ssl
import subprocess
import sys
import threading
import time

import pytest

from daemons import start_nsqd
from tlsutil import make_test_cert

from nsqpy.httpapi import PLAIN, Router, read_limited, serve

GO_400 = (b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n"
          b"Connection: close\r\n\r\n400 Bad Request")
DATE_RE = re.compile(r"\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT")


class _Log:
    def __init__(self):
        self.lines = []

    def info(self, msg):
        self.lines.append(msg)

    error = warning = info


def _router():
    router = Router(_Log())

    async def ping(request, query):
        return "OK"

    async def echo(request, query):
        return await read_limited(request, 8 << 20)

    async def count(request, query):
        n = 0
        while True:
            chunk = await request.content.read(1 << 16)
            if not chunk:
                return str(n)
            n += len(chunk)

    async def ignore(request, query):
        return "ignored"

    async def slow(request, query):
        await asyncio.sleep(0.2)
        return "slow"

    async def peer(request, query):
        return f"{request.method} {request.path} {request.query_string} {request.version}"

    router.add("GET", "/ping", ping, PLAIN)
    router.add("HEAD", "/ping", ping, PLAIN)
    router.add("POST", "/echo", echo)
    router.add("POST", "/count", count)
    router.add("POST", "/ignore", ignore)
    router.add("GET", "/slow", slow)
    router.add("GET", "/peer", peer)
    return router


class ThreadServer:
    """serve() on its own event loop thread; ``port`` / ``path`` once started."""

    def __init__(self, **kw):
        self.loop = asyncio.new_event_loop()
        self.router = _router()
        ready = threading.Event()

        async def start():
            self.handle = await serve(self.router.handle, **kw)
            ready.set()

        def run():
            asyncio.set_event_loop(self.loop)
            self.loop.run_until_complete(start())
            self.loop.run_forever()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        assert ready.wait(10)
        socks = self.handle.sockets
        self.port = socks[0].getsockname()[1] if "path" not in kw else None

    def close(self):
        asyncio.run_coroutine_threadsafe(self.handle.close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture
def server():
    s = ThreadServer(host="127.0.0.1", port=0)
    yield s
    s.close()


class Client:
    """Exact bytes over a socket; parses Content-Length responses."""

    def __init__(self, sock, timeout=5.0):
        self.sock = sock
        self.sock.settimeout(timeout)
        self.buf = b""

    @classmethod
    def tcp(cls, port):
        return cls(socket.create_connection(("127.0.0.1", port)))

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        self.buf += chunk

    def response(self, head_only=False):
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        n = 0 if head_only else int(headers.get("content-length", "0"))
        while len(self.buf) < n:
            self._fill()
        body, self.buf = self.buf[:n], self.buf[n:]
        return lines[0], headers, body

    def read_all(self):
        data = self.buf
        while True:
            try:
                chunk = self.sock.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not chunk:
                break
            data += chunk
        return data

    def closed(self):
        self.sock.settimeout(3)
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True

    def close(self):
        self.sock.close()


GET_PING = b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n"


def test_keep_alive_by_default_for_http11(server):
    c = Client.tcp(server.port)
    for _ in range(3):
        c.send(GET_PING)
        line, headers, body = c.response()
        assert (line, body) == ("HTTP/1.1 200 OK", b"OK")
        assert "connection" not in headers
    c.close()


def test_response_has_date_content_length_and_content_type(server):
    c = Client.tcp(server.port)
    c.send(GET_PING)
    _, headers, _ = c.response()
    assert DATE_RE.fullmatch(headers["date"])
    assert headers["content-length"] == "2"
    assert headers["content-type"] == "text/plain; charset=utf-8"
    assert "server" not in headers


def test_connection_close_request_closes_after_response(server):
    c = Client.tcp(server.port)
    c.send(b"GET /ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    line, headers, body = c.response()
    assert body == b"OK" and headers["connection"] == "close"
    assert c.closed()


def test_http10_closes_by_default(server):
    c = Client.tcp(server.port)
    c.send(b"GET /ping HTTP/1.0\r\n\r\n")
    line, headers, body = c.response()
    assert line == "HTTP/1.0 200 OK" and body == b"OK"
    assert "connection" not in headers
    assert c.closed()


def test_http10_keep_alive_is_honoured(server):
    c = Client.tcp(server.port)
    for _ in range(2):
        c.send(b"GET /ping HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        line, headers, body = c.response()
        assert line == "HTTP/1.0 200 OK" and headers["connection"] == "keep-alive"


def test_pipelined_requests_answered_in_order(server):
    c = Client.tcp(server.port)
    c.send(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n"
           b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nfirst"
           b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n"
           b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"3\r\nsec\r\n3\r\nond\r\n0\r\n\r\n")
    assert [c.response()[2] for _ in range(4)] == [b"slow", b"first", b"OK", b"second"]


def test_expect_100_continue_answered_before_body(server):
    c = Client.tcp(server.port)
    c.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
           b"Expect: 100-continue\r\n\r\n")
    line, _, _ = c.response(head_only=True)
    assert line == "HTTP/1.1 100 Continue"
    c.send(b"hello")
    assert c.response()[2] == b"hello"


def test_chunked_body_across_many_writes(server):
    c = Client.tcp(server.port)
    c.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
    for piece in (b"4\r\n", b"ab", b"cd\r", b"\n1;x=y\r\ne\r\n0\r\n", b"T: 1\r\n", b"\r\n"):
        c.send(piece)
        time.sleep(0.01)
    assert c.response()[2] == b"abcde"
    c.send(GET_PING)
    assert c.response()[2] == b"OK"


def test_large_body_streams_with_backpressure(server):
    c = Client.tcp(server.port)
    size = 5 << 20
    c.send(b"POST /count HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % size)
    block = b"z" * (1 << 16)
    for _ in range(size // len(block)):
        c.send(block)
    assert c.response()[2] == str(size).encode()


def test_head_response_has_length_but_no_body(server):
    c = Client.tcp(server.port)
    c.send(b"HEAD /ping HTTP/1.1\r\nHost: x\r\n\r\n" + GET_PING)
    line, headers, _ = c.response(head_only=True)
    assert line == "HTTP/1.1 200 OK" and headers["content-length"] == "2"
    assert c.response()[2] == b"OK"  # the next response follows directly: no HEAD body


def test_unread_small_body_is_discarded_and_connection_kept(server):
    c = Client.tcp(server.port)
    c.send(b"POST /ignore HTTP/1.1\r\nHost: x\r\nContent-Length: 10000\r\n\r\n" + b"a" * 4000)
    assert c.response()[2] == b"ignored"
    c.send(b"a" * 6000 + GET_PING)
    assert c.response()[2] == b"OK"


def test_unread_large_body_closes_connection(server):
    c = Client.tcp(server.port)
    c.send(b"POST /ignore HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\nabc")
    _, headers, body = c.response()
    assert body == b"ignored" and headers["connection"] == "close"
    assert c.closed()


def test_malformed_request_gets_go_400_then_close(server):
    c = Client.tcp(server.port)
    c.send(b"THIS IS NOT HTTP\r\n\r\n")
    assert c.read_all() == GO_400


def test_missing_host_gets_go_status_error(server):
    c = Client.tcp(server.port)
    c.send(b"GET /ping HTTP/1.1\r\n\r\n")
    assert c.read_all().endswith(b"\r\n\r\n400 Bad Request: missing required Host header")


def test_header_over_1mib_gets_431(server):
    c = Client.tcp(server.port)
    c.send(b"GET /ping HTTP/1.1\r\nHost: x\r\n")
    try:
        for _ in range(1200):
            c.send(b"X-Pad: " + b"p" * 1000 + b"\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass
    assert c.read_all().startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")


def test_header_just_under_1mib_accepted(server):
    c = Client.tcp(server.port)
    c.send(b"GET /ping HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"p" * ((1 << 20) - 100) + b"\r\n\r\n")
    assert c.response()[2] == b"OK"


def test_unsupported_transfer_encoding_gets_501(server):
    c = Client.tcp(server.port)
    c.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n")
    assert c.read_all().startswith(b"HTTP/1.1 501 Not Implemented\r\n")


def test_request_fields_seen_by_handler(server):
    c = Client.tcp(server.port)
    c.send(b"GET /peer?a=1&b=%20 HTTP/1.1\r\nHost: x\r\n\r\n")
    assert c.response()[2] == b"GET /peer a=1&b=%20 (1, 1)"


def test_close_stops_listening():
    s = ThreadServer(host="127.0.0.1", port=0)
    c = Client.tcp(s.port)
    c.send(GET_PING)
    assert c.response()[2] == b"OK"
    s.close()
    assert c.closed()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", s.port), timeout=1).close()


def test_tls(tmp_path):
    cert, key = make_test_cert(tmp_path)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    s = ThreadServer(host="127.0.0.1", port=0, ssl=ctx)
    try:
        cctx = ssl.create_default_context(cafile=cert)
        raw = socket.create_connection(("127.0.0.1", s.port))
        c = Client(cctx.wrap_socket(raw, server_hostname="127.0.0.1"))
        for _ in range(2):
            c.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nsec")
            assert c.response()[2] == b"sec"
        c.close()
    finally:
        s.close()


def test_unix_socket(tmp_path):
    path = str(tmp_path / "http.sock")
    s = ThreadServer(path=path)
    try:
        sock = socket.socket(socket.AF_UNIX)
        sock.connect(path)
        c = Client(sock)
        c.send(GET_PING * 2)
        assert [c.response()[2] for _ in range(2)] == [b"OK", b"OK"]
        c.close()
    finally:
        s.close()


def test_pipelining_client_that_reads_nothing_is_bounded(server):
    c = Client.tcp(server.port)
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    c.sock.setblocking(False)
    sent = 0
    data = GET_PING * 1000
    deadline = time.time() + 5
    while time.time() < deadline:
        try:
            sent += c.sock.send(data)
        except BlockingIOError:
            time.sleep(0.05)
            try:
                sent += c.sock.send(data)
            except BlockingIOError:
                break  # the server stopped reading: back-pressure reached us
    assert sent < 64 << 20
    conns = list(server.handle.conns)
    buffered = sum(len(p._buf) for p in conns)
    assert buffered <= (1 << 20)
    c.close()


# -- a real nsqd -------------------------------------------------------------------------------------
def _ping_time(port) -> float:
    t0 = time.perf_counter()
    c = Client.tcp(port)
    c.send(b"GET /ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert c.response()[2] == b"OK"
    c.close()
    return time.perf_counter() - t0


def _rss(pid) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def test_slow_loris_connections_do_not_block_other_clients(tmp_path):
    nsqd = start_nsqd(tmp_path)
    port = nsqd.http_port
    sel = selectors.DefaultSelector()
    socks = []
    try:
        for i in range(1000):
            s = socket.create_connection(("127.0.0.1", port))
            s.setblocking(False)
            socks.append(s)
        payload = b"POST /pub?topic=loris HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"s" * 100000
        sent = [0] * len(socks)
        rss0 = _rss(nsqd.proc.pid)
        worst = 0.0
        end = time.time() + 4
        rounds = 0
        while time.time() < end:
            for i, s in enumerate(socks):  # each connection trickles one more byte
                try:
                    s.send(payload[sent[i]:sent[i] + 1])
                    sent[i] += 1
                except (BlockingIOError, BrokenPipeError, ConnectionResetError):
                    pass
            rounds += 1
            worst = max(worst, _ping_time(port))
        assert rounds >= 5
        assert worst < 1.0, f"a normal client waited {worst:.2f}s"
        assert _rss(nsqd.proc.pid) - rss0 < 64 << 20
    finally:
        for s in socks:
            s.close()
        sel.close()
        nsqd.stop()


def test_nsqd_and_nsqlookupd_do_not_import_aiohttp():
    code = ("import sys, nsqpy.nsqd.main, nsqpy.nsqlookupd.main; "
            "print([m for m in sys.modules if m.startswith(('aiohttp', 'multidict', 'yarl'))])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ}, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
