"""to_nsq end to end: stdin → PUB to real nsqd instances."""
import asyncio
import signal
import subprocess
import time

import toolutil
from nsqpy.client import Consumer
from toolutil import tcp, topic_count

TOOL = toolutil.tool_path("to_nsq")


def run(*args, stdin=b"", timeout=15):
    return toolutil.run(TOOL, *args, input=stdin, timeout=timeout)


def consume(d, topic, n, timeout=5.0):
    """Read ``n`` message bodies of ``topic`` from nsqd ``d`` (in delivery order)."""
    async def go():
        got = []
        done = asyncio.Event()

        def handler(msg):
            got.append(msg.body)
            if len(got) >= n:
                done.set()

        c = Consumer(topic, "reader", handler, nsqd_tcp_addresses=[tcp(d)], max_in_flight=100)
        await c.start()
        try:
            await asyncio.wait_for(done.wait(), timeout)
        finally:
            await c.close()
        return got
    return asyncio.run(go())


def assert_one_line_fatal(res, text):
    assert res.returncode == 1, res
    err = res.stderr.decode()
    assert err.rstrip("\n").splitlines()[-1].endswith(text), err
    assert "Traceback" not in err


def test_lines_are_published_with_the_last_byte_quirk(nsqd):
    res = run("--topic=t", f"--nsqd-tcp-address={tcp(nsqd)}", stdin=b"a\nbb\n\nccc")
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stderr.decode()
    assert topic_count(nsqd, "t") == 3
    # the unterminated last chunk loses its last byte too (upstream quirk)
    assert consume(nsqd, "t", 3) == [b"a", b"bb", b"cc"]


def test_terminated_input_and_binary_bodies(nsqd):
    data = b"".join(b"line-%d \x00\xff\n" % i for i in range(200))
    res = run("--topic=bin", f"--nsqd-tcp-address={tcp(nsqd)}", stdin=data)
    assert res.returncode == 0, res.stderr
    assert topic_count(nsqd, "bin") == 200
    assert consume(nsqd, "bin", 200) == [b"line-%d \x00\xff" % i for i in range(200)]


def test_custom_delimiter(nsqd):
    res = run("--topic=d", f"--nsqd-tcp-address={tcp(nsqd)}", "--delimiter=,",
              stdin=b"x,,yy,zz")
    assert res.returncode == 0, res.stderr
    assert topic_count(nsqd, "d") == 3
    assert consume(nsqd, "d", 3) == [b"x", b"yy", b"z"]


def test_every_destination_gets_every_message(tmp_path, nsqd_factory):
    a = nsqd_factory()
    b = nsqd_factory(data_path=str(tmp_path / "b"))
    res = run("--topic=multi", f"--nsqd-tcp-address={tcp(a)}", f"--nsqd-tcp-address={tcp(b)}",
              stdin=b"one\ntwo\n")
    assert res.returncode == 0, res.stderr
    assert consume(a, "multi", 2) == [b"one", b"two"]
    assert consume(b, "multi", 2) == [b"one", b"two"]


def test_rate_throttles(nsqd):
    data = b"".join(b"%d\n" % i for i in range(12))
    start = time.monotonic()
    res = run("--topic=r", f"--nsqd-tcp-address={tcp(nsqd)}", "--rate=20", stdin=data)
    elapsed = time.monotonic() - start
    assert res.returncode == 0, res.stderr
    assert "Throttling messages rate to max:20/second" in res.stderr.decode()
    assert topic_count(nsqd, "r") == 12
    # one message of credit at start, then one every 50 ms
    assert elapsed >= 0.5, elapsed


def test_user_agent_and_producer_opt(nsqd):
    proc = subprocess.Popen([TOOL, "--topic=ua", f"--nsqd-tcp-address={tcp(nsqd)}",
                             "--producer-opt=client_id,toolclient",
                             "--producer-opt=heartbeat_interval,2s"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        proc.stdin.write(b"hello\n")
        proc.stdin.flush()
        deadline = time.monotonic() + 10
        while True:
            producers = nsqd.stats()["producers"] or []
            if producers:
                break
            assert time.monotonic() < deadline, "to_nsq never published"
            time.sleep(0.05)
        [p] = producers
        assert p["user_agent"] == "to_nsq/1.3.0 go-nsq/1.1.0"
        assert p["client_id"] == "toolclient"
        # SIGTERM while waiting for more input: stop the producers, exit 0
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert b"Traceback" not in proc.stderr.read()


def test_flag_errors():
    assert_one_line_fatal(run("--nsqd-tcp-address=127.0.0.1:1"), "--topic required")
    assert_one_line_fatal(run("--topic=t"), "--nsqd-tcp-address required")
    assert_one_line_fatal(run("--topic=t", "--nsqd-tcp-address=127.0.0.1:1", "--delimiter=ab"),
                          "--delimiter must be a single byte")
    res = run("--topic=t", "--nsqd-tcp-address=127.0.0.1:1", "--delimiter=é")
    assert_one_line_fatal(res, "--delimiter must be a single byte")
    # to_nsq has no --version
    res = run("--version")
    assert res.returncode == 2
    lines = res.stderr.decode().splitlines()
    assert lines[0] == "flag provided but not defined: -version"
    assert lines[1].startswith("Usage of ")
    assert "  -rate int" in lines and "  -producer-opt value" in lines
    assert "    \tcharacter to split input from stdin (default \"\\n\")" in lines
    res = run("--producer-opt=deflate_level,99", "--topic=t")
    assert res.returncode == 2
    assert res.stderr.decode().startswith('invalid value "deflate_level,99" for flag -producer-opt: ')


def test_publish_failure_is_one_line_fatal():
    res = run("--topic=t", "--nsqd-tcp-address=127.0.0.1:1", stdin=b"x\n")
    assert res.returncode == 1
    err = res.stderr.decode()
    assert err.splitlines()[-1].endswith("dial tcp 127.0.0.1:1: connect: connection refused")
    assert "Traceback" not in err


def test_empty_input_publishes_nothing(nsqd):
    res = run("--topic=e", f"--nsqd-tcp-address={tcp(nsqd)}", stdin=b"\n\n\n")
    assert res.returncode == 0, res.stderr
    assert topic_count(nsqd, "e") == 0
