"""nsqpy.client.Config: go-nsq option names, coercion, ranges, passthrough."""
import datetime

import pytest

from nsqpy.client import Config, ConfigError, parse_opt
from nsqpy.client.lookup import lookup_url, producer_addresses


@pytest.mark.parametrize("name,want", [
    ("dial_timeout", 1.0),
    ("read_timeout", 60.0),
    ("write_timeout", 1.0),
    ("lookupd_poll_interval", 60.0),
    ("lookupd_poll_jitter", 0.3),
    ("max_requeue_delay", 900.0),
    ("default_requeue_delay", 90.0),
    ("backoff_strategy", "exponential"),
    ("max_backoff_duration", 120.0),
    ("backoff_multiplier", 1.0),
    ("max_attempts", 5),
    ("low_rdy_idle_timeout", 10.0),
    ("low_rdy_timeout", 30.0),
    ("rdy_redistribute_interval", 5.0),
    ("heartbeat_interval", 30.0),
    ("output_buffer_size", 16384),
    ("output_buffer_timeout", 0.25),
    ("max_in_flight", 1),
    ("deflate_level", 6),
    ("user_agent", "go-nsq/1.1.0"),
])
def test_defaults_match_go_nsq(name, want):
    assert getattr(Config(), name) == want


def test_default_client_id_and_hostname():
    c = Config()
    assert c.client_id and c.hostname.startswith(c.client_id)


@pytest.mark.parametrize("value,want", [
    ("1m30s", 90.0),
    (1500, 1.5),                                # integers are milliseconds (go-nsq)
    ("2500", 2.5),                              # digit strings too
    (datetime.timedelta(seconds=3), 3.0),
])
def test_duration_values_go_strings_ms_numbers_timedelta(value, want):
    c = Config()
    c.set("read_timeout", value)
    assert c.read_timeout == want


def test_duration_value_that_does_not_coerce():
    with pytest.raises(ConfigError, match="failed to coerce option read_timeout"):
        Config().set("read_timeout", "abc")


@pytest.mark.parametrize("value,want", [("true", True), ("1", True), ("t", True),
                                        ("FALSE", False), (0, False), (2, True), (True, True)])
def test_bool_values_strings_and_ints(value, want):
    c = Config()
    c.set("snappy", value)
    assert c.snappy is want


def test_bool_value_that_does_not_coerce():
    with pytest.raises(ConfigError):
        Config().set("snappy", "yes")


RANGE_ERRORS = [
    ("read_timeout", "50ms", r"invalid read_timeout ! 0.05s < 0.1s"),
    ("max_attempts", 65536, "invalid max_attempts"),
    ("max_in_flight", -1, "invalid max_in_flight"),
    ("sample_rate", 100, "invalid sample_rate"),
    ("deflate_level", 0, "invalid deflate_level"),
    ("lookupd_poll_jitter", "1.5", "invalid lookupd_poll_jitter"),
    ("rdy_redistribute_interval", "6s", "invalid rdy_redistribute_interval"),
    ("backoff_strategy", "linear", "backoff_strategy"),
]


@pytest.mark.parametrize("option,value,match", RANGE_ERRORS)
def test_ranges_are_validated_on_set(option, value, match):
    c = Config()
    with pytest.raises(ConfigError, match=match):
        c.set(option, value)
    assert getattr(c, option) == getattr(Config(), option)   # failed sets leave values alone


def test_ranges_failed_sets_in_a_row_then_a_valid_one():
    c = Config()
    for option, value, match in RANGE_ERRORS:
        with pytest.raises(ConfigError, match=match):
            c.set(option, value)
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


@pytest.mark.parametrize("address,want", [
    ("127.0.0.1:4161", "http://127.0.0.1:4161/lookup?topic=t"),
    ("http://h:1/", "http://h:1/lookup?topic=t"),
    ("https://h:1/custom?x=1", "https://h:1/custom?x=1&topic=t"),
])
def test_lookup_url_forms(address, want):
    assert lookup_url(address, "t") == want


def test_lookup_url_needs_a_port():
    with pytest.raises(ValueError):
        lookup_url("hostonly", "t")


def test_producer_addresses_from_lookup_reply():
    reply = {"channels": [], "producers": [
        {"broadcast_address": "a.local", "tcp_port": 4150, "http_port": 4151},
        {"broadcast_address": "::1", "tcp_port": 4250, "http_port": 4251}]}
    assert producer_addresses(reply) == ["a.local:4150", "[::1]:4250"]
    legacy = {"status_code": 200, "data": reply}
    assert producer_addresses(legacy) == ["a.local:4150", "[::1]:4250"]
