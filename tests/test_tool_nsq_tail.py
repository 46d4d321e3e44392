"""nsq_tail end to end: the real tool against a real nsqd (and nsqlookupd)."""
import functools
import signal
import subprocess
import time

import pytest

import toolutil
from toolutil import StreamTool, assert_one_line_fatal, factory, pub, start_lookupd, tcp

TOOL = toolutil.tool_path("nsq_tail")


class Tool(StreamTool):
    def __init__(self, *args, stdin=subprocess.DEVNULL):
        super().__init__("nsq_tail", *args, stdin=stdin)

    def wait_output(self, pred, timeout=10.0, what="output"):
        deadline = time.monotonic() + timeout
        while not pred(bytes(self.out)):
            if time.monotonic() > deadline:
                raise AssertionError(f"no {what}: stdout={bytes(self.out)!r} "
                                     f"stderr={bytes(self.err).decode(errors='replace')}")
            if self.proc.poll() is not None and not pred(bytes(self.out)):
                time.sleep(0.1)
                if not pred(bytes(self.out)):
                    raise AssertionError(f"exited {self.proc.returncode}: stdout={bytes(self.out)!r} "
                                         f"stderr={bytes(self.err).decode(errors='replace')}")
            time.sleep(0.02)

    def wait_stderr(self, text, timeout=10.0):
        deadline = time.monotonic() + timeout
        while text not in self.err.decode(errors="replace"):
            if time.monotonic() > deadline:
                raise AssertionError(f"no {text!r} in stderr: {bytes(self.err).decode(errors='replace')}")
            time.sleep(0.02)

    def signal(self, sig):
        self.proc.send_signal(sig)


@pytest.fixture
def tools():
    with factory(Tool, Tool.kill) as make:
        yield make


def run(*args, timeout=10):
    return toolutil.run(TOOL, *args, timeout=timeout)


wait_until = functools.partial(toolutil.wait_until, timeout=10.0)



# -- flags ----------------------------------------------------------------------------------

def test_version():
    res = run("--version")
    assert res.returncode == 0
    assert res.stdout == b"nsq_tail v1.3.0\n"


def test_unknown_flag_prints_one_line_and_usage():
    res = run("--bogus")
    assert res.returncode == 2
    lines = res.stderr.decode().splitlines()
    assert lines[0] == "flag provided but not defined: -bogus"
    assert lines[1].startswith("Usage of ") and lines[1].endswith("nsq_tail:")
    for flag in ("-channel string", "-consumer-opt value", "-lookupd-http-address value",
                 "-max-in-flight int", "-n int", "-nsqd-tcp-address value", "-print-topic",
                 "-topic value", "-version"):
        assert "  " + flag in lines, flag
    assert "    \tmax number of messages to allow in flight (default 200)" in lines


def test_help_exits_zero():
    res = run("-h")
    assert res.returncode == 0
    assert res.stderr.decode().startswith("Usage of ")


def test_bad_values_are_flag_errors():
    res = run("--n=abc")
    assert res.returncode == 2
    assert res.stderr.decode().splitlines()[0] == 'invalid value "abc" for flag -n: parse error'
    res = run("--consumer-opt=no_such_option,1")
    assert res.returncode == 2
    first = res.stderr.decode().splitlines()[0]
    assert first.startswith('invalid value "no_such_option,1" for flag -consumer-opt: ')


def test_address_validation():
    assert_one_line_fatal(run("--topic=t"), "--nsqd-tcp-address or --lookupd-http-address required")
    assert_one_line_fatal(run("--topic=t", "--nsqd-tcp-address=127.0.0.1:1",
                              "--lookupd-http-address=127.0.0.1:2"),
                          "use --nsqd-tcp-address or --lookupd-http-address not both")
    assert_one_line_fatal(run("--nsqd-tcp-address=127.0.0.1:1"), "--topic required")


def test_unreachable_nsqd_is_one_line_fatal():
    res = run("--topic=t", "--nsqd-tcp-address=127.0.0.1:1")
    assert res.returncode == 1
    err = res.stderr.decode()
    assert "dial tcp 127.0.0.1:1: connect: connection refused" in err
    assert "Traceback" not in err


# -- consuming ------------------------------------------------------------------------------

def test_n_prints_bodies_and_exits_before_the_last_fin(nsqd):
    for body in (b"a", b"bb", b"c c"):
        pub(nsqd, "tt", body)
    res = run("--topic=tt", f"--nsqd-tcp-address={tcp(nsqd)}", "--channel=tailch", "--n=3")
    assert res.returncode == 0, res.stderr
    assert sorted(res.stdout.splitlines()) == [b"a", b"bb", b"c c"]
    assert res.stdout.endswith(b"\n")
    assert "Adding consumer for topic: tt" in res.stderr.decode()
    # [quirk] the process exits right after printing the 3rd message, before its FIN
    wait_until(lambda: (nsqd.channel_stats("tt", "tailch") or {}).get("client_count") == 0)
    ch = nsqd.channel_stats("tt", "tailch")
    assert ch["in_flight_count"] == 1
    assert ch["message_count"] == 3


