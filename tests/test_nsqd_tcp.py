"""nsqd TCP protocol V2 against a real daemon: every command, its success and error paths."""
import json
import socket
import struct
import time

import pytest

from nsqpy.protocol import commands as cmds


def test_magic_then_nop_gets_no_reply(nsqd, conn_factory):
    c = conn_factory(nsqd)
    c.send(b"NOP\n")
    c.pub("t", b"x")          # the connection still works and the next reply is the PUB's


def test_bad_magic_gets_bad_protocol_and_close(nsqd, conn_factory):
    c = conn_factory(nsqd, magic=b"  V1")
    c.expect_error(b"E_BAD_PROTOCOL")
    c.expect_closed()


def test_identify_without_negotiation_answers_ok(nsqd, conn_factory):
    c = conn_factory(nsqd)
    c.send(cmds.encode_identify({"client_id": "a"}))
    c.expect_response(b"OK")


def test_identify_feature_negotiation_default_reply_bytes(nsqd, conn_factory):
    c = conn_factory(nsqd)
    c.send(cmds.encode_identify({"feature_negotiation": True}))
    ft, data = c.read_frame()
    assert ft == 0
    assert data == (b'{"max_rdy_count":2500,"version":"1.3.0","max_msg_timeout":900000,'
                    b'"msg_timeout":60000,"tls_v1":false,"deflate":false,"deflate_level":6,'
                    b'"max_deflate_level":6,"snappy":false,"sample_rate":0,"auth_required":false,'
                    b'"output_buffer_size":16384,"output_buffer_timeout":250}')


def test_identify_bad_json_is_fatal_bad_body(nsqd, conn_factory):
    c = conn_factory(nsqd)
    c.send(b"IDENTIFY\n" + struct.pack(">i", 3) + b"{x}")
    c.expect_error(b"E_BAD_BODY IDENTIFY failed to decode JSON body")
    c.expect_closed()


def test_identify_heartbeat_interval_out_of_range_is_fatal(nsqd, conn_factory):
    c = conn_factory(nsqd)
    c.send(cmds.encode_identify({"heartbeat_interval": 999}))
    c.expect_error(b"E_BAD_BODY IDENTIFY heartbeat interval (999) is invalid")
    c.expect_closed()


def test_identify_after_sub_is_invalid(nsqd, conn_factory):
    c = conn_factory(nsqd)
    c.subscribe("t", "c")
    c.send(cmds.encode_identify({}))
    c.expect_error(b"E_INVALID cannot IDENTIFY in current state")
    c.expect_closed()


def test_pub_then_sub_delivers_message_with_attempts_one(nsqd, conn_factory):
    p = conn_factory(nsqd)
    p.pub("t1", b"hello")
    c = conn_factory(nsqd)
    c.subscribe("t1", "ch", rdy=1)
    msg_id, attempts, body, ts = c.read_message()
    assert (attempts, body) == (1, b"hello")
    assert len(msg_id) == 16 and int(msg_id, 16) >= 0
    assert abs(ts / 1e9 - time.time()) < 10


def test_messages_published_before_first_channel_wait_in_topic(nsqd, conn_factory):
    p = conn_factory(nsqd)
    for i in range(5):
        p.pub("early", b"m%d" % i)
    assert nsqd.stats(topic="early")["topics"][0]["depth"] == 5
    c = conn_factory(nsqd)
    c.subscribe("early", "ch", rdy=10)
    got = sorted(c.read_message()[2] for _ in range(5))
    assert got == [b"m%d" % i for i in range(5)]


def test_mpub_delivers_every_message(nsqd, conn_factory):
    c = conn_factory(nsqd)
    c.subscribe("mp", "ch", rdy=100)
    p = conn_factory(nsqd)
    bodies = [b"body-%d" % i for i in range(50)]
    p.send(cmds.encode_mpub("mp", bodies))
    p.expect_response()
    got = [c.read_message()[2] for _ in range(50)]
    assert sorted(got) == sorted(bodies)


def test_every_channel_gets_a_copy(nsqd, conn_factory):
    a = conn_factory(nsqd)
    a.subscribe("fan", "a", rdy=5)
    b = conn_factory(nsqd)
    b.subscribe("fan", "b", rdy=5)
    conn_factory(nsqd).pub("fan", b"x")
    ida = a.read_message()
    idb = b.read_message()
    assert ida[0] == idb[0] and ida[2] == idb[2] == b"x"


