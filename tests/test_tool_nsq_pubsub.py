"""nsq_pubsub end to end: the tool as a subprocess, real nsqd (and nsqlookupd), HTTP
publishers and streaming subscribers over real sockets."""
import http.client
import json
import re
import socket
import time
import urllib.error
import urllib.request

import pytest

from toolutil import (LogTool, assert_clean_exit, drained, factory, free_port, nsqd_addr,
                      run_text, start_lookupd, tool_path, wait_until)

TOOL = tool_path("nsq_pubsub")


class Tool(LogTool):
    def __init__(self, *args):
        super().__init__("nsq_pubsub", "--http-address=127.0.0.1:0", *args)
        line = self.wait_for_log(r"listening on 127\.0\.0\.1:(\d+)")
        self.port = int(re.search(r"listening on 127\.0\.0\.1:(\d+)", line).group(1))

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def request(self, method, path, body=None):
        req = urllib.request.Request(self.url(path), data=body, method=method)
        try:
            with urllib.request.urlopen(req, timeout=5) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def pub(self, topic, body):
        status, text = self.request("POST", f"/pub?topic={topic}", body)
        assert (status, text) == (200, b"OK"), (status, text)


class Sub:
    """A streaming ``/sub`` reader (http.client decodes the chunked stream)."""

    def __init__(self, tool, topic, channel, timeout=5.0):
        self.conn = http.client.HTTPConnection("127.0.0.1", tool.port, timeout=timeout)
        self.conn.request("GET", f"/sub?topic={topic}&channel={channel}")
        self.resp = self.conn.getresponse()
        assert self.resp.status == 200
        assert self.resp.getheader("Content-Type") == "text/plain; charset=utf-8"

    def lines(self, n):
        out = []
        while len(out) < n:
            line = self.resp.readline()
            assert line, f"stream ended after {out}"
            if line.startswith(b'{"_heartbeat_"'):
                continue
            out.append(line.rstrip(b"\n"))
        return out

    def nothing_more(self, wait=0.3):
        self.conn.sock.settimeout(wait)
        try:
            line = self.resp.readline()
        except (socket.timeout, TimeoutError):
            return True
        return not line

    def close(self):
        self.conn.close()



@pytest.fixture
def tools():
    with factory(Tool, LogTool.kill) as make:
        yield make



# -----------------------------------------------------------------------------------------

def test_publish_and_stream(nsqd, tools):
    tool = tools(nsqd_addr(nsqd))
    sub = Sub(tool, "ps", "c1")
    tool.wait_for_log(r"subscribed to ps/c1")
    for i in range(5):
        tool.pub("ps", f"hello {i}".encode())
    assert sub.lines(5) == [f"hello {i}".encode() for i in range(5)]
    wait_until(lambda: drained(nsqd, "ps", "c1"), msg="messages finished")
    stats = tool.request("GET", "/stats")[1].decode()
    assert stats.startswith("Total Messages: 5\n\n")
    assert re.search(r"\[127\.0\.0\.1:\d+\] \[ps : c1\] msgs: 5 +fin: 5 +re-q: 0 +connected: "
                     r"\d+s", stats), stats
    # the message also reached nsqd through the tool's producer
    t = nsqd.stats(topic="ps")["topics"][0]
    assert t["message_count"] == 5
    sub.close()
    tool.wait_for_log(r"subscriber ps/c1 disconnected \(sent 5, requeued 0\)")
    assert_clean_exit(tool)


def test_streams_messages_published_elsewhere_and_binary_bodies(nsqd, tools):
    status, _, _ = nsqd.http("POST", "/pub?topic=bin", b"\x00\x01\xff raw")
    assert status == 200
    tool = tools(nsqd_addr(nsqd))
    sub = Sub(tool, "bin", "c")
    assert sub.lines(1) == [b"\x00\x01\xff raw"]
    sub.close()
    assert_clean_exit(tool)


