"""nsq_to_http end to end: the tool as a subprocess, a real nsqd, real aiohttp endpoints."""
import asyncio
import socket
import threading
import urllib.parse

import pytest
from aiohttp import web

from toolutil import (LogTool, assert_clean_exit, assert_logged_fatal, drained, factory, mpub,
                      nsqd_addr, run_text, start_lookupd, tool_path, wait_until)

TOOL = tool_path("nsq_to_http")

# fast retries: requeue at once, short backoff, never give up
FAST = ["--consumer-opt=default_requeue_delay,0", "--consumer-opt=backoff_multiplier,10ms",
        "--consumer-opt=max_attempts,0"]



def Tool(*args):
    return LogTool("nsq_to_http", *args)


class Endpoint:
    """An aiohttp server in its own thread recording every request.

    ``statuses``: status codes for the first requests (then ``status``); ``delay``:
    seconds to wait before answering; ``hang_first``: that many first requests wait
    ``hang`` seconds."""

    def __init__(self, status=200, statuses=(), delay=0.0, hang_first=0, hang=3.0):
        self.status = status
        self.statuses = list(statuses)
        self.delay = delay
        self.hang_first = hang_first
        self.hang = hang
        self.requests = []       # (method, path, raw query, headers, body, status)
        self.lock = threading.Lock()
        self.inflight = 0
        self.max_inflight = 0
        self.loop = asyncio.new_event_loop()
        self.port = None
        started = threading.Event()
        self.thread = threading.Thread(target=self._serve, args=(started,), daemon=True)
        self.thread.start()
        assert started.wait(5)

    def _serve(self, started):
        asyncio.set_event_loop(self.loop)
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self.runner = web.AppRunner(app)
        self.loop.run_until_complete(self.runner.setup())
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        self.loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]
        started.set()
        self.loop.run_forever()
        self.loop.run_until_complete(self.runner.cleanup())

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    async def _handle(self, request):
        body = await request.read()
        with self.lock:
            n = len(self.requests)
            status = self.statuses[n] if n < len(self.statuses) else self.status
            if n < self.hang_first:
                status = 599        # the client gives up before the answer
            self.requests.append((request.method, request.path, request.raw_path.partition("?")[2],
                                  dict(request.headers), body, status))
            self.inflight += 1
            self.max_inflight = max(self.max_inflight, self.inflight)
        try:
            if n < self.hang_first:
                await asyncio.sleep(self.hang)
            if self.delay:
                await asyncio.sleep(self.delay)
            return web.Response(status=status, text="ok")
        finally:
            with self.lock:
                self.inflight -= 1

    def accepted(self):
        """Bodies of the requests answered 2xx."""
        with self.lock:
            return [r[4] for r in self.requests if 200 <= r[5] < 300]

    def count(self):
        with self.lock:
            return len(self.requests)

    def close(self):
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)



@pytest.fixture
def endpoint():
    with factory(Endpoint, Endpoint.close) as make:
        yield make


@pytest.fixture
def tools():
    with factory(Tool, LogTool.kill) as make:
        yield make


def wait_drained(nsqd, topic, channel="nsq_to_http", timeout=5.0):
    wait_until(lambda: drained(nsqd, topic, channel, deferred=False), timeout,
               msg="channel drained")


# -----------------------------------------------------------------------------------------

def test_post_delivers_every_message_with_headers(nsqd, endpoint, tools):
    ep = endpoint()
    bodies = [f"msg-{i}".encode() for i in range(20)]
    mpub(nsqd, "t_post", bodies)
    tool = tools("--topic=t_post", nsqd_addr(nsqd), f"--post={ep.url}/sink",
                 "--content-type=text/plain; charset=utf-8", "--header", "X-Token:  abc ",
                 "--header=X-Other: a:b")
    wait_until(lambda: len(ep.accepted()) >= 20, msg="20 POSTs")
    wait_drained(nsqd, "t_post")
    assert sorted(ep.accepted()) == sorted(bodies)
    method, path, _q, headers, _b, _s = ep.requests[0]
    assert (method, path) == ("POST", "/sink")
    assert headers["User-Agent"] == "nsq_to_http v1.3.0"
    assert headers["Content-Type"] == "text/plain; charset=utf-8"
    assert headers["X-Token"] == "abc"
    assert headers["X-Other"] == "a:b"
    assert_clean_exit(tool)
    assert len(ep.requests) == 20


