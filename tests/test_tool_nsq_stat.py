"""nsq_stat end to end: the stats table from real nsqd (direct and via nsqlookupd)."""
import signal
import subprocess
import threading
import time

import pytest

import toolutil
from toolutil import assert_one_line_fatal

TOOL = toolutil.tool_path("nsq_stat")

HEADER1 = ("------rate------+----------------depth----------------+"
           "--------------metadata---------------")
HEADER2 = "ingress  egress |   total     mem    disk inflt   def |     req     t-o         msgs clients"


def run(*args, timeout=15):
    return toolutil.run(TOOL, *args, timeout=timeout)


def http(d):
    return f"127.0.0.1:{d.http_port}"


def create_channel(d, topic, channel):
    status, _, body = d.http("POST", f"/topic/create?topic={topic}")
    assert status == 200, body
    status, _, body = d.http("POST", f"/channel/create?topic={topic}&channel={channel}")
    assert status == 200, body


def mpub(d, topic, n, prefix=b"m"):
    toolutil.mpub(d, topic, [prefix + b"%d" % i for i in range(n)])


def fields(line):
    """A data line as 10 ints (the two `|` separators dropped)."""
    parts = line.replace("|", " ").split()
    return [int(p) for p in parts]


lookupd = toolutil.lookupd_fixture()


# -- flags ----------------------------------------------------------------------------------

def test_version():
    res = run("--version")
    assert (res.returncode, res.stdout) == (0, b"nsq_stat v1.3.0\n")


def test_usage():
    res = run("--nope")
    assert res.returncode == 2
    lines = res.stderr.decode().splitlines()
    assert lines[0] == "flag provided but not defined: -nope"
    assert lines[1].startswith("Usage of ")
    for flag in ("-channel string", "-count value", "-http-client-connect-timeout duration",
                 "-http-client-request-timeout duration", "-interval duration",
                 "-lookupd-http-address value", "-nsqd-http-address value", "-topic string",
                 "-version"):
        assert "  " + flag in lines, flag
    assert "    \tduration of time between polling/printing output (default 2s)" in lines
    res = run("--count=x")
    assert res.returncode == 2
    assert res.stderr.decode().splitlines()[0] == \
        'invalid value "x" for flag -count: strconv.ParseInt: parsing "x": invalid syntax'


def test_validation():
    a = "--nsqd-http-address=127.0.0.1:1"
    assert_one_line_fatal(run("--topic=t", a), "--topic and --channel are required")
    assert_one_line_fatal(run("--channel=c", a), "--topic and --channel are required")
    assert_one_line_fatal(run("--topic=t", "--channel=c", a, "--interval=0s"),
                          "--interval should be positive")
    assert_one_line_fatal(run("--topic=t", "--channel=c", a, "--count=0"),
                          "--count should be positive")
    assert_one_line_fatal(run("--topic=t", "--channel=c", a, "--http-client-connect-timeout=0s"),
                          "--http-client-connect-timeout should be positive")
    assert_one_line_fatal(run("--topic=t", "--channel=c"),
                          "--nsqd-http-address or --lookupd-http-address required")
    assert_one_line_fatal(run("--topic=t", "--channel=c", a, "--lookupd-http-address=127.0.0.1:2"),
                          "use --nsqd-http-address or --lookupd-http-address not both")
    assert_one_line_fatal(run("--topic=t", "--channel=c", "--nsqd-http-address=http://127.0.0.1:1"),
                          "--nsqd-http-address error - address should not contain scheme")
    assert_one_line_fatal(run("--topic=t", "--channel=c", "--lookupd-http-address=http://x:1"),
                          "--lookupd-http-address error - address should not contain scheme")


# -- reports --------------------------------------------------------------------------------

def test_count_reports_depth_and_metadata(nsqd):
    create_channel(nsqd, "st", "ch")
    mpub(nsqd, "st", 5)
    res = run("--topic=st", "--channel=ch", f"--nsqd-http-address={http(nsqd)}",
              "--interval=100ms", "--count=2")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.decode().splitlines()
    assert lines[:2] == [HEADER1, HEADER2]
    assert len(lines) == 4, lines
    for line in lines[2:]:
        # ingress egress | total mem disk inflt def | req t-o msgs clients
        assert fields(line) == [0, 0, 5, 5, 0, 0, 0, 0, 0, 5, 0]
        assert line == "%7d %7d | %7d %7d %7d %5d %5d | %7d %7d %12d %7d" % tuple(fields(line))


