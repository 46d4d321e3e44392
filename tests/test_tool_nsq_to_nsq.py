"""nsq_to_nsq end to end: the tool as a subprocess relaying between real nsqd."""
import json
import re
import socket
import time

import pytest

from daemons import Conn
from nsqpy.protocol import encoders as enc
from toolutil import (LogTool, assert_clean_exit, assert_logged_fatal, drained, factory,
                      free_port, run_text, tcp, tool_path, topic_count, wait_until)
from toolutil import mpub as publish

TOOL = tool_path("nsq_to_nsq")

FAST = ["--consumer-opt=default_requeue_delay,0", "--consumer-opt=backoff_multiplier,10ms",
        "--consumer-opt=max_attempts,0", "--consumer-opt=lookupd_poll_interval,100ms"]


def Tool(*args):
    return LogTool("nsq_to_nsq", *args)


@pytest.fixture
def tools():
    with factory(Tool, LogTool.kill) as make:
        yield make


def read_messages(d, topic, n, timeout=5.0, quiet=0.2):
    """Consume ``n`` messages from ``topic`` on ``d`` (FIN each); then make sure no more
    arrive for ``quiet`` seconds."""
    c = Conn(d.tcp_address)
    try:
        c.subscribe(topic, "check", rdy=n + 10)
        out = []
        deadline = time.monotonic() + timeout
        while len(out) < n:
            left = deadline - time.monotonic()
            assert left > 0, f"got {len(out)}/{n}: {out}"
            msg_id, _attempts, body, _ts = c.read_message(timeout=left)
            out.append(body)
            c.send(enc.encode_fin(msg_id))
        if quiet:
            try:
                extra = c.read_frame(timeout=quiet)
            except (socket.timeout, TimeoutError):
                extra = None
            assert extra is None, extra
        return out
    finally:
        c.close()


def wait_drained(d, topic, channel="nsq_to_nsq", timeout=5.0):
    wait_until(lambda: drained(d, topic, channel), timeout, msg="source channel drained")


@pytest.fixture
def mk(nsqd_factory, tmp_path):
    """Start an nsqd with its own data directory (extra flags allowed)."""
    n = [0]

    def start(*flags):
        n[0] += 1
        return nsqd_factory(*flags, data_path=str(tmp_path / f"nsqd{n[0]}"))
    return start


@pytest.fixture
def two(mk):
    return mk(), mk()


# -----------------------------------------------------------------------------------------

def test_relays_every_message(two, tools):
    src, dst = two
    bodies = [f"m{i}".encode() for i in range(25)]
    publish(src, "relay", bodies)
    tool = tools("--topic=relay", f"--nsqd-tcp-address={tcp(src)}",
                 f"--destination-nsqd-tcp-address={tcp(dst)}")
    wait_drained(src, "relay")
    assert sorted(read_messages(dst, "relay", 25)) == sorted(bodies)
    assert_clean_exit(tool)


def test_destination_topic_and_several_topics(two, tools):
    src, dst = two
    publish(src, "ta", [b"a1", b"a2"])
    publish(src, "tb", [b"b1"])
    tool = tools("--topic=ta", "--topic=tb", "--destination-topic=merged",
                 f"--nsqd-tcp-address={tcp(src)}", f"--destination-nsqd-tcp-address={tcp(dst)}")
    wait_drained(src, "ta")
    wait_drained(src, "tb")
    assert sorted(read_messages(dst, "merged", 3)) == [b"a1", b"a2", b"b1"]
    assert topic_count(dst, "ta") == 0 and topic_count(dst, "tb") == 0
    assert_clean_exit(tool)


def test_several_topics_keep_their_names(two, tools):
    src, dst = two
    publish(src, "x1", [b"one"])
    publish(src, "x2", [b"two"])
    tool = tools("--topic=x1", "--topic=x2", "--channel=relay#ephemeral",
                 f"--nsqd-tcp-address={tcp(src)}", f"--destination-nsqd-tcp-address={tcp(dst)}")
    assert read_messages(dst, "x1", 1) == [b"one"]
    assert read_messages(dst, "x2", 1) == [b"two"]
    assert_clean_exit(tool)


def test_round_robin_spreads_over_destinations(mk, tools):
    src, d1, d2 = mk(), mk(), mk()
    bodies = [f"r{i}".encode() for i in range(10)]
    publish(src, "rr", bodies)
    tool = tools("--topic=rr", "--mode=round-robin", f"--nsqd-tcp-address={tcp(src)}",
                 f"--destination-nsqd-tcp-address={tcp(d1)}",
                 f"--destination-nsqd-tcp-address={tcp(d2)}")
    wait_drained(src, "rr")
    assert topic_count(d1, "rr") == 5 and topic_count(d2, "rr") == 5
    got = read_messages(d1, "rr", 5) + read_messages(d2, "rr", 5)
    assert sorted(got) == sorted(bodies)
    assert_clean_exit(tool)


