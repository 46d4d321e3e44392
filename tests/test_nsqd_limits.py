"""Every nsqd limit flag, enforced with the spec's exact error, one step either side.

Spec: tcp-protocol.md §6 (IDENTIFY/AUTH/PUB/MPUB/DPUB/RDY/REQ/TOUCH/SUB tables, §6.1.1
value ranges), nsqd-http.md §3 (/pub, /mpub), flags.md §1 (flag validation).

Most tests share one module-scoped daemon started with small limits (``LIMITED``); each
test uses its own topic names.  Tests of start-up validation run the binary directly.
"""
import http.client
import json
import os
import socket
import struct
import subprocess
import time

import pytest

from daemons import BIN, start_nsqd
from nsqpy.protocol import commands as cmds

MAX_MSG = 100
MAX_BODY = 300
MAX_RDY = 5
MAX_OBUF = 1000
MIN_OBUF_MS = 50
MAX_OBUF_MS = 2000
MAX_HB_MS = 5000
MSG_TIMEOUT_MS = 1500
MAX_MSG_TIMEOUT_MS = 2000
MAX_REQ_MS = 1000
MAX_CONSUMERS = 2
MAX_DEFLATE = 3
MEM_QUEUE = 3

LIMITED = [
    f"--max-msg-size={MAX_MSG}",
    f"--max-body-size={MAX_BODY}",
    f"--max-rdy-count={MAX_RDY}",
    f"--max-output-buffer-size={MAX_OBUF}",
    f"--min-output-buffer-timeout={MIN_OBUF_MS}ms",
    f"--max-output-buffer-timeout={MAX_OBUF_MS}ms",
    f"--max-heartbeat-interval={MAX_HB_MS}ms",
    f"--msg-timeout={MSG_TIMEOUT_MS}ms",
    f"--max-msg-timeout={MAX_MSG_TIMEOUT_MS}ms",
    f"--max-req-timeout={MAX_REQ_MS}ms",
    f"--max-channel-consumers={MAX_CONSUMERS}",
    f"--max-deflate-level={MAX_DEFLATE}",
    f"--mem-queue-size={MEM_QUEUE}",
]


@pytest.fixture(scope="module")
def lim(tmp_path_factory):
    d = start_nsqd(tmp_path_factory.mktemp("limits"), *LIMITED)
    yield d
    d.stop()


@pytest.fixture
def conn(lim, conn_factory):
    """A fresh V2 connection to the shared limited daemon."""
    return lambda: conn_factory(lim)