def test_channel_load_balances_between_consumers(nsqd, conn_factory):
    a = conn_factory(nsqd)
    a.subscribe("lb", "c", rdy=1)
    b = conn_factory(nsqd)
    b.subscribe("lb", "c", rdy=1)
    p = conn_factory(nsqd)
    p.pub("lb", b"1")
    p.pub("lb", b"2")
    got = {a.read_message()[2], b.read_message()[2]}
    assert got == {b"1", b"2"}


def test_rdy_caps_messages_in_flight(nsqd, conn_factory):
    p = conn_factory(nsqd)
    for i in range(3):
        p.pub("rdy", b"%d" % i)
    c = conn_factory(nsqd)
    c.subscribe("rdy", "c", rdy=2)
    first = c.read_message()
    c.read_message()
    with pytest.raises(socket.timeout):
        c.read_frame(timeout=0.5)
    c.send(cmds.encode_fin(first[0]))
    c.sock.settimeout(5)
    assert c.read_message()[1] == 1


def test_fin_unknown_id_is_non_fatal_fin_failed(nsqd, conn_factory):
    c = conn_factory(nsqd)
    c.subscribe("f", "c", rdy=1)
    c.send(cmds.encode_fin(b"0123456789abcdef"))
    c.expect_error(b"E_FIN_FAILED FIN 0123456789abcdef failed ID not in flight")
    c.send(b"NOP\n")
    conn_factory(nsqd).pub("f", b"still")
    assert c.read_message()[2] == b"still"


def test_fin_of_another_clients_message_fails_not_owner(nsqd, conn_factory):
    a = conn_factory(nsqd)
    a.subscribe("own", "c", rdy=1)
    b = conn_factory(nsqd)
    b.subscribe("own", "c", rdy=0)
    conn_factory(nsqd).pub("own", b"x")
    msg_id = a.read_message()[0]
    b.send(cmds.encode_fin(msg_id))
    b.expect_error(b"E_FIN_FAILED FIN %s failed client does not own message" % msg_id)


def test_fin_before_sub_is_fatal_invalid(nsqd, conn_factory):
    c = conn_factory(nsqd)
    c.send(cmds.encode_fin(b"0123456789abcdef"))
    c.expect_error(b"E_INVALID cannot FIN in current state")
    c.expect_closed()


def test_fin_with_short_id_is_fatal_invalid_message_id(nsqd, conn_factory):
    c = conn_factory(nsqd)
    c.subscribe("t", "c")
    c.send(b"FIN abc\n")
    c.expect_error(b"E_INVALID invalid message ID")
    c.expect_closed()


def test_req_redelivers_same_id_with_attempts_two(nsqd, conn_factory):
    c = conn_factory(nsqd)
    c.subscribe("rq", "c", rdy=1)
    conn_factory(nsqd).pub("rq", b"x")
    msg_id, attempts, _, _ = c.read_message()
    c.send(cmds.encode_req(msg_id, 0))
    again = c.read_message()
    assert (again[0], again[1]) == (msg_id, 2)
    st = nsqd.channel_stats("rq", "c")
    assert st["requeue_count"] == 1


def test_req_with_delay_defers_the_message(nsqd, conn_factory):
    c = conn_factory(nsqd)
    c.subscribe("rqd", "c", rdy=1)
    conn_factory(nsqd).pub("rqd", b"x")
    msg_id = c.read_message()[0]
    t0 = time.monotonic()
    c.send(cmds.encode_req(msg_id, 600))
    time.sleep(0.2)
    assert nsqd.channel_stats("rqd", "c")["deferred_count"] == 1
    again = c.read_message()
    assert again[0] == msg_id and time.monotonic() - t0 >= 0.5


def test_req_timeout_not_digits_is_fatal(nsqd, conn_factory):
    c = conn_factory(nsqd)
    c.subscribe("t", "c")
    c.send(b"REQ 0123456789abcdef -1\n")
    c.expect_error(b"E_INVALID REQ could not parse timeout -1")
    c.expect_closed()


def test_msg_timeout_redelivers_after_client_timeout(nsqd, conn_factory):
    c = conn_factory(nsqd)
    c.identify(msg_timeout=1000)
    c.subscribe("to", "c", rdy=1)
    conn_factory(nsqd).pub("to", b"x")
    msg_id = c.read_message()[0]
    t0 = time.monotonic()
    again = c.read_message(timeout=5)
    assert again[0] == msg_id and again[1] == 2
    assert 0.9 <= time.monotonic() - t0 < 3
    assert nsqd.channel_stats("to", "c")["timeout_count"] == 1