def test_hostpool_routes_around_a_dead_destination(mk, tools):
    src, good = mk(), mk()
    dead = f"127.0.0.1:{free_port()}"
    bodies = [f"h{i}".encode() for i in range(10)]
    publish(src, "hp", bodies)
    tool = tools("--topic=hp", f"--nsqd-tcp-address={tcp(src)}",
                 f"--destination-nsqd-tcp-address={dead}",
                 f"--destination-nsqd-tcp-address={tcp(good)}", *FAST)
    wait_drained(src, "hp", timeout=8)
    assert sorted(read_messages(good, "hp", 10)) == sorted(bodies)
    tool.wait_for_log(re.escape(dead))
    assert_clean_exit(tool)


def test_messages_wait_for_the_destination(mk, nsqd_factory, tools, tmp_path):
    """Finished only after the destination accepted them: while it is down they are
    requeued; once it is up they all arrive."""
    src = mk()
    port = free_port()
    bodies = [f"w{i}".encode() for i in range(5)]
    publish(src, "wait", bodies)
    tool = tools("--topic=wait", f"--nsqd-tcp-address={tcp(src)}",
                 f"--destination-nsqd-tcp-address=127.0.0.1:{port}", *FAST)
    tool.wait_for_log("publish failed|connection failed|refused")
    c = src.channel_stats("wait", "nsq_to_nsq")
    assert c["depth"] + c["in_flight_count"] + c["deferred_count"] == 5
    dst = nsqd_factory(f"--tcp-address=127.0.0.1:{port}", data_path=str(tmp_path / "dst"))
    wait_drained(src, "wait", timeout=8)
    assert sorted(read_messages(dst, "wait", 5)) == sorted(bodies)
    assert_clean_exit(tool)


def test_destination_restart_is_survived(mk, nsqd_factory, tools, tmp_path):
    src = mk()
    port = free_port()
    data = str(tmp_path / "dst")
    dst = nsqd_factory(f"--tcp-address=127.0.0.1:{port}", data_path=data)
    tool = tools("--topic=rs", f"--nsqd-tcp-address={tcp(src)}",
                 f"--destination-nsqd-tcp-address=127.0.0.1:{port}", *FAST)
    publish(src, "rs", [b"first"])
    wait_until(lambda: topic_count(dst, "rs") == 1, msg="first relayed")
    dst.stop()
    publish(src, "rs", [b"second"])
    tool.wait_for_log("producer connection lost|publish failed|refused")
    dst2 = nsqd_factory(f"--tcp-address=127.0.0.1:{port}", data_path=data)
    wait_drained(src, "rs", timeout=8)
    assert sorted(read_messages(dst2, "rs", 2)) == [b"first", b"second"]
    assert_clean_exit(tool)


def test_source_restart_is_survived(mk, nsqd_factory, tools, tmp_path):
    port = free_port()
    data = str(tmp_path / "src")
    src = nsqd_factory(f"--tcp-address=127.0.0.1:{port}", data_path=data)
    dst = mk()
    tool = tools("--topic=ss", f"--nsqd-tcp-address=127.0.0.1:{port}",
                 f"--destination-nsqd-tcp-address={tcp(dst)}", *FAST)
    publish(src, "ss", [b"one"])
    wait_until(lambda: topic_count(dst, "ss") == 1, msg="first relayed")
    wait_drained(src, "ss")      # its FIN reached the source, or the restart redelivers it
    src.stop()
    tool.wait_for_log("connection closed")
    src2 = nsqd_factory(f"--tcp-address=127.0.0.1:{port}", data_path=data)
    publish(src2, "ss", [b"two"])
    wait_until(lambda: topic_count(dst, "ss") == 2, timeout=15, msg="second relayed")
    assert sorted(read_messages(dst, "ss", 2)) == [b"one", b"two"]
    assert_clean_exit(tool)


def test_require_json_field(two, tools):
    src, dst = two
    publish(src, "jf", [b'{"a":1,"b":2}', b'{"b":3}', b"not json", b"[1,2]", b'{"a":null}'])
    tool = tools("--topic=jf", "--require-json-field=a", f"--nsqd-tcp-address={tcp(src)}",
                 f"--destination-nsqd-tcp-address={tcp(dst)}")
    wait_drained(src, "jf")
    assert sorted(read_messages(dst, "jf", 2)) == [b'{"a":1,"b":2}', b'{"a":null}']
    tool.wait_for_log("ERROR: Unable to decode json: not json")
    assert_clean_exit(tool)