def test_subscribers_of_one_channel_share_its_messages(nsqd, tools):
    tool = tools(nsqd_addr(nsqd))
    a, b = Sub(tool, "share", "c"), Sub(tool, "share", "c")
    wait_until(lambda: (nsqd.channel_stats("share", "c") or {}).get("client_count") == 2,
               msg="two subscribers")
    for i in range(20):
        tool.pub("share", f"m{i}".encode())
    wait_until(lambda: drained(nsqd, "share", "c"), msg="all finished")
    got = []
    for s in (a, b):
        s.conn.sock.settimeout(0.3)
        while True:
            try:
                line = s.resp.readline()
            except (socket.timeout, TimeoutError):
                break
            got.append(line.rstrip(b"\n"))
    assert sorted(got) == sorted(f"m{i}".encode() for i in range(20))
    a.close()
    b.close()
    assert_clean_exit(tool)


def test_other_channels_each_get_every_message(nsqd, tools):
    tool = tools(nsqd_addr(nsqd))
    a, b = Sub(tool, "fan", "one"), Sub(tool, "fan", "two")
    wait_until(lambda: all((nsqd.channel_stats("fan", c) or {}).get("client_count") == 1
                           for c in ("one", "two")), msg="both subscribed")
    tool.pub("fan", b"x")
    tool.pub("fan", b"y")
    assert a.lines(2) == [b"x", b"y"]
    assert b.lines(2) == [b"x", b"y"]
    # shutting down with subscribers attached ends their streams cleanly
    assert_clean_exit(tool)
    assert a.resp.readline() == b"" and b.resp.readline() == b""
    tool.wait_for_log(r"subscriber fan/one stopped \(sent 2, requeued 0\)")
    a.close()
    b.close()


def test_disconnected_subscriber_messages_are_redelivered(nsqd, tools):
    """A subscriber that stops reading and goes away: everything the tool had not
    written to it goes back to the channel (REQ, not FIN) and reaches the next one."""
    n = 90
    pad = b"." * (64 * 1024)
    for i in range(0, n, 10):
        bodies = [b"%04d:" % j + pad for j in range(i, i + 10)]
        status, _, text = nsqd.http("POST", "/mpub?topic=big", b"\n".join(bodies))
        assert status == 200, text
    tool = tools(nsqd_addr(nsqd), f"--max-in-flight={n}")

    # subscriber 1: a tiny receive buffer, reads a little, then resets the connection
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", tool.port))
    s.sendall(b"GET /sub?topic=big&channel=c HTTP/1.1\r\nHost: x\r\n\r\n")
    data = b""
    s.settimeout(5)
    while len(data) < 3 * len(pad):
        chunk = s.recv(65536)
        assert chunk
        data += chunk
    wait_until(lambda: (nsqd.channel_stats("big", "c") or {}).get("in_flight_count", 0) > 10,
               msg="messages in flight at subscriber 1")
    time.sleep(0.3)                     # let the tool block on the full socket
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    s.close()
    line = tool.wait_for_log(r"subscriber big/c disconnected \(sent (\d+), requeued (\d+)\)")
    sent, requeued = map(int, re.search(r"sent (\d+), requeued (\d+)", line).groups())
    assert 3 <= sent < n and requeued >= 1
    read_by_1 = set(re.findall(rb"(\d{4}):\.{65536}", data))

    # subscriber 2 gets exactly what subscriber 1 was not sent
    sub2 = Sub(tool, "big", "c")
    got = [ln[:4] for ln in sub2.lines(n - sent)]
    assert len(set(got)) == n - sent
    assert not read_by_1 & set(got)
    assert sub2.nothing_more()
    wait_until(lambda: drained(nsqd, "big", "c"), msg="channel drained")
    c = nsqd.channel_stats("big", "c")
    assert c["requeue_count"] >= n - sent - 1 and c["timeout_count"] == 0
    sub2.close()
    assert_clean_exit(tool)


def test_subscriber_survives_nsqd_restart(nsqd_factory, tools, tmp_path):
    port = free_port()
    data = str(tmp_path / "restart")
    d = nsqd_factory(f"--tcp-address=127.0.0.1:{port}", data_path=data)
    tool = tools(f"--nsqd-tcp-address=127.0.0.1:{port}",
                 "--consumer-opt=lookupd_poll_interval,100ms")
    sub = Sub(tool, "rs", "c", timeout=8)
    tool.pub("rs", b"before")
    assert sub.lines(1) == [b"before"]
    wait_until(lambda: drained(d, "rs", "c"), msg="FIN reached nsqd")
    d.stop()
    tool.wait_for_log(r"connection closed")
    d2 = nsqd_factory(f"--tcp-address=127.0.0.1:{port}", data_path=data)
    wait_until(lambda: (d2.channel_stats("rs", "c") or {}).get("client_count") == 1,
               timeout=5, msg="resubscribed")
    tool.pub("rs", b"after")
    assert sub.lines(1) == [b"after"]
    sub.close()
    assert_clean_exit(tool)