def test_touch_extends_the_deadline(nsqd, conn_factory):
    c = conn_factory(nsqd)
    c.identify(msg_timeout=1000)
    c.subscribe("touch", "c", rdy=1)
    conn_factory(nsqd).pub("touch", b"x")
    msg_id = c.read_message()[0]
    for _ in range(3):
        time.sleep(0.6)
        c.send(cmds.encode_touch(msg_id))
    with pytest.raises(socket.timeout):
        c.read_frame(timeout=0.5)
    c.send(cmds.encode_fin(msg_id))
    c.sock.settimeout(5)
    assert nsqd.channel_stats("touch", "c")["timeout_count"] == 0


def test_touch_unknown_id_is_non_fatal(nsqd, conn_factory):
    c = conn_factory(nsqd)
    c.subscribe("t", "c")
    c.send(cmds.encode_touch(b"0123456789abcdef"))
    c.expect_error(b"E_TOUCH_FAILED TOUCH 0123456789abcdef failed ID not in flight")


def test_dpub_delivers_after_the_delay(nsqd, conn_factory):
    c = conn_factory(nsqd)
    c.subscribe("dp", "c", rdy=1)
    p = conn_factory(nsqd)
    t0 = time.monotonic()
    p.send(cmds.encode_dpub("dp", 700, b"later"))
    p.expect_response()
    assert c.read_message(timeout=5)[2] == b"later"
    assert time.monotonic() - t0 >= 0.6


def test_dpub_out_of_range_is_fatal(nsqd, conn_factory):
    c = conn_factory(nsqd)
    c.send(cmds.encode_dpub("dp", 3600001, b"x"))
    c.expect_error(b"E_INVALID DPUB timeout 3600001 out of range 0-3600000")
    c.expect_closed()


def test_pub_bad_topic_is_fatal_bad_topic(nsqd, conn_factory):
    c = conn_factory(nsqd)
    c.send(b"PUB bad!topic\n" + struct.pack(">i", 1) + b"x")
    c.expect_error(b'E_BAD_TOPIC PUB topic name "bad!topic" is not valid')
    c.expect_closed()


def test_pub_message_too_big_is_fatal(nsqd_factory, conn_factory):
    d = nsqd_factory("--max-msg-size=10")
    c = conn_factory(d)
    c.send(b"PUB t\n" + struct.pack(">i", 11))
    c.expect_error(b"E_BAD_MESSAGE PUB message too big 11 > 10")
    c.expect_closed()


def test_pub_message_at_max_size_is_accepted(nsqd_factory, conn_factory):
    d = nsqd_factory("--max-msg-size=10")
    conn_factory(d).pub("t", b"x" * 10)


def test_mpub_bad_topic_repeats_the_code(nsqd, conn_factory):
    c = conn_factory(nsqd)
    c.send(cmds.encode_mpub("a b", [b"x"]).replace(b"MPUB a b", b"MPUB a*b"))
    c.expect_error(b'E_BAD_TOPIC E_BAD_TOPIC MPUB topic name "a*b" is not valid')


def test_invalid_command_is_fatal(nsqd, conn_factory):
    c = conn_factory(nsqd)
    c.send(b"WHAT\n")
    c.expect_error(b"E_INVALID invalid command WHAT")
    c.expect_closed()


def test_bad_client_does_not_disturb_others(nsqd, conn_factory):
    good = conn_factory(nsqd)
    good.subscribe("iso", "c", rdy=5)
    bad = conn_factory(nsqd)
    bad.send(b"\xff\xfe garbage\n")
    bad.expect_error(b"E_INVALID invalid command \xff\xfe")
    bad.expect_closed()
    conn_factory(nsqd).pub("iso", b"ok")
    assert good.read_message()[2] == b"ok"


def test_rdy_out_of_range_is_fatal(nsqd, conn_factory):
    c = conn_factory(nsqd)
    c.subscribe("t", "c")
    c.send(b"RDY 2501\n")
    c.expect_error(b"E_INVALID RDY count 2501 out of range 0-2500")
    c.expect_closed()


def test_rdy_before_sub_is_fatal(nsqd, conn_factory):
    c = conn_factory(nsqd)
    c.send(b"RDY 1\n")
    c.expect_error(b"E_INVALID cannot RDY in current state")


def test_sub_twice_is_fatal(nsqd, conn_factory):
    c = conn_factory(nsqd)
    c.subscribe("t", "c")
    c.send(cmds.encode_sub("t", "c"))
    c.expect_error(b"E_INVALID cannot SUB in current state")


def test_sub_with_heartbeats_disabled_is_refused(nsqd, conn_factory):
    c = conn_factory(nsqd)
    c.identify(heartbeat_interval=-1)
    c.send(cmds.encode_sub("t", "c"))
    c.expect_error(b"E_INVALID cannot SUB with heartbeats disabled")