def test_require_json_value(two, tools):
    src, dst = two
    publish(src, "jv", [b'{"k":"v","n":1}', b'{"k":"w"}', b'{"k":5}', b'{"k":true}'])
    tool = tools("--topic=jv", "--require-json-field=k", "--require-json-value=v",
                 f"--nsqd-tcp-address={tcp(src)}", f"--destination-nsqd-tcp-address={tcp(dst)}")
    wait_drained(src, "jv")
    assert read_messages(dst, "jv", 1) == [b'{"k":"v","n":1}']
    assert_clean_exit(tool)


def test_require_json_numeric_value(two, tools):
    src, dst = two
    publish(src, "jn", [b'{"k":5}', b'{"k":5.0}', b'{"k":"5"}', b'{"k":6}', b'{"k":"5.0"}'])
    tool = tools("--topic=jn", "--require-json-field=k", "--require-json-value=5",
                 f"--nsqd-tcp-address={tcp(src)}", f"--destination-nsqd-tcp-address={tcp(dst)}")
    wait_drained(src, "jn")
    assert sorted(read_messages(dst, "jn", 3)) == [b'{"k":"5"}', b'{"k":5.0}', b'{"k":5}']
    assert_clean_exit(tool)


def test_missing_field_with_required_value_is_requeued(two, tools):
    src, dst = two
    publish(src, "jm", [b'{"other":1}'])
    tool = tools("--topic=jm", "--require-json-field=k", "--require-json-value=v",
                 "--consumer-opt=default_requeue_delay,50ms", "--consumer-opt=max_attempts,0",
                 "--consumer-opt=backoff_multiplier,10ms",
                 f"--nsqd-tcp-address={tcp(src)}", f"--destination-nsqd-tcp-address={tcp(dst)}")
    tool.wait_for_log("ERROR: missing field to check required value")
    wait_until(lambda: src.channel_stats("jm", "nsq_to_nsq")["requeue_count"] >= 2,
               msg="requeued again")
    assert topic_count(dst, "jm") == 0
    assert_clean_exit(tool)
    c = src.channel_stats("jm", "nsq_to_nsq")
    assert c["depth"] + c["deferred_count"] + c["in_flight_count"] == 1


def test_whitelist_json_fields(two, tools):
    src, dst = two
    publish(src, "jw", [b'{"z":"<z>","a":1.0,"b":{"y":1,"x":[1,"2"]},"c":3}',
                        b'{"c":1}', b"not json"])
    tool = tools("--topic=jw", "--whitelist-json-field=z", "--whitelist-json-field=b",
                 "--whitelist-json-field=a", "--whitelist-json-field=missing",
                 f"--nsqd-tcp-address={tcp(src)}", f"--destination-nsqd-tcp-address={tcp(dst)}")
    wait_drained(src, "jw")
    got = read_messages(dst, "jw", 2)
    assert sorted(got) == sorted([b'{"a":1.0,"b":{"x":[1,"2"],"y":1},"z":"\\u003cz\\u003e"}',
                                  b"{}"])
    assert json.loads(sorted(got)[0])["z"] == "<z>"
    assert_clean_exit(tool)


def test_whitelist_requeues_non_objects(two, tools):
    src, dst = two
    publish(src, "jx", [b"[1]"])
    tool = tools("--topic=jx", "--whitelist-json-field=a", "--consumer-opt=max_attempts,0",
                 "--consumer-opt=default_requeue_delay,50ms",
                 "--consumer-opt=backoff_multiplier,10ms",
                 f"--nsqd-tcp-address={tcp(src)}", f"--destination-nsqd-tcp-address={tcp(dst)}")
    tool.wait_for_log("ERROR: filterMessage\\(\\) failed: json is not an object")
    assert topic_count(dst, "jx") == 0
    assert_clean_exit(tool)


def test_status_every(mk, tools):
    src, d1, d2 = mk(), mk(), mk()
    publish(src, "st", [f"s{i}".encode() for i in range(5)])
    tool = tools("--topic=st", "--status-every=2", "--mode=round-robin",
                 f"--nsqd-tcp-address={tcp(src)}", f"--destination-nsqd-tcp-address={tcp(d1)}",
                 f"--destination-nsqd-tcp-address={tcp(d2)}")
    tool.wait_for_log(r"\[aggregate\]: finished 2 - 99th: \d+\.\d\dms - 95th: \d+\.\d\dms - "
                      r"avg: \d+\.\d\dms")
    tool.wait_for_log(r"\[127\.0\.0\.1:\d+\]: finished 2 - 99th")
    assert_clean_exit(tool)