def test_post_default_content_type_and_2xx_is_success(nsqd, endpoint, tools):
    ep = endpoint(status=204)
    mpub(nsqd, "t_204", [b"x", b"y"])
    tool = tools("--topic=t_204", nsqd_addr(nsqd), f"--post={ep.url}/")
    wait_drained(nsqd, "t_204")
    assert sorted(ep.accepted()) == [b"x", b"y"]
    assert ep.requests[0][3]["Content-Type"] == "application/octet-stream"
    assert ep.count() == 2                      # 204 accepted: no retries
    assert_clean_exit(tool)


def test_get_escapes_body_and_requires_200(nsqd, endpoint, tools):
    # the first answer is 201: success for POST but a failure for GET → retried
    ep = endpoint(statuses=[201])
    body = "a b&c/d=é+%".encode()
    mpub(nsqd, "t_get", [body])
    tool = tools("--topic=t_get", nsqd_addr(nsqd), f"--get={ep.url}/get?v=%s&x=1", *FAST)
    wait_until(lambda: ep.count() >= 2, msg="GET retried")
    wait_drained(nsqd, "t_get")
    method, path, query, headers, _b, _s = ep.requests[-1]
    assert (method, path) == ("GET", "/get")
    assert query == "v=a+b%26c%2Fd%3D%C3%A9%2B%25&x=1"
    assert urllib.parse.parse_qs(query)["v"] == [body.decode()]
    assert headers["User-Agent"] == "nsq_to_http v1.3.0"
    assert "Content-Type" not in headers
    assert_clean_exit(tool)


def test_failing_endpoint_messages_are_retried_not_lost(nsqd, endpoint, tools):
    ep = endpoint(statuses=[500] * 6)
    bodies = [f"m{i}".encode() for i in range(10)]
    mpub(nsqd, "t_fail", bodies)
    tool = tools("--topic=t_fail", nsqd_addr(nsqd), f"--post={ep.url}/", *FAST)
    wait_until(lambda: len(set(ep.accepted())) == 10, timeout=8, msg="all messages accepted")
    wait_drained(nsqd, "t_fail")
    assert sorted(set(ep.accepted())) == sorted(bodies)
    assert ep.count() >= 16
    c = nsqd.channel_stats("t_fail", "nsq_to_http")
    assert c["requeue_count"] >= 6
    tool.wait_for_log("got status code 500")
    assert_clean_exit(tool)


def test_unreachable_endpoint_then_recovers(nsqd, endpoint, tools):
    # nothing listens on the port at first: connection errors requeue the message
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    mpub(nsqd, "t_down", [b"hello"])
    tool = tools("--topic=t_down", nsqd_addr(nsqd), f"--post=http://127.0.0.1:{port}/", *FAST,
                 "--http-client-connect-timeout=200ms")
    tool.wait_for_log(r"handler failed|Cannot connect|connect", timeout=5)
    c = nsqd.channel_stats("t_down", "nsq_to_http")
    assert c["depth"] + c["in_flight_count"] + c["deferred_count"] == 1
    assert_clean_exit(tool)
    assert "Traceback" not in tool.text()


def test_request_timeout_is_a_failure(nsqd, endpoint, tools):
    ep = endpoint(hang_first=1, hang=1.5)
    mpub(nsqd, "t_slow", [b"slow"])
    tool = tools("--topic=t_slow", nsqd_addr(nsqd), f"--post={ep.url}/", *FAST,
                 "--http-client-request-timeout=300ms")
    wait_until(lambda: ep.accepted() == [b"slow"], timeout=5, msg="second attempt")
    assert ep.count() == 2
    tool.wait_for_log("timeout")
    wait_drained(nsqd, "t_slow")
    assert_clean_exit(tool)


def test_round_robin_alternates(nsqd, endpoint, tools):
    a, b = endpoint(), endpoint()
    bodies = [f"r{i}".encode() for i in range(10)]
    mpub(nsqd, "t_rr", bodies)
    tool = tools("--topic=t_rr", nsqd_addr(nsqd), "--mode=round-robin",
                 f"--post={a.url}/", f"--post={b.url}/")
    wait_drained(nsqd, "t_rr")
    assert len(a.accepted()) == 5 and len(b.accepted()) == 5
    assert sorted(a.accepted() + b.accepted()) == sorted(bodies)
    assert_clean_exit(tool)