def test_print_topic_and_several_topics(nsqd):
    pub(nsqd, "t1", b"one")
    pub(nsqd, "t2", b"two")
    res = run("--topic=t1", "--topic=t2", f"--nsqd-tcp-address={tcp(nsqd)}", "--print-topic",
              "--n=1")
    # one consumer per topic, each handler counts for itself: --n 1 exits at the first
    assert res.returncode == 0, res.stderr
    assert res.stdout in (b"t1 | one\n", b"t2 | two\n")
    err = res.stderr.decode()
    assert "Adding consumer for topic: t1" in err and "Adding consumer for topic: t2" in err


def test_both_topics_delivered(nsqd, tools):
    t = tools("--topic=t1", "--topic=t2", f"--nsqd-tcp-address={tcp(nsqd)}", "--print-topic")
    t.wait_stderr("subscribed to t2")
    pub(nsqd, "t1", b"one")
    pub(nsqd, "t2", b"two")
    t.wait_output(lambda out: out.count(b"\n") >= 2)
    assert sorted(bytes(t.out).splitlines()) == [b"t1 | one", b"t2 | two"]
    t.signal(signal.SIGTERM)
    assert t.wait() == 0


def test_random_ephemeral_channel_and_user_agent(nsqd, tools):
    t = tools("--topic=ua", f"--nsqd-tcp-address={tcp(nsqd)}")
    t.wait_stderr("subscribed to ua/")
    topic = nsqd.stats(topic="ua")["topics"][0]
    [ch] = topic["channels"]
    name = ch["channel_name"]
    assert name.startswith("tail") and name.endswith("#ephemeral")
    assert len(name) == len("tail000000#ephemeral") and name[4:10].isdigit()
    assert ch["clients"][0]["user_agent"] == "nsq_tail/1.3.0 go-nsq/1.1.0"
    t.signal(signal.SIGINT)
    assert t.wait() == 0


def test_max_in_flight_and_consumer_opt(nsqd, tools):
    t = tools("--topic=mif", f"--nsqd-tcp-address={tcp(nsqd)}", "--channel=c",
              "--max-in-flight=7", "--consumer-opt=msg_timeout,5s",
              "--consumer-opt=user_agent,overridden")
    t.wait_stderr("subscribed to mif/c")
    wait_until(lambda: nsqd.channel_stats("mif", "c")["clients"][0]["ready_count"] == 7)
    client = nsqd.channel_stats("mif", "c")["clients"][0]
    assert client["user_agent"] == "nsq_tail/1.3.0 go-nsq/1.1.0"  # the tool's wins
    t.signal(signal.SIGTERM)
    assert t.wait() == 0


def test_n_caps_max_in_flight(nsqd, tools):
    t = tools("--topic=cap", f"--nsqd-tcp-address={tcp(nsqd)}", "--channel=c", "--n=3")
    t.wait_stderr("subscribed to cap/c")
    wait_until(lambda: nsqd.channel_stats("cap", "c")["clients"][0]["ready_count"] == 3)
    t.signal(signal.SIGTERM)
    assert t.wait() == 0


def test_sigterm_is_graceful_nothing_lost(nsqd, tools):
    t = tools("--topic=g", f"--nsqd-tcp-address={tcp(nsqd)}", "--channel=keep")
    t.wait_stderr("subscribed to g/keep")
    bodies = [b"m%d" % i for i in range(50)]
    status, _, resp = nsqd.http("POST", "/mpub?topic=g", b"\n".join(bodies))
    assert status == 200, resp
    t.wait_output(lambda out: out.count(b"\n") >= 50)
    t.signal(signal.SIGTERM)
    assert t.wait() == 0
    assert sorted(bytes(t.out).splitlines()) == sorted(bodies)
    assert "Traceback" not in t.stderr
    ch = nsqd.channel_stats("g", "keep")
    assert (ch["depth"], ch["in_flight_count"], ch["requeue_count"], ch["message_count"]) == \
        (0, 0, 0, 50)


def test_lookupd_discovery(tmp_path, nsqd_factory, tools):
    lookupd = start_lookupd()
    try:
        nsqd = nsqd_factory(f"--lookupd-tcp-address=127.0.0.1:{lookupd.tcp_port}")
        pub(nsqd, "lk", b"found")
        wait_until(lambda: lookupd.http("GET", "/lookup?topic=lk")[0] == 200,
                   msg="topic registered")
        t = tools("--topic=lk", f"--lookupd-http-address=127.0.0.1:{lookupd.http_port}",
                  "--n=1")
        assert t.wait() == 0, t.stderr
        assert bytes(t.out) == b"found\n"
        assert "querying nsqlookupd" in t.stderr
    finally:
        lookupd.stop()


def test_lost_connection_is_logged_and_retried(tmp_path, nsqd_factory, tools):
    nsqd = nsqd_factory()
    port = nsqd.tcp_port
    t = tools("--topic=rc", f"--nsqd-tcp-address=127.0.0.1:{port}", "--channel=c",
              "--consumer-opt=lookupd_poll_interval,200ms")
    t.wait_stderr("subscribed to rc/c")
    nsqd.stop()
    t.wait_stderr("connection closed")
    nsqd2 = nsqd_factory(f"--tcp-address=127.0.0.1:{port}", data_path=nsqd.data_path)
    t.wait_stderr("trying to reconnect")
    wait_until(lambda: t.stderr.count("subscribed to rc/c") >= 2, msg="re-subscribed")
    pub(nsqd2, "rc", b"again")
    t.wait_output(lambda out: out == b"again\n")
    t.signal(signal.SIGTERM)
    assert t.wait() == 0
    assert "Traceback" not in t.stderr