SRC = "--nsqd-tcp-address=127.0.0.1:4150"
DST = "--destination-nsqd-tcp-address=127.0.0.1:4151"


@pytest.mark.parametrize("args,message", [
    ([SRC, DST], "--topic and --channel are required"),
    (["--topic=t", "--channel=", SRC, DST], "--topic and --channel are required"),
    (["--topic=t", "--topic=bad topic", SRC, DST], "--topic is invalid"),
    (["--topic=t", "--destination-topic=a/b", SRC, DST], "--destination-topic is invalid"),
    (["--topic=t", "--channel=c!", SRC, DST], "--channel is invalid"),
    (["--topic=t", DST], "--nsqd-tcp-address or --lookupd-http-address required"),
    (["--topic=t", SRC, "--lookupd-http-address=127.0.0.1:4161", DST],
     "use --nsqd-tcp-address or --lookupd-http-address not both"),
    (["--topic=t", SRC], "--destination-nsqd-tcp-address required"),
])
def test_fatal_validation(args, message):
    assert_logged_fatal(run_text(TOOL, *args), message)


def test_bad_flags_and_version():
    r = run_text(TOOL, "--nope")
    assert r.returncode == 2
    assert r.stderr.startswith("flag provided but not defined: -nope\nUsage of nsq_to_nsq:\n")
    r = run_text(TOOL, "--producer-opt=nosuch,1")
    assert r.returncode == 2
    r = run_text(TOOL, "--version")
    assert (r.returncode, r.stdout) == (0, "nsq_to_nsq v1.3.0\n")
    r = run_text(TOOL, "--help")
    assert r.returncode == 0
    for flag in ("-destination-nsqd-tcp-address value", "-destination-topic string",
                 "-require-json-field string", "-require-json-value string",
                 "-whitelist-json-field value", "-producer-opt value", "-mode string",
                 "-status-every int", "-topic value"):
        assert f"  {flag}\n" in r.stderr, flag
    assert '(default "nsq_to_nsq")' in r.stderr


# -- in-process: the go-simplejson style filter --------------------------------------------

def test_json_filter_semantics():
    from nsqpy.apps.nsq_to_nsq import JSONFilter, decode_json, marshal_json
    # Go's json.Decoder reads the first value; trailing data is ignored
    assert decode_json(b' {"a":1} trailing') == {"a": "1"}
    for bad in (b"", b"  ", b"NaN", b"{", b"nope"):
        with pytest.raises(ValueError):
            decode_json(bad)
    # numbers keep their literal text, keys come out sorted, HTML characters escaped
    v = decode_json(b'{"b":1.50,"a":[1e3,true,null,"<&>"],"c":{"z":0,"y":-0.0}}')
    assert marshal_json(v) == b'{"a":[1e3,true,null,"\\u003c\\u0026\\u003e"],"b":1.50,' \
                              b'"c":{"y":-0.0,"z":0}}'
    f = JSONFilter("k", "", [])
    assert f.should_pass(decode_json(b'{"k":false}')) == (True, False)
    assert f.should_pass(decode_json(b'{"j":1}')) == (False, False)
    assert f.should_pass(decode_json(b'"k"')) == (False, False)
    num = JSONFilter("k", "1e1", [])
    assert num.should_pass(decode_json(b'{"k":10}')) == (True, False)
    assert num.should_pass(decode_json(b'{"k":10.0}')) == (True, False)
    assert num.should_pass(decode_json(b'{"k":"1e1"}')) == (True, False)
    assert num.should_pass(decode_json(b'{"k":"10"}')) == (False, False)
    assert num.should_pass(decode_json(b'{"k":[10]}')) == (False, False)
    text = JSONFilter("k", "abc", [])
    assert text.should_pass(decode_json(b'{"k":1}')) == (False, False)
    assert text.should_pass(decode_json(b'{"x":1}')) == (False, True)   # backoff
    wl = JSONFilter("", "", ["b", "a"])
    assert wl.filter(decode_json(b'{"a":1,"b":2,"c":3}'), b"raw") == b'{"a":1,"b":2}'
    with pytest.raises(ValueError):
        wl.filter(decode_json(b"[1]"), b"[1]")
    assert JSONFilter("k", "", []).filter({"k": 1}, b"raw") == b"raw"