def test_pub_and_sub_through_lookupd(nsqd_factory, tools, tmp_path):
    lookupd = start_lookupd("--broadcast-address=127.0.0.1")
    try:
        d = nsqd_factory(f"--lookupd-tcp-address=127.0.0.1:{lookupd.tcp_port}")
        lk = f"--lookupd-http-address=127.0.0.1:{lookupd.http_port}"

        def registered():
            status, _, body = lookupd.http("GET", "/nodes")
            return status == 200 and json.loads(body)["producers"]
        wait_until(registered, msg="nsqd registered")
        tool = tools(lk)
        tool.pub("lk", b"via lookupd")      # creates the topic on the nsqd lookupd lists
        wait_until(lambda: lookupd.http("GET", "/lookup?topic=lk")[0] == 200,
                   msg="topic registered")
        sub = Sub(tool, "lk", "c")
        assert sub.lines(1) == [b"via lookupd"]
        sub.close()
        assert_clean_exit(tool)
        assert d.stats(topic="lk")["topics"][0]["message_count"] == 1
    finally:
        lookupd.stop()


def test_publish_failure_is_reported(tools):
    tool = tools(f"--nsqd-tcp-address=127.0.0.1:{free_port()}")
    status, body = tool.request("POST", "/pub?topic=x", b"lost?")
    assert status == 503
    assert json.loads(body)["message"].startswith("PUB_FAILED")
    tool.wait_for_log(r"ERROR: publish to x failed")
    assert_clean_exit(tool)


def test_bad_requests(nsqd, tools):
    tool = tools(nsqd_addr(nsqd))
    assert tool.request("POST", "/pub", b"x") == (400, b'{"message": "MISSING_ARG_TOPIC"}')
    assert tool.request("POST", "/pub?topic=a/b", b"x")[0] == 400
    assert tool.request("POST", "/pub?topic=t", b"")[0] == 400
    assert tool.request("GET", "/sub?topic=t")[0] == 400
    assert tool.request("GET", "/sub?channel=c")[0] == 400
    assert tool.request("GET", "/sub?topic=t&channel=bad!")[0] == 400
    assert tool.request("GET", "/nope")[0] == 404
    assert tool.request("GET", "/ping") == (200, b"OK")
    assert_clean_exit(tool)


def test_flags():
    r = run_text(TOOL, "--version")
    assert (r.returncode, r.stdout) == (0, "nsq_pubsub v1.3.0\n")
    r = run_text(TOOL)
    assert r.returncode == 1
    assert r.stderr.endswith(" --nsqd-tcp-address or --lookupd-http-address required.\n")
    r = run_text(TOOL, "--nsqd-tcp-address=127.0.0.1:4150", "--max-in-flight=0")
    assert r.returncode == 1 and r.stderr.endswith(" --max-in-flight must be > 0\n")
    r = run_text(TOOL, "--nsqd-tcp-address=127.0.0.1:4150", "--lookupd-http-address=127.0.0.1:4161")
    assert r.returncode == 1
    assert r.stderr.endswith(" use --nsqd-tcp-address or --lookupd-http-address not both\n")
    r = run_text(TOOL, "--what")
    assert r.returncode == 2
    assert r.stderr.startswith("flag provided but not defined: -what\nUsage of nsq_pubsub:\n")
    assert "  -http-address string\n" in r.stderr


def test_listen_failure_is_fatal(nsqd):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = run_text(TOOL, f"--http-address=127.0.0.1:{port}", nsqd_addr(nsqd))
    assert r.returncode == 1
    assert f"FATAL: listen (127.0.0.1:{port}) failed" in r.stderr
    assert "Traceback" not in r.stderr