def test_multicast_sends_to_every_address(nsqd, endpoint, tools):
    a, b = endpoint(), endpoint()
    bodies = [f"c{i}".encode() for i in range(6)]
    mpub(nsqd, "t_mc", bodies)
    tool = tools("--topic=t_mc", nsqd_addr(nsqd), "--mode=multicast",
                 f"--post={a.url}/", f"--post={b.url}/")
    wait_drained(nsqd, "t_mc")
    assert sorted(a.accepted()) == sorted(bodies)
    assert sorted(b.accepted()) == sorted(bodies)
    tool.wait_for_log("WARNING: multicast mode is deprecated")
    assert_clean_exit(tool)


def test_unknown_mode_is_multicast(nsqd, endpoint, tools):
    a, b = endpoint(), endpoint()
    mpub(nsqd, "t_mc2", [b"q"])
    tool = tools("--topic=t_mc2", nsqd_addr(nsqd), "--mode=everywhere",
                 f"--get={a.url}/?m=%s", f"--get={b.url}/?m=%s")
    wait_drained(nsqd, "t_mc2")
    assert a.accepted() == [b""] and b.accepted() == [b""]      # GET: no body
    assert a.requests[0][2] == "m=q" and b.requests[0][2] == "m=q"
    assert_clean_exit(tool)


def test_hostpool_skips_a_failing_host(nsqd, endpoint, tools):
    bad, good = endpoint(status=500), endpoint()
    bodies = [f"h{i}".encode() for i in range(8)]
    mpub(nsqd, "t_hp", bodies)
    # one request at a time: the first goes to the bad host, which is then skipped
    tool = tools("--topic=t_hp", nsqd_addr(nsqd), "--n=1", "--max-in-flight=1",
                 f"--post={bad.url}/", f"--post={good.url}/", *FAST)
    wait_drained(nsqd, "t_hp", timeout=8)
    assert sorted(good.accepted()) == sorted(bodies)
    assert bad.count() == 1
    assert_clean_exit(tool)


def test_n_limits_concurrent_requests(nsqd, endpoint, tools):
    ep = endpoint(delay=0.3)
    bodies = [f"n{i}".encode() for i in range(9)]
    mpub(nsqd, "t_n", bodies)
    tool = tools("--topic=t_n", nsqd_addr(nsqd), "--n=3", f"--post={ep.url}/")
    wait_drained(nsqd, "t_n")
    assert sorted(ep.accepted()) == sorted(bodies)
    assert ep.max_inflight == 3
    assert_clean_exit(tool)


def test_sample_zero_finishes_without_sending(nsqd, endpoint, tools):
    ep = endpoint()
    mpub(nsqd, "t_sample", [b"1", b"2", b"3"])
    tool = tools("--topic=t_sample", nsqd_addr(nsqd), "--sample=0", f"--post={ep.url}/")
    wait_drained(nsqd, "t_sample")
    assert ep.count() == 0
    assert_clean_exit(tool)


def test_status_every_logs_timings(nsqd, endpoint, tools):
    a, b = endpoint(), endpoint()
    mpub(nsqd, "t_status", [f"s{i}".encode() for i in range(7)])
    tool = tools("--topic=t_status", nsqd_addr(nsqd), "--status-every=3", "--mode=round-robin",
                 f"--post={a.url}/", f"--post={b.url}/")
    tool.wait_for_log(r"Warning: use more than 100 status values for accurate percentiles "
                      r"\(configured with 3\)")
    tool.wait_for_log(r"\[aggregate\]: finished 3 - 99th: \d+\.\d\dms - 95th: \d+\.\d\dms - "
                      r"avg: \d+\.\d\dms")
    wait_drained(nsqd, "t_status")
    assert_clean_exit(tool)