def test_cls_answers_close_wait_and_stops_delivery(nsqd, conn_factory):
    c = conn_factory(nsqd)
    c.subscribe("cls", "c", rdy=5)
    c.send(b"CLS\n")
    c.expect_response(b"CLOSE_WAIT")
    c.send(b"RDY 5\n")                 # ignored while closing
    conn_factory(nsqd).pub("cls", b"x")
    with pytest.raises(socket.timeout):
        c.read_frame(timeout=0.5)


def test_cls_before_sub_is_fatal(nsqd, conn_factory):
    c = conn_factory(nsqd)
    c.send(b"CLS\n")
    c.expect_error(b"E_INVALID cannot CLS in current state")


def test_heartbeat_sent_and_silent_client_disconnected(nsqd, conn_factory):
    c = conn_factory(nsqd)
    c.identify(heartbeat_interval=1000)
    t0 = time.monotonic()
    ft, data = c.read_frame(timeout=3, skip_heartbeats=False)
    assert (ft, data) == (0, b"_heartbeat_")
    assert 0.8 < time.monotonic() - t0 < 1.6
    c.expect_closed(timeout=3)
    assert time.monotonic() - t0 < 3


def test_answered_heartbeats_keep_the_connection(nsqd, conn_factory):
    c = conn_factory(nsqd)
    c.identify(heartbeat_interval=1000)
    for _ in range(3):
        assert c.read_frame(timeout=3, skip_heartbeats=False) == (0, b"_heartbeat_")
        c.send(b"NOP\n")
    c.pub("hb", b"alive")


def test_sample_rate_drops_most_messages(nsqd, conn_factory):
    c = conn_factory(nsqd)
    c.identify(sample_rate=10)
    c.subscribe("sample", "c", rdy=1000)
    p = conn_factory(nsqd)
    p.send(cmds.encode_mpub("sample", [b"x"] * 1000))
    p.expect_response()
    got = 0
    try:
        while True:
            c.read_message(timeout=0.6)
            got += 1
    except socket.timeout:
        pass
    assert 30 < got < 250


def test_ephemeral_channel_deleted_when_last_client_leaves(nsqd, conn_factory):
    c = conn_factory(nsqd)
    c.subscribe("eph", "c#ephemeral")
    assert nsqd.channel_stats("eph", "c#ephemeral") is not None
    c.close()
    deadline = time.time() + 5
    while nsqd.channel_stats("eph", "c#ephemeral") is not None:
        assert time.time() < deadline
        time.sleep(0.05)


def test_output_buffer_timeout_flushes_buffered_messages(nsqd, conn_factory):
    c = conn_factory(nsqd)
    c.identify(output_buffer_timeout=1000)
    c.subscribe("obuf", "c", rdy=10)
    t0 = time.monotonic()
    conn_factory(nsqd).pub("obuf", b"x")
    c.read_message(timeout=3)
    assert time.monotonic() - t0 >= 0.8


def test_stats_show_consumer_and_producer(nsqd, conn_factory):
    c = conn_factory(nsqd)
    c.identify(client_id="cons", hostname="conshost", user_agent="probe-sub/1.0")
    c.subscribe("st", "ch", rdy=5)
    p = conn_factory(nsqd)
    p.identify(client_id="prod")
    p.pub("st", b"x")
    c.read_message()
    s = nsqd.stats()
    (topic,) = [t for t in s["topics"] if t["topic_name"] == "st"]
    client = topic["channels"][0]["clients"][0]
    assert (client["client_id"], client["state"], client["ready_count"], client["in_flight_count"]) == \
        ("cons", 3, 5, 1)
    assert [p["pub_counts"] for p in s["producers"]] == [[{"topic": "st", "count": 1}]]
    assert json.dumps(s)  # serialisable


def test_ephemeral_topic_deleted_with_its_last_channel(nsqd, conn_factory):
    c = conn_factory(nsqd)
    c.subscribe("gone#ephemeral", "c#ephemeral")
    assert nsqd.stats(topic="gone#ephemeral")["topics"]
    c.close()
    deadline = time.time() + 5
    while nsqd.stats(topic="gone#ephemeral")["topics"]:
        assert time.time() < deadline
        time.sleep(0.05)