def run_nsqd(tmp_path, *flags, timeout=15):
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    return subprocess.run([os.path.join(BIN, "nsqd"), "--tcp-address=127.0.0.1:0",
                           "--http-address=127.0.0.1:0", f"--data-path={data}", *flags],
                          capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def i32(n):
    return struct.pack(">i", n)


def fatal(c, text: bytes):
    c.expect_error(text)
    c.expect_closed()


def identify_error(c, fields, text: bytes):
    c.send(cmds.encode_identify(fields))
    fatal(c, text)


def negotiate(c, **fields):
    return c.identify(feature_negotiation=True, **fields)


def mpub_raw(topic, body_size, count, bodies=()):
    """MPUB with an explicit body-size field and message count (not recomputed)."""
    out = b"MPUB " + topic.encode() + b"\n" + i32(body_size) + i32(count)
    for b in bodies:
        out += i32(len(b)) + b
    return out


def wait_for(pred, timeout=10.0, interval=0.05):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(interval)


def http_json(status_body):
    status, _, body = status_body
    return status, (json.loads(body)["message"] if status != 200 else body)


def http_chunked(d, path, chunks):
    """POST with Transfer-Encoding: chunked (no Content-Length)."""
    c = http.client.HTTPConnection("127.0.0.1", d.http_port, timeout=10)
    try:
        c.request("POST", path, body=iter(chunks), encode_chunked=True)
        r = c.getresponse()
        body = r.read()
        return r.status, (json.loads(body)["message"] if r.status != 200 else body)
    except (BrokenPipeError, ConnectionResetError):
        r = c.getresponse()
        body = r.read()
        return r.status, (json.loads(body)["message"] if r.status != 200 else body)
    finally:
        c.close()


def http_headers_only(d, path, content_length):
    """Send only the request head announcing ``content_length`` bytes; never the body.

    The daemon must answer from the header alone (checked before reading the body)."""
    s = socket.create_connection(("127.0.0.1", d.http_port), timeout=10)
    try:
        s.sendall(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  f"Content-Length: {content_length}\r\n\r\n".encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            k, _, v = line.partition(b":")
            if k.strip().lower() == b"content-length":
                length = int(v)
        while len(rest) < length:
            chunk = s.recv(4096)
            if not chunk:
                break
            rest += chunk
        return status, json.loads(rest)["message"]
    finally:
        s.close()


# ---------------------------------------------------------------------------- --max-msg-size


def test_pub_at_max_msg_size_is_accepted(conn):
    conn().pub("mm_pub", b"x" * MAX_MSG)


def test_pub_over_max_msg_size_is_fatal_message_too_big(conn):
    c = conn()
    c.send(cmds.encode_pub("mm_pub", b"x" * (MAX_MSG + 1)))
    fatal(c, b"E_BAD_MESSAGE PUB message too big 101 > 100")


def test_dpub_at_max_msg_size_is_accepted(conn):
    c = conn()
    c.send(cmds.encode_dpub("mm_dpub", 10, b"x" * MAX_MSG))
    c.expect_response(b"OK")


def test_dpub_over_max_msg_size_is_fatal_message_too_big(conn):
    c = conn()
    c.send(cmds.encode_dpub("mm_dpub", 10, b"x" * (MAX_MSG + 1)))
    fatal(c, b"E_BAD_MESSAGE DPUB message too big 101 > 100")


def test_mpub_message_at_max_msg_size_is_accepted(conn):
    c = conn()
    c.send(cmds.encode_mpub("mm_mpub", [b"a", b"x" * MAX_MSG]))
    c.expect_response(b"OK")


def test_mpub_message_over_max_msg_size_is_fatal_message_too_big(conn, lim):
    c = conn()
    c.send(cmds.encode_mpub("mm_mpub_big", [b"a", b"x" * (MAX_MSG + 1)]))
    fatal(c, b"E_BAD_MESSAGE MPUB message too big 101 > 100")
    # atomic: the first (valid) message was not queued either
    t = lim.stats(topic="mm_mpub_big")["topics"]
    assert t is None or t[0]["message_count"] == 0


def test_http_pub_at_max_msg_size_is_accepted(lim):
    assert lim.http("POST", "/pub?topic=mm_http", b"x" * MAX_MSG)[:3:2] == (200, b"OK")


def test_http_pub_over_max_msg_size_is_413_msg_too_big(lim):
    assert http_json(lim.http("POST", "/pub?topic=mm_http", b"x" * (MAX_MSG + 1))) == \
        (413, "MSG_TOO_BIG")


def test_http_pub_content_length_over_max_is_rejected_before_the_body(lim):
    assert http_headers_only(lim, "/pub?topic=mm_http_cl", MAX_MSG + 1) == (413, "MSG_TOO_BIG")
    assert lim.stats(topic="mm_http_cl")["topics"] is None   # checked before the topic


def test_http_pub_chunked_body_at_max_msg_size_is_accepted(lim):
    assert http_chunked(lim, "/pub?topic=mm_http_ch", [b"x" * 60, b"y" * 40]) == (200, b"OK")


def test_http_pub_chunked_body_over_max_msg_size_is_413(lim):
    assert http_chunked(lim, "/pub?topic=mm_http_ch", [b"x" * 60, b"y" * 41]) == \
        (413, "MSG_TOO_BIG")


def test_http_mpub_text_line_at_max_msg_size_is_accepted(lim):
    body = b"x" * MAX_MSG + b"\n" + b"y" * MAX_MSG + b"\n"
    assert lim.http("POST", "/mpub?topic=mm_mpub_text", body)[:3:2] == (200, b"OK")
    assert lim.stats(topic="mm_mpub_text")["topics"][0]["message_count"] == 2


def test_http_mpub_text_line_over_max_msg_size_is_413_msg_too_big(lim):
    body = b"x\n" + b"y" * (MAX_MSG + 1) + b"\n"
    assert http_json(lim.http("POST", "/mpub?topic=mm_mpub_text2", body)) == (413, "MSG_TOO_BIG")
    assert lim.stats(topic="mm_mpub_text2")["topics"][0]["message_count"] == 0


def test_http_mpub_text_last_line_without_newline_over_max_is_413(lim):
    body = b"x\n" + b"y" * (MAX_MSG + 1)
    assert http_json(lim.http("POST", "/mpub?topic=mm_mpub_text3", body)) == (413, "MSG_TOO_BIG")


def test_http_mpub_text_carriage_return_counts_toward_max_msg_size(lim):
    # only the trailing \n is removed; a \r is part of the message
    assert lim.http("POST", "/mpub?topic=mm_mpub_cr", b"y" * (MAX_MSG - 1) + b"\r\n")[0] == 200
    body = b"y" * MAX_MSG + b"\r\n"
    assert http_json(lim.http("POST", "/mpub?topic=mm_mpub_cr", body)) == (413, "MSG_TOO_BIG")


def test_http_mpub_binary_message_over_max_msg_size_is_413_bad_message(lim):
    ok = i32(1) + i32(MAX_MSG) + b"x" * MAX_MSG
    assert lim.http("POST", "/mpub?topic=mm_mpub_bin&binary=true", ok)[:3:2] == (200, b"OK")
    bad = i32(1) + i32(MAX_MSG + 1) + b"x" * (MAX_MSG + 1)
    assert http_json(lim.http("POST", "/mpub?topic=mm_mpub_bin&binary=true", bad)) == \
        (413, "BAD_MESSAGE")


def test_http_config_put_body_at_max_msg_size_passes_the_size_check(lim):
    assert http_json(lim.http("PUT", "/config/log_level", b"x" * MAX_MSG)) == \
        (400, "INVALID_VALUE")


def test_http_config_put_body_over_max_msg_size_is_413_invalid_value(lim):
    assert http_json(lim.http("PUT", "/config/log_level", b"x" * (MAX_MSG + 1))) == \
        (413, "INVALID_VALUE")
    # the size check comes before the option check
    assert http_json(lim.http("PUT", "/config/max_msg_size", b"x" * (MAX_MSG + 1))) == \
        (413, "INVALID_VALUE")


# --------------------------------------------------------------------------- --max-body-size


def identify_body_of(size: int) -> dict:
    fields = {"client_id": ""}
    pad = size - len(json.dumps(fields, separators=(",", ":")))
    fields["client_id"] = "p" * pad
    assert len(json.dumps(fields, separators=(",", ":"))) == size
    return fields


def test_identify_body_at_max_body_size_is_accepted(conn):
    c = conn()
    c.send(cmds.encode_identify(identify_body_of(MAX_BODY)))
    c.expect_response(b"OK")


def test_identify_body_over_max_body_size_is_fatal_body_too_big(conn):
    identify_error(conn(), identify_body_of(MAX_BODY + 1),
                   b"E_BAD_BODY IDENTIFY body too big 301 > 300")


def test_auth_body_at_max_body_size_passes_the_size_check(conn):
    c = conn()
    c.send(cmds.encode_auth(b"s" * MAX_BODY))
    fatal(c, b"E_AUTH_DISABLED AUTH disabled")      # next check after the size checks


def test_auth_body_over_max_body_size_is_fatal_body_too_big(conn):
    c = conn()
    c.send(cmds.encode_auth(b"s" * (MAX_BODY + 1)))
    fatal(c, b"E_BAD_BODY AUTH body too big 301 > 300")


def test_mpub_body_at_max_body_size_is_accepted(conn):
    # 4 (count) + 3 x (4 + 92) = 292; + one 4+4 message = 300
    bodies = [b"x" * 92] * 3 + [b"abcd"]
    data = cmds.encode_mpub("mb_mpub", bodies)
    assert struct.unpack(">i", data[len(b"MPUB mb_mpub\n"):][:4])[0] == MAX_BODY
    c = conn()
    c.send(data)
    c.expect_response(b"OK")


def test_mpub_body_over_max_body_size_is_fatal_body_too_big(conn):
    bodies = [b"x" * 92] * 3 + [b"abcde"]
    c = conn()
    c.send(cmds.encode_mpub("mb_mpub", bodies))
    fatal(c, b"E_BAD_BODY MPUB body too big 301 > 300")


def test_mpub_message_count_at_bound_is_accepted(conn, lim):
    n = (MAX_BODY - 4) // 5                      # 59 one-byte messages = 299 bytes
    c = conn()
    c.send(cmds.encode_mpub("mb_count", [b"m"] * n))
    c.expect_response(b"OK")
    assert lim.stats(topic="mb_count")["topics"][0]["message_count"] == n


def test_mpub_message_count_over_bound_is_fatal_invalid_count(conn):
    n = (MAX_BODY - 4) // 5 + 1
    c = conn()
    c.send(mpub_raw("mb_count2", MAX_BODY, n))
    fatal(c, b"E_BAD_BODY MPUB invalid message count 60")


def test_http_mpub_content_length_at_max_body_size_is_accepted(lim):
    body = (b"y" * 99 + b"\n") * 3                 # exactly 300 bytes
    assert len(body) == MAX_BODY
    assert lim.http("POST", "/mpub?topic=mb_http", body)[:3:2] == (200, b"OK")


def test_http_mpub_content_length_over_max_body_size_is_413_body_too_big(lim):
    body = (b"y" * 99 + b"\n") * 3 + b"z"
    assert http_json(lim.http("POST", "/mpub?topic=mb_http", body)) == (413, "BODY_TOO_BIG")
    assert http_headers_only(lim, "/mpub?topic=mb_http", MAX_BODY + 1) == (413, "BODY_TOO_BIG")


def test_http_mpub_chunked_text_at_max_body_size_is_accepted(lim):
    chunks = [b"y" * 99 + b"\n"] * 3
    assert http_chunked(lim, "/mpub?topic=mb_http_ch", chunks) == (200, b"OK")


def test_http_mpub_chunked_text_over_max_body_size_is_413_body_too_big(lim):
    chunks = [b"y" * 99 + b"\n"] * 3 + [b"z"]
    assert http_chunked(lim, "/mpub?topic=mb_http_ch", chunks) == (413, "BODY_TOO_BIG")


def test_http_mpub_binary_message_count_at_bound_is_accepted(lim):
    n = (MAX_BODY - 4) // 5
    body = i32(n) + (i32(1) + b"m") * n
    assert lim.http("POST", "/mpub?topic=mb_http_bin&binary=true", body)[:3:2] == (200, b"OK")


def test_http_mpub_binary_message_count_over_bound_is_413_bad_body(lim):
    n = (MAX_BODY - 4) // 5 + 1
    body = i32(n) + (i32(1) + b"m") * 10
    assert http_json(lim.http("POST", "/mpub?topic=mb_http_bin&binary=true", body)) == \
        (413, "BAD_BODY")


# --------------------------------------------------------------------------- --max-rdy-count


def test_identify_reply_advertises_max_rdy_count(conn):
    assert negotiate(conn())["max_rdy_count"] == MAX_RDY


def test_info_and_config_advertise_the_configured_maxima(lim):
    info = json.loads(lim.http("GET", "/info")[2])
    assert info["max_heartbeat_interval"] == MAX_HB_MS * 1_000_000
    assert info["max_output_buffer_size"] == MAX_OBUF
    assert info["max_output_buffer_timeout"] == MAX_OBUF_MS * 1_000_000
    assert info["max_deflate_level"] == MAX_DEFLATE
    for opt, want in [("max_msg_size", MAX_MSG), ("max_body_size", MAX_BODY),
                      ("max_rdy_count", MAX_RDY), ("max_channel_consumers", MAX_CONSUMERS),
                      ("max_req_timeout", MAX_REQ_MS * 1_000_000),
                      ("max_msg_timeout", MAX_MSG_TIMEOUT_MS * 1_000_000),
                      ("min_output_buffer_timeout", MIN_OBUF_MS * 1_000_000),
                      ("mem_queue_size", MEM_QUEUE)]:
        assert lim.http("GET", f"/config/{opt}")[2] == str(want).encode(), opt


def test_rdy_at_max_rdy_count_is_accepted(conn, lim):
    c = conn()
    c.subscribe("rdy_t", "c")
    c.send(cmds.encode_rdy(MAX_RDY))
    c.send(cmds.encode_nop())
    wait_for(lambda: lim.channel_stats("rdy_t", "c")["clients"][0]["ready_count"] == MAX_RDY)


def test_rdy_over_max_rdy_count_is_fatal_out_of_range(conn):
    c = conn()
    c.subscribe("rdy_t", "c")
    c.send(cmds.encode_rdy(MAX_RDY + 1))
    fatal(c, b"E_INVALID RDY count 6 out of range 0-5")


# ------------------------------------------------- --max-output-buffer-size / -timeout bounds


@pytest.mark.parametrize("size,want", [(64, 64), (MAX_OBUF, MAX_OBUF), (0, 16384), (-1, 1)])
def test_identify_output_buffer_size_within_bounds_is_accepted(conn, size, want):
    resp = negotiate(conn(), output_buffer_size=size)
    assert resp["output_buffer_size"] == want
    if size == -1:
        assert resp["output_buffer_timeout"] == 0   # -1 size forces the timeout off


@pytest.mark.parametrize("size", [63, MAX_OBUF + 1, -2])
def test_identify_output_buffer_size_out_of_bounds_is_fatal(conn, size):
    identify_error(conn(), {"output_buffer_size": size},
                   b"E_BAD_BODY IDENTIFY output buffer size (%d) is invalid" % size)


@pytest.mark.parametrize("timeout,want", [(MIN_OBUF_MS, MIN_OBUF_MS), (MAX_OBUF_MS, MAX_OBUF_MS),
                                          (0, 250), (-1, 0)])
def test_identify_output_buffer_timeout_within_bounds_is_accepted(conn, timeout, want):
    resp = negotiate(conn(), output_buffer_timeout=timeout)
    assert resp["output_buffer_timeout"] == want


@pytest.mark.parametrize("timeout", [MIN_OBUF_MS - 1, MAX_OBUF_MS + 1, -2, 1])
def test_identify_output_buffer_timeout_out_of_bounds_is_fatal(conn, timeout):
    identify_error(conn(), {"output_buffer_timeout": timeout},
                   b"E_BAD_BODY IDENTIFY output buffer timeout (%d) is invalid" % timeout)


def test_identify_output_buffer_timeout_is_validated_before_size(conn):
    identify_error(conn(), {"output_buffer_size": MAX_OBUF + 1, "output_buffer_timeout": 1},
                   b"E_BAD_BODY IDENTIFY output buffer timeout (1) is invalid")


def test_identify_output_buffer_size_minus_one_overrides_the_timeout(conn):
    resp = negotiate(conn(), output_buffer_size=-1, output_buffer_timeout=MAX_OBUF_MS)
    assert (resp["output_buffer_size"], resp["output_buffer_timeout"]) == (1, 0)


def test_output_buffer_size_minus_one_delivers_without_waiting_for_the_timer(conn):
    pub, sub = conn(), conn()
    resp = negotiate(sub, output_buffer_size=-1, output_buffer_timeout=MAX_OBUF_MS)
    assert (resp["output_buffer_size"], resp["output_buffer_timeout"]) == (1, 0)
    sub.subscribe("obuf_direct", "c", rdy=MAX_RDY)      # RDY > in flight: no "not ready" flush
    t0 = time.monotonic()
    pub.pub("obuf_direct", b"now")
    assert sub.read_message(timeout=10)[2] == b"now"
    assert time.monotonic() - t0 < MAX_OBUF_MS / 1000 * 0.75


# ------------------------------------------------------------------- --max-heartbeat-interval


@pytest.mark.parametrize("hb", [1000, MAX_HB_MS, 0, -1])
def test_identify_heartbeat_interval_within_bounds_is_accepted(conn, hb):
    c = conn()
    c.send(cmds.encode_identify({"heartbeat_interval": hb}))
    c.expect_response(b"OK")


@pytest.mark.parametrize("hb", [999, MAX_HB_MS + 1, -2])
def test_identify_heartbeat_interval_out_of_bounds_is_fatal(conn, hb):
    identify_error(conn(), {"heartbeat_interval": hb},
                   b"E_BAD_BODY IDENTIFY heartbeat interval (%d) is invalid" % hb)


def test_heartbeat_interval_at_minimum_is_applied(conn):
    c = conn()
    c.send(cmds.encode_identify({"heartbeat_interval": 1000}))
    c.expect_response(b"OK")
    t0 = time.monotonic()
    assert c.read_frame(timeout=10, skip_heartbeats=False) == (0, b"_heartbeat_")
    assert time.monotonic() - t0 < 5


# -------------------------------------------------------------------------- --max-msg-timeout


@pytest.mark.parametrize("mt,want", [(1000, 1000), (MAX_MSG_TIMEOUT_MS, MAX_MSG_TIMEOUT_MS),
                                     (0, MSG_TIMEOUT_MS)])
def test_identify_msg_timeout_within_bounds_is_accepted(conn, mt, want):
    resp = negotiate(conn(), msg_timeout=mt)
    assert resp["msg_timeout"] == want
    assert resp["max_msg_timeout"] == MAX_MSG_TIMEOUT_MS


@pytest.mark.parametrize("mt", [999, MAX_MSG_TIMEOUT_MS + 1, -1])
def test_identify_msg_timeout_out_of_bounds_is_fatal(conn, mt):
    identify_error(conn(), {"msg_timeout": mt},
                   b"E_BAD_BODY IDENTIFY msg timeout (%d) is invalid" % mt)


def test_identify_msg_timeout_at_minimum_times_the_message_out(conn, lim):
    pub, sub = conn(), conn()
    sub.send(cmds.encode_identify({"msg_timeout": 1000}))
    sub.expect_response(b"OK")
    sub.subscribe("mt_min", "c", rdy=1)
    pub.pub("mt_min", b"slow")
    msg_id, attempts, _, _ = sub.read_message(timeout=10)
    t0 = time.monotonic()
    again = sub.read_message(timeout=10)
    assert again[:2] == (msg_id, attempts + 1)
    assert 0.7 <= time.monotonic() - t0 < 8
    assert lim.channel_stats("mt_min", "c")["timeout_count"] == 1


def test_touch_cannot_extend_past_delivery_plus_max_msg_timeout(conn, lim):
    pub, sub = conn(), conn()
    sub.send(cmds.encode_identify({"msg_timeout": MAX_MSG_TIMEOUT_MS}))
    sub.expect_response(b"OK")
    sub.subscribe("touch_cap", "c", rdy=1)
    pub.pub("touch_cap", b"held")
    msg_id, attempts, _, _ = sub.read_message(timeout=10)
    delivered = time.monotonic()
    assert attempts == 1
    # keep touching; without the cap the deadline would move forever
    while True:
        sub.send(cmds.encode_touch(msg_id))
        try:
            ft, data = sub.read_frame(timeout=0.3)
        except socket.timeout:
            assert time.monotonic() - delivered < 15, "TOUCH extended the deadline past the cap"
            continue
        if ft == 1:
            assert data.startswith(b"E_TOUCH_FAILED TOUCH " + msg_id), data   # non-fatal
            continue
        assert ft == 2
        break
    elapsed = time.monotonic() - delivered
    assert data[10:26] == msg_id
    assert struct.unpack(">H", data[8:10])[0] == 2
    assert elapsed >= MAX_MSG_TIMEOUT_MS / 1000 - 0.3
    assert lim.channel_stats("touch_cap", "c")["timeout_count"] == 1


# -------------------------------------------------------------------------- --max-req-timeout


def test_req_above_max_req_timeout_is_clamped_not_rejected(conn, lim):
    pub, sub = conn(), conn()
    sub.subscribe("req_clamp", "c", rdy=1)
    pub.pub("req_clamp", b"again")
    msg_id, _, _, _ = sub.read_message(timeout=10)
    t0 = time.monotonic()
    sub.send(cmds.encode_req(msg_id, 30_000))          # 30 s asked, max is 1 s
    got_id, attempts, body, _ = sub.read_message(timeout=15)
    elapsed = time.monotonic() - t0
    assert (got_id, attempts, body) == (msg_id, 2, b"again")
    assert 0.7 <= elapsed < 10, elapsed
    assert lim.channel_stats("req_clamp", "c")["requeue_count"] == 1


def test_req_at_max_req_timeout_is_deferred(conn, lim):
    pub, sub = conn(), conn()
    sub.subscribe("req_max", "c", rdy=1)
    pub.pub("req_max", b"later")
    msg_id, _, _, _ = sub.read_message(timeout=10)
    sub.send(cmds.encode_req(msg_id, MAX_REQ_MS))
    wait_for(lambda: lim.channel_stats("req_max", "c")["deferred_count"] == 1, timeout=0.9)
    assert sub.read_message(timeout=10)[:2] == (msg_id, 2)


def test_dpub_at_max_req_timeout_is_accepted(conn, lim):
    c = conn()
    c.send(cmds.encode_dpub("dpub_max", MAX_REQ_MS, b"d"))
    c.expect_response(b"OK")


def test_dpub_over_max_req_timeout_is_fatal_out_of_range(conn):
    c = conn()
    c.send(cmds.encode_dpub("dpub_max", MAX_REQ_MS + 1, b"d"))
    fatal(c, b"E_INVALID DPUB timeout 1001 out of range 0-1000")


def test_http_pub_defer_at_max_req_timeout_is_accepted(lim):
    assert lim.http("POST", f"/pub?topic=defer_max&defer={MAX_REQ_MS}", b"d")[:3:2] == \
        (200, b"OK")


@pytest.mark.parametrize("defer", [str(MAX_REQ_MS + 1), "-1", "abc"])
def test_http_pub_defer_out_of_range_is_400_invalid_defer(lim, defer):
    topic = f"defer_bad_{defer}"
    assert http_json(lim.http("POST", f"/pub?topic={topic}&defer={defer}", b"d")) == \
        (400, "INVALID_DEFER")
    # the topic is created before the defer check, but nothing was published
    assert lim.stats(topic=topic)["topics"][0]["message_count"] == 0


# -------------------------------------------------------------------- --max-channel-consumers


def test_sub_up_to_max_channel_consumers_is_accepted(conn, lim):
    for _ in range(MAX_CONSUMERS):
        conn().subscribe("consumers_ok", "c")
    assert lim.channel_stats("consumers_ok", "c")["client_count"] == MAX_CONSUMERS


def test_sub_over_max_channel_consumers_is_fatal_sub_failed(conn, lim):
    subs = [conn() for _ in range(MAX_CONSUMERS)]
    for s in subs:
        s.subscribe("consumers", "c")
    extra = conn()
    extra.send(cmds.encode_sub("consumers", "c"))
    fatal(extra, b"E_SUB_FAILED SUB failed consumers for consumers:c exceeds limit of 2")
    # another channel of the same topic has its own count
    conn().subscribe("consumers", "other")
    # a slot freed by a disconnect can be taken again
    subs[0].close()
    wait_for(lambda: lim.channel_stats("consumers", "c")["client_count"] == MAX_CONSUMERS - 1)
    conn().subscribe("consumers", "c")


# ------------------------------------------------------------------------ --max-deflate-level


@pytest.mark.parametrize("asked,want", [(MAX_DEFLATE - 1, MAX_DEFLATE - 1),
                                        (MAX_DEFLATE, MAX_DEFLATE),
                                        (MAX_DEFLATE + 1, MAX_DEFLATE), (9, MAX_DEFLATE)])
def test_identify_deflate_level_is_clamped_to_max_deflate_level(conn, asked, want):
    c = conn()
    resp = negotiate(c, deflate=True, deflate_level=asked)
    assert (resp["deflate"], resp["deflate_level"], resp["max_deflate_level"]) == \
        (True, want, MAX_DEFLATE)
    c.upgrade(resp, deflate_level=want)
    c.pub("deflate_clamp", b"z" * 50)


def test_identify_deflate_level_without_deflate_reports_clamped_default(conn):
    resp = negotiate(conn(), deflate_level=9)
    assert (resp["deflate"], resp["deflate_level"]) == (False, MAX_DEFLATE)


@pytest.mark.parametrize("level", [1, 9])
def test_max_deflate_level_at_bounds_starts(nsqd_factory, conn_factory, level):
    d = nsqd_factory(f"--max-deflate-level={level}")
    resp = negotiate(conn_factory(d), deflate=True, deflate_level=9)
    assert (resp["deflate_level"], resp["max_deflate_level"]) == (level, level)
    assert json.loads(d.http("GET", "/info")[2])["max_deflate_level"] == level


@pytest.mark.parametrize("level", [0, 10])
def test_max_deflate_level_out_of_bounds_is_fatal_at_startup(tmp_path, level):
    r = run_nsqd(tmp_path, f"--max-deflate-level={level}")
    assert r.returncode == 1, r.stderr
    assert "FATAL: failed to instantiate nsqd - --max-deflate-level must be [1,9]" in r.stderr


# --------------------------------------------------------------------------- --mem-queue-size


def create_channel(d, topic, channel):
    assert d.http("POST", f"/topic/create?topic={topic}")[0] == 200
    assert d.http("POST", f"/channel/create?topic={topic}&channel={channel}")[0] == 200


def wait_depths(d, topic, channel, want):
    def get():
        if channel is None:
            ts = d.stats(topic=topic)["topics"]
            s = ts[0] if ts else None
        else:
            s = d.channel_stats(topic, channel)
        return s is not None and (s["depth"], s["backend_depth"]) == want
    try:
        wait_for(get, timeout=5)
    except AssertionError:
        raise AssertionError(f"{topic}/{channel}: want {want}, stats {d.stats(topic=topic)}")


def test_channel_depth_at_mem_queue_size_stays_in_memory(lim):
    create_channel(lim, "mq_ch_n", "c")
    for i in range(MEM_QUEUE):
        assert lim.http("POST", "/pub?topic=mq_ch_n", b"m%d" % i)[0] == 200
    wait_depths(lim, "mq_ch_n", "c", (MEM_QUEUE, 0))


def test_channel_depth_over_mem_queue_size_spills_one_to_disk(lim):
    create_channel(lim, "mq_ch_n1", "c")
    for i in range(MEM_QUEUE + 1):
        assert lim.http("POST", "/pub?topic=mq_ch_n1", b"m%d" % i)[0] == 200
    wait_depths(lim, "mq_ch_n1", "c", (MEM_QUEUE + 1, 1))


def test_topic_depth_at_mem_queue_size_stays_in_memory(lim):
    for i in range(MEM_QUEUE):
        assert lim.http("POST", "/pub?topic=mq_t_n", b"m%d" % i)[0] == 200
    wait_depths(lim, "mq_t_n", None, (MEM_QUEUE, 0))


def test_topic_depth_over_mem_queue_size_spills_one_to_disk(lim):
    for i in range(MEM_QUEUE + 1):
        assert lim.http("POST", "/pub?topic=mq_t_n1", b"m%d" % i)[0] == 200
    wait_depths(lim, "mq_t_n1", None, (MEM_QUEUE + 1, 1))


def test_mem_queue_overflow_is_delivered_complete(conn, lim):
    create_channel(lim, "mq_all", "c")
    bodies = [b"m%d" % i for i in range(MEM_QUEUE + 2)]
    assert lim.http("POST", "/mpub?topic=mq_all", b"\n".join(bodies))[0] == 200
    wait_depths(lim, "mq_all", "c", (MEM_QUEUE + 2, 2))
    sub = conn()
    sub.subscribe("mq_all", "c", rdy=MAX_RDY)
    got = []
    for _ in bodies:
        msg_id, _, body, _ = sub.read_message(timeout=10)
        got.append(body)
        sub.send(cmds.encode_fin(msg_id))
    assert sorted(got) == sorted(bodies)


# ------------------------------------------------------------------------------- sample_rate


@pytest.mark.parametrize("rate", [0, 1, 99])
def test_identify_sample_rate_within_bounds_is_accepted(conn, rate):
    assert negotiate(conn(), sample_rate=rate)["sample_rate"] == rate


@pytest.mark.parametrize("rate", [-1, 100])
def test_identify_sample_rate_out_of_bounds_is_fatal(conn, rate):
    identify_error(conn(), {"sample_rate": rate},
                   b"E_BAD_BODY IDENTIFY sample rate (%d) is invalid" % rate)


# ---------------------------------------------------------------------------------- --node-id


@pytest.mark.parametrize("node_id", [0, 1023])
def test_node_id_at_bounds_starts_and_is_in_message_ids(nsqd_factory, conn_factory, node_id):
    d = nsqd_factory(f"--node-id={node_id}")
    assert f"ID: {node_id}" in d.wait_for_log(r"INFO: ID: \d+")
    c = conn_factory(d)
    c.subscribe("nid", "c", rdy=1)
    conn_factory(d).pub("nid", b"x")
    msg_id = c.read_message(timeout=10)[0]
    assert (int(msg_id, 16) >> 12) & 0x3FF == node_id


@pytest.mark.parametrize("node_id", [-1, 1024])
def test_node_id_out_of_bounds_is_fatal_at_startup(tmp_path, node_id):
    r = run_nsqd(tmp_path, f"--node-id={node_id}")
    assert r.returncode == 1, r.stderr
    assert "FATAL: failed to instantiate nsqd - --node-id must be [0,1024)" in r.stderr