def test_rates_between_polls(nsqd):
    create_channel(nsqd, "rate", "ch")
    proc = subprocess.Popen([TOOL, "--topic=rate", "--channel=ch",
                             f"--nsqd-http-address={http(nsqd)}", "--interval=1s", "--count=1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        # the header comes with the first (priming) poll; publish before the second one
        assert proc.stdout.readline().decode().rstrip("\n") == HEADER1
        assert proc.stdout.readline().decode().rstrip("\n") == HEADER2
        mpub(nsqd, "rate", 6)
        line = proc.stdout.readline().decode().rstrip("\n")
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # 6 messages in 1s, none consumed: ingress 6, egress 6 - 6 = 0, depth 6
    assert fields(line) == [6, 0, 6, 6, 0, 0, 0, 0, 0, 6, 0]


def test_header_every_25_reports(nsqd):
    create_channel(nsqd, "hd", "ch")
    res = run("--topic=hd", "--channel=ch", f"--nsqd-http-address={http(nsqd)}",
              "--interval=10ms", "--count=26", timeout=30)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.decode().splitlines()
    assert len(lines) == 2 + 24 + 2 + 2
    assert lines[0] == lines[26] == HEADER1
    assert lines[1] == lines[27] == HEADER2


def test_in_flight_and_clients_aggregate_over_nsqds(tmp_path, nsqd_factory):
    a = nsqd_factory()
    b = nsqd_factory(data_path=str(tmp_path / "b"))
    for d, n in ((a, 2), (b, 3)):
        create_channel(d, "agg", "ch")
        mpub(d, "agg", n)
    res = run("--topic=agg", "--channel=ch", f"--nsqd-http-address={http(a)}",
              f"--nsqd-http-address={http(b)}", "--interval=50ms", "--count=1")
    assert res.returncode == 0, res.stderr
    assert fields(res.stdout.decode().splitlines()[2]) == [0, 0, 5, 5, 0, 0, 0, 0, 0, 5, 0]


def test_nsqd_without_the_topic_is_ignored(tmp_path, nsqd_factory):
    a = nsqd_factory()
    b = nsqd_factory(data_path=str(tmp_path / "b"))
    create_channel(a, "only", "ch")
    mpub(a, "only", 1)
    res = run("--topic=only", "--channel=ch", f"--nsqd-http-address={http(a)}",
              f"--nsqd-http-address={http(b)}", "--interval=50ms", "--count=1")
    assert res.returncode == 0, res.stderr
    assert fields(res.stdout.decode().splitlines()[2])[2] == 1


def test_via_lookupd(nsqd_factory, lookupd):
    d = nsqd_factory(f"--lookupd-tcp-address=127.0.0.1:{lookupd.tcp_port}")
    create_channel(d, "lk", "ch")
    mpub(d, "lk", 4)
    deadline = time.monotonic() + 10
    while lookupd.http("GET", "/lookup?topic=lk")[0] != 200:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    res = run("--topic=lk", "--channel=ch", f"--lookupd-http-address=127.0.0.1:{lookupd.http_port}",
              "--interval=50ms", "--count=1")
    assert res.returncode == 0, res.stderr
    assert fields(res.stdout.decode().splitlines()[2]) == [0, 0, 4, 4, 0, 0, 0, 0, 0, 4, 0]


def test_unknown_channel_is_fatal(nsqd):
    create_channel(nsqd, "uc", "ch")
    res = run("--topic=uc", "--channel=nope", f"--nsqd-http-address={http(nsqd)}")
    assert_one_line_fatal(res, "ERROR: failed to find channel(nope) in stats metadata for topic(uc)")
    assert res.stdout == b""


def test_unreachable_nsqd_is_one_line_fatal():
    res = run("--topic=t", "--channel=c", "--nsqd-http-address=127.0.0.1:1")
    assert res.returncode == 1
    err = res.stderr.decode()
    assert err.startswith("20") and "ERROR: failed to get topic producers - " in err
    assert "connection refused" in err
    assert err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_signals_exit_zero(nsqd, sig):
    create_channel(nsqd, "sg", "ch")
    proc = subprocess.Popen([TOOL, "--topic=sg", "--channel=ch",
                             f"--nsqd-http-address={http(nsqd)}", "--interval=100ms"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    lines = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, b"")),
                              daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 10
        while len(lines) < 4:   # header + 2 reports: it is polling
            assert time.monotonic() < deadline, lines
            time.sleep(0.02)
        proc.send_signal(sig)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    reader.join(5)
    assert b"Traceback" not in proc.stderr.read()