def test_ephemeral_channel_overflow_is_discarded_not_written(nsqd_factory, conn_factory):
    d = nsqd_factory("--mem-queue-size=2")
    c = conn_factory(d)
    c.subscribe("ephov", "c#ephemeral")
    p = conn_factory(d)
    p.send(cmds.encode_mpub("ephov", [b"x"] * 5))
    p.expect_response()
    ch = d.channel_stats("ephov", "c#ephemeral")
    assert (ch["depth"], ch["backend_depth"], ch["message_count"]) == (2, 0, 5)
    import os
    assert not [f for f in os.listdir(d.data_path) if "ephemeral" in f]


def test_e2e_latency_percentiles_reported_after_fin(nsqd_factory, conn_factory):
    d = nsqd_factory("--e2e-processing-latency-percentile=0.99",
                     "--e2e-processing-latency-percentile=0.5")
    c = conn_factory(d)
    c.subscribe("e2e", "c", rdy=10)
    conn_factory(d).pub("e2e", b"x")
    msg_id = c.read_message()[0]
    time.sleep(0.05)
    c.send(cmds.encode_fin(msg_id))
    time.sleep(0.2)
    lat = d.channel_stats("e2e", "c")["e2e_processing_latency"]
    assert lat["count"] == 1
    assert [p["quantile"] for p in lat["percentiles"]] == [0.99, 0.5]
    assert all(p["value"] >= 50e6 for p in lat["percentiles"])
    topic_lat = d.stats(topic="e2e")["topics"][0]["e2e_processing_latency"]
    assert topic_lat["count"] == 1


def test_paused_channel_queues_but_delivers_nothing_until_unpaused(nsqd, conn_factory):
    c = conn_factory(nsqd)
    c.subscribe("pz", "c", rdy=5)
    assert nsqd.http("POST", "/channel/pause?topic=pz&channel=c")[0] == 200
    conn_factory(nsqd).pub("pz", b"x")
    with pytest.raises(socket.timeout):
        c.read_frame(timeout=0.4)
    assert nsqd.channel_stats("pz", "c")["depth"] == 1
    assert nsqd.http("POST", "/channel/unpause?topic=pz&channel=c")[0] == 200
    c.sock.settimeout(5)
    assert c.read_message()[2] == b"x"


def test_paused_topic_holds_messages_until_unpaused(nsqd, conn_factory):
    c = conn_factory(nsqd)
    c.subscribe("tp", "c", rdy=5)
    assert nsqd.http("POST", "/topic/pause?topic=tp")[0] == 200
    conn_factory(nsqd).pub("tp", b"x")
    assert nsqd.stats(topic="tp")["topics"][0]["depth"] == 1
    with pytest.raises(socket.timeout):
        c.read_frame(timeout=0.4)
    assert nsqd.http("POST", "/topic/unpause?topic=tp")[0] == 200
    c.sock.settimeout(5)
    assert c.read_message()[2] == b"x"


def test_channel_delete_disconnects_its_consumers(nsqd, conn_factory):
    c = conn_factory(nsqd)
    c.subscribe("cd", "c", rdy=5)
    assert nsqd.http("POST", "/channel/delete?topic=cd&channel=c")[0] == 200
    c.expect_closed()
    assert nsqd.channel_stats("cd", "c") is None


def test_channel_empty_drops_in_flight_and_resets_client_count(nsqd, conn_factory):
    c = conn_factory(nsqd)
    c.subscribe("ce", "c", rdy=1)
    p = conn_factory(nsqd)
    p.pub("ce", b"1")
    p.pub("ce", b"2")
    c.read_message()
    assert nsqd.http("POST", "/channel/empty?topic=ce&channel=c")[0] == 200
    st = nsqd.channel_stats("ce", "c")
    assert (st["depth"], st["in_flight_count"], st["clients"][0]["in_flight_count"]) == (0, 0, 0)
    p.pub("ce", b"3")
    assert c.read_message()[2] == b"3"


def test_disconnected_consumer_messages_time_out_to_others_and_it_gets_no_more(nsqd, conn_factory):
    a = conn_factory(nsqd)
    a.identify(msg_timeout=1000)
    a.subscribe("dc", "c", rdy=5)
    p = conn_factory(nsqd)
    p.pub("dc", b"held")
    a.read_message()
    a.close()
    b = conn_factory(nsqd)
    b.subscribe("dc", "c", rdy=10)
    msg_id, attempts, body, _ = b.read_message(timeout=5)
    assert (attempts, body) == (2, b"held")
    b.send(cmds.encode_fin(msg_id))
    for i in range(5):
        p.pub("dc", b"after%d" % i)
    got = sorted(b.read_message(timeout=0.8)[2] for _ in range(5))   # not via a timeout
    assert got == [b"after%d" % i for i in range(5)]
    assert nsqd.channel_stats("dc", "c")["timeout_count"] == 1
