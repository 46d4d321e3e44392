"""nsqpy.client.Config: go-nsq option names, coercion, ranges, passthrough."""
import datetime

import pytest

from nsqpy.client import Config, ConfigError, parse_opt
from nsqpy.client.lookup import lookup_url, producer_addresses


def test_defaults_match_go_nsq():
    c = Config()
    assert c.dial_timeout == 1.0
    assert c.read_timeout == 60.0
    assert c.write_timeout == 1.0
    assert c.lookupd_poll_interval == 60.0
    assert c.lookupd_poll_jitter == 0.3
    assert c.max_requeue_delay == 900.0
    assert c.default_requeue_delay == 90.0
    assert c.backoff_strategy == "exponential"
    assert c.max_backoff_duration == 120.0
    assert c.backoff_multiplier == 1.0
    assert c.max_attempts == 5
    assert c.low_rdy_idle_timeout == 10.0
    assert c.low_rdy_timeout == 30.0
    assert c.rdy_redistribute_interval == 5.0
    assert c.heartbeat_interval == 30.0
    assert c.output_buffer_size == 16384
    assert c.output_buffer_timeout == 0.25
    assert c.max_in_flight == 1
    assert c.deflate_level == 6
    assert c.user_agent == "go-nsq/1.1.0"
    assert c.client_id and c.hostname.startswith(c.client_id)


def test_duration_values_go_strings_ms_numbers_timedelta():
    c = Config()
    c.set("read_timeout", "1m30s")
    assert c.read_timeout == 90.0
    c.set("read_timeout", 1500)                 # integers are milliseconds (go-nsq)
    assert c.read_timeout == 1.5
    c.set("read_timeout", "2500")               # digit strings too
    assert c.read_timeout == 2.5
    c.set("read_timeout", datetime.timedelta(seconds=3))
    assert c.read_timeout == 3.0
    with pytest.raises(ConfigError, match="failed to coerce option read_timeout"):
        c.set("read_timeout", "abc")


def test_bool_values_strings_and_ints():
    c = Config()
    for v, want in [("true", True), ("1", True), ("t", True), ("FALSE", False), (0, False),
                    (2, True), (True, True)]:
        c.set("snappy", v)
        assert c.snappy is want
    with pytest.raises(ConfigError):
        c.set("snappy", "yes")


def test_ranges_are_validated_on_set():
    c = Config()
    with pytest.raises(ConfigError, match=r"invalid read_timeout ! 0.05s < 0.1s"):
        c.set("read_timeout", "50ms")
    with pytest.raises(ConfigError, match="invalid max_attempts"):
        c.set("max_attempts", 65536)
    with pytest.raises(ConfigError, match="invalid max_in_flight"):
        c.set("max_in_flight", -1)
    with pytest.raises(ConfigError, match="invalid sample_rate"):
        c.set("sample_rate", 100)
    with pytest.raises(ConfigError, match="invalid deflate_level"):
        c.set("deflate_level", 0)
    with pytest.raises(ConfigError, match="invalid lookupd_poll_jitter"):
        c.set("lookupd_poll_jitter", "1.5")
    with pytest.raises(ConfigError, match="invalid rdy_redistribute_interval"):
        c.set("rdy_redistribute_interval", "6s")
    with pytest.raises(ConfigError, match="backoff_strategy"):
        c.set("backoff_strategy", "linear")
    c.set("backoff_strategy", "full_jitter")
    assert c.max_in_flight == 1                 # failed sets leave values alone


def test_unknown_option_and_attribute_assignment():
    c = Config()
    with pytest.raises(ConfigError, match="invalid option bogus"):
        c.set("bogus", 1)
    c.max_in_flight = "7"                        # attribute assignment goes through set()
    assert c.max_in_flight == 7
    with pytest.raises(ConfigError):
        c.max_in_flight = -2


def test_passthrough_key_value_and_dashes():
    assert parse_opt("max_in_flight,10") == ("max_in_flight", "10")
    assert parse_opt("tls-v1") == ("tls_v1", "true")
    c = Config()
    c.set_opt("max-in-flight,10")
    c.set_opt("snappy")
    c.set_opt("heartbeat_interval,5s")
    assert (c.max_in_flight, c.snappy, c.heartbeat_interval) == (10, True, 5.0)
    c2 = Config(max_in_flight=3, **{"lookupd-poll-interval": "15s"})
    assert (c2.max_in_flight, c2.lookupd_poll_interval) == (3, 15.0)


def test_validate_heartbeat_below_read_timeout():
    c = Config(heartbeat_interval="90s")
    with pytest.raises(ConfigError, match="HeartbeatInterval"):
        c.validate()
    Config(heartbeat_interval=-1).validate()     # -1 disables


def test_identify_body_units():
    c = Config(heartbeat_interval="5s", output_buffer_timeout="100ms", msg_timeout="30s",
               snappy=True, sample_rate=10, user_agent="x/1")
    b = c.identify_body()
    assert b["heartbeat_interval"] == 5000
    assert b["output_buffer_timeout"] == 100
    assert b["msg_timeout"] == 30000
    assert b["feature_negotiation"] is True
    assert b["snappy"] is True and b["deflate"] is False
    assert b["sample_rate"] == 10
    assert b["user_agent"] == "x/1"
    assert Config(heartbeat_interval=-1).identify_body()["heartbeat_interval"] == -1


def test_copy_is_independent():
    a = Config(max_in_flight=4)
    b = a.copy()
    b.max_in_flight = 9
    assert a.max_in_flight == 4


def test_lookup_url_forms():
    assert lookup_url("127.0.0.1:4161", "t") == "http://127.0.0.1:4161/lookup?topic=t"
    assert lookup_url("http://h:1/", "t") == "http://h:1/lookup?topic=t"
    assert lookup_url("https://h:1/custom?x=1", "t") == "https://h:1/custom?x=1&topic=t"
    with pytest.raises(ValueError):
        lookup_url("hostonly", "t")


def test_producer_addresses_from_lookup_reply():
    reply = {"channels": [], "producers": [
        {"broadcast_address": "a.local", "tcp_port": 4150, "http_port": 4151},
        {"broadcast_address": "::1", "tcp_port": 4250, "http_port": 4251}]}
    assert producer_addresses(reply) == ["a.local:4150", "[::1]:4250"]
    legacy = {"status_code": 200, "data": reply}
    assert producer_addresses(legacy) == ["a.local:4150", "[::1]:4250"]