def test_survives_nsqd_restart(nsqd_factory, endpoint, tools, tmp_path):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    data = str(tmp_path / "restart")
    d = nsqd_factory(f"--tcp-address=127.0.0.1:{port}", data_path=data)
    ep = endpoint()
    mpub(d, "t_restart", [b"before"])
    tool = tools("--topic=t_restart", f"--nsqd-tcp-address=127.0.0.1:{port}",
                 f"--post={ep.url}/", "--consumer-opt=lookupd_poll_interval,100ms")
    wait_until(lambda: ep.accepted() == [b"before"], msg="first message")
    # its FIN must reach nsqd before the stop, or the restart redelivers it (at least once)
    wait_until(lambda: d.channel_stats("t_restart", "nsq_to_http")["in_flight_count"] == 0,
               msg="first message finished")
    d.stop()
    tool.wait_for_log("connection closed|EOF|closed", timeout=5)
    d2 = nsqd_factory(f"--tcp-address=127.0.0.1:{port}", data_path=data)
    mpub(d2, "t_restart", [b"after"])
    wait_until(lambda: ep.accepted() == [b"before", b"after"], timeout=15, msg="after restart")
    assert_clean_exit(tool)
    assert "Traceback" not in tool.text()


def test_discovers_nsqd_through_lookupd(nsqd_factory, endpoint, tools):
    lookupd = start_lookupd("--broadcast-address=127.0.0.1")
    try:
        d = nsqd_factory(f"--lookupd-tcp-address=127.0.0.1:{lookupd.tcp_port}")
        ep = endpoint()
        mpub(d, "t_lk", [b"found"])
        wait_until(lambda: lookupd.http("GET", "/lookup?topic=t_lk")[0] == 200,
                   msg="topic registered")
        tool = tools("--topic=t_lk", f"--lookupd-http-address=127.0.0.1:{lookupd.http_port}",
                     f"--post={ep.url}/")
        wait_until(lambda: ep.accepted() == [b"found"], msg="delivered via lookupd")
        wait_drained(d, "t_lk")
        assert_clean_exit(tool)
    finally:
        lookupd.stop()


@pytest.mark.parametrize("args,message", [
    (["--topic=t", "--nsqd-tcp-address=127.0.0.1:4150"], "--get or --post required"),
    (["--topic=t", "--post=http://a/", "--get=http://a/%s",
      "--nsqd-tcp-address=127.0.0.1:4150"], "use --get or --post not both"),
    (["--topic=t", "--get=http://a/", "--nsqd-tcp-address=127.0.0.1:4150"],
     "invalid GET address - must be a printf string"),
    (["--topic=t", "--get=http://a/%s%s", "--nsqd-tcp-address=127.0.0.1:4150"],
     "invalid GET address - must be a printf string"),
    (["--topic=t", "--post=http://a/"], "--nsqd-tcp-address or --lookupd-http-address required"),
    (["--topic=t", "--post=http://a/", "--nsqd-tcp-address=127.0.0.1:4150",
      "--lookupd-http-address=127.0.0.1:4161"],
     "use --nsqd-tcp-address or --lookupd-http-address not both"),
    (["--post=http://a/", "--nsqd-tcp-address=127.0.0.1:4150"],
     "--topic and --channel are required"),
    (["--topic=t", "--channel=", "--post=http://a/", "--nsqd-tcp-address=127.0.0.1:4150"],
     "--topic and --channel are required"),
    (["--topic=t", "--get=http://a/%s", "--content-type=text/plain",
      "--nsqd-tcp-address=127.0.0.1:4150"], "--content-type only used with --post"),
    (["--topic=t", "--post=http://a/", "--content-type=",
      "--nsqd-tcp-address=127.0.0.1:4150"], "--content-type requires a value when used"),
    (["--topic=t", "--post=http://a/", "--sample=1.5", "--nsqd-tcp-address=127.0.0.1:4150"],
     "ERROR: --sample must be between 0.0 and 1.0"),
    (["--topic=t", "--post=http://a/", "--header=novalue", "--nsqd-tcp-address=127.0.0.1:4150"],
     "--header value format should be 'key=value'"),
    (["--topic=t", "--post=http://a/", "--header=X:", "--nsqd-tcp-address=127.0.0.1:4150"],
     "--header value format should be 'key=value'"),
])
def test_fatal_validation(args, message):
    assert_logged_fatal(run_text(TOOL, *args), message)


def test_bad_flags_print_usage_and_exit_2():
    r = run_text(TOOL, "--bogus")
    assert r.returncode == 2
    assert r.stderr.startswith("flag provided but not defined: -bogus\nUsage of nsq_to_http:\n")
    r = run_text(TOOL, "--n=x")
    assert r.returncode == 2
    assert r.stderr.startswith('invalid value "x" for flag -n: parse error\n')
    r = run_text(TOOL, "--consumer-opt=bogus,1")
    assert r.returncode == 2 and "bogus" in r.stderr.splitlines()[0]
    r = run_text(TOOL, "--http-client-request-timeout=5")
    assert r.returncode == 2


def test_version_and_help():
    r = run_text(TOOL, "--version")
    assert (r.returncode, r.stdout) == (0, "nsq_to_http v1.3.0\n")
    r = run_text(TOOL, "-h")
    assert r.returncode == 0
    for flag in ("-content-type string", "-get value", "-post value", "-header value",
                 "-mode string", "-n int", "-sample float", "-status-every int",
                 "-http-client-connect-timeout duration", "-http-client-request-timeout duration",
                 "-consumer-opt value", "-max-in-flight int"):
        assert f"  {flag}\n" in r.stderr, flag
    assert '(default "hostpool")' in r.stderr
    assert "(default 20s)" in r.stderr


# -- in-process: host selection and timing helpers ------------------------------------------

def test_hostpool_standard_semantics():
    from nsqpy.apps.hostpool import HostPool
    now = [1000.0]
    pool = HostPool(["a", "b", "c"], clock=lambda: now[0])
    assert [pool.get().host for _ in range(4)] == ["a", "b", "c", "a"]
    r = pool.get()
    assert r.host == "b"
    r.mark(RuntimeError("down"))
    assert pool.is_dead("b")
    assert [pool.get().host for _ in range(4)] == ["c", "a", "c", "a"]
    now[0] += 31                          # retry time reached: one more try, delay doubles
    assert [pool.get().host for _ in range(3)] == ["b", "c", "a"]
    now[0] += 31
    assert [pool.get().host for _ in range(2)] == ["c", "a"]    # next retry after 60 s
    now[0] += 30
    r = pool.get()
    assert r.host == "b"
    r.mark(None)                          # success revives it
    assert not pool.is_dead("b")
    for h in ("a", "b", "c"):             # every host dead → all revived
        pool._by_host[h].dead = True
        pool._by_host[h].next_retry = now[0] + 100
    assert pool.get().host == "a"
    assert not any(pool.is_dead(h) for h in ("a", "b", "c"))


def test_round_robin_and_epsilon_greedy_pools():
    import random as _random
    from nsqpy.apps.hostpool import EpsilonGreedyHostPool, RoundRobin, new_pool
    rr = RoundRobin(["a", "b"])
    assert [rr.get().host for _ in range(4)] == ["b", "a", "b", "a"]
    assert isinstance(new_pool("round-robin", ["a"]), RoundRobin)
    eg = EpsilonGreedyHostPool(["fast", "slow"], rng=_random.Random(1))
    assert isinstance(new_pool("epsilon-greedy", ["a"]), EpsilonGreedyHostPool)
    # teach it response times: "fast" 1 ms, "slow" 100 ms
    for host, ms in (("fast", 1.0), ("slow", 100.0)):
        for _ in range(20):
            h = eg._by_host[host]
            h.counts[eg._index] += 1
            h.values[eg._index] += ms
    picks = [eg.get().host for _ in range(500)]
    assert picks.count("fast") > 400
    r = eg.get()
    r.mark(RuntimeError("x"))
    assert eg.is_dead(r.host)


def test_timer_metrics_lines():
    from nsqpy.apps.hostpool import TimerMetrics
    out = []
    tm = TimerMetrics(4, "[x]:", log=out.append)
    assert out == ["Warning: use more than 100 status values for accurate percentiles "
                   "(configured with 4)"]
    for ms in (1, 2, 3, 4):
        tm.status_duration(ms / 1000)
    assert len(out) == 1                  # printed when the ring wraps
    tm.status_duration(0.010)
    assert out[1] == "[x]: finished 4 - 99th: 10.00ms - 95th: 10.00ms - avg: 4.75ms"
    off = TimerMetrics(0, "", log=out.append)
    off.status_duration(1.0)
    assert len(out) == 2


def test_get_endpoint_and_header_parsing():
    from nsqpy.apps.nsq_to_http import get_endpoint, parse_custom_headers
    assert get_endpoint("http://h/?a=%s&b=100%%", b"x y/z~") == "http://h/?a=x+y%2Fz~&b=100%"
    assert parse_custom_headers(["A: b", " C :d:e "]) == {"A": "b", "C": "d:e"}
    for bad in (["nocolon"], [":v"], ["k:"], ["k: "]):
        with pytest.raises(ValueError):
            parse_custom_headers(bad)
